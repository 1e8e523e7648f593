//! The forward pass on a small arbitrary config with arbitrary input lengths and values
//! (NaN, ±inf, subnormal, huge) and weights scaled anywhere from 1e-30 to 1e30, through
//! `project_into`, `predict_into`, `loss_with_workspace`, the fixed-capacity outputs and
//! the batch calls (`project_batch_into`, `predict_batch_into`,
//! `loss_batch_with_workspace`, 0 to 20 rows), on both backends, and `SimSiam` (alloc)
//! on the same weights.
//!
//! What is asserted is exactly what the library guarantees:
//! - errors come in the documented order with the documented payloads: lengths first,
//!   then workspace capacity, then non-finite inputs;
//! - `NonFinite { location: "… output" }` only when exact arithmetic says an `f32`
//!   evaluation may overflow, and always when it must;
//! - `Ok` outputs are finite, every entry within the per-case bound of the exact
//!   `o / max(‖o‖, 1e-12)` (`simsiam_fuzz::mlp2_oracle`: first-order bounds propagated in
//!   `f64` through both layers and the normalisation, as tests/batch.rs derives them from
//!   `sum_error_bound`, plus the underflow allowance); ‖out‖ ≤ 1 + t and, when the
//!   computed norm is surely above the 1e-12 floor, ‖out‖ = 1 within t, with
//!   `t = sum_error_bound(d_out, 1) + 4·EPS`; surely below it, ‖out‖ < 1;
//! - the loss is finite, `|loss| ≤ (1 + t)²·(1 + sum_error_bound(d_out, 1))` (plus the
//!   final rounding), and within the propagated bound of the exact loss of its views
//!   (`simsiam_fuzz::loss_oracle`, as `loss_bound` in tests/batch.rs).
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use simsiam::model::Architecture;
use simsiam::{Backend, LcgRng, SimSiam, SimSiamConfig, SimSiamHead, SslError, init_params};
use simsiam_fuzz::twin::twin;
use simsiam_fuzz::{
    Layer, any_finite_f32, assert_normalised, floats, layers, length, loss_limit, loss_oracle,
    mlp2_oracle_f32,
};

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn small_config(u: &mut Unstructured<'_>) -> Result<SimSiamConfig> {
    let d_out = u.int_in_range(1..=24)?;
    let d_projector = if u.ratio(1_u8, 8)? {
        u.int_in_range(250..=300)? // crosses HIDDEN_BLOCK = 256
    } else {
        u.int_in_range(1..=40)?
    };
    let d_predictor = if u.ratio(1_u8, 4)? {
        2 * d_out
    } else {
        u.int_in_range(1..=40)?
    };
    Ok(SimSiamConfig {
        d_encoder: u.int_in_range(1..=40)?,
        d_projector,
        d_predictor,
        d_out,
    })
}

/// Seeded Kaiming weights, then one of: as is, scaled, zeroed, or with a few entries
/// replaced by arbitrary finite values; and sometimes the identity predictor.
fn params(u: &mut Unstructured<'_>, config: &SimSiamConfig) -> Result<(Vec<f32>, bool)> {
    let count = config.param_count().expect("small config");
    let mut params = vec![0.0; count];
    init_params(config, &mut LcgRng::new(u.arbitrary()?), &mut params).expect("length");
    let pristine = match u.int_in_range(0_u8..=4)? {
        0 | 1 => true,
        2 => {
            let scale = *u.choose(&[0.0_f32, 1e-30, 1e-20, 1e-6, 1e6, 1e18, 1e30])?;
            params.iter_mut().for_each(|p| *p *= scale);
            false
        }
        3 => {
            let scale = any_finite_f32(u)?;
            params
                .iter_mut()
                .for_each(|p| *p = (*p * scale).clamp(f32::MIN, f32::MAX));
            false
        }
        _ => {
            for _ in 0..u.int_in_range(1..=4)? {
                let i = u.int_in_range(0..=count - 1)?;
                params[i] = any_finite_f32(u)?;
            }
            false
        }
    };
    Ok((params, pristine))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let config = small_config(u)?;
    let (mut params, pristine) = params(u, &config)?;
    let identity = u.ratio(1_u8, 4)?;
    if identity {
        let mut head = SimSiamHead::from_params(config, params).expect("finite params");
        let _ = head.set_identity_predictor();
        params = head.into_params();
    }
    let SimSiamConfig {
        d_encoder, d_out, ..
    } = config;
    let z1_len = length(u, d_encoder)?;
    let z1 = floats(u, z1_len)?;
    let z2_len = length(u, d_encoder)?;
    let z2 = floats(u, z2_len)?;
    let p_len = length(u, d_out)?;
    let p = floats(u, p_len)?;
    let out_len = length(u, d_out)?;
    let workspace_len = length(u, 4 * d_out)?;
    // Batches of 0 to 20 rows: across the 16-input lane group and the 8-pair loss group.
    let n = u.int_in_range(0..=20)?;
    let zs_len = length(u, n * d_encoder)?;
    let zs = floats(u, zs_len)?;
    let z2s_len = length(u, n * d_encoder)?;
    let z2s = floats(u, z2s_len)?;
    let ps_len = length(u, n * d_out)?;
    let ps = floats(u, ps_len)?;
    let batch_out_len = length(u, n * d_out)?;
    // The forward batch calls on the reference head need only the lane blocks, for
    // groups of three or more.
    let lanes_len = Architecture::reference(config)
        .expect("small config")
        .lanes_len();
    let forward_workspace_len = length(u, if n > 2 { lanes_len } else { 0 })?;
    let batch_workspace_len = length(u, config.batch_loss_workspace_len(n).expect("small"))?;

    let [proj1, proj2, pred1, pred2] = layers(&config, &params);
    let view = SimSiamHead::from_params(config, &params[..]).expect("finite params");
    let mut results = Vec::new();
    for backend in [Backend::Simd, Backend::Scalar] {
        let head = twin(&view, backend);
        let mut out = vec![0.0; out_len];
        let projected = head.project_into(&z1, &mut out, &mut []);
        check_forward(
            projected,
            &out,
            (&z1, d_encoder, "z"),
            out_len,
            d_out,
            proj1,
            proj2,
            "projector output",
        );
        if out_len == d_out {
            results.push((projected, out.clone()));
        }

        let predicted = head.predict_into(&p, &mut out, &mut []);
        check_forward(
            predicted,
            &out,
            (&p, d_out, "p"),
            out_len,
            d_out,
            pred1,
            pred2,
            "predictor output",
        );

        let mut workspace = vec![0.0; workspace_len];
        let loss = head.loss(&z1, &z2, &mut workspace);
        check_loss(
            loss,
            &config,
            (&z1, &z2),
            workspace_len,
            [proj1, proj2, pred1, pred2],
        );

        let mut outs = vec![0.0; batch_out_len];
        let mut workspace = vec![f32::NAN; forward_workspace_len];
        let projected = head.project_batch_into(&zs, &mut outs, &mut workspace);
        check_batch(
            projected,
            &outs,
            (&zs, d_encoder, "z"),
            (forward_workspace_len, lanes_len),
            d_out,
            proj1,
            proj2,
            "projector output",
        );
        let predicted = head.predict_batch_into(&ps, &mut outs, &mut workspace);
        check_batch(
            predicted,
            &outs,
            (&ps, d_out, "p"),
            (forward_workspace_len, lanes_len),
            d_out,
            pred1,
            pred2,
            "predictor output",
        );
        let mut losses = vec![0.0; n];
        let mut workspace = vec![0.0; batch_workspace_len];
        let loss = head.loss_batch_into(&zs, &z2s, &mut losses, &mut workspace);
        check_batch_loss(
            loss,
            &losses,
            &config,
            (&zs, &z2s),
            batch_workspace_len,
            [proj1, proj2, pred1, pred2],
        );
    }

    // The alloc API on the same weights computes exactly what the view computes.
    if pristine && !identity && out_len == d_out {
        let model = SimSiam::new(config, &mut LcgRng::new(0)).expect("small config");
        let model_head = SimSiamHead::from_params(config, model.head().params()).expect("finite");
        let mut out = vec![0.0; d_out];
        let direct = model_head.project_into(&z1, &mut out, &mut []);
        assert_eq!(model.project(&z1), direct.map(|()| out));
    }
    Ok(())
}

/// Checks one `project_into` / `predict_into` result.
#[allow(clippy::too_many_arguments)]
fn check_forward(
    result: std::result::Result<(), SslError>,
    out: &[f32],
    (x, d_in, input_name): (&[f32], usize, &'static str),
    out_len: usize,
    d_out: usize,
    hidden: Layer<'_>,
    output: Layer<'_>,
    location: &'static str,
) {
    if x.len() != d_in {
        assert_eq!(
            result,
            Err(SslError::DimensionMismatch {
                expected: d_in,
                got: x.len()
            })
        );
        return;
    }
    if out_len != d_out {
        assert_eq!(
            result,
            Err(SslError::DimensionMismatch {
                expected: d_out,
                got: out_len
            })
        );
        return;
    }
    if !x.iter().all(|v| v.is_finite()) {
        assert_eq!(
            result,
            Err(SslError::NonFinite {
                location: input_name
            })
        );
        return;
    }
    let oracle = mlp2_oracle_f32(hidden, output, x);
    match result {
        Ok(()) => {
            assert!(
                !oracle.must_overflow,
                "{location}: Ok although it must overflow {oracle:?}"
            );
            assert_normalised(out, &oracle, location);
        }
        Err(SslError::NonFinite { location: l }) if l == location => {
            assert!(
                oracle.may_overflow,
                "{location}: NonFinite without overflow {oracle:?}"
            );
        }
        Err(e) => panic!("{location}: unexpected {e:?}"),
    }
}

/// Checks one `loss_with_workspace` result.
fn check_loss(
    result: std::result::Result<f32, SslError>,
    config: &SimSiamConfig,
    (z1, z2): (&[f32], &[f32]),
    workspace_len: usize,
    [proj1, proj2, pred1, pred2]: [Layer<'_>; 4],
) {
    let (d_encoder, needed) = (config.d_encoder, 4 * config.d_out);
    let expected_error = if z1.len() != d_encoder {
        Some(SslError::DimensionMismatch {
            expected: d_encoder,
            got: z1.len(),
        })
    } else if z2.len() != d_encoder {
        Some(SslError::DimensionMismatch {
            expected: d_encoder,
            got: z2.len(),
        })
    } else if workspace_len < needed {
        Some(SslError::CapacityTooSmall {
            needed,
            capacity: workspace_len,
        })
    } else if !z1.iter().all(|v| v.is_finite()) {
        Some(SslError::NonFinite { location: "z1" })
    } else if !z2.iter().all(|v| v.is_finite()) {
        Some(SslError::NonFinite { location: "z2" })
    } else {
        None
    };
    if let Some(e) = expected_error {
        assert_eq!(result, Err(e));
        return;
    }
    let projector_may_overflow = [z1, z2]
        .iter()
        .any(|z| mlp2_oracle_f32(proj1, proj2, z).may_overflow);
    // The predictor's input is a vector of norm ≤ 1, so |p_k| ≤ 1: all ones bounds it.
    let ones = vec![1.0; config.d_out];
    let predictor_may_overflow = mlp2_oracle_f32(pred1, pred2, &ones).may_overflow;
    match result {
        Ok(loss) => assert_loss(loss, [proj1, proj2, pred1, pred2], z1, z2, "loss"),
        Err(SslError::NonFinite {
            location: "projector output",
        }) => {
            assert!(
                projector_may_overflow,
                "loss: projector overflow without cause"
            );
        }
        Err(SslError::NonFinite {
            location: "predictor output",
        }) => {
            assert!(
                predictor_may_overflow,
                "loss: predictor overflow without cause"
            );
        }
        Err(e) => panic!("loss: unexpected {e:?}"),
    }
}

/// Checks one `project_batch_into` / `predict_batch_into` result, row by row.
#[allow(clippy::too_many_arguments)]
fn check_batch(
    result: std::result::Result<(), SslError>,
    outs: &[f32],
    (xs, d_in, input_name): (&[f32], usize, &'static str),
    (workspace_len, lanes_len): (usize, usize),
    d_out: usize,
    hidden: Layer<'_>,
    output: Layer<'_>,
    location: &'static str,
) {
    let n = xs.len() / d_in;
    if n * d_in != xs.len() {
        assert_eq!(
            result,
            Err(SslError::DimensionMismatch {
                expected: n * d_in,
                got: xs.len()
            })
        );
        return;
    }
    if outs.len() != n * d_out {
        assert_eq!(
            result,
            Err(SslError::DimensionMismatch {
                expected: n * d_out,
                got: outs.len()
            })
        );
        return;
    }
    // The reference head keeps no intermediate vector: the lane blocks, for n > 2.
    let needed = if n > 2 { lanes_len } else { 0 };
    if workspace_len < needed {
        assert_eq!(
            result,
            Err(SslError::CapacityTooSmall {
                needed,
                capacity: workspace_len
            })
        );
        return;
    }
    if !xs.iter().all(|v| v.is_finite()) {
        assert_eq!(
            result,
            Err(SslError::NonFinite {
                location: input_name
            })
        );
        return;
    }
    let oracles: Vec<_> = xs
        .chunks(d_in)
        .map(|x| mlp2_oracle_f32(hidden, output, x))
        .collect();
    match result {
        Ok(()) => {
            for (out, oracle) in outs.chunks(d_out).zip(&oracles) {
                assert!(
                    !oracle.must_overflow,
                    "{location} batch: Ok although it must overflow: {out:?} {oracle:?}"
                );
                assert_normalised(out, oracle, location);
            }
        }
        Err(SslError::NonFinite { location: l }) if l == location => {
            assert!(
                oracles.iter().any(|o| o.may_overflow),
                "{location} batch: NonFinite without overflow"
            );
        }
        Err(e) => panic!("{location} batch: unexpected {e:?}"),
    }
}

/// Checks one `loss_batch_with_workspace` result.
fn check_batch_loss(
    result: std::result::Result<(), SslError>,
    losses: &[f32],
    config: &SimSiamConfig,
    (z1s, z2s): (&[f32], &[f32]),
    workspace_len: usize,
    [proj1, proj2, pred1, pred2]: [Layer<'_>; 4],
) {
    let (n, d_encoder) = (losses.len(), config.d_encoder);
    let needed = config.batch_loss_workspace_len(n).expect("small");
    let expected_error = if z1s.len() != n * d_encoder {
        Some(SslError::DimensionMismatch {
            expected: n * d_encoder,
            got: z1s.len(),
        })
    } else if z2s.len() != n * d_encoder {
        Some(SslError::DimensionMismatch {
            expected: n * d_encoder,
            got: z2s.len(),
        })
    } else if workspace_len < needed {
        Some(SslError::CapacityTooSmall {
            needed,
            capacity: workspace_len,
        })
    } else if !z1s.iter().all(|v| v.is_finite()) {
        Some(SslError::NonFinite { location: "z1" })
    } else if !z2s.iter().all(|v| v.is_finite()) {
        Some(SslError::NonFinite { location: "z2" })
    } else {
        None
    };
    if let Some(e) = expected_error {
        assert_eq!(result, Err(e));
        return;
    }
    let projector_may_overflow = z1s
        .chunks(d_encoder)
        .chain(z2s.chunks(d_encoder))
        .any(|z| mlp2_oracle_f32(proj1, proj2, z).may_overflow);
    let ones = vec![1.0; config.d_out];
    let predictor_may_overflow = mlp2_oracle_f32(pred1, pred2, &ones).may_overflow;
    match result {
        Ok(()) => {
            let pairs = z1s.chunks(d_encoder).zip(z2s.chunks(d_encoder));
            for (&loss, (z1, z2)) in losses.iter().zip(pairs) {
                assert_loss(loss, [proj1, proj2, pred1, pred2], z1, z2, "batch loss");
            }
        }
        Err(SslError::NonFinite {
            location: "projector output",
        }) => {
            assert!(
                projector_may_overflow,
                "batch loss: projector overflow without cause"
            );
        }
        Err(SslError::NonFinite {
            location: "predictor output",
        }) => {
            assert!(
                predictor_may_overflow,
                "batch loss: predictor overflow without cause"
            );
        }
        Err(e) => panic!("batch loss: unexpected {e:?}"),
    }
}

/// One loss from an `Ok`: finite, `|loss| ≤ loss_limit(d_out)`, and within the
/// propagated bound of the exact loss of its two views.
fn assert_loss(loss: f32, layers: [Layer<'_>; 4], z1: &[f32], z2: &[f32], what: &str) {
    let limit = loss_limit(layers[1].b.len());
    assert!(
        loss.is_finite() && f64::from(loss.abs()) <= limit,
        "{what}: {loss} outside ±{limit}"
    );
    let oracle = loss_oracle(layers, z1, z2);
    let diff = (f64::from(loss) - oracle.value).abs();
    assert!(
        diff <= oracle.bound,
        "{what}: {loss} is {diff:e} from the exact {} > {:e}",
        oracle.value,
        oracle.bound
    );
}
