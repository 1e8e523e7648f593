//! The parameter view: an arbitrary flat slice (any length, any values) with an arbitrary
//! config through `SimSiamHead::from_params`. The result is the config's error, then
//! `DimensionMismatch { expected: param_count, got: len }`, then
//! `NonFinite { location: "params" }`, else a head over exactly that slice, whose calls
//! then do not panic either.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use simsiam::model::Architecture;
use simsiam::{SimSiamConfig, SimSiamHead, SslError};
use simsiam_fuzz::{any_config, any_dim, expected_param_count, floats};

/// Longest slice tried.
const MAX_LEN: usize = 4_096;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let config = if u.arbitrary()? {
        any_config(u)?
    } else {
        // Mostly valid small configs, so that the length and value checks are reached.
        let mut small = || -> Result<usize> {
            if u.ratio(1_u8, 16)? {
                any_dim(u)
            } else {
                u.int_in_range(1..=12)
            }
        };
        SimSiamConfig {
            d_encoder: small()?,
            d_projector: small()?,
            d_predictor: small()?,
            d_out: small()?,
        }
    };
    let expected = expected_param_count(&config);
    let len = match expected {
        Ok(n) if n <= MAX_LEN && u.ratio(3_u8, 4)? => n,
        _ => u.int_in_range(0..=MAX_LEN)?,
    };
    let params = floats(u, len)?;
    let head = SimSiamHead::from_params(config, &params[..]);
    let head = match expected {
        Err(e) => {
            assert_eq!(head.map(|_| ()), Err(e));
            return Ok(());
        }
        Ok(n) if n != len => {
            let mismatch = SslError::DimensionMismatch {
                expected: n,
                got: len,
            };
            assert_eq!(head.map(|_| ()), Err(mismatch));
            return Ok(());
        }
        Ok(_) if !params.iter().all(|p| p.is_finite()) => {
            let non_finite = SslError::NonFinite { location: "params" };
            assert_eq!(head.map(|_| ()), Err(non_finite));
            return Ok(());
        }
        Ok(_) => head.expect("valid config, length and values"),
    };
    assert_eq!(
        head.architecture(),
        &Architecture::reference(config).expect("valid")
    );
    assert_eq!(
        head.params().as_ptr(),
        params.as_ptr(),
        "a view, not a copy"
    );
    assert_eq!(head.params().len(), len);

    // Any finite parameters: calls give a value or a typed error, never a panic.
    let z = floats(u, config.d_encoder)?;
    let mut out = vec![0.0; config.d_out];
    let _ = head.project_into(&z, &mut out, &mut []);
    let _ = head.predict_into(&z[..config.d_out.min(z.len())], &mut out, &mut []);
    let mut workspace = vec![0.0; 4 * config.d_out];
    if let Ok(loss) = head.loss(&z, &z, &mut workspace) {
        assert!(loss.is_finite() && loss.abs() <= 1.0 + 1e-5, "loss {loss}");
    }
    Ok(())
}
