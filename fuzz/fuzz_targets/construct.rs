//! Configuration and construction with arbitrary dimensions (0, 1, huge, overflowing
//! products): a typed error or a valid model, never a panic, and never an attempt to
//! allocate an absurd amount.
//!
//! - no-alloc core: `param_count`, `loss_workspace_len`, `init_params` into a buffer of
//!   arbitrary length, `SimSiamHead::from_params`, and `SimSiamHead::from_seed` into a
//!   `heapless::Vec` of capacity `CAP`: each result is compared with a count computed
//!   independently in `u128`;
//! - `alloc`: `SimSiam::new` is called when the count is at most `ALLOC_LIMIT` floats or
//!   when the config is invalid (it must then fail before allocating); larger valid
//!   configs are not handed to it, since a fallible reservation of gigabytes can succeed
//!   on an overcommitting OS. libFuzzer's `-malloc_limit_mb` catches any large request.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use simsiam::model::Architecture;
use simsiam::{LcgRng, SimSiam, SimSiamHead, SslError, init_params};
use simsiam_fuzz::{any_config, expected_param_count, expected_validate, moderate};

/// Capacity of the fixed-size storage tried by `from_seed`.
const CAP: usize = 2_048;
/// Largest parameter count handed to `SimSiam::new`.
const ALLOC_LIMIT: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let config = any_config(u)?;
    let seed: u64 = u.arbitrary()?;
    let expected = expected_param_count(&config);

    assert_eq!(config.validate(), expected_validate(&config), "{config:?}");
    assert_eq!(config.param_count(), expected, "{config:?}");
    let workspace = config.loss_workspace_len();
    match expected_validate(&config) {
        Err(e) => assert_eq!(workspace, Err(e)),
        Ok(()) => match config.d_out.checked_mul(4) {
            Some(n) => assert_eq!(workspace, Ok(n)),
            None => assert_eq!(
                workspace,
                Err(SslError::InvalidParameter {
                    name: "d_out",
                    reason: "workspace length overflows usize",
                })
            ),
        },
    }

    // init_params and from_params on a buffer of arbitrary (bounded) length.
    let mut buffer = vec![0.0_f32; CAP];
    let len = match expected {
        Ok(n) if n <= CAP && u.ratio(3_u8, 4)? => n,
        _ => u.int_in_range(0..=CAP)?,
    };
    let params = &mut buffer[..len];
    let init = init_params(&config, &mut LcgRng::new(seed), params);
    let view = SimSiamHead::from_params(config, &params[..]);
    match expected {
        Err(e) => {
            assert_eq!(init, Err(e));
            assert_eq!(view.map(|_| ()), Err(e));
        }
        Ok(n) if n != len => {
            let mismatch = SslError::DimensionMismatch {
                expected: n,
                got: len,
            };
            assert_eq!(init, Err(mismatch));
            assert_eq!(view.map(|_| ()), Err(mismatch));
        }
        Ok(_) => {
            assert_eq!(init, Ok(()));
            assert!(params.iter().all(|p| p.is_finite()), "{config:?}");
            let head = view.expect("valid config and length");
            assert_eq!(
                head.architecture(),
                &Architecture::reference(config).expect("valid")
            );
            assert_eq!(head.d_out(), config.d_out);
        }
    }

    // from_seed into fixed capacity: Ok exactly when the count fits.
    let seeded = SimSiamHead::<heapless::Vec<f32, CAP>>::from_seed(config, &mut LcgRng::new(seed));
    match expected {
        Err(e) => assert_eq!(seeded.map(|_| ()), Err(e)),
        Ok(n) if n > CAP => assert_eq!(
            seeded.map(|_| ()),
            Err(SslError::CapacityTooSmall {
                needed: n,
                capacity: CAP
            })
        ),
        Ok(n) => {
            let mut head = seeded.expect("fits");
            assert_eq!(head.params().len(), n);
            if len == n {
                assert_eq!(head.params(), &buffer[..n], "same seed, same weights");
            }
            let identity = head.set_identity_predictor();
            if Some(config.d_predictor) == config.d_out.checked_mul(2) {
                assert_eq!(identity, Ok(()));
                check_identity(u, &head)?;
            } else {
                assert!(matches!(
                    identity,
                    Err(SslError::InvalidParameter {
                        name: "d_predictor",
                        ..
                    })
                ));
            }
        }
    }

    // The alloc API: only for counts that cannot be absurd.
    let small = matches!(expected, Ok(n) if n <= ALLOC_LIMIT);
    if expected.is_err() || small {
        let model = SimSiam::new(config, &mut LcgRng::new(seed));
        match expected {
            Err(e) => assert_eq!(model.map(|_| ()), Err(e)),
            Ok(_) => {
                let mut model = model.expect("small valid config");
                assert_eq!(model.d_out(), config.d_out);
                let identity = model.set_identity_predictor();
                assert_eq!(
                    identity.is_ok(),
                    Some(config.d_predictor) == config.d_out.checked_mul(2)
                );
            }
        }
    }
    Ok(())
}

/// With the identity predictor, `predict(project(z)) == project(z)` within rounding.
fn check_identity(
    u: &mut Unstructured<'_>,
    head: &SimSiamHead<heapless::Vec<f32, CAP>>,
) -> Result<()> {
    let (d_encoder, d_out) = (head.d_encoder(), head.d_out());
    let z = (0..d_encoder)
        .map(|_| moderate(u))
        .collect::<Result<Vec<_>>>()?;
    let mut projected = vec![0.0; d_out];
    let mut predicted = vec![0.0; d_out];
    head.project_into(&z, &mut projected, &mut [])
        .expect("finite weights and input");
    head.predict_into(&projected, &mut predicted, &mut [])
        .expect("unit input");
    let norm = projected.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.5 {
        for (p, q) in projected.iter().zip(&predicted) {
            assert!(
                (p - q).abs() <= 1e-5,
                "identity predictor: {projected:?} vs {predicted:?}"
            );
        }
    }
    Ok(())
}
