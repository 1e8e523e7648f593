//! `torch.optim.SGD` over a head, and the step that drives it.

use super::buffers::{ViewBuffers, carve};
use super::step::{LayerViews, gradients};
use super::{TrainConfig, check_lr};
use crate::error::{SslError, SslResult, check_finite, check_len};
use crate::kernels::{Kernels, pieces};
use crate::model::head::TrainingParts;
use crate::model::layout::Layout;
use crate::model::{Architecture, MAX_LAYERS, SimSiamHead, StackName};

/// SGD with momentum and weight decay, as `torch.optim.SGD(params, lr, momentum,
/// weight_decay)` (no dampening, no Nesterov), over the momentum buffer `M` the caller
/// owns (`[f32; N]`, `heapless::Vec<f32, N>`, `&mut [f32]`, `Vec<f32>`: anything with
/// [`Architecture::param_count`] floats).
///
/// Per trained parameter `w` with gradient `grad`: `g = grad + wd·w`; the buffer is `g`
/// on the first step, then `m·buf + g`; `w ← w − lr·buf`. Running statistics and frozen
/// biases are not trained. See [the module](super) for the whole step.
///
/// # Examples
/// ```
/// use simsiam::{LcgRng, SimSiamConfig, SimSiamHead};
/// use simsiam::train::{Sgd, TrainConfig, scratch_len};
/// let config = SimSiamConfig { d_encoder: 8, d_projector: 16, d_predictor: 8, d_out: 4 };
/// const PARAMS: usize = 8 * 16 + 16 + 16 * 4 + 4 + 4 * 8 + 8 + 8 * 4 + 4;
/// let mut head = SimSiamHead::<heapless::Vec<f32, PARAMS>>::from_seed(config, &mut LcgRng::new(3))?;
/// let mut sgd = Sgd::new(head.architecture(), TrainConfig::default(), [0.0_f32; PARAMS])?;
/// // A batch of 4 pairs; the scratch for it, and no input gradients.
/// let x1s = [[0.5_f32, -1.0, 0.25, 2.0, 0.0, 1.0, -0.5, 0.75]; 4].concat();
/// let x2s: Vec<f32> = x1s.iter().map(|x| x * 0.9).collect();
/// let mut scratch = vec![0.0_f32; scratch_len(head.architecture(), 4)?];
/// let loss = sgd.step(&mut head, &x1s, &x2s, &mut scratch, [&mut [], &mut []])?;
/// assert!((-1.0..=1.0).contains(&loss));
/// assert_eq!(sgd.steps(), 1);
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<M> {
    config: TrainConfig,
    lr: f32,
    architecture: Architecture,
    momentum: M,
    steps: u64,
}

const WRONG_HEAD: SslError = SslError::InvalidParameter {
    name: "head",
    reason: "not the architecture this optimiser was made for",
};

impl<M: AsRef<[f32]> + AsMut<[f32]>> Sgd<M> {
    /// An optimiser for heads of `architecture`, at `config.lr`, over `momentum` (zeroed
    /// here; the first step starts it).
    ///
    /// # Errors
    /// [`TrainConfig::validate`]'s errors; the architecture's; `DimensionMismatch` when
    /// `momentum` is not `param_count` long.
    pub fn new(architecture: &Architecture, config: TrainConfig, momentum: M) -> SslResult<Self> {
        config.validate()?;
        architecture.validate()?;
        check_len(architecture.param_count()?, momentum.as_ref().len())?;
        let mut momentum = momentum;
        momentum.as_mut().fill(0.0);
        Ok(Self {
            config,
            lr: config.lr,
            architecture: *architecture,
            momentum,
            steps: 0,
        })
    }

    /// An optimiser that resumes a run: `momentum` holds the saved buffer (kept, not
    /// zeroed), `steps` steps were taken (the buffer has started when not 0) and `lr` is
    /// the next step's learning rate. Save them from [`momentum`](Self::momentum),
    /// [`steps`](Self::steps) and [`lr`](Self::lr) (a parameter image's training section
    /// holds them: [`crate::image::TrainingState`]; a C caller keeps them between calls).
    /// With `steps = 0` the first step overwrites the buffer of every trained parameter;
    /// the entries of untrained values (running statistics, frozen biases) are left as
    /// they are, where `new` zeroes them.
    ///
    /// # Errors
    /// As [`new`](Self::new); `InvalidParameter { name: "lr" }` for an `lr` that is not
    /// finite and `≥ 0`; `NonFinite { location: "momentum" }`.
    ///
    /// # Examples
    /// ```
    /// use simsiam::{SimSiamConfig, model::Architecture, train::{Sgd, TrainConfig}};
    /// let architecture = Architecture::reference(SimSiamConfig::default())?;
    /// let kept = vec![0.5_f32; architecture.param_count()?];
    /// let sgd = Sgd::resume(&architecture, TrainConfig::default(), kept, 7, 0.01)?;
    /// assert_eq!((sgd.steps(), sgd.momentum()[0], sgd.lr()), (7, 0.5, 0.01));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn resume(
        architecture: &Architecture,
        config: TrainConfig,
        momentum: M,
        steps: u64,
        lr: f32,
    ) -> SslResult<Self> {
        config.validate()?;
        architecture.validate()?;
        check_len(architecture.param_count()?, momentum.as_ref().len())?;
        check_lr(lr)?;
        check_finite(momentum.as_ref(), "momentum")?;
        Ok(Self {
            config,
            lr,
            architecture: *architecture,
            momentum,
            steps,
        })
    }

    /// Sets the learning rate of the next steps (of everything but the predictor when
    /// [`TrainConfig::fix_predictor_lr`]). A negative or non-finite `lr` makes the next
    /// [`step`](Self::step) fail with `InvalidParameter { name: "lr", .. }`.
    pub fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }

    /// The learning rate of the next step.
    #[must_use]
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Steps taken.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The architecture of the heads it trains.
    #[must_use]
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// The momentum buffer (flat layout; zeros where nothing is trained).
    #[must_use]
    pub fn momentum(&self) -> &[f32] {
        self.momentum.as_ref()
    }

    /// One training step on `n` pairs: `x1s`, `x2s` are `n × d_input` each, row-major
    /// (the network's input: the encoder's with an encoder, else the projector's).
    /// Returns the loss *before* the update. `scratch` holds at least
    /// [`scratch_len`](super::scratch_len)`(architecture, n)` floats; `input_grads`
    /// receive `dL/dx1s`, `dL/dx2s` (`n·d_input` each), or pass empty slices to skip
    /// them. On any error the head and the optimiser are unchanged.
    ///
    /// # Errors
    /// `InvalidParameter { name: "head" }` for a head of another architecture;
    /// `InvalidParameter { name: "lr" }` for a bad [`set_lr`](Self::set_lr);
    /// `InvalidParameter { name: "x1s" }` when `x1s` is empty or not a multiple of
    /// `d_encoder` long; `DimensionMismatch` when `x2s` is not as long as `x1s`, or an
    /// input gradient is neither empty nor `n·d_encoder`; `InvalidParameter { name: "n" }`
    /// for one pair when a layer has BatchNorm (PyTorch raises too: one value per
    /// channel has no variance); `CapacityTooSmall` for a short scratch;
    /// `NonFinite` for a non-finite input (`"x1s"`, `"x2s"`), output, loss, gradient
    /// (`"gradients"`) or updated value (`"update"`).
    pub fn step<S, K>(
        &mut self,
        head: &mut SimSiamHead<S, K>,
        x1s: &[f32],
        x2s: &[f32],
        scratch: &mut [f32],
        input_grads: [&mut [f32]; 2],
    ) -> SslResult<f32>
    where
        S: AsRef<[f32]> + AsMut<[f32]>,
        K: Kernels,
    {
        self.step_on::<K>(head.training_parts(), [x1s, x2s], scratch, input_grads)
    }

    /// [`step`](Self::step) on a head's parts, on the kernel twin `K`.
    pub(crate) fn step_on<K: Kernels>(
        &mut self,
        parts: TrainingParts<'_>,
        xs: [&[f32]; 2],
        scratch: &mut [f32],
        input_grads: [&mut [f32]; 2],
    ) -> SslResult<f32> {
        let TrainingParts {
            architecture,
            layout,
            params,
            batches_tracked,
            encoder_batches_tracked,
        } = parts;
        if *architecture != self.architecture {
            return Err(WRONG_HEAD);
        }
        check_lr(self.lr)?;
        let [x1s, x2s] = xs;
        let n = batch_size(architecture, x1s)?;
        check_len(x1s.len(), x2s.len())?;
        let [input_first, input_second] = input_grads;
        for grad in [&*input_first, &*input_second] {
            if !grad.is_empty() {
                check_len(x1s.len(), grad.len())?;
            }
        }
        check_finite(x1s, "x1s")?;
        check_finite(x2s, "x2s")?;
        check_len(layout.param_count, self.momentum.as_ref().len())?;
        let mut buffers = carve(architecture, n, scratch)?;
        let mut encoder_step = match architecture.active_encoder() {
            Some(encoder) => {
                let (plan, mut parts) = encoder.carve(n, core::mem::take(&mut buffers.encoder))?;
                let encoder_params = params
                    .get(..layout.encoder_param_count)
                    .ok_or(storage_changed(layout, params.len()))?;
                for (x, view) in xs.iter().zip(parts.views.iter_mut()) {
                    encoder.forward_train::<K>(&plan, encoder_params, n, x, view, parts.scratch)?;
                }
                Some((encoder, plan, parts))
            }
            None => None,
        };
        let loss = {
            let layers = LayerViews::new(architecture, layout, params)?;
            match &mut encoder_step {
                None => gradients::<K>(
                    architecture,
                    &layers,
                    xs,
                    n,
                    self.config.stop_gradient,
                    &mut buffers,
                    [&mut *input_first, &mut *input_second],
                )?,
                Some((encoder, plan, parts)) => {
                    // The head's input is the encoder's output of each view, and its
                    // input gradient dL/d(features) seeds the encoder's backward.
                    let output = encoder.output_range(plan);
                    let [view_first, view_second] = &mut parts.views;
                    let features = [slice_of(view_first, output), slice_of(view_second, output)];
                    let [d_first, d_second] = &mut parts.feature_grads;
                    let loss = gradients::<K>(
                        architecture,
                        &layers,
                        features,
                        n,
                        self.config.stop_gradient,
                        &mut buffers,
                        [&mut **d_first, &mut **d_second],
                    )?;
                    let encoder_params =
                        params.get(..layout.encoder_param_count).unwrap_or_default();
                    let encoder_grads = buffers
                        .param_grads
                        .get_mut(..layout.encoder_param_count)
                        .unwrap_or_default();
                    let views = [
                        (xs[0], &mut **view_first, &*d_first, &mut *input_first),
                        (xs[1], &mut **view_second, &*d_second, &mut *input_second),
                    ];
                    for (x, view, d_features, input_grad) in views {
                        let [grads_a, grads_b] = &mut parts.grads;
                        crate::model::encoder::copy(grads_a, d_features);
                        encoder.backward::<K>(
                            plan,
                            encoder_params,
                            n,
                            x,
                            view,
                            [&mut **grads_a, &mut **grads_b],
                            encoder_grads,
                            input_grad,
                            parts.scratch,
                        )?;
                    }
                    loss
                }
            }
        };
        // The parameter gradients are checked by the update below: a non-finite gradient
        // makes its update non-finite (`m·buf + (g + wd·w)`), and the untrained entries
        // are zeros (no backward writes them). Only a failed update pays for the pass that
        // tells the two errors apart.
        check_finite(input_first, "gradients")?;
        check_finite(input_second, "gradients")?;
        let update = Update {
            config: &self.config,
            lr: self.lr,
            momentum: if self.steps > 0 {
                self.config.momentum
            } else {
                0.0
            },
        };
        let grads: &[f32] = buffers.param_grads;
        let momentum = self.momentum.as_mut();
        // Storage whose mutable view differs in length from its shared one.
        check_len(layout.param_count, momentum.len())?;
        let regions = || trained_regions(architecture);
        // All or nothing: check every new value first, then write.
        for (range, lr) in regions() {
            let (Some(w), Some(g), Some(buf)) = (
                params.get(range.clone()),
                grads.get(range.clone()),
                momentum.get(range),
            ) else {
                return Err(SslError::DimensionMismatch {
                    expected: layout.param_count,
                    got: params.len(),
                });
            };
            let lr = lr(&update);
            // A fold without an early exit, so that it vectorises.
            let finite = w
                .iter()
                .zip(g)
                .zip(buf)
                .fold(true, |finite, ((w, g), buf)| {
                    let (w, buf) = update.apply(*w, *g, *buf, lr);
                    finite & w.is_finite() & buf.is_finite()
                });
            if !finite {
                check_finite(grads, "gradients")?;
                return Err(SslError::NonFinite { location: "update" });
            }
        }
        let running = Running {
            momentum: self.config.batch_norm_momentum,
            unbiased: n.saturating_sub(1) as f32,
        };
        for update in running_updates(architecture, layout, &buffers.views) {
            let (Some(rm), Some(rv)) = (
                params.get(update.mean.clone()),
                params.get(update.var.clone()),
            ) else {
                continue;
            };
            for ((rm, rv), c) in rm.iter().zip(rv).zip(0..update.d_out) {
                let (rm, rv) = running.apply(&update.batch, *rm, *rv, c);
                if !(rm.is_finite() && rv.is_finite()) {
                    return Err(SslError::NonFinite { location: "update" });
                }
            }
        }
        if let Some((encoder, plan, parts)) = &mut encoder_step {
            let [first, second] = &parts.views;
            encoder.check_running_stats(
                plan,
                params,
                n,
                [&**first, &**second],
                self.config.batch_norm_momentum,
                parts.batch_norm,
            )?;
        }
        // Commit.
        for (range, lr) in regions() {
            let lr = lr(&update);
            let (Some(w), Some(g), Some(buf)) = (
                params.get_mut(range.clone()),
                grads.get(range.clone()),
                momentum.get_mut(range),
            ) else {
                continue;
            };
            for ((w, g), buf) in w.iter_mut().zip(g).zip(buf.iter_mut()) {
                (*w, *buf) = update.apply(*w, *g, *buf, lr);
            }
        }
        for update in running_updates(architecture, layout, &buffers.views) {
            // running_mean and running_var are adjacent: running_mean first.
            let Some((rm, rv)) = params
                .get_mut(update.mean.start..update.var.end)
                .and_then(|both| both.split_at_mut_checked(update.mean.len()))
            else {
                continue;
            };
            for ((rm, rv), c) in rm.iter_mut().zip(rv.iter_mut()).zip(0..update.d_out) {
                (*rm, *rv) = running.apply(&update.batch, *rm, *rv, c);
            }
            if let Some(count) = batches_tracked.get_mut(update.index) {
                *count = count.saturating_add(2);
            }
        }
        if let Some((encoder, plan, parts)) = &encoder_step {
            let [first, second] = &parts.views;
            // Checked above on a copy: the same arithmetic cannot fail here.
            encoder.commit_running_stats(
                plan,
                params,
                n,
                [&**first, &**second],
                self.config.batch_norm_momentum,
                encoder_batches_tracked,
            )?;
        }
        self.steps = self.steps.saturating_add(1);
        Ok(loss)
    }
}

/// The `len` floats at `start` of `v` (empty when out of bounds: never for a carved
/// scratch).
fn slice_of(v: &[f32], (start, len): (usize, usize)) -> &[f32] {
    start
        .checked_add(len)
        .and_then(|end| v.get(start..end))
        .unwrap_or_default()
}

/// `DimensionMismatch` for parameter storage that no longer matches the layout.
fn storage_changed(layout: &Layout, got: usize) -> SslError {
    SslError::DimensionMismatch {
        expected: layout.param_count,
        got,
    }
}

/// `n` for a batch `x1s` of a network whose input width is `d_input` (the encoder
/// width without an encoder).
fn batch_size(architecture: &Architecture, x1s: &[f32]) -> SslResult<usize> {
    let d = architecture.d_input();
    let n = x1s.len().checked_div(d).unwrap_or(0);
    if n == 0 || x1s.len().checked_rem(d) != Some(0) {
        return Err(SslError::InvalidParameter {
            name: "x1s",
            // The head's input width without an encoder: this payload is public.
            reason: "must hold n ≥ 1 rows of d_encoder",
        });
    }
    if n < 2
        && architecture
            .layers()
            .any(|layer| layer.batch_norm.is_some())
    {
        return Err(SslError::InvalidParameter {
            name: "n",
            reason: "BatchNorm in training mode needs at least 2 pairs per batch",
        });
    }
    Ok(n)
}

/// The SGD arithmetic of one step.
struct Update<'a> {
    config: &'a TrainConfig,
    lr: f32,
    /// The momentum buffer's factor this step: `m`, or 0 on the first step.
    momentum: f32,
}

impl Update<'_> {
    /// `(w', buf')` for a parameter `w` with gradient `grad`.
    ///
    /// Branch-free: before the first step the buffer is zero and its factor 0, so
    /// `0·0 + g` is `g` (as PyTorch's `clone(g)`); with `momentum` 0 likewise.
    #[inline]
    fn apply(&self, w: f32, grad: f32, buf: f32, lr: f32) -> (f32, f32) {
        let g = grad + self.config.weight_decay * w;
        let buf = self.momentum * buf + g;
        (w - lr * buf, buf)
    }
}

type LrOf = fn(&Update<'_>) -> f32;

fn current_lr(update: &Update<'_>) -> f32 {
    update.lr
}

fn initial_lr(update: &Update<'_>) -> f32 {
    if update.config.fix_predictor_lr {
        update.config.lr
    } else {
        update.lr
    }
}

/// Every trained range of the flat parameters (weights, unfrozen biases, `γ`, `β`), from
/// the layout table, with how its learning rate is chosen: the predictor's by
/// `fix_predictor_lr`, the encoder's and the projector's the schedule's.
fn trained_regions(
    architecture: &Architecture,
) -> impl Iterator<Item = (core::ops::Range<usize>, LrOf)> + '_ {
    architecture
        .tensors()
        .filter(|tensor| tensor.trainable)
        .map(|tensor| {
            let lr: LrOf = if tensor.stack == StackName::Predictor {
                initial_lr
            } else {
                current_lr
            };
            (tensor.range(), lr)
        })
}

/// One BatchNorm layer's running-statistics update.
struct RunningUpdate<'s> {
    /// The layer's index, projector first.
    index: usize,
    d_out: usize,
    /// Where `running_mean` and `running_var` sit in the parameters.
    mean: core::ops::Range<usize>,
    var: core::ops::Range<usize>,
    /// Each view's batch mean and sum of squared deviations, `d_out` each.
    batch: [(&'s [f32], &'s [f32]); 2],
}

/// The running-statistics update of every BatchNorm layer, from the step's buffers.
fn running_updates<'s>(
    architecture: &'s Architecture,
    layout: &'s Layout,
    views: &'s [ViewBuffers<'_>; 2],
) -> impl Iterator<Item = RunningUpdate<'s>> {
    let batch_of = move |view: &'s ViewBuffers<'_>, index: usize, d_out: usize| {
        let stats = view.stats.get(index).map_or(&[][..], |s| &s[..]);
        let mut parts = pieces(stats, d_out);
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        )
    };
    architecture
        .layers()
        .zip(&layout.layers)
        .zip(0..MAX_LAYERS)
        .filter_map(move |((layer, offsets), index)| {
            let mean = offsets.running_mean?;
            let var = offsets.running_var?;
            let [first, second] = views;
            Some(RunningUpdate {
                index,
                d_out: layer.d_out,
                mean: mean..mean.checked_add(layer.d_out)?,
                var: var..var.checked_add(layer.d_out)?,
                batch: [
                    batch_of(first, index, layer.d_out),
                    batch_of(second, index, layer.d_out),
                ],
            })
        })
}

/// PyTorch's running-statistics rule: `r ← m·batch + (1 − m)·r`, the variance unbiased.
struct Running {
    momentum: f32,
    /// `n − 1`.
    unbiased: f32,
}

impl Running {
    /// Channel `c`'s `(running_mean, running_var)` after view 1's batch, then view 2's.
    #[inline]
    fn apply(
        &self,
        batch: &[(&[f32], &[f32]); 2],
        mut rm: f32,
        mut rv: f32,
        c: usize,
    ) -> (f32, f32) {
        let m = self.momentum;
        for (mean, var_sum) in batch {
            if let (Some(mean), Some(var_sum)) = (mean.get(c), var_sum.get(c)) {
                rm = m * *mean + (1.0 - m) * rm;
                rv = m * (*var_sum / self.unbiased) + (1.0 - m) * rv;
            }
        }
        (rm, rv)
    }
}
