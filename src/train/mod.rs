//! Training the head on the device: the backward pass with stop-gradient, BatchNorm in
//! training mode, and SGD, with PyTorch's semantics and no heap.
//!
//! One step ([`Sgd::step`]) takes a batch of `n` pairs of inputs (`x1s`, `x2s`, each
//! `n × d_input`, row-major: encoder outputs for a head alone, windows for a network with
//! an [encoder](crate::model::Encoder), which it trains too), and
//! 1. runs both views through the projector and the predictor in training mode
//!    (`model.train()` in PyTorch: each BatchNorm normalises with the *batch* mean and
//!    the *biased* batch variance of its view; the two views are separate batches, as
//!    the official code's two calls `projector(x1)`, `projector(x2)` are);
//! 2. computes the loss `−(cos(p1, sg(z2)).mean() + cos(p2, sg(z1)).mean()) / 2`, where
//!    `sg` is stop-gradient (the targets get no gradient; [`TrainConfig::stop_gradient`]
//!    `= false` lets it flow, the paper's ablation);
//! 3. backpropagates as autograd does (ReLU's gradient is 0 at 0; L2 normalisations
//!    `x / max(‖x‖, floor)` project the gradient, or only divide where the floor
//!    applies), into parameter gradients and, when asked, `dL/dx1s`, `dL/dx2s` for the
//!    caller's encoder;
//! 4. updates the BatchNorm running statistics (`momentum` 0.1 by default, with the
//!    *unbiased* batch variance; view 1, then view 2, so `num_batches_tracked` grows by
//!    two) and the parameters as `torch.optim.SGD(momentum, weight_decay)`:
//!    `g ← grad + wd·w`; the momentum buffer starts as `g`, then `buf ← m·buf + g`;
//!    `w ← w − lr·buf`. No dampening, no Nesterov. The official projector's last bias
//!    is frozen ([`Layer::bias_frozen`](crate::model::Layer::bias_frozen)), running
//!    statistics are not trained; [`TrainConfig::fix_predictor_lr`] keeps the predictor
//!    at the initial lr while [`Sgd::set_lr`] changes the rest (the official recipe,
//!    with [`cosine_lr`] as the schedule).
//!
//! A step is all or nothing: a non-finite loss, gradient or updated value is
//! `NonFinite` and leaves the head and the optimiser as they were.
//!
//! # With an encoder
//! Each view first runs through the encoder in training mode (its BatchNorms over `N·T`
//! for sequences); the head's step above runs on the two feature batches and also gives
//! `dL/d(features)`, which the encoder's backward carries to its parameters and to
//! `dL/dx1s`, `dL/dx2s` of the network's input. The encoder's parameters follow the
//! projector's rules (its lr, weight decay on every trained tensor), its running
//! statistics are updated (view 1, then view 2, with
//! [`TrainConfig::batch_norm_momentum`] as the head's: a kind's own `momentum` field is
//! what a single layer call uses) after every check has passed, on a copy first, and its
//! BatchNorm counters
//! ([`SimSiamHead::encoder_batches_tracked`](crate::SimSiamHead::encoder_batches_tracked))
//! grow by two.
//!
//! # Memory
//! No heap. The caller provides every buffer: the optimiser's momentum
//! ([`momentum_len`] floats, held by [`Sgd`]), the step's `scratch`
//! ([`scratch_len`]`(architecture, n)` floats: activations of both views, parameter
//! gradients, two gradient buffers; with an encoder, its buffers after those) and,
//! optionally, the input gradients (`n·d_input` each). Stack: the slices of eight rows
//! at a time, the SIMD twin's packed blocks (up to 70 KiB on 64-bit targets for layers
//! 1024 or more wide, 1.5 KiB on 32-bit ones with a vector unit, none without one) and
//! frames: 4 972 B measured on a Cortex-M4F at `n = 8` (either twin: no vector unit).
//!
//! Feature `alloc` adds [`Trainer`], which owns those buffers:
//! ```
//! # #[cfg(feature = "alloc")] {
//! use simsiam::{LcgRng, SimSiam, SimSiamConfig};
//! use simsiam::train::{TrainConfig, Trainer};
//! let config = SimSiamConfig { d_encoder: 8, d_projector: 16, d_predictor: 8, d_out: 4 };
//! let mut model = SimSiam::new(config, &mut LcgRng::new(7))?;
//! let mut trainer = Trainer::new(&model, TrainConfig::default())?;
//! let x1s: Vec<f32> = (0..4 * 8).map(|i| (i as f32 * 0.37).sin()).collect();
//! let x2s: Vec<f32> = x1s.iter().map(|x| x + 0.01).collect();
//! let first = trainer.step(&mut model, &x1s, &x2s)?;
//! let mut last = first;
//! for _ in 0..20 {
//!     last = trainer.step(&mut model, &x1s, &x2s)?;
//! }
//! assert!(last < first); // the two views' predictions learn to agree
//! let (g1, g2) = trainer.input_grads();
//! assert_eq!((g1.len(), g2.len()), (4 * 8, 4 * 8));
//! # }
//! # Ok::<(), simsiam::SslError>(())
//! ```

mod buffers;
mod collapse;
mod sgd;
mod step;
#[cfg(feature = "alloc")]
mod trainer;

pub use buffers::{momentum_len, param_grads, projection_ranges, scratch_len};
pub use collapse::{CollapseMonitor, collapse_level, output_std, output_std_scratch_len};
pub use sgd::Sgd;
#[cfg(feature = "alloc")]
pub use trainer::Trainer;

use crate::error::{SslError, SslResult};

/// PyTorch's `BatchNorm1d` default `momentum` for the running statistics.
pub const BATCH_NORM_MOMENTUM: f32 = 0.1;

/// The settings of a training run: SGD's and the loss's.
///
/// `Default` is the official recipe (facebookresearch/simsiam `main_simsiam.py`): base
/// lr 0.05 (the official code scales it by `batch / 256`; do that yourself if you
/// follow it), momentum 0.9, weight decay 1e-4, the predictor at a fixed lr, and
/// stop-gradient.
///
/// Fields are public and more may follow: build it with `..TrainConfig::default()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// The initial learning rate: every parameter's until [`Sgd::set_lr`] (or
    /// [`Trainer::set_lr`]) changes it, and the predictor's for good when
    /// [`fix_predictor_lr`](Self::fix_predictor_lr).
    pub lr: f32,
    /// SGD momentum `m` (0 for none), in `[0, 1)`.
    pub momentum: f32,
    /// L2 weight decay added to every trained parameter's gradient (BatchNorm's `γ`, `β`
    /// and biases included, as PyTorch does).
    pub weight_decay: f32,
    /// Keep the predictor at [`lr`](Self::lr) while the schedule changes the rest.
    pub fix_predictor_lr: bool,
    /// Detach the targets (`true`: SimSiam); `false` lets the gradient flow through
    /// them too, and the outputs collapse.
    pub stop_gradient: bool,
    /// The BatchNorm running statistics' momentum (PyTorch's `momentum`, 0.1).
    pub batch_norm_momentum: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 1e-4,
            fix_predictor_lr: true,
            stop_gradient: true,
            batch_norm_momentum: BATCH_NORM_MOMENTUM,
        }
    }
}

impl TrainConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field: `lr` and `weight_decay` must be finite and
    /// `≥ 0`, `momentum` and `batch_norm_momentum` finite in `[0, 1)` and `[0, 1]`.
    pub fn validate(&self) -> SslResult<()> {
        check_lr(self.lr)?;
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(SslError::InvalidParameter {
                name: "momentum",
                reason: "must be finite and in [0, 1)",
            });
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(SslError::InvalidParameter {
                name: "weight_decay",
                reason: "must be finite and >= 0",
            });
        }
        if !(self.batch_norm_momentum.is_finite()
            && (0.0..=1.0).contains(&self.batch_norm_momentum))
        {
            return Err(SslError::InvalidParameter {
                name: "batch_norm_momentum",
                reason: "must be finite and in [0, 1]",
            });
        }
        Ok(())
    }
}

/// `lr` must be finite and `≥ 0`.
pub(crate) fn check_lr(lr: f32) -> SslResult<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(SslError::InvalidParameter {
            name: "lr",
            reason: "must be finite and >= 0",
        })
    }
}

/// The official cosine schedule: `initial_lr·(1 + cos(π·step/total))/2`, from
/// `initial_lr` at step 0 to 0 at `total` (steps past `total` stay at 0; `total` 0 gives
/// `initial_lr`). The official code steps it per epoch (`step` = epoch, `total` =
/// epochs); per step works the same way.
///
/// # Examples
/// ```
/// use simsiam::train::cosine_lr;
/// assert_eq!(cosine_lr(0.05, 0, 100), 0.05);
/// assert!((cosine_lr(0.05, 50, 100) - 0.025).abs() < 1e-8);
/// assert_eq!(cosine_lr(0.05, 100, 100), 0.0);
/// ```
#[must_use]
pub fn cosine_lr(initial_lr: f32, step: u64, total: u64) -> f32 {
    if total == 0 {
        return initial_lr;
    }
    let progress = (step.min(total) as f64) / (total as f64);
    let factor = 0.5 * (1.0 + libm::cos(core::f64::consts::PI * progress));
    // cos(π) is −1 exactly in f64 only up to rounding: end at 0 exactly.
    if step >= total {
        return 0.0;
    }
    (f64::from(initial_lr) * factor) as f32
}
