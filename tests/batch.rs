//! The two-view loss and the batch API against the single-vector path, on both twins.
//!
//! Tolerances come from [`sum_error_bound`]: every sum of the two-layer MLPs (bias plus
//! `d_in` products) may differ by `2·γ(d_in + 1)·Σ|terms|` between two summation orders;
//! that difference is carried through ReLU (1-Lipschitz), the next layer (`Σ|w|·δ`) and
//! the L2 normalisation (`δu ≤ (δo + |u|·‖δo‖) / (‖o‖ − ‖δo‖)` plus the norm's own
//! rounding), then into the loss's dot products. `propagate` computes that bound per
//! entry in `f64` from the exact forward pass.
//!
//! Exact claims (checked bit for bit): on the scalar twin a batch call equals `n` single
//! calls and the two-view loss equals the single-vector composition (the reference's
//! summation order); on either twin, batch loss row `j` equals the single loss.

use proptest::prelude::*;
use simsiam::kernels::{scalar, simd, sum_error_bound};
use simsiam::{Backend, LcgRng, SimSiamConfig, SimSiamHead, SslError, init_params};

const EPS: f64 = f32::EPSILON as f64;

fn config(dims: [usize; 4]) -> SimSiamConfig {
    let [d_encoder, d_projector, d_predictor, d_out] = dims;
    SimSiamConfig {
        d_encoder,
        d_projector,
        d_predictor,
        d_out,
    }
}

fn params(config: &SimSiamConfig, seed: u64) -> Vec<f32> {
    let mut params = vec![0.0; config.param_count().unwrap()];
    init_params(config, &mut LcgRng::new(seed), &mut params).unwrap();
    params
}

fn input(rng: &mut LcgRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.next_f32() * 4.0 - 2.0).collect()
}

/// One dense layer `[rows × cols]` then bias, cut from the flat parameters.
struct Layer<'a> {
    w: &'a [f32],
    b: &'a [f32],
    cols: usize,
}

fn layers<'a>(c: &SimSiamConfig, params: &'a [f32]) -> [Layer<'a>; 4] {
    let mut rest = params;
    c.layers().map(|shape| {
        let (w, tail) = rest.split_at(shape.d_in * shape.d_out);
        let (b, tail) = tail.split_at(shape.d_out);
        rest = tail;
        Layer {
            w,
            b,
            cols: shape.d_in,
        }
    })
}

/// Exact (`f64`) `y = W·x + b` and the bound on the difference of two `f32` evaluations
/// in different orders, given inputs known to within `dx`.
fn dense(layer: &Layer<'_>, x: &[f64], dx: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let rows = layer.w.chunks(layer.cols).zip(layer.b);
    rows.map(|(row, b)| {
        let b = f64::from(*b);
        let terms = row.iter().zip(x.iter().zip(dx));
        let (value, sum_abs, carried) = terms.fold(
            (b, b.abs(), 0.0),
            |(value, sum_abs, carried), (w, (x, dx))| {
                let w = f64::from(*w);
                (
                    value + w * x,
                    sum_abs + w.abs() * (x.abs() + dx),
                    carried + w.abs() * dx,
                )
            },
        );
        (value, carried + sum_error_bound(layer.cols + 1, sum_abs))
    })
    .unzip()
}

/// Exact `L2(W2·ReLU(W1·x + b1) + b2)` and the per-entry bound between two evaluations.
fn propagate(l1: &Layer<'_>, l2: &Layer<'_>, x: &[f64], dx: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (h, dh) = dense(l1, x, dx);
    let h: Vec<f64> = h.iter().map(|v| v.max(0.0)).collect();
    let (o, d_o) = dense(l2, &h, &dh);
    let norm = o.iter().map(|v| v * v).sum::<f64>().sqrt();
    let d_norm = d_o.iter().map(|v| v * v).sum::<f64>().sqrt()
        + norm * (sum_error_bound(o.len(), 1.0) + 4.0 * EPS);
    let u: Vec<f64> = o.iter().map(|v| v / norm).collect();
    let du = if d_norm >= norm || norm == 0.0 {
        vec![f64::INFINITY; o.len()]
    } else {
        u.iter()
            .zip(&d_o)
            .map(|(u, d)| (d + u.abs() * d_norm) / (norm - d_norm) + 4.0 * EPS * u.abs())
            .collect()
    };
    (u, du)
}

/// Exact loss and its bound, for views `z1`, `z2` (exact inputs).
fn loss_bound(c: &SimSiamConfig, params: &[f32], z1: &[f32], z2: &[f32]) -> (f64, f64) {
    let [p1l, p2l, q1l, q2l] = layers(c, params);
    let exact = |v: &[f32]| v.iter().map(|x| f64::from(*x)).collect::<Vec<_>>();
    let zero = vec![0.0; c.d_encoder];
    let (z1p, dz1) = propagate(&p1l, &p2l, &exact(z1), &zero);
    let (z2p, dz2) = propagate(&p1l, &p2l, &exact(z2), &zero);
    let (p1, dp1) = propagate(&q1l, &q2l, &z1p, &dz1);
    let (p2, dp2) = propagate(&q1l, &q2l, &z2p, &dz2);
    let dot = |a: &[f64], da: &[f64], b: &[f64], db: &[f64]| {
        let mut value = 0.0;
        let mut bound = 0.0;
        let mut sum_abs = 0.0;
        for i in 0..a.len() {
            value += a[i] * b[i];
            bound += da[i] * b[i].abs() + a[i].abs() * db[i] + da[i] * db[i];
            sum_abs += (a[i].abs() + da[i]) * (b[i].abs() + db[i]);
        }
        (value, bound + sum_error_bound(a.len(), sum_abs))
    };
    let (d1, b1) = dot(&p1, &dp1, &z2p, &dz2);
    let (d2, b2) = dot(&p2, &dp2, &z1p, &dz1);
    let bound = (b1 + b2) * 0.5 + 2.0 * EPS;
    // A zero (or nearly zero) MLP output leaves the normalised direction unbounded.
    (
        -(d1 + d2) * 0.5,
        if bound.is_nan() { f64::INFINITY } else { bound },
    )
}

fn project_bound(c: &SimSiamConfig, params: &[f32], z: &[f32]) -> Vec<f64> {
    let [l1, l2, _, _] = layers(c, params);
    let x: Vec<f64> = z.iter().map(|v| f64::from(*v)).collect();
    propagate(&l1, &l2, &x, &vec![0.0; x.len()]).1
}

fn predict_bound(c: &SimSiamConfig, params: &[f32], p: &[f32]) -> Vec<f64> {
    let [_, _, l1, l2] = layers(c, params);
    let x: Vec<f64> = p.iter().map(|v| f64::from(*v)).collect();
    propagate(&l1, &l2, &x, &vec![0.0; x.len()]).1
}

fn assert_within(got: &[f32], want: &[f32], bound: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((g, w), b)) in got.iter().zip(want).zip(bound).enumerate() {
        let diff = f64::from((g - w).abs());
        assert!(diff <= *b, "{what}[{i}]: |{g} − {w}| = {diff:e} > {b:e}");
    }
}

/// Batch calls against `n` single calls of the same backend: bitwise on the scalar twin,
/// within the propagated bound on the SIMD twin; batch loss row `j` equals the single
/// two-view loss bitwise on both.
fn check_batch(c: SimSiamConfig, seed: u64, n: usize) {
    let params = params(&c, seed);
    let mut data = LcgRng::new(seed ^ 0xba7c4);
    let zs = input(&mut data, n * c.d_encoder);
    let z2s = input(&mut data, n * c.d_encoder);
    let ps = input(&mut data, n * c.d_out);
    for backend in [Backend::Simd, Backend::Scalar] {
        let head = SimSiamHead::from_params(c, &params[..])
            .unwrap()
            .with_backend(backend);
        let exact = backend == Backend::Scalar;

        let mut batch = vec![f32::NAN; n * c.d_out];
        head.project_batch_into(&zs, &mut batch).unwrap();
        let mut single = vec![0.0; c.d_out];
        for (j, z) in zs.chunks_exact(c.d_encoder).enumerate() {
            head.project_into(z, &mut single).unwrap();
            let got = &batch[j * c.d_out..][..c.d_out];
            if exact {
                assert_eq!(got, &single[..], "scalar project_batch row {j}");
            } else {
                assert_within(got, &single, &project_bound(&c, &params, z), "project");
            }
        }

        head.predict_batch_into(&ps, &mut batch).unwrap();
        for (j, p) in ps.chunks_exact(c.d_out).enumerate() {
            head.predict_into(p, &mut single).unwrap();
            let got = &batch[j * c.d_out..][..c.d_out];
            if exact {
                assert_eq!(got, &single[..], "scalar predict_batch row {j}");
            } else {
                assert_within(got, &single, &predict_bound(&c, &params, p), "predict");
            }
        }

        let mut losses = vec![f32::NAN; n];
        let mut workspace = vec![0.0; c.batch_loss_workspace_len(n).unwrap()];
        head.loss_batch_with_workspace(&zs, &z2s, &mut losses, &mut workspace)
            .unwrap();
        let mut ws = vec![0.0; c.loss_workspace_len().unwrap()];
        for (j, (z1, z2)) in zs
            .chunks_exact(c.d_encoder)
            .zip(z2s.chunks_exact(c.d_encoder))
            .enumerate()
        {
            let want = head.loss_with_workspace(z1, z2, &mut ws).unwrap();
            if exact || n == 1 {
                assert_eq!(
                    losses[j].to_bits(),
                    want.to_bits(),
                    "{backend:?} loss row {j}"
                );
            } else {
                let bound = loss_bound(&c, &params, z1, z2).1;
                let diff = f64::from((losses[j] - want).abs());
                assert!(diff <= bound, "SIMD loss row {j}: {diff:e} > {bound:e}");
            }
        }
    }
}

/// The two-view loss (both twins) against the single-vector scalar composition
/// `project_into`/`predict_into`/dots: bitwise for the scalar twin, within the bound
/// for the SIMD twin.
fn check_two_view(c: SimSiamConfig, seed: u64) {
    let params = params(&c, seed);
    let mut data = LcgRng::new(seed ^ 0x2f1e);
    let z1 = input(&mut data, c.d_encoder);
    let z2 = input(&mut data, c.d_encoder);
    let scalar_head = SimSiamHead::from_params(c, &params[..])
        .unwrap()
        .with_backend(Backend::Scalar);
    let d = c.d_out;
    let (mut z1p, mut z2p, mut p1, mut p2) =
        (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    scalar_head.project_into(&z1, &mut z1p).unwrap();
    scalar_head.project_into(&z2, &mut z2p).unwrap();
    scalar_head.predict_into(&z1p, &mut p1).unwrap();
    scalar_head.predict_into(&z2p, &mut p2).unwrap();
    let composed = (-scalar::dot(&p1, &z2p).unwrap() + -scalar::dot(&p2, &z1p).unwrap()) * 0.5;

    let mut ws = vec![0.0; c.loss_workspace_len().unwrap()];
    let scalar_loss = scalar_head.loss_with_workspace(&z1, &z2, &mut ws).unwrap();
    assert_eq!(
        scalar_loss.to_bits(),
        composed.to_bits(),
        "scalar two-view loss"
    );

    let simd_head = SimSiamHead::from_params(c, &params[..]).unwrap();
    let simd_loss = simd_head.loss_with_workspace(&z1, &z2, &mut ws).unwrap();
    let (exact, bound) = loss_bound(&c, &params, &z1, &z2);
    let diff = f64::from((simd_loss - composed).abs());
    assert!(
        diff <= bound,
        "SIMD two-view loss {simd_loss} vs scalar {composed} (exact {exact}): {diff:e} > {bound:e}"
    );
}

const BATCH_SIZES: [usize; 12] = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17];

fn case() -> impl Strategy<Value = (SimSiamConfig, u64)> {
    (
        if cfg!(miri) {
            (1_usize..8, 1_usize..20, 1_usize..8, 1_usize..6)
        } else {
            (1_usize..40, 1_usize..300, 1_usize..40, 1_usize..24)
        },
        any::<u64>(),
    )
        .prop_map(|((e, h, q, o), seed)| (config([e, h, q, o]), seed))
}

proptest! {
    // Under miri (`.ci/steps/40-miri.sh`) one case: the interpreter is ~1000x slower.
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 1 } else { 48 }))]

    #[test]
    fn batch_equals_single_calls((c, seed) in case(), n in prop::sample::select(&BATCH_SIZES[..])) {
        check_batch(c, seed, n);
    }

    #[test]
    fn two_view_loss_matches_scalar_single_path((c, seed) in case()) {
        check_two_view(c, seed);
    }

    #[test]
    fn matvec2_bias_twins(
        rows in 0_usize..20,
        cols in 0_usize..80,
        seed in any::<u64>(),
    ) {
        let mut rng = LcgRng::new(seed);
        let w = input(&mut rng, rows * cols);
        let (x1, x2, b) = (input(&mut rng, cols), input(&mut rng, cols), input(&mut rng, rows));
        let (mut s1, mut s2, mut v1, mut v2) =
            (vec![0.0; rows], vec![0.0; rows], vec![0.0; rows], vec![0.0; rows]);
        scalar::matvec2_bias(&w, &x1, &x2, &b, &mut s1, &mut s2).unwrap();
        simd::matvec2_bias(&w, &x1, &x2, &b, &mut v1, &mut v2).unwrap();
        // The scalar twin is two `matvec_bias` calls, bit for bit.
        let (mut r1, mut r2) = (vec![0.0; rows], vec![0.0; rows]);
        scalar::matvec_bias(&w, &x1, &b, &mut r1).unwrap();
        scalar::matvec_bias(&w, &x2, &b, &mut r2).unwrap();
        prop_assert_eq!(&s1, &r1);
        prop_assert_eq!(&s2, &r2);
        for (x, s, v) in [(&x1, &s1, &v1), (&x2, &s2, &v2)] {
            for (i, row) in w.chunks(cols.max(1)).take(rows).enumerate() {
                let sum_abs = f64::from(b[i].abs())
                    + row.iter().zip(x.iter()).map(|(a, c)| f64::from((a * c).abs())).sum::<f64>();
                let diff = f64::from((s[i] - v[i]).abs());
                prop_assert!(diff <= sum_error_bound(cols + 1, sum_abs), "row {}: {:e}", i, diff);
            }
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "too slow under miri: large fixed configs")]
fn batch_sizes_on_fixed_configs() {
    // The default config, and shapes past the panel width (512 columns) and the hidden
    // block (256 units), with odd sizes everywhere.
    for dims in [
        [64, 128, 64, 32],
        [700, 300, 33, 17],
        [5, 513, 257, 3],
        [130, 140, 70, 70],
    ] {
        for n in [0, 1, 2, 7, 8, 9, 17] {
            check_batch(config(dims), 11, n);
        }
        check_two_view(config(dims), 5);
    }
}

#[test]
fn batch_shape_errors() {
    let c = config([6, 10, 8, 4]);
    let params = params(&c, 1);
    let head = SimSiamHead::from_params(c, &params[..]).unwrap();
    let mut out = vec![0.0; 8];
    assert_eq!(
        head.project_batch_into(&[0.0; 13], &mut out),
        Err(SslError::DimensionMismatch {
            expected: 12,
            got: 13
        })
    );
    assert_eq!(
        head.project_batch_into(&[0.0; 12], &mut out[..7]),
        Err(SslError::DimensionMismatch {
            expected: 8,
            got: 7
        })
    );
    assert_eq!(
        head.predict_batch_into(&[0.0; 9], &mut out),
        Err(SslError::DimensionMismatch {
            expected: 8,
            got: 9
        })
    );
    assert_eq!(
        head.predict_batch_into(&[0.0; 8], &mut out[..4]),
        Err(SslError::DimensionMismatch {
            expected: 8,
            got: 4
        })
    );
    let mut nan = [0.5_f32; 12];
    nan[7] = f32::NAN;
    assert_eq!(
        head.project_batch_into(&nan, &mut out),
        Err(SslError::NonFinite { location: "z" })
    );
    assert_eq!(
        head.predict_batch_into(&nan[..8], &mut out),
        Err(SslError::NonFinite { location: "p" })
    );

    let mut losses = [0.0_f32; 2];
    let mut ws = vec![0.0; c.batch_loss_workspace_len(2).unwrap()];
    assert_eq!(ws.len(), 32);
    assert_eq!(
        head.loss_batch_with_workspace(&[0.0; 11], &[0.0; 12], &mut losses, &mut ws),
        Err(SslError::DimensionMismatch {
            expected: 12,
            got: 11
        })
    );
    assert_eq!(
        head.loss_batch_with_workspace(&[0.0; 12], &[0.0; 18], &mut losses, &mut ws),
        Err(SslError::DimensionMismatch {
            expected: 12,
            got: 18
        })
    );
    assert_eq!(
        head.loss_batch_with_workspace(&[0.0; 12], &[0.0; 12], &mut losses, &mut ws[..31]),
        Err(SslError::CapacityTooSmall {
            needed: 32,
            capacity: 31
        })
    );
    assert_eq!(
        head.loss_batch_with_workspace(&nan, &[0.0; 12], &mut losses, &mut ws),
        Err(SslError::NonFinite { location: "z1" })
    );
    assert_eq!(
        head.loss_batch_with_workspace(&[0.0; 12], &nan, &mut losses, &mut ws),
        Err(SslError::NonFinite { location: "z2" })
    );
    // n = 0 needs no workspace and writes nothing.
    assert_eq!(
        head.loss_batch_with_workspace(&[], &[], &mut [], &mut []),
        Ok(())
    );
    assert_eq!(c.batch_loss_workspace_len(0), Ok(0));
    assert!(c.batch_loss_workspace_len(usize::MAX).is_ok());
    assert!(
        config([1, 1, 1, usize::MAX / 2])
            .batch_loss_workspace_len(1)
            .is_err()
    );

    // The kernel twin's checks, in the documented order.
    let w = [0.0_f32; 6];
    let (mut y1, mut y2) = ([0.0_f32; 2], [0.0_f32; 2]);
    for check in [scalar::matvec2_bias, simd::matvec2_bias] {
        assert_eq!(
            check(&w, &[0.0; 3], &[0.0; 2], &[0.0; 2], &mut y1, &mut y2),
            Err(SslError::DimensionMismatch {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            check(&w, &[0.0; 3], &[0.0; 3], &[0.0; 3], &mut y1, &mut y2),
            Err(SslError::DimensionMismatch {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            check(&w, &[0.0; 3], &[0.0; 3], &[0.0; 2], &mut y1, &mut y2[..1]),
            Err(SslError::DimensionMismatch {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            check(&w[..5], &[0.0; 3], &[0.0; 3], &[0.0; 2], &mut y1, &mut y2),
            Err(SslError::DimensionMismatch {
                expected: 6,
                got: 5
            })
        );
    }
}

#[cfg(feature = "alloc")]
#[test]
fn vec_api_is_the_core() {
    use simsiam::SimSiam;
    let c = config([9, 20, 8, 4]);
    let model = SimSiam::new(c, &mut LcgRng::new(3)).unwrap();
    let mut data = LcgRng::new(4);
    let (z1s, z2s) = (input(&mut data, 5 * 9), input(&mut data, 5 * 9));
    let mut out = vec![0.0; 5 * 4];
    model.head().project_batch_into(&z1s, &mut out).unwrap();
    assert_eq!(model.project_batch(&z1s).unwrap(), out);
    let projected = out.clone();
    model
        .head()
        .predict_batch_into(&projected, &mut out)
        .unwrap();
    assert_eq!(model.predict_batch(&projected).unwrap(), out);
    let losses = model.loss_batch(&z1s, &z2s).unwrap();
    let mut core = vec![0.0; 5];
    let mut ws = vec![0.0; c.batch_loss_workspace_len(5).unwrap()];
    model
        .head()
        .loss_batch_with_workspace(&z1s, &z2s, &mut core, &mut ws)
        .unwrap();
    assert_eq!(losses, core);
    let model = model.with_backend(Backend::Scalar);
    let losses = model.loss_batch(&z1s, &z2s).unwrap();
    for (j, loss) in losses.iter().enumerate() {
        let single = model.loss(&z1s[j * 9..][..9], &z2s[j * 9..][..9]).unwrap();
        assert_eq!(loss.to_bits(), single.to_bits());
    }
    assert!(model.project_batch(&[0.0; 10]).is_err());
    assert!(model.loss_batch(&z1s, &z2s[..36]).is_err());
    assert_eq!(model.loss_batch(&[], &[]).unwrap(), Vec::<f32>::new());
}
