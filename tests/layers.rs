//! The layer kinds (`simsiam::layers`) on both kernel twins:
//! - every backward (input gradient and every parameter gradient) against central finite
//!   differences of an independent `f64` forward written here;
//! - the SIMD twin against the scalar one within bounds derived from
//!   [`sum_error_bound`] (exact equality where no kernel sums: BatchNorm, ReLU, pools);
//! - Linear, BatchNorm and ReLU bit for bit against the model's eval path and the
//!   training step's forward on the scalar twin;
//! - PyTorch 2.15's results (`tests/data/layers_*.safetensors`, made by
//!   `scripts/make_layer_fixtures.py`);
//! - each bad shape gives its typed error.
//!
//! # Finite-difference tolerance
//! As tests/train.rs: per tensor, `|ours − fd| ≤ GRAD_TOLERANCE·max(max|fd|, 1e-3)`.
//! Central differences with `h = 1e-6` of the `f64` loss `L = Σ dy·y` are accurate to
//! about `1e-9` relative (the loss is linear in every input of Linear and Conv1d, so
//! only `f64` rounding remains there). The `f32` backward sums at most 100 products per
//! element: at worst `γ(100) ≈ 6e-6` of the sum of their magnitudes, which on these
//! inputs (values in `[−1, 1)`, no planted cancellation) is within a small factor of
//! the tensor's largest entry; BatchNorm's backward adds a handful of roundings per
//! element. Hence `1e-5`. A wrong index, sign, missing term or factor gives errors of
//! order 1e-1 relative. Measured: at most 1e-8 to 1e-7 relative (0.001–0.01 of the
//! bound; the worst ratio is printed with `--nocapture`).

use simsiam::SslError;
use simsiam::kernels::{Kernels, Scalar, Simd, sum_error_bound};
use simsiam::layers::{Bias, LayerKind, Shape, batch_norm::BatchNorm1d, linear::Linear, relu};

const GRAD_TOLERANCE: f64 = 1e-5;
/// The finite-difference step.
const H: f64 = 1e-6;

/// Reproducible values in `[-1, 1)` (a 64-bit LCG's high bits).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|x| f64::from(*x)).collect()
}

/// Central differences of `f` at `at`, one coordinate at a time.
fn fd(f: &dyn Fn(&[f64]) -> f64, at: &[f64]) -> Vec<f64> {
    (0..at.len())
        .map(|i| {
            let mut p = at.to_vec();
            p[i] = at[i] + H;
            let up = f(&p);
            p[i] = at[i] - H;
            let down = f(&p);
            (up - down) / (2.0 * H)
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Compares a gradient with the finite differences; returns the worst ratio to the bound.
fn compare(name: &str, ours: &[f32], oracle: &[f64]) -> f64 {
    assert_eq!(ours.len(), oracle.len(), "{name}: length");
    let scale = oracle.iter().fold(1e-3_f64, |m, v| m.max(v.abs()));
    let bound = GRAD_TOLERANCE * scale;
    let mut worst = 0.0_f64;
    for (i, (a, b)) in ours.iter().zip(oracle).enumerate() {
        let diff = (f64::from(*a) - b).abs();
        assert!(
            diff <= bound,
            "{name}[{i}]: ours {a} vs oracle {b} (diff {diff:e} > bound {bound:e})"
        );
        worst = worst.max(diff / bound);
    }
    worst
}

/// An `f64` forward: `(x, params) -> y`.
type Forward64<'a> = dyn Fn(&[f64], &[f64]) -> Vec<f64> + 'a;

/// What the gradient buffers hold before a backward: a backward must add to it.
const GRAD_START: f32 = 0.25;

/// Checks a backward against finite differences of `forward64(x, params) -> y` with
/// `L = Σ dy·y`: the input gradient, every trainable parameter's (ours minus the start
/// value), and untouched entries (frozen, running statistics) still at the start value.
#[allow(clippy::too_many_arguments)]
fn check_backward(
    name: &str,
    forward64: &Forward64<'_>,
    x: &[f32],
    params: &[f32],
    dy: &[f32],
    dx: Option<&[f32]>,
    grads: &[f32],
    trainable: &[bool],
) -> f64 {
    let (x64, p64, dy64) = (to64(x), to64(params), to64(dy));
    let mut worst = 0.0_f64;
    if let Some(dx) = dx {
        let fd_x = fd(&|x: &[f64]| dot(&forward64(x, &p64), &dy64), &x64);
        worst = worst.max(compare(&format!("{name} dx"), dx, &fd_x));
    }
    if !params.is_empty() {
        let fd_p = fd(&|p: &[f64]| dot(&forward64(&x64, p), &dy64), &p64);
        let ours: Vec<f32> = grads.iter().map(|g| g - GRAD_START).collect();
        let (mut o, mut f) = (Vec::new(), Vec::new());
        for (i, t) in trainable.iter().enumerate() {
            if *t {
                o.push(ours[i]);
                f.push(fd_p[i]);
            } else {
                assert_eq!(
                    grads[i], GRAD_START,
                    "{name}: untrainable entry {i} written"
                );
            }
        }
        worst = worst.max(compare(&format!("{name} dparams"), &o, &f));
    }
    worst
}

/// Which entries of a kind's flat parameters train.
fn trainable(kind: &LayerKind) -> Vec<bool> {
    let mut mask = Vec::new();
    for t in &kind.params() {
        mask.extend(std::iter::repeat_n(t.trainable, t.len));
    }
    mask
}

// ---------------------------------------------------------------- f64 oracles

fn linear64(l: &Linear, n: usize, x: &[f64], p: &[f64]) -> Vec<f64> {
    let (w, b) = p.split_at(l.d_out * l.d_in);
    let mut y = vec![0.0; n * l.d_out];
    for i in 0..n {
        for o in 0..l.d_out {
            let mut s = if l.bias.present() { b[o] } else { 0.0 };
            for q in 0..l.d_in {
                s += w[o * l.d_in + q] * x[i * l.d_in + q];
            }
            y[i * l.d_out + o] = s;
        }
    }
    y
}

fn batch_norm64(bn: &BatchNorm1d, n: usize, t: usize, x: &[f64], p: &[f64]) -> Vec<f64> {
    let c = bn.channels;
    let (gamma, beta) = if bn.affine {
        (&p[..c], &p[c..2 * c])
    } else {
        (&[][..], &[][..])
    };
    let count = (n * t) as f64;
    let mut y = vec![0.0; x.len()];
    for ch in 0..c {
        let at = |i: usize, s: usize| i * c * t + ch * t + s;
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| (0..t).map(move |s| (i, s)))
            .map(|(i, s)| x[at(i, s)])
            .collect();
        let mean = vals.iter().sum::<f64>() / count;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
        let inv = 1.0 / (var + f64::from(bn.eps)).sqrt();
        for i in 0..n {
            for s in 0..t {
                let xhat = (x[at(i, s)] - mean) * inv;
                y[at(i, s)] = if bn.affine {
                    xhat * gamma[ch] + beta[ch]
                } else {
                    xhat
                };
            }
        }
    }
    y
}

// ---------------------------------------------------------------- Linear

fn linear_cases() -> Vec<(Linear, usize)> {
    vec![
        (
            Linear {
                d_in: 7,
                d_out: 5,
                bias: Bias::Trainable,
            },
            3,
        ),
        (
            Linear {
                d_in: 4,
                d_out: 9,
                bias: Bias::None,
            },
            1,
        ),
        (
            Linear {
                d_in: 6,
                d_out: 3,
                bias: Bias::Frozen,
            },
            10,
        ),
    ]
}

/// Runs a Linear layer's forward and backward on twin `K`: `(y, dx, grads)`.
fn run_linear<K: Kernels>(
    l: &Linear,
    n: usize,
    x: &[f32],
    p: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut y = vec![f32::NAN; n * l.d_out];
    l.forward_train::<K>(p, n, x, &mut y).unwrap();
    let mut dx = vec![f32::NAN; x.len()];
    let mut grads = vec![GRAD_START; p.len()];
    l.backward::<K>(p, n, x, dy, Some(&mut dx), &mut grads)
        .unwrap();
    (y, dx, grads)
}

fn linear_backward_matches_finite_differences<K: Kernels>() {
    let mut worst = 0.0_f64;
    for (seed, (l, n)) in linear_cases().into_iter().enumerate() {
        let kind = LayerKind::Linear(l);
        let p = values(kind.param_count().unwrap(), seed as u64);
        let x = values(n * l.d_in, 100 + seed as u64);
        let dy = values(n * l.d_out, 200 + seed as u64);
        let (y, dx, grads) = run_linear::<K>(&l, n, &x, &p, &dy);
        let y64 = linear64(&l, n, &to64(&x), &to64(&p));
        compare("linear y", &y, &y64);
        let f = |x: &[f64], p: &[f64]| linear64(&l, n, x, p);
        worst = worst.max(check_backward(
            "linear",
            &f,
            &x,
            &p,
            &dy,
            Some(&dx),
            &grads,
            &trainable(&kind),
        ));
    }
    println!("linear: worst {worst:.3} of the bound");
}

// ---------------------------------------------------------------- BatchNorm

fn batch_norm_cases() -> Vec<(BatchNorm1d, usize, usize)> {
    vec![
        (BatchNorm1d::new(4), 3, 5),
        (BatchNorm1d::new(6), 7, 1),
        (
            BatchNorm1d {
                affine: false,
                eps: 1e-3,
                ..BatchNorm1d::new(3)
            },
            2,
            4,
        ),
    ]
}

/// Parameters of a BatchNorm: γ near 1, β small, running statistics near (0, 1).
fn batch_norm_params(bn: &BatchNorm1d, seed: u64) -> Vec<f32> {
    let c = bn.channels;
    let v = values(4 * c, seed);
    let mut p = Vec::new();
    if bn.affine {
        p.extend(v[..c].iter().map(|g| 1.0 + 0.3 * g));
        p.extend(v[c..2 * c].iter().map(|b| 0.3 * b));
    }
    p.extend(v[2 * c..3 * c].iter().map(|m| 0.2 * m));
    p.extend(v[3 * c..].iter().map(|s| 1.0 + 0.5 * s.abs()));
    p
}

/// A BatchNorm's training forward and backward on twin `K`: `(y, dx, grads, saved)`.
fn run_batch_norm(
    bn: &BatchNorm1d,
    n: usize,
    t: usize,
    x: &[f32],
    p: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let shape = Shape::sequence(bn.channels, t);
    let mut y = x.to_vec();
    let mut saved = vec![f32::NAN; bn.saved_len(shape, n).unwrap()];
    bn.forward_train(p, n, shape, &mut y, &mut saved).unwrap();
    let mut grad = dy.to_vec();
    let mut grads = vec![GRAD_START; p.len()];
    bn.backward(p, n, shape, &mut saved, &mut grad, &mut grads)
        .unwrap();
    (y, grad, grads, saved)
}

/// `[N, C]` transposed to one sample `[C, N]` (or back, with `n` and `c` swapped).
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols)
        .flat_map(|j| (0..rows).map(move |i| v[i * cols + j]))
        .collect()
}

/// BatchNorm over features (`T = 1`, its own row-wise path) equals the sequence path on
/// the same values laid out as one sample `[C, N]` bit for bit: the statistics of both
/// run over the same values in the same order (samples ascending, positions ascending).
/// Forward `y`, the saved `x̂` and statistics, backward `dx`, `dγ`, `dβ`; channel counts
/// across the feature path's blocks of 64, affine or not.
#[test]
fn batch_norm_over_features_equals_the_sequence_path_bit_for_bit() {
    let cases = [
        (BatchNorm1d::new(130), 9),
        (
            BatchNorm1d {
                affine: false,
                eps: 1e-3,
                ..BatchNorm1d::new(67)
            },
            5,
        ),
        (BatchNorm1d::new(3), 2),
    ];
    for (bn, n) in cases {
        let c = bn.channels;
        let x: Vec<f32> = values(n * c, 71).iter().map(|v| 3.0 * v + 0.5).collect();
        let dy = values(n * c, 72);
        let p = batch_norm_params(&bn, 73);
        let (y, dx, grads, saved) = run_batch_norm(&bn, n, 1, &x, &p, &dy);
        let (y_t, dx_t, grads_t, saved_t) =
            run_batch_norm(&bn, 1, n, &transpose(&x, n, c), &p, &transpose(&dy, n, c));
        let at = format!("C = {c}, n = {n}");
        assert_eq!(bits(&y), bits(&transpose(&y_t, c, n)), "y, {at}");
        assert_eq!(bits(&dx), bits(&transpose(&dx_t, c, n)), "dx, {at}");
        assert_eq!(bits(&grads), bits(&grads_t), "grads, {at}");
        let xhat = &saved[..n * c];
        assert_eq!(
            bits(xhat),
            bits(&transpose(&saved_t[..n * c], c, n)),
            "x̂, {at}"
        );
        assert_eq!(
            bits(&saved[n * c..]),
            bits(&saved_t[n * c..]),
            "stats, {at}"
        );
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let mut worst = 0.0_f64;
    for (seed, (bn, n, t)) in batch_norm_cases().into_iter().enumerate() {
        let kind = LayerKind::BatchNorm1d(bn);
        let p = batch_norm_params(&bn, seed as u64);
        let x: Vec<f32> = values(n * bn.channels * t, 10 + seed as u64)
            .iter()
            .map(|v| 2.0 * v + 0.5)
            .collect();
        let dy = values(x.len(), 20 + seed as u64);
        let (y, dx, grads, _) = run_batch_norm(&bn, n, t, &x, &p, &dy);
        compare(
            "batch_norm y",
            &y,
            &batch_norm64(&bn, n, t, &to64(&x), &to64(&p)),
        );
        let f = |x: &[f64], p: &[f64]| batch_norm64(&bn, n, t, x, p);
        worst = worst.max(check_backward(
            "batch_norm",
            &f,
            &x,
            &p,
            &dy,
            Some(&dx),
            &grads,
            &trainable(&kind),
        ));
    }
    println!("batch_norm: worst {worst:.3} of the bound");
}

// ---------------------------------------------------------------- ReLU

fn relu_backward_matches_finite_differences() {
    let shape = Shape::sequence(3, 5);
    let n = 2;
    // Away from 0 by more than h.
    let x: Vec<f32> = values(30, 7)
        .iter()
        .map(|v| if v.abs() < 0.05 { 0.5 } else { *v })
        .collect();
    let mut y = x.clone();
    relu::forward(n, shape, &mut y).unwrap();
    let dy = values(30, 8);
    let mut grad = dy.clone();
    relu::backward(n, shape, &y, &mut grad).unwrap();
    let f = |x: &[f64], _: &[f64]| x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>();
    let worst = check_backward("relu", &f, &x, &[], &dy, Some(&grad), &[], &[]);
    println!("relu: worst {worst:.3} of the bound");
}

macro_rules! twin_tests {
    ($($name:ident => $body:ident;)*) => {
        mod simd_twin {
            $(#[test] fn $name() { super::$body::<super::Simd>(); })*
        }
        mod scalar_twin {
            $(#[test] fn $name() { super::$body::<super::Scalar>(); })*
        }
    };
}

twin_tests! {
    linear_backward => linear_backward_matches_finite_differences;
    linear_simd_within_bound => linear_twins_within_bound_of_scalar;
}

#[test]
fn relu_backward() {
    relu_backward_matches_finite_differences();
}

// ---------------------------------------------------------------- twins

/// Asserts `|a − b| ≤ bound[i]` elementwise.
fn within(name: &str, a: &[f32], b: &[f32], bound: &[f64]) {
    assert_eq!(a.len(), b.len(), "{name}: length");
    for (i, ((x, y), e)) in a.iter().zip(b).zip(bound).enumerate() {
        let diff = (f64::from(*x) - f64::from(*y)).abs();
        assert!(
            diff <= *e,
            "{name}[{i}]: {x} vs {y} (diff {diff:e} > bound {e:e})"
        );
    }
}

/// Sums of absolute values of the terms, computed by the same operation on absolute
/// values (scalar twin), made a little larger than any rounding could have made them
/// smaller (`(1 + 1e-3)`; γ(k) of the abs sums is below 1e-5 here).
fn abs_all(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

fn bounds(terms: usize, sums_abs: &[f32], start: f64) -> Vec<f64> {
    sums_abs
        .iter()
        .map(|s| sum_error_bound(terms, f64::from(*s).abs() * 1.001 + start))
        .collect()
}

/// `K`'s Linear against the scalar twin: `y` within `sum_error_bound(d_in + 1, …)`,
/// `dW` within `(n + 1, …)`, `dx` within `(d_out + 1, …)`; the bias gradient (plain
/// adds on both twins) equal. With `K = Scalar` the bounds hold trivially (0 ≤ …): the
/// same code checks the SIMD twin, where the differences are real.
fn linear_twins_within_bound_of_scalar<K: Kernels>() {
    for (seed, (l, n)) in linear_cases().into_iter().enumerate() {
        let kind = LayerKind::Linear(l);
        let p = values(kind.param_count().unwrap(), 300 + seed as u64);
        let x = values(n * l.d_in, 400 + seed as u64);
        let dy = values(n * l.d_out, 500 + seed as u64);
        let (y, dx, grads) = run_linear::<K>(&l, n, &x, &p, &dy);
        let (y_s, dx_s, grads_s) = run_linear::<Scalar>(&l, n, &x, &p, &dy);
        let (y_abs, dx_abs, mut grads_abs) =
            run_linear::<Scalar>(&l, n, &abs_all(&x), &abs_all(&p), &abs_all(&dy));
        grads_abs.iter_mut().for_each(|g| *g -= GRAD_START);
        within("linear y", &y, &y_s, &bounds(l.d_in + 1, &y_abs, 0.0));
        within("linear dx", &dx, &dx_s, &bounds(l.d_out + 1, &dx_abs, 0.0));
        let w_len = l.d_in * l.d_out;
        within(
            "linear dW",
            &grads[..w_len],
            &grads_s[..w_len],
            &bounds(n + 1, &grads_abs[..w_len], f64::from(GRAD_START)),
        );
        assert_eq!(grads[w_len..], grads_s[w_len..], "linear db");
    }
}

// ---------------------------------------------------------------- the model's paths

use simsiam::SimSiamHead;
use simsiam::model::{Architecture, BatchNorm, Layer, Stack};
use simsiam::train::{Sgd, TrainConfig, projection_ranges, scratch_len};

/// A projector `Linear(6, 10, bias)+BN+ReLU, Linear(10, 4)+BN(affine=False)` and a
/// one-layer predictor, not normalised: `project` returns the projector's output.
fn small_head() -> Architecture {
    let projector = Stack::new(&[
        Layer::linear(6, 10)
            .with_bias()
            .with_batch_norm(BatchNorm::AFFINE)
            .with_relu(),
        Layer::linear(10, 4).with_batch_norm(BatchNorm::PLAIN),
    ])
    .unwrap();
    let predictor = Stack::new(&[Layer::linear(4, 4).with_bias()]).unwrap();
    Architecture::new(projector, predictor, false, false).unwrap()
}

/// The projector of [`small_head`] as kinds, with its parameter ranges in the flat layout.
fn small_projector() -> Vec<(LayerKind, std::ops::Range<usize>)> {
    let kinds = [
        LayerKind::Linear(Linear {
            d_in: 6,
            d_out: 10,
            bias: Bias::Trainable,
        }),
        LayerKind::BatchNorm1d(BatchNorm1d::new(10)),
        LayerKind::Relu,
        LayerKind::Linear(Linear {
            d_in: 10,
            d_out: 4,
            bias: Bias::None,
        }),
        LayerKind::BatchNorm1d(BatchNorm1d {
            affine: false,
            ..BatchNorm1d::new(4)
        }),
    ];
    let mut at = 0;
    kinds
        .into_iter()
        .map(|k| {
            let len = k.param_count().unwrap();
            at += len;
            (k, at - len..at)
        })
        .collect()
}

/// The projector's kinds walked forward on the scalar twin, eval or training mode.
fn walk_projector(params: &[f32], n: usize, x: &[f32], train: bool) -> Vec<f32> {
    let mut act = x.to_vec();
    let mut shape = Shape::vector(6);
    for (kind, range) in small_projector() {
        let p = &params[range];
        let out = kind.output_shape(shape).unwrap();
        match kind {
            LayerKind::Linear(l) => {
                let mut y = vec![0.0; n * l.d_out];
                l.forward_train::<Scalar>(p, n, &act, &mut y).unwrap();
                act = y;
            }
            LayerKind::BatchNorm1d(bn) if train => {
                let mut saved = vec![0.0; bn.saved_len(shape, n).unwrap()];
                bn.forward_train(p, n, shape, &mut act, &mut saved).unwrap();
            }
            LayerKind::BatchNorm1d(bn) => bn.forward_eval(p, n, shape, &mut act).unwrap(),
            LayerKind::Relu => relu::forward(n, shape, &mut act).unwrap(),
            _ => unreachable!(),
        }
        shape = out;
    }
    act
}

fn small_params() -> Vec<f32> {
    let architecture = small_head();
    let count = architecture.param_count().unwrap();
    let mut p = values(count, 77);
    // Running variances positive.
    for (kind, range) in small_projector() {
        if let LayerKind::BatchNorm1d(bn) = kind {
            let c = bn.channels;
            for v in &mut p[range.end - c..range.end] {
                *v = v.abs() + 0.5;
            }
        }
    }
    p
}

/// The kinds' eval forward on the scalar twin equals the model's fused eval path
/// (`SimSiamHead::project_into`, two layers in one stage) bit for bit.
#[test]
fn eval_kinds_equal_the_model_bit_for_bit() {
    let params = small_params();
    let head = SimSiamHead::new(small_head(), params.clone())
        .unwrap()
        .with_kernels::<Scalar>();
    for seed in 0..4 {
        let x = values(6, 900 + seed);
        let mut want = [0.0; 4];
        head.project_into(&x, &mut want, &mut []).unwrap();
        let got = walk_projector(&params, 1, &x, false);
        assert_eq!(got, want, "input {seed}");
    }
}

/// The kinds' training forward on the scalar twin equals the training step's projections
/// bit for bit, with the step's dot-product forward (4 pairs) and its transposed one
/// (20 pairs).
#[test]
fn training_kinds_equal_the_training_step_bit_for_bit() {
    let architecture = small_head();
    let params = small_params();
    for n in [4, 20] {
        let mut head = SimSiamHead::new(architecture, params.clone())
            .unwrap()
            .with_kernels::<Scalar>();
        let config = TrainConfig {
            lr: 0.0,
            ..TrainConfig::default()
        };
        let mut sgd = Sgd::new(&architecture, config, vec![0.0; params.len()]).unwrap();
        let mut scratch = vec![0.0; scratch_len(&architecture, n).unwrap()];
        let (x1, x2) = (values(6 * n, 31), values(6 * n, 32));
        let (mut g1, mut g2) = (vec![0.0; 6 * n], vec![0.0; 6 * n]);
        sgd.step(&mut head, &x1, &x2, &mut scratch, [&mut g1, &mut g2])
            .unwrap();
        let [first, second] = projection_ranges(&architecture, n).unwrap();
        assert_eq!(
            walk_projector(&params, n, &x1, true),
            scratch[first],
            "view 1, n = {n}"
        );
        assert_eq!(
            walk_projector(&params, n, &x2, true),
            scratch[second],
            "view 2, n = {n}"
        );
    }
}

/// The running statistics after one step (two views, lr 0) equal two updates from the
/// kinds' saved buffers, bit for bit, and the counter grows by two.
#[test]
fn running_statistics_equal_the_training_step() {
    let architecture = small_head();
    let params = small_params();
    let n = 5;
    let mut head = SimSiamHead::new(architecture, params.clone())
        .unwrap()
        .with_kernels::<Scalar>();
    let config = TrainConfig {
        lr: 0.0,
        momentum: 0.0,
        weight_decay: 0.0,
        ..TrainConfig::default()
    };
    let mut sgd = Sgd::new(&architecture, config, vec![0.0; params.len()]).unwrap();
    let mut scratch = vec![0.0; scratch_len(&architecture, n).unwrap()];
    let (x1, x2) = (values(6 * n, 41), values(6 * n, 42));
    let (mut g1, mut g2) = (vec![0.0; 6 * n], vec![0.0; 6 * n]);
    sgd.step(&mut head, &x1, &x2, &mut scratch, [&mut g1, &mut g2])
        .unwrap();
    // The first layer's BatchNorm: Linear then BN training forward per view.
    let kinds = small_projector();
    let (LayerKind::Linear(l), LayerKind::BatchNorm1d(bn)) = (kinds[0].0, kinds[1].0) else {
        unreachable!()
    };
    let mut ours = params.clone();
    let mut tracked = 0;
    for x in [&x1, &x2] {
        let mut y = vec![0.0; n * 10];
        l.forward_train::<Scalar>(&params[kinds[0].1.clone()], n, x, &mut y)
            .unwrap();
        let mut saved = vec![0.0; bn.saved_len(Shape::vector(10), n).unwrap()];
        bn.forward_train(
            &params[kinds[1].1.clone()],
            n,
            Shape::vector(10),
            &mut y,
            &mut saved,
        )
        .unwrap();
        bn.update_running_stats(
            &mut ours[kinds[1].1.clone()],
            n,
            Shape::vector(10),
            &saved,
            &mut tracked,
        )
        .unwrap();
    }
    assert_eq!(
        &head.params()[kinds[1].1.clone()],
        &ours[kinds[1].1.clone()]
    );
    assert_eq!(tracked, 2);
    assert_eq!(head.batches_tracked()[0], 2);
}

// ---------------------------------------------------------------- errors

#[test]
fn bad_shapes_give_typed_errors() {
    let mismatch = |expected, got| SslError::DimensionMismatch { expected, got };
    let l = Linear {
        d_in: 3,
        d_out: 2,
        bias: Bias::Trainable,
    };
    let p = [0.0; 8];
    let mut y = [0.0; 4];
    assert_eq!(l.output_shape(Shape::vector(4)), Err(mismatch(3, 4)));
    assert_eq!(
        l.forward_eval::<Simd>(&p[..7], 2, &[0.0; 6], &mut y),
        Err(mismatch(8, 7))
    );
    assert_eq!(
        l.forward_eval::<Simd>(&p, 2, &[0.0; 5], &mut y),
        Err(mismatch(6, 5))
    );
    assert_eq!(
        l.forward_eval::<Simd>(&p, 2, &[0.0; 6], &mut y[..3]),
        Err(mismatch(4, 3))
    );
    assert!(matches!(
        l.forward_eval::<Simd>(&p, 0, &[], &mut []),
        Err(SslError::InvalidParameter { name: "n", .. })
    ));
    let zero = Linear { d_out: 0, ..l };
    assert!(matches!(
        zero.output_shape(Shape::vector(3)),
        Err(SslError::InvalidParameter { name: "d_out", .. })
    ));
    let huge = Linear {
        d_in: usize::MAX,
        d_out: 2,
        bias: Bias::None,
    };
    assert!(matches!(
        LayerKind::Linear(huge).param_count(),
        Err(SslError::InvalidParameter { name: "shape", .. })
    ));
    assert!(matches!(
        huge.forward_eval::<Scalar>(&[], 1, &[], &mut []),
        Err(SslError::InvalidParameter { name: "shape", .. })
    ));
    let (mut dx, mut g) = ([0.0; 6], [0.0; 8]);
    assert_eq!(
        l.backward::<Simd>(&p, 2, &[0.0; 6], &[0.0; 4], Some(&mut dx[..5]), &mut g),
        Err(mismatch(6, 5))
    );
    assert_eq!(
        l.backward::<Simd>(&p, 2, &[0.0; 6], &[0.0; 4], Some(&mut dx), &mut g[..7]),
        Err(mismatch(8, 7))
    );
    assert_eq!(g, [0.0; 8], "nothing written on error");

    let bn = BatchNorm1d::new(2);
    let bp = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
    let seq = Shape::sequence(2, 3);
    assert_eq!(bn.output_shape(Shape::sequence(3, 3)), Err(mismatch(2, 3)));
    assert!(matches!(
        BatchNorm1d {
            eps: f32::NAN,
            ..bn
        }
        .output_shape(seq),
        Err(SslError::InvalidParameter { name: "eps", .. })
    ));
    assert!(matches!(
        BatchNorm1d {
            momentum: 1.5,
            ..bn
        }
        .output_shape(seq),
        Err(SslError::InvalidParameter {
            name: "momentum",
            ..
        })
    ));
    let mut act = [0.0; 6];
    let mut saved = [0.0; 6 + 10];
    assert!(matches!(
        bn.forward_train(&bp, 1, Shape::vector(2), &mut act[..2], &mut saved[..12]),
        Err(SslError::InvalidParameter { name: "n", .. })
    ));
    assert_eq!(
        bn.forward_train(&bp, 1, seq, &mut act, &mut saved[..15]),
        Err(mismatch(16, 15))
    );
    assert_eq!(
        bn.forward_eval(&bp[..6], 1, seq, &mut act),
        Err(mismatch(8, 6))
    );
    let mut rp = bp;
    let mut tracked = 0;
    saved.fill(f32::INFINITY);
    assert_eq!(
        bn.update_running_stats(&mut rp, 1, seq, &saved, &mut tracked),
        Err(SslError::NonFinite {
            location: "running statistics"
        })
    );
    assert_eq!((rp, tracked), (bp, 0), "all or nothing");

    assert!(matches!(
        relu::forward(1, Shape::vector(0), &mut []),
        Err(SslError::InvalidParameter { name: "shape", .. })
    ));
    assert_eq!(
        relu::backward(1, Shape::vector(2), &[0.0; 2], &mut [0.0; 3]),
        Err(mismatch(2, 3))
    );
}

// ---------------------------------------------------------------- sequence kinds

#[cfg(feature = "conv")]
mod sequence {
    use super::*;
    use simsiam::layers::conv1d::{Conv1d, Padding};
    use simsiam::layers::global_max_pool1d;
    use simsiam::layers::max_pool1d::MaxPool1d;

    /// `len` distinct values at least `0.01` apart, shuffled (no ties a finite difference
    /// could flip).
    fn distinct(len: usize, seed: u64) -> Vec<f32> {
        let keys = values(len, seed);
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|a, b| keys[*a].total_cmp(&keys[*b]));
        let mut out = vec![0.0; len];
        for (rank, i) in order.into_iter().enumerate() {
            out[i] = rank as f32 * 0.01 - len as f32 * 0.005;
        }
        out
    }

    /// `(conv, n, T)`: stride 2 with padding 2, 'same' with kernels 8 and 3, a stride
    /// larger than 1 with a window past the end, every bias kind.
    pub(super) fn conv_cases() -> Vec<(Conv1d, usize, usize)> {
        let conv = |c_in, c_out, kernel, stride, padding, bias| Conv1d {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
            bias,
        };
        vec![
            (conv(3, 4, 5, 2, Padding::Zeros(2), Bias::Trainable), 2, 11),
            (conv(2, 3, 8, 1, Padding::Same, Bias::None), 2, 10),
            (conv(3, 2, 3, 1, Padding::Same, Bias::Frozen), 3, 7),
            (conv(2, 2, 3, 3, Padding::Zeros(1), Bias::Trainable), 1, 8),
            (conv(6, 5, 8, 1, Padding::Zeros(0), Bias::None), 2, 16),
            // A window of 64: with a scratch of several samples the forward runs through
            // `kernels::correlate` (see `conv_groups_give_the_same_bits`).
            (conv(16, 5, 4, 1, Padding::Zeros(1), Bias::Trainable), 2, 12),
        ]
    }

    pub(super) fn conv64(c: &Conv1d, n: usize, t: usize, x: &[f64], p: &[f64]) -> Vec<f64> {
        let (left, _) = c.pads().unwrap();
        let t_out = c.output_shape(Shape::sequence(c.c_in, t)).unwrap().len;
        let (w, b) = p.split_at(c.c_out * c.c_in * c.kernel);
        let mut y = vec![0.0; n * c.c_out * t_out];
        for i in 0..n {
            for o in 0..c.c_out {
                for s in 0..t_out {
                    let mut sum = if c.bias.present() { b[o] } else { 0.0 };
                    for ci in 0..c.c_in {
                        for j in 0..c.kernel {
                            let pos = (s * c.stride + j) as isize - left as isize;
                            if pos >= 0 && (pos as usize) < t {
                                sum += w[(o * c.c_in + ci) * c.kernel + j]
                                    * x[(i * c.c_in + ci) * t + pos as usize];
                            }
                        }
                    }
                    y[(i * c.c_out + o) * t_out + s] = sum;
                }
            }
        }
        y
    }

    /// A convolution's forward and backward on twin `K`: `(y, dx, grads)`.
    pub(super) fn run_conv<K: Kernels>(
        c: &Conv1d,
        n: usize,
        t: usize,
        x: &[f32],
        p: &[f32],
        dy: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let shape = Shape::sequence(c.c_in, t);
        let out = c.output_shape(shape).unwrap();
        let mut scratch = vec![f32::NAN; c.scratch_len(shape).unwrap()];
        let mut y = vec![f32::NAN; n * out.size().unwrap()];
        c.forward_train::<K>(p, n, shape, x, &mut y, &mut scratch)
            .unwrap();
        let mut dx = vec![f32::NAN; x.len()];
        let mut grads = vec![GRAD_START; p.len()];
        c.backward::<K>(p, n, shape, x, dy, Some(&mut dx), &mut grads, &mut scratch)
            .unwrap();
        (y, dx, grads)
    }

    fn conv_backward_matches_finite_differences<K: Kernels>() {
        let mut worst = 0.0_f64;
        for (seed, (c, n, t)) in conv_cases().into_iter().enumerate() {
            let kind = LayerKind::Conv1d(c);
            let seed = seed as u64;
            let p = values(kind.param_count().unwrap(), 30 + seed);
            let x = values(n * c.c_in * t, 40 + seed);
            let out = c.output_shape(Shape::sequence(c.c_in, t)).unwrap();
            let dy = values(n * out.size().unwrap(), 50 + seed);
            let (y, dx, grads) = run_conv::<K>(&c, n, t, &x, &p, &dy);
            compare("conv y", &y, &conv64(&c, n, t, &to64(&x), &to64(&p)));
            let f = |x: &[f64], p: &[f64]| conv64(&c, n, t, x, p);
            let name = format!("conv {c:?}");
            worst = worst.max(check_backward(
                &name,
                &f,
                &x,
                &p,
                &dy,
                Some(&dx),
                &grads,
                &trainable(&kind),
            ));
        }
        println!("conv1d: worst {worst:.3} of the bound");
    }

    /// `K`'s convolution against the scalar twin: `y` within
    /// `sum_error_bound(C_in·k + 1, …)`, `dW` within `(n·T_out + 1, …)` (one running sum
    /// over the samples and positions from its start value), `dx` within
    /// `(C_out·k, …)` (every element a sum of `W·dy` products, however grouped); the bias
    /// gradient (plain adds on both twins) equal.
    fn conv_twins_within_bound_of_scalar<K: Kernels>() {
        for (seed, (c, n, t)) in conv_cases().into_iter().enumerate() {
            let kind = LayerKind::Conv1d(c);
            let seed = seed as u64;
            let p = values(kind.param_count().unwrap(), 60 + seed);
            let x = values(n * c.c_in * t, 70 + seed);
            let out = c.output_shape(Shape::sequence(c.c_in, t)).unwrap();
            let dy = values(n * out.size().unwrap(), 80 + seed);
            let (y, dx, grads) = run_conv::<K>(&c, n, t, &x, &p, &dy);
            let (y_s, dx_s, grads_s) = run_conv::<Scalar>(&c, n, t, &x, &p, &dy);
            let (y_abs, dx_abs, mut grads_abs) =
                run_conv::<Scalar>(&c, n, t, &abs_all(&x), &abs_all(&p), &abs_all(&dy));
            grads_abs.iter_mut().for_each(|g| *g -= GRAD_START);
            within(
                "conv y",
                &y,
                &y_s,
                &bounds(c.c_in * c.kernel + 1, &y_abs, 0.0),
            );
            within(
                "conv dx",
                &dx,
                &dx_s,
                &bounds(c.c_out * c.kernel, &dx_abs, 0.0),
            );
            let w_len = c.c_out * c.c_in * c.kernel;
            within(
                "conv dW",
                &grads[..w_len],
                &grads_s[..w_len],
                &bounds(n * out.len + 1, &grads_abs[..w_len], f64::from(GRAD_START)),
            );
            assert_eq!(grads[w_len..], grads_s[w_len..], "conv db");
        }
    }

    pub(super) fn max_pool64(k: usize, rows: usize, t: usize, x: &[f64]) -> Vec<f64> {
        let t_out = t / k;
        let mut y = Vec::new();
        for r in 0..rows {
            for s in 0..t_out {
                let w = &x[r * t + s * k..r * t + s * k + k];
                y.push(w.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            }
        }
        y
    }

    #[test]
    fn max_pools_backward_match_finite_differences() {
        let mut worst = 0.0_f64;
        for (k, n, c, t) in [(2, 2, 3, 7), (3, 1, 2, 10), (4, 2, 1, 8)] {
            let pool = MaxPool1d { kernel: k };
            let shape = Shape::sequence(c, t);
            let x = distinct(n * c * t, k as u64);
            let out = pool.output_shape(shape).unwrap();
            let mut y = vec![f32::NAN; n * out.size().unwrap()];
            pool.forward(n, shape, &x, &mut y).unwrap();
            compare("max_pool y", &y, &max_pool64(k, n * c, t, &to64(&x)));
            let dy = values(y.len(), 90 + k as u64);
            let mut dx = vec![f32::NAN; x.len()];
            pool.backward(n, shape, &x, &dy, &mut dx).unwrap();
            let f = |x: &[f64], _: &[f64]| max_pool64(k, n * c, t, x);
            worst = worst.max(check_backward(
                "max_pool",
                &f,
                &x,
                &[],
                &dy,
                Some(&dx),
                &[],
                &[],
            ));

            let mut g = vec![f32::NAN; n * c];
            global_max_pool1d::forward(n, shape, &x, &mut g).unwrap();
            compare("global y", &g, &max_pool64(t, n * c, t, &to64(&x)));
            let dg = values(g.len(), 95 + k as u64);
            global_max_pool1d::backward(n, shape, &x, &dg, &mut dx).unwrap();
            let f = |x: &[f64], _: &[f64]| max_pool64(t, n * c, t, x);
            worst = worst.max(check_backward(
                "global_max_pool",
                &f,
                &x,
                &[],
                &dg,
                Some(&dx),
                &[],
                &[],
            ));
        }
        println!("pools: worst {worst:.3} of the bound");
    }

    /// A scratch for `g` samples runs them through one matrix product each: the results
    /// are those of one sample at a time bit for bit (every sum in the same order), also
    /// with a last group shorter than the others; and a scratch that holds
    /// `correlate_pack_len` sends a window of 64 or more through `kernels::correlate`,
    /// again the same bits.
    fn conv_groups_give_the_same_bits<K: Kernels>() {
        for (seed, (c, _, t)) in conv_cases().into_iter().enumerate() {
            let n = 5;
            let shape = Shape::sequence(c.c_in, t);
            let out = c.output_shape(shape).unwrap();
            let seed = seed as u64;
            let p = values(LayerKind::Conv1d(c).param_count().unwrap(), 110 + seed);
            let x = values(n * shape.size().unwrap(), 120 + seed);
            let dy = values(n * out.size().unwrap(), 130 + seed);
            let one = c.scratch_len(shape).unwrap();
            let mut results = Vec::new();
            for scratch_len in [one, 2 * one + 1, 5 * one, 9 * one] {
                let mut scratch = vec![f32::NAN; scratch_len];
                let mut y = vec![f32::NAN; dy.len()];
                c.forward_eval::<K>(&p, n, shape, &x, &mut y, &mut scratch)
                    .unwrap();
                let mut dx = vec![f32::NAN; x.len()];
                let mut grads = vec![GRAD_START; p.len()];
                c.backward::<K>(
                    &p,
                    n,
                    shape,
                    &x,
                    &dy,
                    Some(&mut dx),
                    &mut grads,
                    &mut scratch,
                )
                .unwrap();
                results.push((y, dx, grads));
            }
            for r in &results[1..] {
                assert!(r == &results[0], "{c:?}: groups changed the results");
            }
        }
    }

    twin_tests! {
        conv_groups => conv_groups_give_the_same_bits;
        conv_backward => conv_backward_matches_finite_differences;
        conv_simd_within_bound => conv_twins_within_bound_of_scalar;
    }

    #[test]
    fn sequence_shapes_and_errors() {
        let mismatch = |expected, got| SslError::DimensionMismatch { expected, got };
        let conv = Conv1d {
            c_in: 2,
            c_out: 3,
            kernel: 4,
            stride: 2,
            padding: Padding::Same,
            bias: Bias::Trainable,
        };
        let shape = Shape::sequence(2, 9);
        assert!(matches!(
            conv.output_shape(shape),
            Err(SslError::InvalidParameter {
                name: "padding",
                ..
            })
        ));
        let conv = Conv1d {
            padding: Padding::Zeros(1),
            ..conv
        };
        assert_eq!(conv.output_shape(shape), Ok(Shape::sequence(3, 4)));
        assert_eq!(
            conv.output_shape(Shape::sequence(3, 9)),
            Err(mismatch(2, 3))
        );
        assert!(matches!(
            conv.output_shape(Shape::sequence(2, 1)),
            Err(SslError::InvalidParameter { name: "shape", .. })
        ));
        for (field, bad) in [
            ("c_in", Conv1d { c_in: 0, ..conv }),
            ("c_out", Conv1d { c_out: 0, ..conv }),
            ("kernel", Conv1d { kernel: 0, ..conv }),
            ("stride", Conv1d { stride: 0, ..conv }),
        ] {
            assert!(
                matches!(bad.output_shape(shape), Err(SslError::InvalidParameter { name, .. }) if name == field),
                "{field}"
            );
        }
        assert!(matches!(
            Conv1d {
                padding: Padding::Zeros(usize::MAX),
                ..conv
            }
            .output_shape(shape),
            Err(SslError::InvalidParameter { name: "shape", .. })
        ));
        let kind = LayerKind::Conv1d(conv);
        let names: Vec<_> = kind
            .params()
            .iter()
            .map(|t| (t.name, t.dims, t.rank))
            .collect();
        assert_eq!(names, [("weight", [3, 2, 4], 3), ("bias", [3, 1, 1], 1)]);
        assert_eq!(kind.flops(shape), Ok(2 * 3 * 4 * 2 * 4));
        assert_eq!(kind.scratch_len(shape), Ok((2 * 4 + 3) * 4));
        let p = [0.0; 27];
        let x = [0.0; 18];
        let mut y = [0.0; 12];
        let mut scratch = [0.0; 44];
        assert_eq!(
            conv.forward_eval::<Simd>(&p, 1, shape, &x, &mut y, &mut scratch[..43]),
            Err(SslError::CapacityTooSmall {
                needed: 44,
                capacity: 43
            })
        );
        assert_eq!(
            conv.forward_eval::<Simd>(&p, 1, shape, &x, &mut y[..11], &mut scratch),
            Err(mismatch(12, 11))
        );
        assert_eq!(
            conv.forward_eval::<Simd>(&p[..26], 1, shape, &x, &mut y, &mut scratch),
            Err(mismatch(27, 26))
        );
        let mut g = [0.0; 27];
        assert_eq!(
            conv.backward::<Simd>(
                &p,
                1,
                shape,
                &x,
                &y,
                Some(&mut [0.0; 17]),
                &mut g,
                &mut scratch
            ),
            Err(mismatch(18, 17))
        );

        let pool = MaxPool1d { kernel: 4 };
        assert_eq!(
            pool.output_shape(Shape::sequence(2, 9)),
            Ok(Shape::sequence(2, 2))
        );
        assert!(matches!(
            pool.output_shape(Shape::sequence(2, 3)),
            Err(SslError::InvalidParameter { name: "shape", .. })
        ));
        assert!(matches!(
            MaxPool1d { kernel: 0 }.output_shape(shape),
            Err(SslError::InvalidParameter { name: "kernel", .. })
        ));
        assert_eq!(pool.forward(1, shape, &x, &mut y[..3]), Err(mismatch(4, 3)));
        assert_eq!(
            pool.backward(1, shape, &x, &y[..4], &mut [0.0; 19]),
            Err(mismatch(18, 19))
        );
        assert_eq!(global_max_pool1d::output_shape(shape), Ok(Shape::vector(2)));
        assert_eq!(
            global_max_pool1d::forward(1, shape, &x, &mut y[..3]),
            Err(mismatch(2, 3))
        );
        assert_eq!(
            LayerKind::GlobalMaxPool1d
                .output_shape(Shape::sequence(0, 3))
                .map(|_| ()),
            Err(SslError::InvalidParameter {
                name: "shape",
                reason: "channels and len must be at least 1"
            })
        );
    }

    /// The har-conv encoder's shapes (issue 20), walked through the kinds.
    #[test]
    fn har_conv_encoder_shapes() {
        let conv = |c_in, c_out| {
            LayerKind::Conv1d(Conv1d {
                c_in,
                c_out,
                kernel: 8,
                stride: 1,
                padding: Padding::Zeros(0),
                bias: Bias::None,
            })
        };
        let pool = LayerKind::MaxPool1d(MaxPool1d { kernel: 2 });
        let bn = |c| LayerKind::BatchNorm1d(BatchNorm1d::new(c));
        let encoder = [
            conv(6, 32),
            bn(32),
            LayerKind::Relu,
            pool,
            conv(32, 64),
            bn(64),
            LayerKind::Relu,
            pool,
            conv(64, 128),
            bn(128),
            LayerKind::Relu,
            LayerKind::GlobalMaxPool1d,
        ];
        let mut shape = Shape::sequence(6, 128);
        let mut lens = Vec::new();
        for kind in &encoder {
            shape = kind.output_shape(shape).unwrap();
            lens.push((shape.channels, shape.len));
        }
        assert_eq!(
            lens,
            [
                (32, 121),
                (32, 121),
                (32, 121),
                (32, 60),
                (64, 53),
                (64, 53),
                (64, 53),
                (64, 26),
                (128, 19),
                (128, 19),
                (128, 19),
                (128, 1),
            ]
        );
    }
}

// ---------------------------------------------------------------- PyTorch

/// PyTorch 2.15's results (`scripts/make_layer_fixtures.py`): each result `R` of a case
/// is PyTorch's float64 computation on the float32 inputs, and `R.drift` PyTorch's own
/// float32 error on it (max |f32 − f64| / max |f64|). Ours must be within
/// `10·max(drift, 2⁻²⁴)` of the float64 result, relative to the tensor's largest entry,
/// as tests/train_pytorch.rs derives its tolerances (10× PyTorch's drift; the floor of
/// one unit roundoff covers results PyTorch's float32 gets exactly, as the pools').
/// NaN must be where PyTorch has NaN.
mod pytorch {
    use super::*;
    use safetensors::{Dtype, SafeTensors};

    pub(super) struct Fixture {
        bytes: Vec<u8>,
    }

    impl Fixture {
        pub(super) fn load(name: &str) -> Self {
            let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
            Self {
                bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
            }
        }

        fn tensors(&self) -> SafeTensors<'_> {
            SafeTensors::deserialize(&self.bytes).unwrap()
        }

        pub(super) fn f32s(&self, key: &str) -> Vec<f32> {
            let t = self.tensors();
            let view = t.tensor(key).unwrap_or_else(|_| panic!("missing {key}"));
            assert_eq!(view.dtype(), Dtype::F32, "{key}");
            view.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        }

        pub(super) fn f64s(&self, key: &str) -> Vec<f64> {
            let t = self.tensors();
            let view = t.tensor(key).unwrap_or_else(|_| panic!("missing {key}"));
            assert_eq!(view.dtype(), Dtype::F64, "{key}");
            view.data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect()
        }

        pub(super) fn shape(&self, key: &str) -> Vec<usize> {
            self.tensors().tensor(key).unwrap().shape().to_vec()
        }

        pub(super) fn has(&self, key: &str) -> bool {
            self.tensors().tensor(key).is_ok()
        }

        /// Checks `ours` against result `key`; returns the worst ratio to the tolerance.
        pub(super) fn check(&self, key: &str, ours: &[f32]) -> f64 {
            let want = self.f64s(key);
            let drift = self.f64s(&format!("{key}.drift"))[0];
            assert_eq!(ours.len(), want.len(), "{key}: length");
            let scale = want
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0_f64, |m, v| m.max(v.abs()));
            let tolerance = 10.0 * drift.max(f64::from(f32::EPSILON) / 2.0) * scale;
            let mut worst = 0.0_f64;
            for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
                if b.is_nan() {
                    assert!(a.is_nan(), "{key}[{i}]: ours {a}, PyTorch NaN");
                    continue;
                }
                let diff = (f64::from(*a) - b).abs();
                assert!(
                    diff <= tolerance,
                    "{key}[{i}]: ours {a} vs PyTorch {b} (diff {diff:e} > {tolerance:e})"
                );
                if tolerance > 0.0 {
                    worst = worst.max(diff / tolerance);
                }
            }
            worst
        }
    }

    fn linear_matches_pytorch<K: Kernels>() {
        let f = Fixture::load("layers_linear.safetensors");
        let mut worst = 0.0_f64;
        for case in ["bias", "nobias"] {
            let key = |k: &str| format!("{case}.{k}");
            let [d_out, d_in] = f.shape(&key("weight"))[..] else {
                panic!()
            };
            let bias = if f.has(&key("bias")) {
                Bias::Trainable
            } else {
                Bias::None
            };
            let l = Linear { d_in, d_out, bias };
            let mut p = f.f32s(&key("weight"));
            if bias.present() {
                p.extend(f.f32s(&key("bias")));
            }
            let x = f.f32s(&key("x"));
            let n = x.len() / d_in;
            let dy = f.f32s(&key("dy"));
            let (y, dx, mut grads) = run_linear::<K>(&l, n, &x, &p, &dy);
            grads.iter_mut().for_each(|g| *g -= GRAD_START);
            worst = worst.max(f.check(&key("y"), &y));
            worst = worst.max(f.check(&key("dx"), &dx));
            worst = worst.max(f.check(&key("dweight"), &grads[..d_in * d_out]));
            if bias.present() {
                worst = worst.max(f.check(&key("dbias"), &grads[d_in * d_out..]));
            }
        }
        println!("linear vs PyTorch: worst {worst:.3} of the tolerance");
    }

    #[test]
    fn batch_norm_matches_pytorch() {
        let f = Fixture::load("layers_batch_norm.safetensors");
        let mut worst = 0.0_f64;
        // (case, momentum, eps) as the script made them.
        for (case, momentum, eps) in [("seq", 0.1, 1e-5), ("vec", 0.1, 1e-5), ("plain", 0.3, 1e-3)]
        {
            let key = |k: &str| format!("{case}.{k}");
            let dims = f.shape(&key("x"));
            let (n, c, t) = (dims[0], dims[1], dims.get(2).copied().unwrap_or(1));
            let affine = f.has(&key("weight"));
            let bn = BatchNorm1d {
                channels: c,
                affine,
                eps,
                momentum,
            };
            let shape = Shape::sequence(c, t);
            let mut p = Vec::new();
            if affine {
                p.extend(f.f32s(&key("weight")));
                p.extend(f.f32s(&key("bias")));
            }
            p.extend(f.f32s(&key("running_mean")));
            p.extend(f.f32s(&key("running_var")));
            let x = f.f32s(&key("x"));
            let mut y_eval = x.clone();
            bn.forward_eval(&p, n, shape, &mut y_eval).unwrap();
            worst = worst.max(f.check(&key("y_eval"), &y_eval));
            let (y, dx, grads, saved) = run_batch_norm(&bn, n, t, &x, &p, &f.f32s(&key("dy")));
            worst = worst.max(f.check(&key("y"), &y));
            worst = worst.max(f.check(&key("dx"), &dx));
            if affine {
                let d: Vec<f32> = grads.iter().map(|g| g - GRAD_START).collect();
                worst = worst.max(f.check(&key("dweight"), &d[..c]));
                worst = worst.max(f.check(&key("dbias"), &d[c..2 * c]));
            }
            let mut tracked = 0;
            bn.update_running_stats(&mut p, n, shape, &saved, &mut tracked)
                .unwrap();
            let running = &p[p.len() - 2 * c..];
            worst = worst.max(f.check(&key("running_mean_after"), &running[..c]));
            worst = worst.max(f.check(&key("running_var_after"), &running[c..]));
        }
        println!("batch_norm vs PyTorch: worst {worst:.3} of the tolerance");
    }

    #[cfg(feature = "conv")]
    fn conv_matches_pytorch<K: Kernels>() {
        use simsiam::layers::conv1d::{Conv1d, Padding};
        let f = Fixture::load("layers_conv1d.safetensors");
        let mut worst = 0.0_f64;
        // (case, stride, padding) as the script made them.
        for (case, stride, padding) in [
            ("stride2_pad2", 2, Padding::Zeros(2)),
            ("same8", 1, Padding::Same),
            ("same3", 1, Padding::Same),
            ("plain8", 1, Padding::Zeros(0)),
        ] {
            let key = |k: &str| format!("{case}.{k}");
            let [c_out, c_in, kernel] = f.shape(&key("weight"))[..] else {
                panic!()
            };
            let [n, _, t] = f.shape(&key("x"))[..] else {
                panic!()
            };
            let bias = if f.has(&key("bias")) {
                Bias::Trainable
            } else {
                Bias::None
            };
            let c = Conv1d {
                c_in,
                c_out,
                kernel,
                stride,
                padding,
                bias,
            };
            let mut p = f.f32s(&key("weight"));
            if bias.present() {
                p.extend(f.f32s(&key("bias")));
            }
            let (y, dx, mut grads) =
                sequence::run_conv::<K>(&c, n, t, &f.f32s(&key("x")), &p, &f.f32s(&key("dy")));
            grads.iter_mut().for_each(|g| *g -= GRAD_START);
            let w_len = c_out * c_in * kernel;
            worst = worst.max(f.check(&key("y"), &y));
            worst = worst.max(f.check(&key("dx"), &dx));
            worst = worst.max(f.check(&key("dweight"), &grads[..w_len]));
            if bias.present() {
                worst = worst.max(f.check(&key("dbias"), &grads[w_len..]));
            }
        }
        println!("conv1d vs PyTorch: worst {worst:.3} of the tolerance");
    }

    #[cfg(feature = "conv")]
    #[test]
    fn pools_and_relu_match_pytorch() {
        use simsiam::layers::global_max_pool1d;
        use simsiam::layers::max_pool1d::MaxPool1d;
        let f = Fixture::load("layers_pool.safetensors");
        for (case, kernel) in [
            ("max2", 2),
            ("max3", 3),
            ("max3_nan", 3),
            ("global", 0),
            ("global_nan", 0),
            ("relu", 0),
        ] {
            let key = |k: &str| format!("{case}.{k}");
            let [n, c, t] = f.shape(&key("x"))[..] else {
                panic!()
            };
            let shape = Shape::sequence(c, t);
            let x = f.f32s(&key("x"));
            let dy = f.f32s(&key("dy"));
            let mut dx = vec![f32::NAN; x.len()];
            let y = if case == "relu" {
                let mut y = x.clone();
                relu::forward(n, shape, &mut y).unwrap();
                dx.copy_from_slice(&dy);
                relu::backward(n, shape, &y, &mut dx).unwrap();
                y
            } else if kernel == 0 {
                let mut y = vec![f32::NAN; n * c];
                global_max_pool1d::forward(n, shape, &x, &mut y).unwrap();
                global_max_pool1d::backward(n, shape, &x, &dy, &mut dx).unwrap();
                y
            } else {
                let pool = MaxPool1d { kernel };
                let mut y = vec![f32::NAN; n * c * (t / kernel)];
                pool.forward(n, shape, &x, &mut y).unwrap();
                pool.backward(n, shape, &x, &dy, &mut dx).unwrap();
                y
            };
            f.check(&key("y"), &y);
            // The gradient moves values, it computes none: exactly PyTorch's positions.
            let want = f.f64s(&key("dx"));
            assert_eq!(
                dx.iter().map(|v| f64::from(*v)).collect::<Vec<_>>(),
                want,
                "{case} dx"
            );
        }
    }

    twin_tests! {
        linear => linear_matches_pytorch;
    }

    #[cfg(feature = "conv")]
    mod conv {
        use super::{Kernels, Scalar, Simd};
        fn conv_matches_pytorch<K: Kernels>() {
            super::conv_matches_pytorch::<K>();
        }
        twin_tests! {
            conv => conv_matches_pytorch;
        }
    }
}

/// `MaxPool1d(2)` (its own pair-by-pair path) picks as PyTorch's rule on every kind of
/// pair: larger second, larger first, ties (first wins, also `0.0` against `-0.0`),
/// NaN first, NaN second, both NaN (the second), infinities; the backward puts each
/// gradient at that position and 0 at the other; an odd last position is dropped.
#[cfg(feature = "conv")]
#[test]
fn max_pool_of_two_follows_the_rule_on_ties_and_nans() {
    use simsiam::layers::max_pool1d::MaxPool1d;
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let pairs: [[f32; 2]; 9] = [
        [1.0, 2.0],
        [2.0, 1.0],
        [3.0, 3.0],
        [0.0, -0.0],
        [-0.0, 0.0],
        [nan, 1.0],
        [1.0, nan],
        [nan, -nan],
        [-inf, inf],
    ];
    // The window index PyTorch picks: the second when larger or NaN.
    let second = [true, false, false, false, false, false, true, true, true];
    let t = 2 * pairs.len() + 1;
    let mut x: Vec<f32> = pairs.iter().flatten().copied().collect();
    x.push(100.0); // dropped (floor mode)
    let pool = MaxPool1d { kernel: 2 };
    let shape = Shape::sequence(1, t);
    let mut y = vec![0.5; pairs.len()];
    pool.forward(1, shape, &x, &mut y).unwrap();
    let dy: Vec<f32> = (1..=pairs.len()).map(|i| i as f32).collect();
    let mut dx = vec![f32::NAN; t];
    pool.backward(1, shape, &x, &dy, &mut dx).unwrap();
    for (i, (pair, picks_second)) in pairs.iter().zip(second).enumerate() {
        let want = pair[usize::from(picks_second)];
        assert_eq!(y[i].to_bits(), want.to_bits(), "pair {i} {pair:?}");
        let (at, other) = if picks_second { (1, 0) } else { (0, 1) };
        assert_eq!(dx[2 * i + at], dy[i], "pair {i}");
        assert_eq!(dx[2 * i + other].to_bits(), 0.0_f32.to_bits(), "pair {i}");
    }
    assert_eq!(dx[t - 1], 0.0);
}

/// The global max pool runs four rows at once (independent chains, selects instead of
/// branches): every row picks as the one-row rule does (`MaxPool1d` over the whole row,
/// PyTorch's rule): the first of tied maxima, the last of several NaNs, a NaN first or
/// last, infinities, `0.0` against `-0.0`; also in the batch's last rows, fewer than four.
/// Forward values compared by bits, the backward's position by where the gradient lands.
#[cfg(feature = "conv")]
#[test]
fn global_max_pool_rows_in_fours_pick_as_one_row_at_a_time() {
    use simsiam::layers::global_max_pool1d;
    use simsiam::layers::max_pool1d::MaxPool1d;
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let rows: [[f32; 5]; 11] = [
        [1.0, 3.0, 2.0, 3.0, 0.0],
        [nan, 1.0, 2.0, 3.0, 4.0],
        [1.0, 2.0, 3.0, 4.0, nan],
        [1.0, nan, 5.0, -nan, 2.0],
        [-inf, -inf, -inf, -inf, -inf],
        [0.0, -0.0, 0.0, -0.0, -1.0],
        [-0.0, 0.0, 0.0, -1.0, -1.0],
        [5.0, 4.0, 3.0, 2.0, 1.0],
        [nan, 9.0, nan, 9.0, 1.0],
        [-inf, inf, 7.0, inf, -1.0],
        [2.0, 2.0, 2.0, 2.0, 2.0],
    ];
    let (c, t) = (rows.len(), 5);
    let x: Vec<f32> = rows.iter().flatten().copied().collect();
    let shape = Shape::sequence(c, t);
    let mut y = vec![0.5; c];
    global_max_pool1d::forward(1, shape, &x, &mut y).unwrap();
    let dy: Vec<f32> = (1..=c).map(|i| i as f32).collect();
    let mut dx = vec![f32::NAN; c * t];
    global_max_pool1d::backward(1, shape, &x, &dy, &mut dx).unwrap();
    let one_row = Shape::sequence(1, t);
    let pool = MaxPool1d { kernel: t };
    for (i, row) in rows.iter().enumerate() {
        let mut want_y = [0.0];
        pool.forward(1, one_row, row, &mut want_y).unwrap();
        let mut want_dx = [f32::NAN; 5];
        pool.backward(1, one_row, row, &dy[i..=i], &mut want_dx)
            .unwrap();
        assert_eq!(y[i].to_bits(), want_y[0].to_bits(), "row {i} {row:?}");
        assert_eq!(&dx[i * t..(i + 1) * t], &want_dx, "row {i} {row:?}");
    }
}
