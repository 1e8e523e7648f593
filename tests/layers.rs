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
//! element (`γ(100) ≈ 6e-6` relative to the sum of their magnitudes, which exceeds the
//! tensor's scale by a small cancellation factor on these random inputs), and
//! BatchNorm's `1/σ` and mean subtraction scale errors by up to `√(N·T)`. A wrong
//! index, sign, missing term or factor gives errors of order 1e-1 relative.
//! The worst ratio of difference to bound is printed (`--nocapture`).

use simsiam::kernels::{Kernels, Scalar, Simd, sum_error_bound};
use simsiam::layers::{
    Bias, LayerKind, Shape, batch_norm::BatchNorm1d, linear::Linear, relu,
};
use simsiam::SslError;

const GRAD_TOLERANCE: f64 = 1e-4;
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

/// What the gradient buffers hold before a backward: a backward must add to it.
const GRAD_START: f32 = 0.25;

/// Checks a backward against finite differences of `forward64(x, params) -> y` with
/// `L = Σ dy·y`: the input gradient, every trainable parameter's (ours minus the start
/// value), and untouched entries (frozen, running statistics) still at the start value.
#[allow(clippy::too_many_arguments)]
fn check_backward(
    name: &str,
    forward64: &dyn Fn(&[f64], &[f64]) -> Vec<f64>,
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
                assert_eq!(grads[i], GRAD_START, "{name}: untrainable entry {i} written");
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
        let vals: Vec<f64> = (0..n).flat_map(|i| (0..t).map(move |s| (i, s))).map(|(i, s)| x[at(i, s)]).collect();
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
        (Linear { d_in: 7, d_out: 5, bias: Bias::Trainable }, 3),
        (Linear { d_in: 4, d_out: 9, bias: Bias::None }, 1),
        (Linear { d_in: 6, d_out: 3, bias: Bias::Frozen }, 10),
    ]
}

/// Runs a Linear layer's forward and backward on twin `K`: `(y, dx, grads)`.
fn run_linear<K: Kernels>(l: &Linear, n: usize, x: &[f32], p: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut y = vec![f32::NAN; n * l.d_out];
    l.forward_train::<K>(p, n, x, &mut y).unwrap();
    let mut dx = vec![f32::NAN; x.len()];
    let mut grads = vec![GRAD_START; p.len()];
    l.backward::<K>(p, n, x, dy, Some(&mut dx), &mut grads).unwrap();
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
        worst = worst.max(check_backward("linear", &f, &x, &p, &dy, Some(&dx), &grads, &trainable(&kind)));
    }
    println!("linear: worst {worst:.3} of the bound");
}

// ---------------------------------------------------------------- BatchNorm

fn batch_norm_cases() -> Vec<(BatchNorm1d, usize, usize)> {
    vec![
        (BatchNorm1d::new(4), 3, 5),
        (BatchNorm1d::new(6), 7, 1),
        (BatchNorm1d { affine: false, eps: 1e-3, ..BatchNorm1d::new(3) }, 2, 4),
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
fn run_batch_norm(bn: &BatchNorm1d, n: usize, t: usize, x: &[f32], p: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let shape = Shape::sequence(bn.channels, t);
    let mut y = x.to_vec();
    let mut saved = vec![f32::NAN; bn.saved_len(shape, n).unwrap()];
    bn.forward_train(p, n, shape, &mut y, &mut saved).unwrap();
    let mut grad = dy.to_vec();
    let mut grads = vec![GRAD_START; p.len()];
    bn.backward(p, n, shape, &mut saved, &mut grad, &mut grads).unwrap();
    (y, grad, grads, saved)
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let mut worst = 0.0_f64;
    for (seed, (bn, n, t)) in batch_norm_cases().into_iter().enumerate() {
        let kind = LayerKind::BatchNorm1d(bn);
        let p = batch_norm_params(&bn, seed as u64);
        let x: Vec<f32> = values(n * bn.channels * t, 10 + seed as u64).iter().map(|v| 2.0 * v + 0.5).collect();
        let dy = values(x.len(), 20 + seed as u64);
        let (y, dx, grads, _) = run_batch_norm(&bn, n, t, &x, &p, &dy);
        compare("batch_norm y", &y, &batch_norm64(&bn, n, t, &to64(&x), &to64(&p)));
        let f = |x: &[f64], p: &[f64]| batch_norm64(&bn, n, t, x, p);
        worst = worst.max(check_backward("batch_norm", &f, &x, &p, &dy, Some(&dx), &grads, &trainable(&kind)));
    }
    println!("batch_norm: worst {worst:.3} of the bound");
}

// ---------------------------------------------------------------- ReLU

fn relu_backward_matches_finite_differences() {
    let shape = Shape::sequence(3, 5);
    let n = 2;
    // Away from 0 by more than h.
    let x: Vec<f32> = values(30, 7).iter().map(|v| if v.abs() < 0.05 { 0.5 } else { *v }).collect();
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
        assert!(diff <= *e, "{name}[{i}]: {x} vs {y} (diff {diff:e} > bound {e:e})");
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
        let (y_abs, dx_abs, mut grads_abs) = run_linear::<Scalar>(&l, n, &abs_all(&x), &abs_all(&p), &abs_all(&dy));
        grads_abs.iter_mut().for_each(|g| *g -= GRAD_START);
        within("linear y", &y, &y_s, &bounds(l.d_in + 1, &y_abs, 0.0));
        within("linear dx", &dx, &dx_s, &bounds(l.d_out + 1, &dx_abs, 0.0));
        let w_len = l.d_in * l.d_out;
        within("linear dW", &grads[..w_len], &grads_s[..w_len], &bounds(n + 1, &grads_abs[..w_len], f64::from(GRAD_START)));
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
        Layer::linear(6, 10).with_bias().with_batch_norm(BatchNorm::AFFINE).with_relu(),
        Layer::linear(10, 4).with_batch_norm(BatchNorm::PLAIN),
    ])
    .unwrap();
    let predictor = Stack::new(&[Layer::linear(4, 4).with_bias()]).unwrap();
    Architecture::new(projector, predictor, false, false).unwrap()
}

/// The projector of [`small_head`] as kinds, with its parameter ranges in the flat layout.
fn small_projector() -> Vec<(LayerKind, std::ops::Range<usize>)> {
    let kinds = [
        LayerKind::Linear(Linear { d_in: 6, d_out: 10, bias: Bias::Trainable }),
        LayerKind::BatchNorm1d(BatchNorm1d::new(10)),
        LayerKind::Relu,
        LayerKind::Linear(Linear { d_in: 10, d_out: 4, bias: Bias::None }),
        LayerKind::BatchNorm1d(BatchNorm1d { affine: false, ..BatchNorm1d::new(4) }),
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
    let head = SimSiamHead::new(small_head(), params.clone()).unwrap().with_kernels::<Scalar>();
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
        let mut head = SimSiamHead::new(architecture, params.clone()).unwrap().with_kernels::<Scalar>();
        let config = TrainConfig { lr: 0.0, ..TrainConfig::default() };
        let mut sgd = Sgd::new(&architecture, config, vec![0.0; params.len()]).unwrap();
        let mut scratch = vec![0.0; scratch_len(&architecture, n).unwrap()];
        let (x1, x2) = (values(6 * n, 31), values(6 * n, 32));
        let (mut g1, mut g2) = (vec![0.0; 6 * n], vec![0.0; 6 * n]);
        sgd.step(&mut head, &x1, &x2, &mut scratch, [&mut g1, &mut g2]).unwrap();
        let [first, second] = projection_ranges(&architecture, n).unwrap();
        assert_eq!(walk_projector(&params, n, &x1, true), scratch[first], "view 1, n = {n}");
        assert_eq!(walk_projector(&params, n, &x2, true), scratch[second], "view 2, n = {n}");
    }
}

/// The running statistics after one step (two views, lr 0) equal two updates from the
/// kinds' saved buffers, bit for bit, and the counter grows by two.
#[test]
fn running_statistics_equal_the_training_step() {
    let architecture = small_head();
    let params = small_params();
    let n = 5;
    let mut head = SimSiamHead::new(architecture, params.clone()).unwrap().with_kernels::<Scalar>();
    let config = TrainConfig { lr: 0.0, momentum: 0.0, weight_decay: 0.0, ..TrainConfig::default() };
    let mut sgd = Sgd::new(&architecture, config, vec![0.0; params.len()]).unwrap();
    let mut scratch = vec![0.0; scratch_len(&architecture, n).unwrap()];
    let (x1, x2) = (values(6 * n, 41), values(6 * n, 42));
    let (mut g1, mut g2) = (vec![0.0; 6 * n], vec![0.0; 6 * n]);
    sgd.step(&mut head, &x1, &x2, &mut scratch, [&mut g1, &mut g2]).unwrap();
    // The first layer's BatchNorm: Linear then BN training forward per view.
    let kinds = small_projector();
    let (LayerKind::Linear(l), LayerKind::BatchNorm1d(bn)) = (kinds[0].0, kinds[1].0) else {
        unreachable!()
    };
    let mut ours = params.clone();
    let mut tracked = 0;
    for x in [&x1, &x2] {
        let mut y = vec![0.0; n * 10];
        l.forward_train::<Scalar>(&params[kinds[0].1.clone()], n, x, &mut y).unwrap();
        let mut saved = vec![0.0; bn.saved_len(Shape::vector(10), n).unwrap()];
        bn.forward_train(&params[kinds[1].1.clone()], n, Shape::vector(10), &mut y, &mut saved).unwrap();
        bn.update_running_stats(&mut ours[kinds[1].1.clone()], n, Shape::vector(10), &saved, &mut tracked).unwrap();
    }
    assert_eq!(&head.params()[kinds[1].1.clone()], &ours[kinds[1].1.clone()]);
    assert_eq!(tracked, 2);
    assert_eq!(head.batches_tracked()[0], 2);
}

// ---------------------------------------------------------------- errors

#[test]
fn bad_shapes_give_typed_errors() {
    let mismatch = |expected, got| SslError::DimensionMismatch { expected, got };
    let l = Linear { d_in: 3, d_out: 2, bias: Bias::Trainable };
    let p = [0.0; 8];
    let mut y = [0.0; 4];
    assert_eq!(l.output_shape(Shape::vector(4)), Err(mismatch(3, 4)));
    assert_eq!(l.forward_eval::<Simd>(&p[..7], 2, &[0.0; 6], &mut y), Err(mismatch(8, 7)));
    assert_eq!(l.forward_eval::<Simd>(&p, 2, &[0.0; 5], &mut y), Err(mismatch(6, 5)));
    assert_eq!(l.forward_eval::<Simd>(&p, 2, &[0.0; 6], &mut y[..3]), Err(mismatch(4, 3)));
    assert!(matches!(l.forward_eval::<Simd>(&p, 0, &[], &mut []), Err(SslError::InvalidParameter { name: "n", .. })));
    let zero = Linear { d_out: 0, ..l };
    assert!(matches!(zero.output_shape(Shape::vector(3)), Err(SslError::InvalidParameter { name: "d_out", .. })));
    let huge = Linear { d_in: usize::MAX, d_out: 2, bias: Bias::None };
    assert!(matches!(
        LayerKind::Linear(huge).param_count(),
        Err(SslError::InvalidParameter { name: "shape", .. })
    ));
    assert!(matches!(huge.forward_eval::<Scalar>(&[], 1, &[], &mut []), Err(SslError::InvalidParameter { name: "shape", .. })));
    let (mut dx, mut g) = ([0.0; 6], [0.0; 8]);
    assert_eq!(l.backward::<Simd>(&p, 2, &[0.0; 6], &[0.0; 4], Some(&mut dx[..5]), &mut g), Err(mismatch(6, 5)));
    assert_eq!(l.backward::<Simd>(&p, 2, &[0.0; 6], &[0.0; 4], Some(&mut dx), &mut g[..7]), Err(mismatch(8, 7)));
    assert_eq!(g, [0.0; 8], "nothing written on error");

    let bn = BatchNorm1d::new(2);
    let bp = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0];
    let seq = Shape::sequence(2, 3);
    assert_eq!(bn.output_shape(Shape::sequence(3, 3)), Err(mismatch(2, 3)));
    assert!(matches!(
        BatchNorm1d { eps: f32::NAN, ..bn }.output_shape(seq),
        Err(SslError::InvalidParameter { name: "eps", .. })
    ));
    assert!(matches!(
        BatchNorm1d { momentum: 1.5, ..bn }.output_shape(seq),
        Err(SslError::InvalidParameter { name: "momentum", .. })
    ));
    let mut act = [0.0; 6];
    let mut saved = [0.0; 6 + 10];
    assert!(matches!(
        bn.forward_train(&bp, 1, Shape::vector(2), &mut act[..2], &mut saved[..12]),
        Err(SslError::InvalidParameter { name: "n", .. })
    ));
    assert_eq!(bn.forward_train(&bp, 1, seq, &mut act, &mut saved[..15]), Err(mismatch(16, 15)));
    assert_eq!(bn.forward_eval(&bp[..6], 1, seq, &mut act), Err(mismatch(8, 6)));
    let mut rp = bp;
    let mut tracked = 0;
    saved.fill(f32::INFINITY);
    assert_eq!(
        bn.update_running_stats(&mut rp, 1, seq, &saved, &mut tracked),
        Err(SslError::NonFinite { location: "running statistics" })
    );
    assert_eq!((rp, tracked), (bp, 0), "all or nothing");

    assert!(matches!(relu::forward(1, Shape::vector(0), &mut []), Err(SslError::InvalidParameter { name: "shape", .. })));
    assert_eq!(relu::backward(1, Shape::vector(2), &[0.0; 2], &mut [0.0; 3]), Err(mismatch(2, 3)));
}
