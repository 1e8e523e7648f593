//! Training steps on an arbitrary small head: the reference, official and lightly presets
//! with widths 1 to 8, or a custom stack of 1 to 4 layers per side (bias, frozen bias,
//! BatchNorm affine or not with an arbitrary `eps`, ReLU, L2 after either stack or not);
//! arbitrary finite parameters (moderate, scaled up to 1e30 or huge); batches of 0 to 5
//! pairs of arbitrary values and sometimes wrong lengths; arbitrary settings (invalid
//! ones included) and learning rates; a momentum buffer, a scratch and input gradients
//! of the right, a wrong or no length; 1 to 3 `Sgd::step`s on each kernel twin.
//!
//! What is asserted is what `simsiam::train` documents:
//! - `TrainConfig::validate` and `Sgd::new` give exactly the error an independent check
//!   derives (the field named, then `DimensionMismatch` for the momentum buffer);
//! - `scratch_len` equals the documented formula computed in `u128` (or its overflow
//!   error), for any `n`; `param_grads` is `CapacityTooSmall` exactly when short;
//! - a step's validation errors come in the documented order with their exact payloads
//!   (head, lr, x1s, n, x2s, input gradients, non-finite x1s then x2s, scratch);
//!   a step past them gives `Ok` or `NonFinite` at one of the documented locations;
//! - a step is all or nothing: on any error the parameters, the BatchNorm counters, the
//!   momentum buffer, the step count and the lr are bit for bit what they were;
//! - on `Ok`: the loss is finite and within `[-1 - 1e-5, 1 + 1e-5]`, every parameter,
//!   momentum value, parameter gradient and requested input gradient is finite, frozen
//!   biases are unchanged and have zero gradient, running statistics have zero gradient
//!   (and stay unchanged when `batch_norm_momentum` is 0), the BatchNorm counters grow by
//!   two, the step count by one;
//! - `cosine_lr` is `initial_lr` for `total` 0, 0 from `step ≥ total` on, and in
//!   `[0, initial_lr]` for a finite `initial_lr ≥ 0`.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use simsiam::kernels::{Kernels, Scalar, Simd};
use simsiam::model::{Architecture, BatchNorm, Layer, MAX_STACK_LAYERS, Stack};
use simsiam::train::{Sgd, TrainConfig, cosine_lr, param_grads, scratch_len};
use simsiam::{SimSiamConfig, SimSiamHead, SslError};
use simsiam_fuzz::{any_dim, any_f32, any_finite_f32, finite_huge, floats, length, moderate};

/// Widest layer tried.
const MAX_WIDTH: usize = 8;
/// Largest batch tried.
const MAX_PAIRS: usize = 5;
/// How far a loss may stray outside `[-1, 1]` (rounding of the unit vectors and dots).
const LOSS_SLACK: f32 = 1e-5;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn width(u: &mut Unstructured<'_>) -> Result<usize> {
    u.int_in_range(1..=MAX_WIDTH)
}

/// A BatchNorm `eps`: the default, small, large, or (rarely) invalid.
fn eps(u: &mut Unstructured<'_>) -> Result<f32> {
    Ok(match u.int_in_range(0_u8..=7)? {
        0..=3 => 1e-5,
        4 => *u.choose(&[1e-30_f32, 1e-12, 1e-3, 1.0, 1e6, f32::MIN_POSITIVE, 1e-45])?,
        5 => 1e-5 + f32::from(u.int_in_range(0_u16..=1000)?) / 100.0,
        6 => any_finite_f32(u)?.abs().max(1e-45),
        _ => any_f32(u)?, // 0, negative, NaN, inf: the architecture rejects them
    })
}

/// A layer `d_in → d_out` with arbitrary flags.
fn layer(u: &mut Unstructured<'_>, d_in: usize, d_out: usize) -> Result<Layer> {
    let mut layer = Layer::linear(d_in, d_out);
    match u.int_in_range(0_u8..=2)? {
        0 => {}
        1 => layer = layer.with_bias(),
        _ => layer = layer.with_frozen_bias(),
    }
    match u.int_in_range(0_u8..=2)? {
        0 => {}
        1 => layer = layer.with_batch_norm(BatchNorm::AFFINE.with_eps(eps(u)?)),
        _ => layer = layer.with_batch_norm(BatchNorm::PLAIN.with_eps(eps(u)?)),
    }
    if u.arbitrary()? {
        layer = layer.with_relu();
    }
    Ok(layer)
}

/// A stack of 1 to 4 layers from `d_in` to `d_out`.
fn stack(u: &mut Unstructured<'_>, d_in: usize, d_out: usize) -> Result<Stack> {
    let count = u.int_in_range(1..=MAX_STACK_LAYERS)?;
    let mut layers = Vec::with_capacity(count);
    let mut from = d_in;
    for i in 0..count {
        let to = if i + 1 == count { d_out } else { width(u)? };
        layers.push(layer(u, from, to)?);
        from = to;
    }
    Ok(Stack::new(&layers).expect("1 to 4 layers"))
}

/// A small architecture, or `None` when the one drawn is invalid (a bad `eps`).
fn any_architecture(u: &mut Unstructured<'_>) -> Result<Option<Architecture>> {
    let architecture = match u.int_in_range(0_u8..=3)? {
        0 => Architecture::reference(SimSiamConfig {
            d_encoder: width(u)?,
            d_projector: width(u)?,
            d_predictor: width(u)?,
            d_out: width(u)?,
        }),
        1 => Architecture::official(width(u)?, width(u)?, width(u)?),
        2 => Architecture::lightly(width(u)?, width(u)?, width(u)?, width(u)?),
        _ => {
            let (d_encoder, d_out) = (width(u)?, width(u)?);
            Architecture::new(
                stack(u, d_encoder, d_out)?,
                stack(u, d_out, d_out)?,
                u.arbitrary()?,
                u.arbitrary()?,
            )
        }
    };
    match architecture {
        Ok(architecture) => Ok(Some(architecture)),
        Err(SslError::InvalidParameter {
            name: "batch_norm", ..
        }) => Ok(None),
        Err(e) => panic!("a valid small architecture was rejected: {e:?}"),
    }
}

/// What each flat parameter is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Trained,
    FrozenBias,
    Running,
}

/// The kinds of the flat layout, independently of the library: per layer `W`, the bias,
/// `γ`, `β`, `running_mean`, `running_var`, as present.
fn kinds(architecture: &Architecture) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for layer in architecture.layers() {
        kinds.extend(std::iter::repeat_n(Kind::Trained, layer.d_in * layer.d_out));
        if layer.bias {
            let kind = if layer.bias_frozen {
                Kind::FrozenBias
            } else {
                Kind::Trained
            };
            kinds.extend(std::iter::repeat_n(kind, layer.d_out));
        }
        if let Some(batch_norm) = layer.batch_norm {
            if batch_norm.affine {
                kinds.extend(std::iter::repeat_n(Kind::Trained, 2 * layer.d_out));
            }
            kinds.extend(std::iter::repeat_n(Kind::Running, 2 * layer.d_out));
        }
    }
    kinds
}

/// Finite parameters: moderate, scaled, huge, or a few entries replaced.
fn params(u: &mut Unstructured<'_>, count: usize) -> Result<Vec<f32>> {
    let mut params = floats(u, count)?;
    params.iter_mut().for_each(|p| {
        if !p.is_finite() {
            *p = 0.5;
        }
    });
    match u.int_in_range(0_u8..=5)? {
        0 => {
            let scale = *u.choose(&[0.0_f32, 1e-30, 1e-6, 1e3, 1e10, 1e20, 1e30])?;
            params
                .iter_mut()
                .for_each(|p| *p = (*p * scale).clamp(f32::MIN, f32::MAX));
        }
        1 => {
            for _ in 0..u.int_in_range(1..=3)? {
                let i = u.int_in_range(0..=count - 1)?;
                params[i] = finite_huge(u)?;
            }
        }
        _ => {}
    }
    Ok(params)
}

/// A learning rate, momentum or weight decay: usually valid, sometimes anything.
fn setting(u: &mut Unstructured<'_>, usual: f32) -> Result<f32> {
    Ok(match u.int_in_range(0_u8..=9)? {
        0..=3 => usual,
        4 => 0.0,
        5 => f32::from(u.int_in_range(0_u16..=999)?) / 1000.0,
        6 => *u.choose(&[
            1.0_f32,
            -0.0,
            -1e-3,
            1e3,
            1e30,
            f32::MAX,
            f32::NAN,
            f32::INFINITY,
        ])?,
        7 => moderate(u)?,
        _ => any_f32(u)?,
    })
}

fn train_config(u: &mut Unstructured<'_>) -> Result<TrainConfig> {
    Ok(TrainConfig {
        lr: setting(u, 0.05)?,
        momentum: setting(u, 0.9)?,
        weight_decay: setting(u, 1e-4)?,
        fix_predictor_lr: u.arbitrary()?,
        stop_gradient: u.arbitrary()?,
        batch_norm_momentum: setting(u, 0.1)?,
    })
}

fn invalid(name: &'static str, reason: &'static str) -> SslError {
    SslError::InvalidParameter { name, reason }
}

/// What `TrainConfig::validate` must return.
fn expected_validate(c: &TrainConfig) -> std::result::Result<(), SslError> {
    if !(c.lr.is_finite() && c.lr >= 0.0) {
        return Err(invalid("lr", "must be finite and >= 0"));
    }
    if !(c.momentum.is_finite() && c.momentum >= 0.0 && c.momentum < 1.0) {
        return Err(invalid("momentum", "must be finite and in [0, 1)"));
    }
    if !(c.weight_decay.is_finite() && c.weight_decay >= 0.0) {
        return Err(invalid("weight_decay", "must be finite and >= 0"));
    }
    if !(c.batch_norm_momentum.is_finite()
        && c.batch_norm_momentum >= 0.0
        && c.batch_norm_momentum <= 1.0)
    {
        return Err(invalid(
            "batch_norm_momentum",
            "must be finite and in [0, 1]",
        ));
    }
    Ok(())
}

/// The documented scratch length in `u128`, or `None` past `usize`.
fn expected_scratch_len(architecture: &Architecture, n: usize) -> Option<usize> {
    let n = n as u128;
    let mut per_view = 0_u128;
    let mut widest = architecture.d_encoder() as u128;
    for layer in architecture.layers() {
        let d = layer.d_out as u128;
        widest = widest.max(d);
        per_view += if layer.batch_norm.is_some() {
            2 * n * d + 5 * d
        } else {
            n * d
        };
    }
    per_view += 3 * n * architecture.d_out() as u128 + 2 * n;
    let total = 2 * per_view + 2 * n * widest + architecture.param_count().ok()? as u128;
    usize::try_from(total).ok()
}

fn check_sizes(u: &mut Unstructured<'_>, architecture: &Architecture) -> Result<()> {
    let n = if u.arbitrary()? {
        u.int_in_range(0..=64)?
    } else {
        any_dim(u)?
    };
    let got = scratch_len(architecture, n);
    match expected_scratch_len(architecture, n) {
        Some(len) => assert_eq!(got, Ok(len), "n = {n}, {architecture:?}"),
        None => assert_eq!(
            got,
            Err(invalid("n", "training scratch length overflows usize")),
            "n = {n}"
        ),
    }
    if let Ok(needed) = got
        && needed <= 1 << 16
    {
        let capacity = length(u, needed)?;
        let scratch = vec![0.0_f32; capacity];
        let grads = param_grads(architecture, n, &scratch);
        if capacity >= needed {
            let count = architecture.param_count().expect("valid");
            assert_eq!(
                grads.map(<[f32]>::len),
                Ok(count),
                "param_grads length, n = {n}"
            );
        } else {
            assert_eq!(
                grads.map(|_| ()),
                Err(SslError::CapacityTooSmall { needed, capacity })
            );
        }
    }
    Ok(())
}

fn check_cosine_lr(u: &mut Unstructured<'_>) -> Result<()> {
    let initial = setting(u, 0.05)?;
    let total: u64 = if u.arbitrary()? {
        u.int_in_range(0..=1000)?
    } else {
        u.arbitrary()?
    };
    let step: u64 = if u.arbitrary()? {
        u.int_in_range(0..=total.saturating_add(2))?
    } else {
        u.arbitrary()?
    };
    let lr = cosine_lr(initial, step, total);
    if total == 0 {
        assert_eq!(lr.to_bits(), initial.to_bits(), "total 0");
    } else if step >= total {
        assert_eq!(lr, 0.0, "step {step} >= total {total}");
    } else if initial.is_finite() && initial >= 0.0 {
        assert!(
            (0.0..=initial).contains(&lr),
            "cosine_lr({initial}, {step}, {total}) = {lr}"
        );
    }
    Ok(())
}

/// The inputs of one step.
struct Batch {
    x1s: Vec<f32>,
    x2s: Vec<f32>,
    scratch_len: usize,
    grad_lens: [usize; 2],
    lr: Option<f32>,
}

fn batch(u: &mut Unstructured<'_>, architecture: &Architecture) -> Result<Batch> {
    let d = architecture.d_encoder();
    // Mostly well-formed (an exhausted input gives `ratio` true and the first choice).
    let n = *u.choose(&[2, 3, 4, MAX_PAIRS, 0, 1])?;
    let x1_len = if u.ratio(7_u8, 8)? {
        n * d
    } else {
        length(u, n * d)?
    };
    let x1s = floats(u, x1_len)?;
    let x2_len = if u.ratio(7_u8, 8)? {
        x1_len
    } else {
        length(u, n * d)?
    };
    let x2s = if x2_len == x1_len && u.ratio(1_u8, 4)? {
        // A second view close to the first, as augmentations give.
        x1s.iter().map(|x| x * 0.9 + 0.01).collect()
    } else {
        floats(u, x2_len)?
    };
    let actual_n = x1_len / d;
    let needed = scratch_len(architecture, actual_n).expect("small");
    let scratch_len = if u.ratio(7_u8, 8)? {
        needed + u.int_in_range(0..=3)?
    } else {
        length(u, needed)?
    };
    let mut grad_len = || -> Result<usize> {
        Ok(match u.int_in_range(0_u8..=4)? {
            0 | 1 => x1_len,
            2 | 3 => 0,
            _ => length(u, x1_len)?,
        })
    };
    let grad_lens = [grad_len()?, grad_len()?];
    let lr = if u.ratio(1_u8, 4)? {
        Some(setting(u, 0.01)?)
    } else {
        None
    };
    Ok(Batch {
        x1s,
        x2s,
        scratch_len,
        grad_lens,
        lr,
    })
}

/// The validation error a step must give before any arithmetic, if any.
fn expected_step_error(
    architecture: &Architecture,
    same_architecture: bool,
    lr: f32,
    b: &Batch,
) -> Option<SslError> {
    let d = architecture.d_encoder();
    if !same_architecture {
        return Some(invalid(
            "head",
            "not the architecture this optimiser was made for",
        ));
    }
    if !(lr.is_finite() && lr >= 0.0) {
        return Some(invalid("lr", "must be finite and >= 0"));
    }
    let len = b.x1s.len();
    if len == 0 || !len.is_multiple_of(d) {
        return Some(invalid("x1s", "must hold n ≥ 1 rows of d_encoder"));
    }
    let n = len / d;
    if n < 2 && architecture.layers().any(|l| l.batch_norm.is_some()) {
        return Some(invalid(
            "n",
            "BatchNorm in training mode needs at least 2 pairs per batch",
        ));
    }
    if b.x2s.len() != len {
        return Some(SslError::DimensionMismatch {
            expected: len,
            got: b.x2s.len(),
        });
    }
    for got in b.grad_lens {
        if got != 0 && got != len {
            return Some(SslError::DimensionMismatch { expected: len, got });
        }
    }
    if !b.x1s.iter().all(|x| x.is_finite()) {
        return Some(SslError::NonFinite { location: "x1s" });
    }
    if !b.x2s.iter().all(|x| x.is_finite()) {
        return Some(SslError::NonFinite { location: "x2s" });
    }
    let needed = scratch_len(architecture, n).expect("small");
    if b.scratch_len < needed {
        return Some(SslError::CapacityTooSmall {
            needed,
            capacity: b.scratch_len,
        });
    }
    None
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs the steps on the kernel twin `K` with a fresh head and optimiser.
fn train<K: Kernels>(
    architecture: &Architecture,
    other: Option<&Architecture>,
    initial: &[f32],
    config: TrainConfig,
    momentum_len: usize,
    batches: &[Batch],
) {
    let kinds = kinds(architecture);
    let count = initial.len();
    let optimiser_architecture = other.unwrap_or(architecture);
    let optimiser_count = optimiser_architecture.param_count().expect("valid");
    let sgd = Sgd::new(optimiser_architecture, config, vec![0.0_f32; momentum_len]);
    let momentum_ok = if momentum_len == optimiser_count {
        Ok(())
    } else {
        Err(SslError::DimensionMismatch {
            expected: optimiser_count,
            got: momentum_len,
        })
    };
    let expected = expected_validate(&config).and(momentum_ok);
    assert_eq!(sgd.as_ref().map(|_| ()).map_err(|e| *e), expected);
    let Ok(mut sgd) = sgd else { return };
    assert_eq!(sgd.lr().to_bits(), config.lr.to_bits());
    assert_eq!(sgd.steps(), 0);
    let mut head = SimSiamHead::new(*architecture, initial.to_vec())
        .expect("finite parameters of the right length")
        .with_kernels::<K>();
    let batch_norm: Vec<bool> = architecture
        .layers()
        .map(|l| l.batch_norm.is_some())
        .collect();
    for b in batches {
        if let Some(lr) = b.lr {
            sgd.set_lr(lr);
            assert_eq!(sgd.lr().to_bits(), lr.to_bits());
        }
        let before = (
            bits(head.params()),
            *head.batches_tracked(),
            bits(sgd.momentum()),
            sgd.steps(),
            sgd.lr().to_bits(),
        );
        let mut scratch = vec![f32::NAN; b.scratch_len];
        let mut g1 = vec![f32::NAN; b.grad_lens[0]];
        let mut g2 = vec![f32::NAN; b.grad_lens[1]];
        let expected = expected_step_error(architecture, other.is_none(), sgd.lr(), b);
        let result = sgd.step(&mut head, &b.x1s, &b.x2s, &mut scratch, [&mut g1, &mut g2]);
        let after = (
            bits(head.params()),
            *head.batches_tracked(),
            bits(sgd.momentum()),
            sgd.steps(),
            sgd.lr().to_bits(),
        );
        match result {
            Err(error) => {
                if let Some(expected) = expected {
                    assert_eq!(error, expected, "validation error");
                } else {
                    assert!(
                        matches!(
                            error,
                            SslError::NonFinite {
                                location: "projector output"
                                    | "predictor output"
                                    | "loss"
                                    | "gradients"
                                    | "update"
                            }
                        ),
                        "undocumented step error {error:?}"
                    );
                }
                assert!(
                    before == after,
                    "a failed step ({error:?}) changed the state"
                );
            }
            Ok(loss) => {
                assert_eq!(expected, None, "the step should have failed");
                assert!(
                    loss.is_finite() && loss.abs() <= 1.0 + LOSS_SLACK,
                    "loss {loss}"
                );
                let params = head.params();
                assert_eq!(params.len(), count);
                assert!(
                    params.iter().all(|p| p.is_finite()),
                    "non-finite parameter after Ok"
                );
                assert!(sgd.momentum().iter().all(|m| m.is_finite()));
                assert_eq!(sgd.steps(), before.3 + 1);
                assert_eq!(after.4, before.4, "the step changed the lr");
                for (i, ((now, was), bn)) in after
                    .1
                    .iter()
                    .zip(&before.1)
                    .zip(batch_norm.iter().chain(std::iter::repeat(&false)))
                    .enumerate()
                {
                    let grown = if *bn { 2 } else { 0 };
                    assert_eq!(*now, was.saturating_add(grown), "batches_tracked[{i}]");
                }
                let n = b.x1s.len() / architecture.d_encoder();
                let grads = param_grads(architecture, n, &scratch).expect("scratch was enough");
                assert_eq!(grads.len(), count);
                for (i, ((kind, grad), (now, was))) in kinds
                    .iter()
                    .zip(grads)
                    .zip(after.0.iter().zip(&before.0))
                    .enumerate()
                {
                    assert!(grad.is_finite(), "gradient {i} {grad}");
                    match kind {
                        Kind::Trained => {}
                        Kind::FrozenBias => {
                            assert_eq!(*grad, 0.0, "frozen bias gradient {i}");
                            assert_eq!(now, was, "frozen bias {i} changed");
                        }
                        Kind::Running => {
                            assert_eq!(*grad, 0.0, "running statistic gradient {i}");
                            // Equal as numbers: `0·mean + 1·(−0)` is `+0`, as in PyTorch.
                            if config.batch_norm_momentum == 0.0 {
                                assert_eq!(
                                    f32::from_bits(*now),
                                    f32::from_bits(*was),
                                    "running statistic {i} moved at momentum 0"
                                );
                            }
                        }
                    }
                }
                for (which, g) in [("dx1s", &g1), ("dx2s", &g2)] {
                    assert!(
                        g.iter().all(|v| v.is_finite()),
                        "{which}: non-finite input gradient after Ok: {g:?}\n{architecture:?}\n\
                         {config:?}, lr {}\nparams {initial:?}\nx1s {:?}\nx2s {:?}",
                        sgd.lr(),
                        b.x1s,
                        b.x2s
                    );
                }
            }
        }
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    check_cosine_lr(u)?;
    let Some(architecture) = any_architecture(u)? else {
        return Ok(());
    };
    check_sizes(u, &architecture)?;
    let count = architecture.param_count().expect("valid");
    assert_eq!(
        kinds(&architecture).len(),
        count,
        "layout of {architecture:?}"
    );
    let initial = params(u, count)?;
    let config = train_config(u)?;
    assert_eq!(config.validate(), expected_validate(&config), "{config:?}");
    // Sometimes an optimiser made for another head.
    // (`!ratio(15, 16)`: an exhausted input gives `ratio` true, and this must stay rare.)
    let other = if !u.ratio(15_u8, 16)? {
        any_architecture(u)?.filter(|other| *other != architecture)
    } else {
        None
    };
    let optimiser_count = other
        .as_ref()
        .unwrap_or(&architecture)
        .param_count()
        .expect("valid");
    let momentum_len = if u.ratio(15_u8, 16)? {
        optimiser_count
    } else {
        length(u, optimiser_count)?
    };
    let steps = u.int_in_range(1..=3)?;
    let batches = (0..steps)
        .map(|_| batch(u, &architecture))
        .collect::<Result<Vec<_>>>()?;
    train::<Simd>(
        &architecture,
        other.as_ref(),
        &initial,
        config,
        momentum_len,
        &batches,
    );
    train::<Scalar>(
        &architecture,
        other.as_ref(),
        &initial,
        config,
        momentum_len,
        &batches,
    );
    Ok(())
}
