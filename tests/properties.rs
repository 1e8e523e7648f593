//! The reference's properties, on the no-alloc core, for both backends and random configs.

use proptest::prelude::*;
use simsiam::{Backend, LcgRng, SimSiamConfig, SimSiamHead, init_params};

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

proptest! {
    #[test]
    fn outputs_are_unit_or_zero_and_loss_is_bounded_and_symmetric((config, seed) in case()) {
        let params = params(&config, seed);
        let mut data = LcgRng::new(!seed);
        let (z1, z2) = (input(&mut data, config.d_encoder), input(&mut data, config.d_encoder));
        for backend in [Backend::Simd, Backend::Scalar] {
            let head = SimSiamHead::from_params(config, &params[..]).unwrap().with_backend(backend);
            let mut z = vec![0.0; config.d_out];
            let mut p = vec![0.0; config.d_out];
            head.project_into(&z1, &mut z).unwrap();
            head.predict_into(&z, &mut p).unwrap();
            for v in [&z, &p] {
                let n = norm(v);
                prop_assert!(n == 0.0 || (n - 1.0).abs() <= unit_tolerance(config.d_out), "norm {n}");
            }
            let mut workspace = vec![0.0; config.loss_workspace_len().unwrap()];
            let l12 = head.loss_with_workspace(&z1, &z2, &mut workspace).unwrap();
            let l21 = head.loss_with_workspace(&z2, &z1, &mut workspace).unwrap();
            prop_assert_eq!(l12, l21);
            let tolerance = 2.0 * unit_tolerance(config.d_out);
            prop_assert!(f64::from(l12.abs()) <= 1.0 + tolerance, "loss {l12}");
        }
    }

    #[test]
    fn identity_predictor_gives_loss_minus_one((config, seed) in case()) {
        let config = SimSiamConfig { d_predictor: 2 * config.d_out, ..config };
        let mut head = SimSiamHead::from_params(config, params(&config, seed)).unwrap();
        head.set_identity_predictor().unwrap();
        let z1 = input(&mut LcgRng::new(seed ^ 1), config.d_encoder);
        for backend in [Backend::Simd, Backend::Scalar] {
            let head = head.clone().with_backend(backend);
            let mut z = vec![0.0; config.d_out];
            let mut p = vec![0.0; config.d_out];
            head.project_into(&z1, &mut z).unwrap();
            head.predict_into(&z, &mut p).unwrap();
            // ReLU(z) − ReLU(−z) == z exactly, then renormalising a unit vector: a few ulp.
            for (a, b) in z.iter().zip(&p) {
                prop_assert!((a - b).abs() <= 4.0 * f32::EPSILON, "{a} vs {b}");
            }
            let mut workspace = vec![0.0; 4 * config.d_out];
            let loss = head.loss_with_workspace(&z1, &z1, &mut workspace).unwrap();
            if norm(&z) > 0.0 {
                prop_assert!(f64::from(loss + 1.0).abs() <= unit_tolerance(config.d_out) * 2.0, "loss {loss}");
            }
        }
    }

    #[test]
    fn backends_agree_within_bound((config, seed) in case()) {
        let params = params(&config, seed);
        let simd = SimSiamHead::from_params(config, &params[..]).unwrap();
        let scalar = simd.clone().with_backend(Backend::Scalar);
        let z1 = input(&mut LcgRng::new(seed ^ 2), config.d_encoder);
        let (mut a, mut b) = (vec![0.0; config.d_out], vec![0.0; config.d_out]);
        simd.project_into(&z1, &mut a).unwrap();
        scalar.project_into(&z1, &mut b).unwrap();
        let bound = projection_twin_bound(&config, &params, &z1);
        for ((x, y), bound) in a.iter().zip(&b).zip(&bound) {
            prop_assert!(f64::from(x - y).abs() <= *bound, "{x} vs {y}, bound {bound}");
        }
    }
}

/// Per-element bound on |SIMD − scalar| for `project`, to first order, from the kernel
/// bound `sum_error_bound` propagated through the two layers and the normalisation:
/// - hidden unit j: `Δh_j ≤ 2γ(d_encoder+1)·A_j`, `A_j = |b1_j| + Σ|W1_jk z_k|` (ReLU is
///   1-Lipschitz);
/// - output i: `Δo_i ≤ 2γ(d_projector+1)·B_i + Σ_j |W2_ij|·Δh_j`,
///   `B_i = |b2_i| + Σ|W2_ij h_j|`;
/// - unit vector: `Δx_i ≤ (Δo_i + |x_i|·‖Δo‖)/‖o‖ + 2(γ(d_out) + 4u)|x_i|`.
fn projection_twin_bound(config: &SimSiamConfig, params: &[f32], z: &[f32]) -> Vec<f64> {
    use simsiam::kernels::sum_error_bound;
    let (e, h, o) = (config.d_encoder, config.d_projector, config.d_out);
    let (w1, rest) = params.split_at(h * e);
    let (b1, rest) = rest.split_at(h);
    let (w2, rest) = rest.split_at(o * h);
    let b2 = &rest[..o];
    let (mut hidden, mut hidden_err) = (vec![0.0_f64; h], vec![0.0_f64; h]);
    for (j, row) in w1.chunks(e).enumerate() {
        let (sum, abs) = row.iter().zip(z).fold(
            (f64::from(b1[j]), f64::from(b1[j]).abs()),
            |(s, a), (w, x)| {
                let t = f64::from(*w) * f64::from(*x);
                (s + t, a + t.abs())
            },
        );
        hidden[j] = sum.max(0.0);
        hidden_err[j] = sum_error_bound(e + 1, abs);
    }
    let (mut out, mut out_err) = (vec![0.0_f64; o], vec![0.0_f64; o]);
    for (i, row) in w2.chunks(h).enumerate() {
        let mut abs = f64::from(b2[i]).abs();
        out[i] = f64::from(b2[i]);
        for ((w, hj), dj) in row.iter().zip(&hidden).zip(&hidden_err) {
            out[i] += f64::from(*w) * hj;
            abs += (f64::from(*w) * hj).abs();
            out_err[i] += f64::from(w.abs()) * dj;
        }
        out_err[i] += sum_error_bound(h + 1, abs);
    }
    let norm = out.iter().map(|x| x * x).sum::<f64>().sqrt();
    let err_norm = out_err.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        return vec![0.0; o]; // both twins give the zero vector
    }
    out.iter()
        .zip(&out_err)
        .map(|(x, dx)| {
            let unit = (x / norm).abs();
            (dx + unit * err_norm) / norm
                + 2.0 * unit_tolerance(o) * unit
                + f64::from(f32::MIN_POSITIVE)
        })
        .collect()
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
