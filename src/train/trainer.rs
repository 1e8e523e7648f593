//! The `alloc` training API: [`Trainer`] owns the optimiser and the step's buffers.

use alloc::vec::Vec;

use super::buffers::{projection_ranges, scratch_len};
use super::{Sgd, TrainConfig};
use crate::error::SslResult;
use crate::kernels::{Backend, Scalar, Simd};
use crate::simsiam::{SimSiam, try_zeros};

/// Trains a [`SimSiam`] model: SGD with its momentum buffer, the step's scratch and
/// the input gradients, in `Vec`s sized on the first step (and again when the batch size
/// changes). A thin wrapper over [`Sgd::step`]; runs on the model's
/// [`Backend`].
///
/// `dL/dx` of the network's input ([`input_grads`](Self::input_grads)) is computed for a
/// model without an encoder (it is what the user's own encoder trains on) and, with an
/// encoder, only when asked ([`set_input_grads`](Self::set_input_grads)): there it is
/// the largest product nobody else needs (`n × d_input` by the first layer's weights).
///
/// # Examples
/// ```
/// use simsiam::{LcgRng, SimSiam, SimSiamConfig};
/// use simsiam::train::{TrainConfig, Trainer, cosine_lr};
/// let config = SimSiamConfig { d_encoder: 8, d_projector: 16, d_predictor: 8, d_out: 4 };
/// let mut model = SimSiam::new(config, &mut LcgRng::new(1))?;
/// let mut trainer = Trainer::new(&model, TrainConfig { lr: 0.1, ..TrainConfig::default() })?;
/// let x1s: Vec<f32> = (0..6 * 8).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
/// let x2s: Vec<f32> = x1s.iter().map(|x| x * 1.05).collect();
/// for step in 0..3 {
///     trainer.set_lr(cosine_lr(0.1, step, 3));
///     let loss = trainer.step(&mut model, &x1s, &x2s)?;
///     assert!((-1.0..=1.0).contains(&loss));
/// }
/// let (g1, _g2) = trainer.input_grads(); // dL/dx1s of the last step, 6 × 8
/// assert_eq!(g1.len(), 48);
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Trainer {
    sgd: Sgd<Vec<f32>>,
    /// The step's scratch and input-gradient buffers, cut for `n` pairs.
    scratch: Vec<f32>,
    work_grads: Vec<f32>,
    n: usize,
    /// What the last successful step showed: `dL/dx1s ‖ dL/dx2s`, `z1s ‖ z2s`.
    input_grads: Vec<f32>,
    projections: Vec<f32>,
    /// Whether steps compute `dL/dx` of the network's input.
    keep_input_grads: bool,
}

/// `v` with room for `len` floats, or `OutOfMemory`.
fn reserve(v: &mut Vec<f32>, len: usize) -> SslResult<()> {
    v.try_reserve_exact(len.saturating_sub(v.len()))
        .map_err(|_| crate::SslError::OutOfMemory { floats: len })
}

impl Trainer {
    /// A trainer for `model` (its architecture; the model itself is passed to each
    /// step) with `config`.
    ///
    /// # Errors
    /// [`TrainConfig::validate`]'s errors; `OutOfMemory` for the momentum buffer.
    pub fn new(model: &SimSiam, config: TrainConfig) -> SslResult<Self> {
        let architecture = model.architecture();
        let momentum = try_zeros(architecture.param_count()?)?;
        Ok(Self {
            sgd: Sgd::new(architecture, config, momentum)?,
            scratch: Vec::new(),
            work_grads: Vec::new(),
            n: 0,
            input_grads: Vec::new(),
            projections: Vec::new(),
            keep_input_grads: architecture.encoder.is_none(),
        })
    }

    /// A trainer around an optimiser, e.g. one that resumes a run
    /// ([`Sgd::resume`], or [`TrainingState::resume_sgd`](crate::image::TrainingState::resume_sgd)
    /// from a parameter image's training section); the step's buffers are sized on the
    /// first step.
    #[must_use]
    pub fn from_sgd(sgd: Sgd<Vec<f32>>) -> Self {
        let architecture = *sgd.architecture();
        Self {
            sgd,
            scratch: Vec::new(),
            work_grads: Vec::new(),
            n: 0,
            input_grads: Vec::new(),
            projections: Vec::new(),
            keep_input_grads: architecture.encoder.is_none(),
        }
    }

    /// Whether the next steps compute `dL/dx` of the network's input for
    /// [`input_grads`](Self::input_grads): on by default without an encoder, off with
    /// one (the encoder trains on its own gradients; `dL/dx` of a sensor window serves
    /// only a caller who asks, e.g. for a saliency map or a parity check).
    pub fn set_input_grads(&mut self, keep: bool) {
        if keep != self.keep_input_grads {
            self.keep_input_grads = keep;
            // Sized again on the next step.
            self.n = 0;
        }
    }

    /// Whether steps compute the input gradients (see
    /// [`set_input_grads`](Self::set_input_grads)).
    #[must_use]
    pub fn keeps_input_grads(&self) -> bool {
        self.keep_input_grads
    }

    /// Sets the learning rate of the next steps (all but the predictor's when
    /// [`TrainConfig::fix_predictor_lr`]): call it before a step with the schedule's
    /// value, e.g. [`cosine_lr`](super::cosine_lr). A bad value fails the next step.
    pub fn set_lr(&mut self, lr: f32) {
        self.sgd.set_lr(lr);
    }

    /// The learning rate of the next step.
    #[must_use]
    pub fn lr(&self) -> f32 {
        self.sgd.lr()
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &TrainConfig {
        self.sgd.config()
    }

    /// Steps taken.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.sgd.steps()
    }

    /// The optimiser inside.
    #[must_use]
    pub fn sgd(&self) -> &Sgd<Vec<f32>> {
        &self.sgd
    }

    /// One step on `n` pairs (`x1s`, `x2s`: `n × d_input` each, row-major: the network's
    /// input, the encoder's when there is one): returns
    /// the loss before the update, and updates `model`'s parameters and BatchNorm
    /// running statistics. On an error the model, the optimiser and what
    /// [`input_grads`](Self::input_grads) and [`projections`](Self::projections) show
    /// (the last successful step's) are unchanged.
    ///
    /// # Errors
    /// As [`Sgd::step`]; `OutOfMemory` when the buffers for a new batch size cannot be
    /// allocated.
    pub fn step(&mut self, model: &mut SimSiam, x1s: &[f32], x2s: &[f32]) -> SslResult<f32> {
        let architecture = *model.architecture();
        let d = architecture.d_input();
        let n = x1s.len().checked_div(d).unwrap_or(0);
        if n != self.n {
            // Sized for this batch; the step itself checks the batch.
            self.scratch = try_zeros(scratch_len(&architecture, n)?)?;
            let grads = if self.keep_input_grads {
                x1s.len().saturating_mul(2)
            } else {
                0
            };
            self.work_grads = try_zeros(grads)?;
            self.n = n;
        }
        // Room for what the step will show, reserved before anything changes.
        let shown_grads = self.work_grads.len();
        let shown_projections = n.saturating_mul(architecture.d_out()).saturating_mul(2);
        reserve(&mut self.input_grads, shown_grads)?;
        reserve(&mut self.projections, shown_projections)?;
        // Empty slices (not computed) unless kept.
        let half = self.work_grads.len() / 2;
        let (g1, g2) = self
            .work_grads
            .split_at_mut_checked(half)
            .unwrap_or((&mut [], &mut []));
        let backend = model.backend();
        let parts = model.head_mut().training_parts();
        let loss = match backend {
            Backend::Simd => {
                self.sgd
                    .step_on::<Simd>(parts, [x1s, x2s], &mut self.scratch, [g1, g2])
            }
            Backend::Scalar => {
                self.sgd
                    .step_on::<Scalar>(parts, [x1s, x2s], &mut self.scratch, [g1, g2])
            }
        }?;
        // Infallible from here: the room is reserved.
        self.input_grads.clear();
        self.input_grads.extend_from_slice(&self.work_grads);
        self.projections.clear();
        if let Ok([first, second]) = projection_ranges(&architecture, n) {
            for range in [first, second] {
                self.projections
                    .extend_from_slice(self.scratch.get(range).unwrap_or_default());
            }
        }
        Ok(loss)
    }

    /// `dL/dx1s`, `dL/dx2s` of the last successful step (`n × d_input` each: of the
    /// network's input; empty before the first, and when the step did not compute them:
    /// see [`set_input_grads`](Self::set_input_grads)).
    #[must_use]
    pub fn input_grads(&self) -> (&[f32], &[f32]) {
        self.input_grads.split_at(self.input_grads.len() / 2)
    }

    /// The projector's outputs `z1s`, `z2s` of the last successful step (`n × d_out`
    /// each, as the forward pass in training mode made them, before L2 normalisation;
    /// empty before the first step). Feed them to a
    /// [`CollapseMonitor`](super::CollapseMonitor).
    #[must_use]
    pub fn projections(&self) -> (&[f32], &[f32]) {
        self.projections.split_at(self.projections.len() / 2)
    }
}
