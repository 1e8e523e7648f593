//! The reference's properties, on the no-alloc core, for both backends and random configs.

mod support;

use proptest::prelude::*;
use simsiam::kernels::{Scalar, Simd};
use simsiam::{Backend, LcgRng, SimSiamConfig, SimSiamHead, init_params};
use support::twin::twin;
use support::{Bounded, Bounds, MAX_VACUOUS, ORACLE, Stats, TWINS, run_cases};

/// A random small config, a seed, and inputs drawn from it.
fn case() -> impl Strategy<Value = (SimSiamConfig, u64)> {
    (
        (1_usize..40, 1_usize..70, 1_usize..40, 1_usize..20),
        any::<u64>(),
    )
        .prop_map(|((e, h, q, o), seed)| {
            (
                SimSiamConfig {
                    d_encoder: e,
                    d_projector: h,
                    d_predictor: q,
                    d_out: o,
                },
                seed,
            )
        })
}

fn params(config: &SimSiamConfig, seed: u64) -> Vec<f32> {
    let mut params = vec![0.0; config.param_count().unwrap()];
    init_params(config, &mut LcgRng::new(seed), &mut params).unwrap();
    params
}

fn input(rng: &mut LcgRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}

/// |‖L2(v)‖ − 1| for a vector of `n` entries (see `tests/kernels.rs`): γ(n) + 4u.
fn unit_tolerance(n: usize) -> f64 {
    simsiam::kernels::sum_error_bound(n, 0.5) + 2.0 * f64::from(f32::EPSILON)
}

/// Every evaluation of `bound` is exactly the zero vector: its oracle value and its
/// bound are both zero (every hidden unit certainly 0, see `tests/support/mod.rs`).
fn certainly_zero(bound: &Bounded) -> bool {
    bound.value.iter().chain(&bound.err).all(|v| *v == 0.0)
}

/// `got`, an L2-normalised output, against the `f64` oracle's `bound` (one evaluation):
/// each entry within its derived bound; zero only where the oracle says it is certainly
/// zero, else of unit norm (unless the bound is vacuous: a norm the oracle cannot tell
/// from the `1e-12` floor).
fn check_unit_output(what: &str, got: &[f32], bound: &Bounded) -> Result<(), TestCaseError> {
    Stats::default().check_oracle(what, got, bound);
    let n = norm(got);
    if certainly_zero(bound) {
        prop_assert!(n == 0.0, "{what}: norm {n}, the oracle's is certainly 0");
    } else if !bound.vacuous {
        prop_assert!(
            (n - 1.0).abs() <= unit_tolerance(got.len()),
            "{what}: norm {n}, the oracle's is not 0"
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn outputs_are_unit_or_zero_and_loss_is_bounded_and_symmetric((config, seed) in case()) {
        let params = params(&config, seed);
        let oracle = Bounds::new(ORACLE, &config, &params);
        let mut data = LcgRng::new(!seed);
        let (z1, z2) = (input(&mut data, config.d_encoder), input(&mut data, config.d_encoder));
        let loss_bound = oracle.loss(&z1, &z2);
        let core = SimSiamHead::from_params(config, &params[..]).unwrap();
        for backend in [Backend::Simd, Backend::Scalar] {
            let head = twin(&core, backend);
            let mut z = vec![0.0; config.d_out];
            let mut p = vec![0.0; config.d_out];
            head.project_into(&z1, &mut z, &mut []).unwrap();
            head.predict_into(&z, &mut p, &mut []).unwrap();
            check_unit_output("project", &z, &oracle.project(&z1))?;
            check_unit_output("predict", &p, &oracle.predict(&z))?;
            let mut workspace = vec![0.0; core.architecture().workspace_len(1).unwrap()];
            let l12 = head.loss(&z1, &z2, &mut workspace).unwrap();
            let l21 = head.loss(&z2, &z1, &mut workspace).unwrap();
            prop_assert_eq!(l12, l21);
            let tolerance = 2.0 * unit_tolerance(config.d_out);
            prop_assert!(f64::from(l12.abs()) <= 1.0 + tolerance, "loss {l12}");
            Stats::default().check_oracle_scalar("loss", l12, &loss_bound);
        }
    }

    #[test]
    fn identity_predictor_gives_loss_minus_one((config, seed) in case()) {
        let config = SimSiamConfig { d_predictor: 2 * config.d_out, ..config };
        let mut head = SimSiamHead::from_params(config, params(&config, seed)).unwrap();
        head.set_identity_predictor().unwrap();
        let z1 = input(&mut LcgRng::new(seed ^ 1), config.d_encoder);
        let projection = Bounds::new(ORACLE, &config, head.params()).project(&z1);
        for backend in [Backend::Simd, Backend::Scalar] {
            let head = twin(&head, backend);
            let mut z = vec![0.0; config.d_out];
            let mut p = vec![0.0; config.d_out];
            head.project_into(&z1, &mut z, &mut []).unwrap();
            check_unit_output("project", &z, &projection)?;
            head.predict_into(&z, &mut p, &mut []).unwrap();
            // ReLU(z) − ReLU(−z) == z exactly, then renormalising a unit vector: a few ulp.
            for (a, b) in z.iter().zip(&p) {
                prop_assert!((a - b).abs() <= 4.0 * f32::EPSILON, "{a} vs {b}");
            }
            let mut workspace = vec![0.0; 4 * config.d_out];
            let loss = head.loss(&z1, &z1, &mut workspace).unwrap();
            if norm(&z) > 0.0 {
                prop_assert!(f64::from(loss + 1.0).abs() <= unit_tolerance(config.d_out) * 2.0, "loss {loss}");
            } else {
                // A projection that is certainly zero (checked above): p = 0 too, and the
                // loss −(p·z + p·z)/2 is exactly 0.
                prop_assert!(loss == 0.0, "loss {loss} of a zero projection");
            }
        }
    }

}

/// The SIMD twin against the scalar twin on `project`, `predict` and `loss`, each within
/// the bound `support::Bounds` derives from `sum_error_bound` for two evaluations
/// (`tests/batch.rs` does the same for the batch calls). Prints the largest difference
/// and its bound, and how many bounds were vacuous (an output too close to zero).
#[test]
fn backends_agree_within_bound() {
    // As many cases as the `proptest!` tests above (PROPTEST_CASES, else 256).
    let cases = ProptestConfig::default().cases;
    let book = run_cases(
        file!(),
        "properties::backends_agree_within_bound",
        cases,
        &case(),
        |(config, seed), book| {
            let params = params(&config, seed);
            let bounds = Bounds::new(TWINS, &config, &params);
            let simd = SimSiamHead::from_params(config, &params[..])
                .unwrap()
                .with_kernels::<Simd>();
            let scalar = simd.view().with_kernels::<Scalar>();
            let mut data = LcgRng::new(seed ^ 2);
            let z1 = input(&mut data, config.d_encoder);
            let z2 = input(&mut data, config.d_encoder);
            let d = config.d_out;
            let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
            simd.project_into(&z1, &mut a, &mut []).unwrap();
            scalar.project_into(&z1, &mut b, &mut []).unwrap();
            book.get("project")
                .check_pair("project", &a, &b, &bounds.project(&z1));
            let (a_projected, b_projected) = (a.clone(), b.clone());

            // The predictor on the same input for both twins (the scalar projection).
            let p = b.clone();
            simd.predict_into(&p, &mut a, &mut []).unwrap();
            scalar.predict_into(&p, &mut b, &mut []).unwrap();
            book.get("predict")
                .check_pair("predict", &a, &b, &bounds.predict(&p));

            // The run-time choice (`Backend`: the tests' `Twin`, and `SimSiam::with_backend`)
            // picks the same twins as `with_kernels::<K>()`, bit for bit.
            let mut c = vec![0.0; d];
            twin(&simd, Backend::Scalar)
                .project_into(&z1, &mut c, &mut [])
                .unwrap();
            assert_eq!(b_projected, c, "twin(Backend::Scalar) project");
            twin(&scalar, Backend::Simd)
                .project_into(&z1, &mut c, &mut [])
                .unwrap();
            assert_eq!(a_projected, c, "twin(Backend::Simd) project");
            twin(&simd, Backend::Scalar)
                .predict_into(&p, &mut c, &mut [])
                .unwrap();
            assert_eq!(b, c, "twin(Backend::Scalar) vs with_kernels::<Scalar>");
            twin(&scalar, Backend::Simd)
                .predict_into(&p, &mut c, &mut [])
                .unwrap();
            assert_eq!(a, c, "twin(Backend::Simd) vs with_kernels::<Simd>");

            let mut workspace = vec![0.0; simd.architecture().workspace_len(1).unwrap()];
            let x = simd.loss(&z1, &z2, &mut workspace).unwrap();
            let y = scalar.loss(&z1, &z2, &mut workspace).unwrap();
            let x_twin = twin(&scalar, Backend::Simd)
                .loss(&z1, &z2, &mut workspace)
                .unwrap();
            assert_eq!(x.to_bits(), x_twin.to_bits(), "twin(Backend::Simd) loss");
            let y_twin = twin(&simd, Backend::Scalar)
                .loss(&z1, &z2, &mut workspace)
                .unwrap();
            assert_eq!(y.to_bits(), y_twin.to_bits(), "twin(Backend::Scalar) loss");
            #[cfg(feature = "alloc")]
            {
                let model =
                    simsiam::SimSiam::from_params(*simd.architecture(), params.clone()).unwrap();
                for (backend, projected, predicted, loss) in [
                    (Backend::Simd, &a_projected, &a, x),
                    (Backend::Scalar, &b_projected, &b, y),
                ] {
                    let model = model.clone().with_backend(backend);
                    assert_eq!(model.backend(), backend);
                    let got = model.project(&z1).unwrap();
                    assert_eq!(
                        &got, projected,
                        "SimSiam::with_backend({backend:?}) project"
                    );
                    let got = model.predict(&p).unwrap();
                    assert_eq!(
                        &got, predicted,
                        "SimSiam::with_backend({backend:?}) predict"
                    );
                    let got = model.loss(&z1, &z2).unwrap();
                    assert_eq!(
                        got.to_bits(),
                        loss.to_bits(),
                        "SimSiam::with_backend({backend:?}) loss"
                    );
                }
            }
            book.get("loss")
                .check_pair_scalar("loss", x, y, &bounds.loss(&z1, &z2));
        },
    );
    book.report("backends_agree_within_bound (SIMD vs scalar)", MAX_VACUOUS);
}

#[test]
fn heapless_owner_has_the_same_weights_as_init_params() {
    let config = SimSiamConfig {
        d_encoder: 5,
        d_projector: 7,
        d_predictor: 6,
        d_out: 3,
    };
    let head =
        SimSiamHead::<heapless::Vec<f32, 200>>::from_seed(config, &mut LcgRng::new(11)).unwrap();
    assert_eq!(head.params(), &params(&config, 11)[..]);
}
