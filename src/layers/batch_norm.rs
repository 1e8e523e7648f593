//! `nn.BatchNorm1d` over features `[N, C]` (`T = 1`) or channels of a sequence
//! `[N, C, T]`, in place.
//!
//! - Eval: `y = x·α_c + β'_c` with `α_c = γ_c / √(running_var_c + eps)` and
//!   `β'_c = β_c − running_mean_c·α_c` (`γ = 1`, `β = 0` when not affine): ATen's
//!   `batch_norm_cpu_collect_linear_and_constant_terms`, and exactly the model's eval
//!   path (`BatchNormView::scale_shift`), bit for bit.
//! - Training: per channel over the `N·T` values, samples ascending then `t` ascending,
//!   `mean = Σx / (N·T)`, `S = Σ(x − mean)²`, `1/σ = 1 / √(S/(N·T) + eps)` (the *biased*
//!   variance normalises), `x̂ = (x − mean)·(1/σ)`, `y = x̂·γ + β`: for `T = 1` the
//!   training step's `batch_norm_forward`, bit for bit. Needs `N·T ≥ 2` (PyTorch:
//!   "Expected more than 1 value per channel when training").
//! - Running statistics ([`BatchNorm1d::update_running_stats`], separate so that a step
//!   can check everything before it commits): `r_mean ← m·mean + (1 − m)·r_mean`,
//!   `r_var ← m·S/(N·T − 1) + (1 − m)·r_var` (the *unbiased* variance), `m` the
//!   momentum; the caller's `num_batches_tracked` counter grows by one.
//! - Backward (PyTorch's training-mode formula, `batch_norm_backward`): with
//!   `Σg` and `Σg·x̂` per channel, `dγ += Σg·x̂`, `dβ += Σg`, and in place
//!   `dx = (g − Σg/(N·T) − x̂·(Σg·x̂)/(N·T))·(γ/σ)`.
//!
//! # Saved buffer
//! The training forward fills a buffer of [`BatchNorm1d::saved_len`] floats,
//! `N·C·T + 5·C`: `x̂` of every element (`[N, C, T]`), then per channel `mean`, `S`,
//! `1/σ`, and room for the backward's two sums. The backward and the running-statistics
//! update read it.

use super::{OVERFLOW, ParamTensors, Shape, check_batch, check_len, nonzero};
use crate::error::{SslError, SslResult};
use crate::kernels::{KEEP, Kernels, Scalar, lane_sums, pieces, pieces_mut};
use wide::f32x8;

/// PyTorch's default `eps`.
pub const DEFAULT_EPS: f32 = 1e-5;
/// PyTorch's default `momentum` of the running statistics.
pub const DEFAULT_MOMENTUM: f32 = 0.1;

/// Floats per channel in the saved buffer after `x̂`.
const PER_CHANNEL: usize = 5;

/// A BatchNorm layer, `nn.BatchNorm1d(channels, eps, momentum, affine)` with
/// `track_running_stats=True`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNorm1d {
    /// Channels `C` (features of a vector).
    pub channels: usize,
    /// Whether `γ` (`weight`) and `β` (`bias`) exist and train.
    pub affine: bool,
    /// Added to the variance under the square root; finite, `≥ 0`.
    pub eps: f32,
    /// The running statistics' momentum, in `[0, 1]`.
    pub momentum: f32,
}

/// A BatchNorm's parameters, cut from the layer's flat slice.
struct Params<'a> {
    gamma: Option<&'a [f32]>,
    beta: Option<&'a [f32]>,
    running_mean: &'a [f32],
    running_var: &'a [f32],
}

/// The per-channel part of the saved buffer.
struct Stats<'a> {
    mean: &'a mut [f32],
    var_sum: &'a mut [f32],
    inv_std: &'a mut [f32],
    sum_g: &'a mut [f32],
    sum_gx: &'a mut [f32],
}

impl BatchNorm1d {
    /// PyTorch's defaults: affine, `eps = 1e-5`, `momentum = 0.1`.
    #[must_use]
    pub const fn new(channels: usize) -> Self {
        Self {
            channels,
            affine: true,
            eps: DEFAULT_EPS,
            momentum: DEFAULT_MOMENTUM,
        }
    }

    /// The input's shape: BatchNorm keeps it.
    ///
    /// # Errors
    /// `InvalidParameter` (`"channels"`, `"eps"`, `"momentum"`, `"shape"`) for zero
    /// channels, an `eps` not finite and `≥ 0`, a `momentum` outside `[0, 1]`, a zero
    /// dimension or an overflowing size; `DimensionMismatch { expected: channels, got }`
    /// for another channel count.
    pub fn output_shape(&self, input: Shape) -> SslResult<Shape> {
        nonzero(self.channels, "channels")?;
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(SslError::InvalidParameter {
                name: "eps",
                reason: "must be finite and at least 0",
            });
        }
        if !(self.momentum.is_finite() && (0.0..=1.0).contains(&self.momentum)) {
            return Err(SslError::InvalidParameter {
                name: "momentum",
                reason: "must be in [0, 1]",
            });
        }
        input.size()?;
        check_len(self.channels, input.channels)?;
        Ok(input)
    }

    /// `weight [C]`, `bias [C]` (if affine; trainable), `running_mean [C]`,
    /// `running_var [C]` (not trainable).
    #[must_use]
    pub fn params(&self) -> ParamTensors {
        let mut tensors = ParamTensors::NONE;
        if self.affine {
            tensors.push("weight", &[self.channels], true);
            tensors.push("bias", &[self.channels], true);
        }
        tensors.push("running_mean", &[self.channels], false);
        tensors.push("running_var", &[self.channels], false);
        tensors
    }

    /// Floats the training forward saves for a batch of `n`: `n·C·T + 5·C`.
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape); `InvalidParameter` for `n = 0` or an
    /// overflowing length.
    pub fn saved_len(&self, input: Shape, n: usize) -> SslResult<usize> {
        self.output_shape(input)?;
        let per_channel = self.channels.checked_mul(PER_CHANNEL).ok_or(OVERFLOW)?;
        input.batch_len(n)?.checked_add(per_channel).ok_or(OVERFLOW)
    }

    /// Checks the layer, `params` and a batch of `n` in `y`; returns the parameters.
    fn check<'a>(
        &self,
        params: &'a [f32],
        n: usize,
        input: Shape,
        y_len: usize,
    ) -> SslResult<Params<'a>> {
        self.output_shape(input)?;
        let c = self.channels;
        let vectors = if self.affine { 4 } else { 2 };
        check_len(c.checked_mul(vectors).ok_or(OVERFLOW)?, params.len())?;
        check_batch(input, n, y_len)?;
        let mut parts = pieces(params, c);
        let mut next = || parts.next().unwrap_or_default();
        let (gamma, beta) = if self.affine {
            (Some(next()), Some(next()))
        } else {
            (None, None)
        };
        Ok(Params {
            gamma,
            beta,
            running_mean: next(),
            running_var: next(),
        })
    }

    /// The count `N·T` of a training batch, at least 2.
    fn count(n: usize, input: Shape) -> SslResult<usize> {
        let count = n.checked_mul(input.len).ok_or(OVERFLOW)?;
        if count < 2 {
            return Err(SslError::InvalidParameter {
                name: "n",
                reason: "BatchNorm in training needs more than one value per channel (n·T ≥ 2)",
            });
        }
        Ok(count)
    }

    /// The eval forward of `n` samples of shape `input`, in place on `y`.
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape); `DimensionMismatch` when `params` is
    /// not [`params`](Self::params)'s total length or `y` not `n·C·T`;
    /// `InvalidParameter` (`"n"`) for `n = 0`. Nothing is written on error.
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Shape, batch_norm::BatchNorm1d};
    /// let bn = BatchNorm1d { eps: 0.0, ..BatchNorm1d::new(1) };
    /// // weight 2, bias 1, running_mean 3, running_var 4: y = (x − 3)/2·2 + 1.
    /// let mut y = [5.0, 3.0];
    /// bn.forward_eval(&[2.0, 1.0, 3.0, 4.0], 2, Shape::vector(1), &mut y)?;
    /// assert_eq!(y, [3.0, 1.0]);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn forward_eval(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        y: &mut [f32],
    ) -> SslResult<()> {
        let p = self.check(params, n, input, y.len())?;
        let at = |v: Option<&[f32]>, c: usize, default: f32| {
            v.and_then(|v| v.get(c)).copied().unwrap_or(default)
        };
        let len = input.len;
        let sample_len = input.size()?;
        let channels = p
            .running_mean
            .iter()
            .zip(p.running_var)
            .zip(0..self.channels);
        for ((mean, var), c) in channels {
            // As the model's eval path (BatchNormView::scale_shift), bit for bit.
            let inv_std = 1.0 / libm::sqrtf(*var + self.eps);
            let alpha = inv_std * at(p.gamma, c, 1.0);
            let shift = at(p.beta, c, 0.0) - *mean * alpha;
            let start = c.saturating_mul(len);
            for sample in pieces_mut(y, sample_len) {
                let row = sample.get_mut(start..).unwrap_or_default();
                for v in row.iter_mut().take(len) {
                    *v = *v * alpha + shift;
                }
            }
        }
        Ok(())
    }

    /// The training forward of `n` samples of shape `input`, in place on `y`: batch
    /// statistics, `x̂` and the statistics into `saved` ([`saved_len`](Self::saved_len)
    /// floats). The running statistics are not touched
    /// ([`update_running_stats`](Self::update_running_stats)).
    ///
    /// # Errors
    /// As [`forward_eval`](Self::forward_eval); `InvalidParameter` (`"n"`) when
    /// `n·T < 2`; `DimensionMismatch` when `saved` is not
    /// [`saved_len`](Self::saved_len) long. Nothing is written on error.
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Shape, batch_norm::BatchNorm1d};
    /// let bn = BatchNorm1d { affine: false, eps: 0.0, ..BatchNorm1d::new(1) };
    /// let input = Shape::sequence(1, 2);
    /// let mut y = [1.0, 3.0, 5.0, 7.0]; // two samples of [1, 2]: mean 4, variance 5
    /// let mut saved = [0.0; 4 + 5];
    /// bn.forward_train(&[0.0, 1.0], 2, input, &mut y, &mut saved)?;
    /// let want = [-3.0, -1.0, 1.0, 3.0].map(|v: f32| v / 5.0_f32.sqrt());
    /// assert!(y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn forward_train(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        y: &mut [f32],
        saved: &mut [f32],
    ) -> SslResult<()> {
        self.forward_train_with::<Scalar>(params, n, input, y, saved)
    }

    /// [`forward_train`](Self::forward_train) on the kernel twin `K`: the same, except
    /// that for `T > 1` the SIMD twin ([`Simd`](crate::kernels::Simd), on a vector unit)
    /// sums each channel's statistics in lanes along the positions
    /// ([`SEQUENCE_SUM_LANES`] running sums per channel, lane `t mod`
    /// [`SEQUENCE_SUM_LANES`] taking position `t` of every sample in turn, then the lanes
    /// added in a fixed order). Each sum of `N·T` terms then differs from the scalar
    /// order's by at most [`sum_error_bound`](crate::kernels::sum_error_bound)`(N·T,
    /// Σ|term|)` (both orders are within `γ(N·T − 1)·Σ|term|` of the exact sum), and the
    /// result is the same on every build. Over features (`T = 1`) both twins give the
    /// scalar order's bits.
    ///
    /// # Errors
    /// As [`forward_train`](Self::forward_train).
    pub fn forward_train_with<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        y: &mut [f32],
        saved: &mut [f32],
    ) -> SslResult<()> {
        self.forward_train_kind::<K, false>(params, n, input, y, saved)
    }

    /// [`forward_train_with`](Self::forward_train_with) followed by the ReLU after it
    /// ([`relu::forward`](super::relu::forward)) on `y`, the ReLU in the normalisation's
    /// pass over a sequence (one write of `y` instead of a write and a read and write):
    /// the same values bit for bit (the ReLU of each value as
    /// [`relu_keeping_non_finite`](crate::kernels::relu_keeping_non_finite), the rule of
    /// every ReLU of the crate). `saved` holds the BatchNorm's `x̂` as without the ReLU.
    ///
    /// # Errors
    /// As [`forward_train_with`](Self::forward_train_with).
    pub(crate) fn forward_train_relu_with<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        y: &mut [f32],
        saved: &mut [f32],
    ) -> SslResult<()> {
        self.forward_train_kind::<K, true>(params, n, input, y, saved)
    }

    /// [`forward_train_with`](Self::forward_train_with), with `RELU` the ReLU after it.
    fn forward_train_kind<K: Kernels, const RELU: bool>(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        y: &mut [f32],
        saved: &mut [f32],
    ) -> SslResult<()> {
        let p = self.check(params, n, input, y.len())?;
        let count = Self::count(n, input)? as f32;
        check_len(self.saved_len(input, n)?, saved.len())?;
        let (normalized, stats) = saved.split_at_mut_checked(y.len()).unwrap_or_default();
        let s = split_stats(stats, self.channels);
        let len = input.len;
        let sample_len = input.size()?;
        if len == 1 {
            features_forward(&p, self.eps, count, y, normalized, s);
            if RELU {
                crate::kernels::relu_in_place(y);
            }
            return Ok(());
        }
        s.mean.fill(0.0);
        s.var_sum.fill(0.0);
        if lane_sums::<K>() {
            lane_channel_sums(y, len, s.mean, None);
            s.mean.iter_mut().for_each(|m| *m /= count);
            lane_channel_sums(y, len, s.var_sum, Some(&*s.mean));
        } else {
            channel_sums(y, len, s.mean, None, |_, x| x);
            s.mean.iter_mut().for_each(|m| *m /= count);
            channel_sums(y, len, s.var_sum, Some(&*s.mean), |m, x| {
                let deviation = x - m;
                deviation * deviation
            });
        }
        for (inv, v) in s.inv_std.iter_mut().zip(s.var_sum.iter()) {
            *inv = 1.0 / libm::sqrtf(*v / count + self.eps);
        }
        let at = |v: Option<&[f32]>, c: usize, default: f32| {
            v.and_then(|v| v.get(c)).copied().unwrap_or(default)
        };
        for (sample, xhat_sample) in
            pieces_mut(y, sample_len).zip(pieces_mut(normalized, sample_len))
        {
            let rows = pieces_mut(sample, len).zip(pieces_mut(xhat_sample, len));
            let channels = s.mean.iter().zip(s.inv_std.iter()).zip(0..self.channels);
            for ((row, xhat_row), ((m, inv), c)) in rows.zip(channels) {
                let (gamma, beta) = (at(p.gamma, c, 1.0), at(p.beta, c, 0.0));
                normalize_row::<RELU>(row, xhat_row, (*m, *inv), (gamma, beta));
            }
        }
        Ok(())
    }

    /// The backward pass of [`forward_train`](Self::forward_train): `grad` holds
    /// `dL/dy` on entry and `dL/dx` on return; for an affine layer `grads` (the layer's
    /// parameter layout) gets `dγ += Σ g·x̂`, `dβ += Σ g`. `saved` is the forward's
    /// buffer (its last two per-channel vectors are overwritten with the sums).
    ///
    /// # Errors
    /// As [`forward_train`](Self::forward_train), with `grad` `n·C·T` long and `grads`
    /// as long as `params`. Nothing is written on error.
    pub fn backward(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        saved: &mut [f32],
        grad: &mut [f32],
        grads: &mut [f32],
    ) -> SslResult<()> {
        self.backward_with::<Scalar>(params, n, input, saved, grad, grads)
    }

    /// [`backward`](Self::backward) on the kernel twin `K`: for `T > 1` the SIMD twin
    /// sums `Σg` and `Σg·x̂` in lanes along the positions, as
    /// [`forward_train_with`](Self::forward_train_with) sums the statistics (each within
    /// [`sum_error_bound`](crate::kernels::sum_error_bound)`(N·T, Σ|term|)` of the scalar
    /// order's; the products `g·x̂` are the same).
    ///
    /// # Errors
    /// As [`backward`](Self::backward).
    pub fn backward_with<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        saved: &mut [f32],
        grad: &mut [f32],
        grads: &mut [f32],
    ) -> SslResult<()> {
        let p = self.check(params, n, input, grad.len())?;
        let count = Self::count(n, input)? as f32;
        check_len(self.saved_len(input, n)?, saved.len())?;
        check_len(params.len(), grads.len())?;
        let (normalized, stats) = saved.split_at_mut_checked(grad.len()).unwrap_or_default();
        let s = split_stats(stats, self.channels);
        let len = input.len;
        let sample_len = input.size()?;
        if len == 1 {
            let d_gamma_beta = if self.affine { Some(grads) } else { None };
            features_backward(&p, count, grad, normalized, s, d_gamma_beta);
            return Ok(());
        }
        s.sum_g.fill(0.0);
        s.sum_gx.fill(0.0);
        if lane_sums::<K>() {
            lane_gradient_sums(grad, normalized, len, s.sum_g, s.sum_gx);
        } else {
            gradient_sums(grad, normalized, len, s.sum_g, s.sum_gx);
        }
        if self.affine {
            let (d_gamma, rest) = grads
                .split_at_mut_checked(self.channels)
                .unwrap_or_default();
            let d_beta = rest.get_mut(..self.channels).unwrap_or_default();
            d_gamma
                .iter_mut()
                .zip(s.sum_gx.iter())
                .for_each(|(d, v)| *d += *v);
            d_beta
                .iter_mut()
                .zip(s.sum_g.iter())
                .for_each(|(d, v)| *d += *v);
        }
        // dL/dx = (g − Σg/n − x̂·Σ(g·x̂)/n)·γ/σ, PyTorch's batch_norm_backward.
        for (g_sample, xhat_sample) in
            pieces_mut(grad, sample_len).zip(pieces(normalized, sample_len))
        {
            let rows = pieces_mut(g_sample, len).zip(pieces(xhat_sample, len));
            let per_channel = s.sum_g.iter().zip(s.sum_gx.iter()).zip(s.inv_std.iter());
            for (((g_row, xhat_row), ((sg, sgx), inv)), c) in
                rows.zip(per_channel).zip(0..self.channels)
            {
                let gamma = p.gamma.and_then(|v| v.get(c)).copied().unwrap_or(1.0);
                let factors = (*sg / count, *sgx / count, *inv * gamma);
                gradient_row(g_row, xhat_row, factors);
            }
        }
        Ok(())
    }

    /// Updates the running statistics in `params` from a training forward's `saved`
    /// buffer (batch of `n`, shape `input`), and adds one to `batches_tracked` (PyTorch's
    /// `num_batches_tracked`, saturating). All or nothing: every new value is computed
    /// and checked before any is written.
    ///
    /// # Errors
    /// As [`forward_train`](Self::forward_train) (with `saved` for `y`'s length);
    /// `NonFinite { location: "running statistics" }` when a new value is not finite
    /// (then `params` and `batches_tracked` are unchanged).
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Shape, batch_norm::BatchNorm1d};
    /// let bn = BatchNorm1d { affine: false, ..BatchNorm1d::new(1) };
    /// let mut params = [0.0, 1.0]; // running_mean 0, running_var 1
    /// let mut y = [1.0, 3.0];
    /// let mut saved = [0.0; 2 + 5];
    /// bn.forward_train(&params, 2, Shape::vector(1), &mut y, &mut saved)?;
    /// let mut tracked = 0_u64;
    /// bn.update_running_stats(&mut params, 2, Shape::vector(1), &saved, &mut tracked)?;
    /// // mean 2, unbiased variance 2: 0.1·2 + 0.9·0, 0.1·2 + 0.9·1.
    /// assert_eq!((params, tracked), ([0.2, 0.1 * 2.0 + 0.9], 1));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn update_running_stats(
        &self,
        params: &mut [f32],
        n: usize,
        input: Shape,
        saved: &[f32],
        batches_tracked: &mut u64,
    ) -> SslResult<()> {
        let samples_len = input.batch_len(n)?;
        self.check(params, n, input, samples_len)?;
        let count = Self::count(n, input)?;
        check_len(self.saved_len(input, n)?, saved.len())?;
        let unbiased = count.saturating_sub(1) as f32;
        let c = self.channels;
        let stats = saved.get(samples_len..).unwrap_or_default();
        let mut parts = pieces(stats, c);
        let (mean, var_sum) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let m = self.momentum;
        let running_at = if self.affine { c.saturating_mul(2) } else { 0 };
        let running = params.get_mut(running_at..).unwrap_or_default();
        let (running_mean, running_var) = running.split_at_mut_checked(c).unwrap_or_default();
        let new = |rm: f32, rv: f32, mean: f32, var_sum: f32| {
            (
                m * mean + (1.0 - m) * rm,
                m * (var_sum / unbiased) + (1.0 - m) * rv,
            )
        };
        let all = running_mean
            .iter()
            .zip(running_var.iter())
            .zip(mean.iter().zip(var_sum));
        let finite = all.fold(true, |ok, ((rm, rv), (mean, var_sum))| {
            let (rm, rv) = new(*rm, *rv, *mean, *var_sum);
            ok & rm.is_finite() & rv.is_finite()
        });
        if !finite {
            return Err(SslError::NonFinite {
                location: "running statistics",
            });
        }
        let all = running_mean
            .iter_mut()
            .zip(running_var.iter_mut())
            .zip(mean.iter().zip(var_sum));
        for ((rm, rv), (mean, var_sum)) in all {
            (*rm, *rv) = new(*rm, *rv, *mean, *var_sum);
        }
        *batches_tracked = batches_tracked.saturating_add(1);
        Ok(())
    }
}

/// One row of the training forward's normalisation: `x̂ = (v − mean)·(1/σ)` into
/// `xhat_row`, `v ← x̂·γ + β` (with `RELU`, then the ReLU,
/// [`relu_keeping_non_finite`](crate::kernels::relu_keeping_non_finite)), eight values
/// at a time in `f32x8` (a subtraction, then products and a sum, each rounded as the
/// scalar expression's: no fused multiply-add), the row's last values as one more
/// block. The ReLU in lanes: a value below 0 and finite becomes `+0` (its
/// bits masked), what the scalar rule does.
#[inline(always)]
fn normalize_row<const RELU: bool>(
    row: &mut [f32],
    xhat_row: &mut [f32],
    (mean, inv_std): (f32, f32),
    (gamma, beta): (f32, f32),
) {
    let (m, inv, g, b) = (
        f32x8::splat(mean),
        f32x8::splat(inv_std),
        f32x8::splat(gamma),
        f32x8::splat(beta),
    );
    let block = |v: [f32; 8]| {
        let normalized = (f32x8::new(v) - m) * inv;
        let mut out = normalized * g + b;
        if RELU {
            let zeroed = out.simd_lt(f32x8::ZERO) & out.is_finite();
            out &= !zeroed;
        }
        (normalized.to_array(), out.to_array())
    };
    // The last values (after the whole blocks) as one block, no branch per value on
    // its sign: the row's last eight, read before any is written (the lanes before
    // the last values are dropped).
    let tail_len = row.len() % 8;
    let tail = (tail_len != 0).then(|| block(last_eight(row)));
    let (blocks, rest) = row.as_chunks_mut::<8>();
    let (x_blocks, x_rest) = xhat_row.as_chunks_mut::<8>();
    for (v, xhat) in blocks.iter_mut().zip(x_blocks.iter_mut()) {
        (*xhat, *v) = block(*v);
    }
    if let Some((normalized, out)) = tail {
        let from = 8_usize.saturating_sub(tail_len);
        let values = normalized.iter().zip(&out).skip(from);
        for ((d, x), (n, o)) in rest.iter_mut().zip(x_rest.iter_mut()).zip(values) {
            (*x, *d) = (*n, *o);
        }
    }
}

/// One row of the backward's `dL/dx = ((g − mean_g) − x̂·mean_gx)·scale` in place on
/// `g_row`, eight values at a time in `f32x8` (each operation rounded as the scalar
/// expression's), the row's last values as one more block ([`last_eight`]) read before
/// any is written, as [`normalize_row`].
#[inline(always)]
fn gradient_row(g_row: &mut [f32], xhat_row: &[f32], (mean_g, mean_gx, scale): (f32, f32, f32)) {
    let (a, b, k) = (
        f32x8::splat(mean_g),
        f32x8::splat(mean_gx),
        f32x8::splat(scale),
    );
    let block = |g: [f32; 8], x: [f32; 8]| ((f32x8::new(g) - a - f32x8::new(x) * b) * k).to_array();
    let tail_len = g_row.len() % 8;
    let tail = (tail_len != 0).then(|| block(last_eight(g_row), last_eight(xhat_row)));
    let (blocks, rest) = g_row.as_chunks_mut::<8>();
    let x_blocks = xhat_row.as_chunks::<8>().0;
    for (g, x) in blocks.iter_mut().zip(x_blocks) {
        *g = block(*g, *x);
    }
    if let Some(out) = tail {
        let from = 8_usize.saturating_sub(tail_len);
        rest.iter_mut()
            .zip(out.iter().skip(from))
            .for_each(|(d, v)| *d = *v);
    }
}

/// The last eight floats of `row`; a row shorter than eight zero-padded in front, so
/// that its values are the last lanes either way (the lanes a row's tail is read from).
#[inline(always)]
fn last_eight(row: &[f32]) -> [f32; 8] {
    let start = row.len().saturating_sub(8);
    if let Some(last) = row.get(start..).and_then(<[f32]>::first_chunk::<8>) {
        return *last;
    }
    let mut lanes = [0.0; 8];
    let from = 8_usize.saturating_sub(row.len());
    let slots = lanes.get_mut(from..).unwrap_or_default();
    slots.iter_mut().zip(row).for_each(|(d, v)| *d = *v);
    lanes
}

/// Channels whose sums over positions run interleaved in [`channel_sums`] and
/// [`gradient_sums`]: each channel's sum is one dependent chain (samples ascending, then
/// positions), so one channel at a time waits out the add's latency at every element;
/// four independent chains fill the pipeline. The order within each chain is unchanged.
const INTERLEAVE: usize = 4;

/// `sums[c] += term(k_c, x[s, c, t])` over samples `s` ascending, then positions `t`
/// ascending, for every channel `c` of the batch `x` (`[N, C, len]`, `C = sums.len()`;
/// shapes checked by the caller), with `k_c = per_channel[c]` (0 without it).
/// [`INTERLEAVE`] channels at a time.
fn channel_sums(
    x: &[f32],
    len: usize,
    sums: &mut [f32],
    per_channel: Option<&[f32]>,
    term: impl Fn(f32, f32) -> f32,
) {
    let channels = sums.len();
    let sample_len = channels.saturating_mul(len);
    let mut c0 = 0_usize;
    for block in pieces_mut(sums, INTERLEAVE) {
        let mut k = [0.0_f32; INTERLEAVE];
        if let Some(values) = per_channel.and_then(|v| v.get(c0..)) {
            k.iter_mut().zip(values).for_each(|(k, v)| *k = *v);
        }
        let start = c0.saturating_mul(len);
        if let Ok(acc) = <&mut [f32; INTERLEAVE]>::try_from(&mut *block) {
            let [k0, k1, k2, k3] = k;
            let [mut a0, mut a1, mut a2, mut a3] = *acc;
            for sample in pieces(x, sample_len) {
                let rows = sample.get(start..).unwrap_or_default();
                let mut rows = pieces(rows, len);
                let [r0, r1, r2, r3]: [&[f32]; INTERLEAVE] =
                    core::array::from_fn(|_| rows.next().unwrap_or_default());
                for (((v0, v1), v2), v3) in r0.iter().zip(r1).zip(r2).zip(r3) {
                    a0 += term(k0, *v0);
                    a1 += term(k1, *v1);
                    a2 += term(k2, *v2);
                    a3 += term(k3, *v3);
                }
            }
            *acc = [a0, a1, a2, a3];
        } else {
            // The last channels, fewer than a block: one at a time.
            for ((sum, k), c) in block.iter_mut().zip(k).zip(0_usize..) {
                let row_start = start.saturating_add(c.saturating_mul(len));
                for sample in pieces(x, sample_len) {
                    let row = sample.get(row_start..).unwrap_or_default();
                    for v in row.iter().take(len) {
                        *sum += term(k, *v);
                    }
                }
            }
        }
        c0 = c0.saturating_add(INTERLEAVE);
    }
}

/// The backward's sums, `sum_g[c] += g` and `sum_gx[c] += g·x̂` over samples ascending,
/// then positions ascending (`grad` and `normalized` are `[N, C, len]`, `C =
/// sum_g.len()`; shapes checked by the caller), [`INTERLEAVE`] channels at a time.
fn gradient_sums(
    grad: &[f32],
    normalized: &[f32],
    len: usize,
    sum_g: &mut [f32],
    sum_gx: &mut [f32],
) {
    let channels = sum_g.len();
    let sample_len = channels.saturating_mul(len);
    let mut c0 = 0_usize;
    let samples = || pieces(grad, sample_len).zip(pieces(normalized, sample_len));
    for (block_g, block_gx) in pieces_mut(sum_g, INTERLEAVE).zip(pieces_mut(sum_gx, INTERLEAVE)) {
        let start = c0.saturating_mul(len);
        let full = (
            <&mut [f32; INTERLEAVE]>::try_from(&mut *block_g),
            <&mut [f32; INTERLEAVE]>::try_from(&mut *block_gx),
        );
        if let (Ok(acc_g), Ok(acc_gx)) = full {
            let [mut g0, mut g1, mut g2, mut g3] = *acc_g;
            let [mut h0, mut h1, mut h2, mut h3] = *acc_gx;
            for (g_sample, xhat_sample) in samples() {
                let mut g_rows = pieces(g_sample.get(start..).unwrap_or_default(), len);
                let mut x_rows = pieces(xhat_sample.get(start..).unwrap_or_default(), len);
                let [r0, r1, r2, r3]: [&[f32]; INTERLEAVE] =
                    core::array::from_fn(|_| g_rows.next().unwrap_or_default());
                let [x0, x1, x2, x3]: [&[f32]; INTERLEAVE] =
                    core::array::from_fn(|_| x_rows.next().unwrap_or_default());
                let lanes = r0.iter().zip(x0).zip(r1.iter().zip(x1));
                let lanes = lanes.zip(r2.iter().zip(x2)).zip(r3.iter().zip(x3));
                for ((((a0, b0), (a1, b1)), (a2, b2)), (a3, b3)) in lanes {
                    g0 += *a0;
                    h0 += *a0 * *b0;
                    g1 += *a1;
                    h1 += *a1 * *b1;
                    g2 += *a2;
                    h2 += *a2 * *b2;
                    g3 += *a3;
                    h3 += *a3 * *b3;
                }
            }
            *acc_g = [g0, g1, g2, g3];
            *acc_gx = [h0, h1, h2, h3];
        } else {
            let sums = block_g.iter_mut().zip(block_gx.iter_mut()).zip(0_usize..);
            for ((sg, sgx), c) in sums {
                let row_start = start.saturating_add(c.saturating_mul(len));
                for (g_sample, xhat_sample) in samples() {
                    let g_row = g_sample.get(row_start..).unwrap_or_default();
                    let x_row = xhat_sample.get(row_start..).unwrap_or_default();
                    for (g, xhat) in g_row.iter().zip(x_row).take(len) {
                        *sg += *g;
                        *sgx += *g * *xhat;
                    }
                }
            }
        }
        c0 = c0.saturating_add(INTERLEAVE);
    }
}

/// Running sums per channel of the SIMD twin's sums along positions
/// ([`BatchNorm1d::forward_train_with`]): position `t` of every sample goes to lane
/// `t mod SEQUENCE_SUM_LANES`, samples ascending. Four vectors of eight lanes, four
/// independent chains: a row's last, partial block is added as a whole block with the
/// lanes past the row masked to `+0`. The lanes are added in a fixed order at the end
/// (`reduce_lanes`), so the sums are the same bits on every build.
pub const SEQUENCE_SUM_LANES: usize = 32;

/// A block of [`SEQUENCE_SUM_LANES`] floats.
type LaneBlock = [f32; SEQUENCE_SUM_LANES];

/// A lane sum's running sums: lane `l` is `acc[l / 8]`'s lane `l mod 8`.
type LaneSums = [f32x8; SEQUENCE_SUM_LANES / 8];

/// A block as lane vectors.
#[inline(always)]
fn lanes(block: &LaneBlock) -> LaneSums {
    let (parts, _) = block.as_chunks::<8>();
    core::array::from_fn(|i| f32x8::new(parts.get(i).copied().unwrap_or_default()))
}

/// `acc[l] += term(block[l])` where `keep[l]` has all bits set, `+0` where it is 0 (the
/// bits masked, so whatever a dropped lane read, even a NaN, adds nothing). Explicit
/// lane vectors: with plain arrays LLVM turned the mask into scalar integer `and`s.
#[inline(always)]
fn add_block(
    acc: &mut LaneSums,
    block: &LaneBlock,
    keep: &LaneSums,
    term: impl Fn(f32x8) -> f32x8,
) {
    for ((a, v), k) in acc.iter_mut().zip(lanes(block)).zip(keep) {
        *a += term(v) & *k;
    }
}

/// Lane masks for rows of `len` positions: all lanes, and the first `len mod`
/// [`SEQUENCE_SUM_LANES`] (the last, partial block of a row).
fn lane_masks(len: usize) -> (LaneSums, LaneSums) {
    let rest = len % SEQUENCE_SUM_LANES;
    let mut last = [0.0_f32; SEQUENCE_SUM_LANES];
    last.iter_mut().take(rest).for_each(|k| *k = KEEP);
    (lanes(&[KEEP; SEQUENCE_SUM_LANES]), lanes(&last))
}

/// The row of `len` positions at the start of `from` (the rest of the batch) as whole
/// blocks: its full blocks, then, when `len` is not a multiple of the lanes, the block
/// holding its last positions, read past the row's end (the next row's values, masked
/// off by the caller) or, at the end of the batch, copied into `padded` and
/// zero-padded.
#[inline(always)]
fn row_blocks<'a>(
    from: &'a [f32],
    len: usize,
    padded: &'a mut LaneBlock,
) -> (&'a [LaneBlock], Option<&'a LaneBlock>) {
    let full = len / SEQUENCE_SUM_LANES;
    let (blocks, _) = from.as_chunks::<SEQUENCE_SUM_LANES>();
    let head = blocks.get(..full).unwrap_or(blocks);
    if len.is_multiple_of(SEQUENCE_SUM_LANES) {
        return (head, None);
    }
    if let Some(last) = blocks.get(full) {
        return (head, Some(last));
    }
    let start = full.saturating_mul(SEQUENCE_SUM_LANES);
    let part = from.get(start..len).unwrap_or_default();
    padded.fill(0.0);
    padded.iter_mut().zip(part).for_each(|(p, v)| *p = *v);
    (head, Some(padded))
}

/// The lanes of [`add_block`] added in a fixed order: the four vectors of eight lanes
/// pairwise, `(v0 + v1) + (v2 + v3)`, then the eight lanes left to right.
#[inline(always)]
fn reduce_lanes(acc: &LaneSums) -> f32 {
    let [v0, v1, v2, v3] = *acc;
    let pairs = ((v0 + v1) + (v2 + v3)).to_array();
    pairs.iter().fold(0.0, |sum, l| sum + *l)
}

/// Channels whose lane sums ([`lane_channel_sums`], [`lane_gradient_sums`]) run
/// together, sample after sample: the batch is read in its memory order (a block's rows
/// of one sample are contiguous) instead of one channel's rows `C·T` floats apart, with
/// the running sums on the stack (`32 × 32` floats, 4 KiB, per sum).
const LANE_SUM_CHANNELS: usize = 32;

/// [`channel_sums`] in lanes along positions (the SIMD twin's order: lane
/// `t mod SEQUENCE_SUM_LANES` takes position `t`, samples ascending, then
/// [`reduce_lanes`]): `sums[c] += Σ term(k_c, x[s, c, t])`. Stack: 4 KiB of running sums.
fn lane_channel_sums(x: &[f32], len: usize, sums: &mut [f32], per_channel: Option<&[f32]>) {
    let sample_len = sums.len().saturating_mul(len).max(1);
    let (all, last_mask) = lane_masks(len);
    let mut c0 = 0_usize;
    for block in pieces_mut(sums, LANE_SUM_CHANNELS) {
        let mut k = [0.0_f32; LANE_SUM_CHANNELS];
        if let Some(values) = per_channel.and_then(|v| v.get(c0..)) {
            k.iter_mut().zip(values).for_each(|(k, v)| *k = *v);
        }
        let mut acc = [[f32x8::ZERO; SEQUENCE_SUM_LANES / 8]; LANE_SUM_CHANNELS];
        let mut padded = [0.0_f32; SEQUENCE_SUM_LANES];
        let mut at = c0.saturating_mul(len);
        while at < x.len() {
            let mut row_at = at;
            for (acc, k) in acc.iter_mut().zip(k).take(block.len()) {
                let from = x.get(row_at..).unwrap_or_default();
                let (blocks, last) = row_blocks(from, len, &mut padded);
                let k = f32x8::splat(k);
                let squares = per_channel.is_some();
                let term = |v: f32x8| {
                    if squares {
                        let deviation = v - k;
                        deviation * deviation
                    } else {
                        v
                    }
                };
                for b in blocks {
                    add_block(acc, b, &all, term);
                }
                if let Some(b) = last {
                    add_block(acc, b, &last_mask, term);
                }
                row_at = row_at.saturating_add(len);
            }
            at = at.saturating_add(sample_len);
        }
        for (sum, acc) in block.iter_mut().zip(&acc) {
            *sum += reduce_lanes(acc);
        }
        c0 = c0.saturating_add(LANE_SUM_CHANNELS);
    }
}

/// [`gradient_sums`] in lanes along positions, as [`lane_channel_sums`]. Stack: 8 KiB
/// of running sums.
fn lane_gradient_sums(
    grad: &[f32],
    normalized: &[f32],
    len: usize,
    sum_g: &mut [f32],
    sum_gx: &mut [f32],
) {
    let sample_len = sum_g.len().saturating_mul(len).max(1);
    let (all, last_mask) = lane_masks(len);
    let end = grad.len().min(normalized.len());
    let mut c0 = 0_usize;
    let blocks = pieces_mut(sum_g, LANE_SUM_CHANNELS).zip(pieces_mut(sum_gx, LANE_SUM_CHANNELS));
    for (block_g, block_gx) in blocks {
        let mut acc_g = [[f32x8::ZERO; SEQUENCE_SUM_LANES / 8]; LANE_SUM_CHANNELS];
        let mut acc_gx = [[f32x8::ZERO; SEQUENCE_SUM_LANES / 8]; LANE_SUM_CHANNELS];
        let (mut g_padded, mut x_padded) = ([0.0; SEQUENCE_SUM_LANES], [0.0; SEQUENCE_SUM_LANES]);
        let mut at = c0.saturating_mul(len);
        while at < end {
            let mut row_at = at;
            let accs = acc_g.iter_mut().zip(acc_gx.iter_mut()).take(block_g.len());
            for (acc_g, acc_gx) in accs {
                let g_from = grad.get(row_at..).unwrap_or_default();
                let x_from = normalized.get(row_at..).unwrap_or_default();
                let (g_blocks, g_last) = row_blocks(g_from, len, &mut g_padded);
                let (x_blocks, x_last) = row_blocks(x_from, len, &mut x_padded);
                for (g, x) in g_blocks.iter().zip(x_blocks) {
                    add_block2(acc_g, acc_gx, (g, x), &all);
                }
                if let (Some(g), Some(x)) = (g_last, x_last) {
                    add_block2(acc_g, acc_gx, (g, x), &last_mask);
                }
                row_at = row_at.saturating_add(len);
            }
            at = at.saturating_add(sample_len);
        }
        for ((sg, sgx), (acc_g, acc_gx)) in block_g
            .iter_mut()
            .zip(block_gx.iter_mut())
            .zip(acc_g.iter().zip(&acc_gx))
        {
            *sg += reduce_lanes(acc_g);
            *sgx += reduce_lanes(acc_gx);
        }
        c0 = c0.saturating_add(LANE_SUM_CHANNELS);
    }
}

/// [`add_block`] for the backward's two sums: `g` into `acc_g`, `g·x̂` into `acc_gx`.
#[inline(always)]
fn add_block2(
    acc_g: &mut LaneSums,
    acc_gx: &mut LaneSums,
    (g, x): (&LaneBlock, &LaneBlock),
    keep: &LaneSums,
) {
    let sums = acc_g.iter_mut().zip(acc_gx.iter_mut());
    for ((a, b), ((g, x), k)) in sums.zip(lanes(g).into_iter().zip(lanes(x)).zip(keep)) {
        *a += g & *k;
        *b += (g * x) & *k;
    }
}

/// Channels per block of the feature paths' per-channel factors (stack arrays).
const CHANNEL_BLOCK: usize = 64;

/// [`BatchNorm1d::forward_train`] for `T = 1` (`y` is `[N, C]`, checked by the caller):
/// the same sums in the same order (per channel, samples ascending) and the same
/// expressions, so the same bits, but every loop runs along a sample's row of channels,
/// which the compiler vectorises (channel-major loops over one-element rows did not).
fn features_forward(
    p: &Params<'_>,
    eps: f32,
    count: f32,
    y: &mut [f32],
    normalized: &mut [f32],
    s: Stats<'_>,
) {
    let c = s.mean.len();
    s.mean.fill(0.0);
    for sample in pieces(y, c) {
        s.mean.iter_mut().zip(sample).for_each(|(m, x)| *m += *x);
    }
    s.mean.iter_mut().for_each(|m| *m /= count);
    s.var_sum.fill(0.0);
    for sample in pieces(y, c) {
        for ((v, m), x) in s.var_sum.iter_mut().zip(s.mean.iter()).zip(sample) {
            let deviation = *x - *m;
            *v += deviation * deviation;
        }
    }
    for (inv, v) in s.inv_std.iter_mut().zip(s.var_sum.iter()) {
        *inv = 1.0 / libm::sqrtf(*v / count + eps);
    }
    // γ and β by blocks of channels (1 and 0 when not affine, as the general path).
    let mut c0 = 0;
    while c0 < c {
        let c1 = c0.saturating_add(CHANNEL_BLOCK).min(c);
        let mut gamma = [1.0_f32; CHANNEL_BLOCK];
        let mut beta = [0.0_f32; CHANNEL_BLOCK];
        if let Some(g) = p.gamma.and_then(|g| g.get(c0..c1)) {
            gamma.iter_mut().zip(g).for_each(|(d, v)| *d = *v);
        }
        if let Some(b) = p.beta.and_then(|b| b.get(c0..c1)) {
            beta.iter_mut().zip(b).for_each(|(d, v)| *d = *v);
        }
        let mean = s.mean.get(c0..c1).unwrap_or_default();
        let inv_std = s.inv_std.get(c0..c1).unwrap_or_default();
        for (sample, xhat_sample) in pieces_mut(y, c).zip(pieces_mut(normalized, c)) {
            let row = sample.get_mut(c0..c1).unwrap_or_default();
            let xhat_row = xhat_sample.get_mut(c0..c1).unwrap_or_default();
            let factors = mean.iter().zip(inv_std).zip(gamma.iter().zip(&beta));
            for ((v, xhat), ((m, inv), (g, b))) in row.iter_mut().zip(xhat_row).zip(factors) {
                *xhat = (*v - *m) * *inv;
                *v = *xhat * *g + *b;
            }
        }
        c0 = c1;
    }
}

/// [`BatchNorm1d::backward`] for `T = 1` (`grad` is `[N, C]`, checked by the caller):
/// the same sums, order and expressions as the general path (the same bits), along rows
/// of channels. `d_gamma_beta` is the layer's gradient layout for an affine layer.
fn features_backward(
    p: &Params<'_>,
    count: f32,
    grad: &mut [f32],
    normalized: &[f32],
    s: Stats<'_>,
    d_gamma_beta: Option<&mut [f32]>,
) {
    let c = s.sum_g.len();
    s.sum_g.fill(0.0);
    s.sum_gx.fill(0.0);
    for (g_row, xhat_row) in pieces(grad, c).zip(pieces(normalized, c)) {
        let sums = s.sum_g.iter_mut().zip(s.sum_gx.iter_mut());
        for ((sg, sgx), (g, xhat)) in sums.zip(g_row.iter().zip(xhat_row)) {
            *sg += *g;
            *sgx += *g * *xhat;
        }
    }
    if let Some(grads) = d_gamma_beta {
        let (d_gamma, rest) = grads.split_at_mut_checked(c).unwrap_or_default();
        let d_beta = rest.get_mut(..c).unwrap_or_default();
        d_gamma
            .iter_mut()
            .zip(s.sum_gx.iter())
            .for_each(|(d, v)| *d += *v);
        d_beta
            .iter_mut()
            .zip(s.sum_g.iter())
            .for_each(|(d, v)| *d += *v);
    }
    // dL/dx = (g − Σg/n − x̂·Σ(g·x̂)/n)·γ/σ, each factor computed once per channel block
    // (the same values the general path computes per element).
    let mut c0 = 0;
    while c0 < c {
        let c1 = c0.saturating_add(CHANNEL_BLOCK).min(c);
        let mut mean_g = [0.0_f32; CHANNEL_BLOCK];
        let mut mean_gx = [0.0_f32; CHANNEL_BLOCK];
        let mut scale = [0.0_f32; CHANNEL_BLOCK];
        let per_channel = s.sum_g.get(c0..c1).unwrap_or_default().iter();
        let per_channel = per_channel
            .zip(s.sum_gx.get(c0..c1).unwrap_or_default())
            .zip(s.inv_std.get(c0..c1).unwrap_or_default())
            .zip(c0..c1);
        let slots = mean_g
            .iter_mut()
            .zip(mean_gx.iter_mut())
            .zip(scale.iter_mut());
        for (((mg, mgx), sc), (((sg, sgx), inv), channel)) in slots.zip(per_channel) {
            let gamma = p.gamma.and_then(|v| v.get(channel)).copied().unwrap_or(1.0);
            (*mg, *mgx) = (*sg / count, *sgx / count);
            *sc = *inv * gamma;
        }
        for (g_sample, xhat_sample) in pieces_mut(grad, c).zip(pieces(normalized, c)) {
            let g_row = g_sample.get_mut(c0..c1).unwrap_or_default();
            let xhat_row = xhat_sample.get(c0..c1).unwrap_or_default();
            let factors = mean_g.iter().zip(&mean_gx).zip(&scale);
            for ((g, xhat), ((a, b), sc)) in g_row.iter_mut().zip(xhat_row).zip(factors) {
                *g = (*g - *a - *xhat * *b) * *sc;
            }
        }
        c0 = c1;
    }
}

/// The per-channel vectors of a saved buffer's tail (`5·C` floats, checked by the
/// caller; shorter gives shorter vectors, never a panic).
fn split_stats(stats: &mut [f32], c: usize) -> Stats<'_> {
    let mut parts = pieces_mut(stats, c);
    let mut next = || parts.next().unwrap_or_default();
    Stats {
        mean: next(),
        var_sum: next(),
        inv_std: next(),
        sum_g: next(),
        sum_gx: next(),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::{
        channel_sums, gradient_sums, lane_channel_sums, lane_gradient_sums, normalize_row,
    };
    use crate::kernels::sum_error_bound;
    use std::vec::Vec;

    /// Deterministic values in about `[-1, 1)` with a per-seed offset.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed.wrapping_mul(40_503));
                (h >> 8) as f32 / (1 << 23) as f32 - 1.0 + 0.25 * seed as f32
            })
            .collect()
    }

    /// `Σ|term|` per channel, in f64.
    fn abs_sums(x: &[f32], c: usize, len: usize, term: impl Fn(usize, f32) -> f32) -> Vec<f64> {
        let mut out = std::vec![0.0_f64; c];
        for (i, v) in x.iter().enumerate() {
            let ch = (i / len) % c;
            out[ch] += f64::from(term(ch, *v).abs());
        }
        out
    }

    /// The lane sums over positions are within `sum_error_bound(N·T, Σ|term|)` of the
    /// scalar order's, channel by channel: the mean, the squared deviations and the
    /// backward's `Σg`, `Σg·x̂`. Row lengths around the lanes' blocks of 8 and 32
    /// (2, 7, 8, 19, 26, 32, 33, 61, 121) and channel counts not a multiple of the
    /// scalar path's 4. A lane sum that dropped or repeated a position, or a channel's
    /// row cut at the wrong place, is off by far more than the bound.
    #[test]
    fn lane_sums_are_within_the_bound_of_the_scalar_order() {
        for (n, c, len) in [
            (3, 5, 2),
            (4, 3, 7),
            (2, 6, 8),
            (9, 4, 19),
            (5, 7, 26),
            (3, 2, 32),
            (4, 3, 33),
            (2, 5, 61),
            (3, 3, 121),
        ] {
            let x = values(n * c * len, 1);
            let g = values(n * c * len, 2);
            let k: Vec<f32> = values(c, 3);
            let square = |m: f32, v: f32| (v - m) * (v - m);
            let terms = n * len;
            let check = |got: &[f32], want: &[f32], abs: &[f64], what: &str| {
                for ((a, b), s) in got.iter().zip(want).zip(abs) {
                    let diff = f64::from((a - b).abs());
                    let bound = sum_error_bound(terms, *s);
                    assert!(
                        diff <= bound,
                        "{what}, n {n}, C {c}, T {len}: {a} vs {b}, bound {bound}"
                    );
                }
            };
            let mut plain = std::vec![0.0; c];
            let mut lanes = std::vec![0.0; c];
            channel_sums(&x, len, &mut plain, Some(&k), square);
            lane_channel_sums(&x, len, &mut lanes, Some(&k));
            let abs = abs_sums(&x, c, len, |ch, v| square(k[ch], v));
            check(&lanes, &plain, &abs, "squares");
            let mut plain = std::vec![0.0; c];
            let mut lanes = std::vec![0.0; c];
            channel_sums(&x, len, &mut plain, None, |_, v| v);
            lane_channel_sums(&x, len, &mut lanes, None);
            check(&lanes, &plain, &abs_sums(&x, c, len, |_, v| v), "sum");
            let (mut pg, mut pgx) = (std::vec![0.0; c], std::vec![0.0; c]);
            let (mut lg, mut lgx) = (std::vec![0.0; c], std::vec![0.0; c]);
            gradient_sums(&g, &x, len, &mut pg, &mut pgx);
            lane_gradient_sums(&g, &x, len, &mut lg, &mut lgx);
            let gx: Vec<f32> = g.iter().zip(&x).map(|(a, b)| a * b).collect();
            check(&lg, &pg, &abs_sums(&g, c, len, |_, v| v), "Σg");
            check(&lgx, &pgx, &abs_sums(&gx, c, len, |_, v| v), "Σg·x̂");
        }
    }

    /// A row of the backward's `dL/dx` in lanes equals the scalar expression, bit for
    /// bit: rows of 1 to 26 values, special values among them.
    #[test]
    fn gradient_row_equals_the_scalar_expression() {
        let specials = [
            -0.0,
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NAN,
            -1e-30,
            0.0,
        ];
        for len in 1..=26 {
            let mut g = values(len, 3 * len as u32);
            for (v, s) in g
                .iter_mut()
                .step_by(4)
                .zip(specials.iter().cycle().skip(len))
            {
                *v = *s;
            }
            let xhat = values(len, 5 * len as u32 + 1);
            let (sg, sgx, count, inv, gamma) = (0.75_f32, -1.25_f32, 7.0_f32, 1.5_f32, 0.625_f32);
            let want: Vec<f32> = g
                .iter()
                .zip(&xhat)
                .map(|(g, x)| (*g - sg / count - *x * (sgx / count)) * (inv * gamma))
                .collect();
            let mut got = g.clone();
            super::gradient_row(&mut got, &xhat, (sg / count, sgx / count, inv * gamma));
            let bits = |v: &[f32]| {
                v.iter()
                    .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&got), bits(&want), "len {len}");
        }
    }

    /// A row's normalisation in lanes equals the scalar expressions, bit for bit, with
    /// and without the ReLU: rows of 1 to 26 values (whole blocks, a last partial one
    /// read as the row's last eight, rows shorter than a block), values that the ReLU
    /// zeroes, keeps (`−0`, `−∞`, NaN) and passes.
    #[test]
    fn normalize_row_equals_the_scalar_expressions() {
        let specials = [
            -0.0,
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NAN,
            -1e-30,
            0.0,
        ];
        for len in 1..=26 {
            let mut row = values(len, len as u32);
            for (v, s) in row
                .iter_mut()
                .step_by(3)
                .zip(specials.iter().cycle().skip(len))
            {
                *v = *s;
            }
            let (mean, inv, gamma, beta) = (0.125, 1.75, -0.5, 0.03125);
            let scalar = |v: f32, relu: bool| {
                let xhat = (v - mean) * inv;
                let out = xhat * gamma + beta;
                (
                    xhat,
                    if relu {
                        crate::kernels::relu_keeping_non_finite(out)
                    } else {
                        out
                    },
                )
            };
            for relu in [false, true] {
                let mut got = row.clone();
                let mut xhat = std::vec![f32::NAN; len];
                if relu {
                    normalize_row::<true>(&mut got, &mut xhat, (mean, inv), (gamma, beta));
                } else {
                    normalize_row::<false>(&mut got, &mut xhat, (mean, inv), (gamma, beta));
                }
                let want: Vec<(f32, f32)> = row.iter().map(|v| scalar(*v, relu)).collect();
                let bits = |v: f32| if v.is_nan() { u32::MAX } else { v.to_bits() };
                for (i, ((x, y), (wx, wy))) in xhat.iter().zip(&got).zip(&want).enumerate() {
                    assert_eq!(
                        (bits(*x), bits(*y)),
                        (bits(*wx), bits(*wy)),
                        "len {len}, {i}, relu {relu}"
                    );
                }
                let both = got.iter().any(|v| v.to_bits() == 0) && got.iter().any(|v| *v > 0.0);
                assert!(
                    !relu || len < 8 || both,
                    "len {len}: the ReLU zeroed nothing or all"
                );
            }
        }
    }
}
