//! `nn.Conv1d` (dilation 1, groups 1): `[N, C_in, T] → [N, C_out, T_out]`,
//! `y[o, t] = b[o] + Σ_{c, j} W[o, c, j]·x[c, t·s + j − left]` (zero outside `x`), with
//! `T_out = ⌊(T + left + right − k)/s⌋ + 1`.
//!
//! Padding: `Zeros(p)` pads `p` zeros on both sides; `Same` (PyTorch's
//! `padding='same'`, stride 1 only) pads `k − 1` in all, `left = ⌊(k − 1)/2⌋` and
//! `right` the rest (for an even kernel one more on the right: checked in PyTorch 2.15,
//! `F.conv1d(x, w, padding='same')` with `k = 8` is `x` shifted by 3).
//!
//! # How it runs
//! As matrix products over a window buffer ("im2col", as CMSIS-NN's
//! `arm_convolve_1_x_n_s8` does), through the kernel twin's products (SIMD on `wide`
//! lanes, or the scalar twin), for a group of `g` samples at a time (as many as the
//! scratch holds) so that the products are `g·T_out` columns wide:
//! - forward: with windows of at least 64 floats (`CORRELATE_WINDOW`) and a scratch of at
//!   least [`correlate_pack_len`], [`correlate`] (the gather folded into the packing of
//!   the product, the same sums in the same order as below, so the same bits); else
//!   `col[c·k + j, s·T_out + t] = x_s[c, t·s + j − left]` (`C_in·k × g·T_out`),
//!   then `Y = b + W·col` ([`Kernels::gemm_nn_add`], `W` as `C_out × C_in·k`) into the
//!   scratch, copied to each sample's `[C_out, T_out]`: each output sums from its bias
//!   over `(c, j)` ascending;
//! - weight gradient: where the twin reads windows in place (the SIMD twin with a kernel
//!   of 8, stride 1 and no window over the padding: every `har-conv` convolution),
//!   [`correlate_weights_add`] over the whole batch, no window matrix; else the group's
//!   `dY` side by side (`C_out × g·T_out`) and its windows transposed one sample after
//!   the other (`g·T_out × C_in·k`), then `dW += dY·colᵀ` ([`Kernels::gemm_nn_add`]).
//!   Either way one running sum per weight over the samples and `t` ascending, so the
//!   same bits; `db += Σ_t dY` (samples, then `t` ascending);
//! - input gradient: `dcol = Wᵀ·dY` ([`Kernels::gemm_tn_add`] onto zeros, written without a zeroing pass; `C_in·k × g·T_out`), then
//!   added back to the positions it came from ("col2im"), `(c, j)` then `t` ascending
//!   (with stride 1 each element of `dx` summed in registers over `j` ascending and stored
//!   once: the same order, so the same bits).
//!
//! Every sum runs in the same order whatever `g`, so the group size never changes a
//! bit of the results. The twins differ only in FMA rounding: an output within
//! [`sum_error_bound`](crate::kernels::sum_error_bound)`(C_in·k + 1, |b| + Σ|W·x|)`,
//! the gradients likewise over their own terms.
//!
//! # Memory
//! A caller scratch of at least [`Conv1d::scratch_len`] floats, `(C_in·k + C_out)·T_out`
//! (one sample's windows and outputs), for any batch; `g` times that runs `g` samples
//! per product (faster on wide lanes). The backward reuses it for `colᵀ`, then `dcol`,
//! and the gathered `dY`. Nothing is saved by the training forward: the backward
//! re-gathers the windows from `x`.

use super::{Bias, OVERFLOW, ParamTensors, Shape, check_batch, check_len, nonzero};
use crate::error::{SslError, SslResult};
use crate::kernels::correlate::{
    Correlation, correlate, correlate_pack_len, correlate_weights_add, weights_in_place,
};
use crate::kernels::{KEEP, Kernels, gemm_tn_set, pieces, pieces_mut};
use wide::f32x8;

/// Windows of at least this many floats (`C_in·k`) run the forward through
/// [`correlate`], when the scratch holds its [`correlate_pack_len`]: the window gather
/// folded into the product's packing. Shorter windows (`har-conv`'s first convolution,
/// 48) were slower that way (BENCHMARKS.md, "The `har-conv` step, second pass"): each
/// register block's set-up and transposed stores are shared by few products.
const CORRELATE_WINDOW: usize = 64;

/// The kernel length whose window runs [`Conv1d::windows_transposed`] copies as one
/// fixed-size array (`har-conv`'s 8).
const RUN: usize = 8;

/// Zero padding of a convolution's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// This many zeros on each side (`padding=p`).
    Zeros(usize),
    /// PyTorch's `padding='same'`: `T_out = T`, stride 1 only.
    Same,
}

/// A 1-D convolution, `nn.Conv1d(c_in, c_out, kernel, stride, padding, bias)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv1d {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel length `k`.
    pub kernel: usize,
    /// Stride `s`.
    pub stride: usize,
    /// Zero padding.
    pub padding: Padding,
    /// The bias, if any, and whether it trains.
    pub bias: Bias,
}

/// A checked call: its sizes, the weights and the bias.
type Checked<'a> = (Dims, &'a [f32], Option<&'a [f32]>);

/// The sizes of one call, checked.
#[derive(Debug, Clone, Copy)]
struct Dims {
    /// Input length `T`.
    len: usize,
    /// Output length `T_out`.
    out_len: usize,
    /// Zeros before the input.
    left: usize,
    /// `C_in·k`: a window's length, the weights' row length.
    window: usize,
    /// `C_in·T`.
    in_size: usize,
    /// `C_out·T_out`.
    out_size: usize,
    /// `C_out·C_in·k`.
    weight_len: usize,
    /// `(C_in·k + C_out)·T_out`: one sample's windows and outputs.
    scratch_len: usize,
}

impl Conv1d {
    /// The zeros before and after the input.
    ///
    /// # Errors
    /// `InvalidParameter` (`"padding"`) for `Same` with a stride other than 1.
    pub fn pads(&self) -> SslResult<(usize, usize)> {
        match self.padding {
            Padding::Zeros(p) => Ok((p, p)),
            Padding::Same if self.stride == 1 => {
                let total = self.kernel.saturating_sub(1);
                let left = total / 2;
                Ok((left, total - left))
            }
            Padding::Same => Err(SslError::InvalidParameter {
                name: "padding",
                reason: "'same' needs stride 1",
            }),
        }
    }

    fn dims(&self, input: Shape) -> SslResult<Dims> {
        nonzero(self.c_in, "c_in")?;
        nonzero(self.c_out, "c_out")?;
        nonzero(self.kernel, "kernel")?;
        nonzero(self.stride, "stride")?;
        let (left, right) = self.pads()?;
        let in_size = input.size()?;
        check_len(self.c_in, input.channels)?;
        let padded = input
            .len
            .checked_add(left)
            .and_then(|p| p.checked_add(right))
            .ok_or(OVERFLOW)?;
        let span = padded
            .checked_sub(self.kernel)
            .ok_or(SslError::InvalidParameter {
                name: "shape",
                reason: "padded input shorter than the kernel",
            })?;
        let out_len = (span / self.stride).checked_add(1).ok_or(OVERFLOW)?;
        let window = self.c_in.checked_mul(self.kernel).ok_or(OVERFLOW)?;
        let out_size = Shape::sequence(self.c_out, out_len).size()?;
        let weight_len = self.c_out.checked_mul(window).ok_or(OVERFLOW)?;
        let scratch_len = window
            .checked_add(self.c_out)
            .and_then(|rows| rows.checked_mul(out_len))
            .ok_or(OVERFLOW)?;
        Ok(Dims {
            len: input.len,
            out_len,
            left,
            window,
            in_size,
            out_size,
            weight_len,
            scratch_len,
        })
    }

    /// `[C_out, T_out]` for an input `[C_in, T]`.
    ///
    /// # Errors
    /// `InvalidParameter` (`"c_in"`, `"c_out"`, `"kernel"`, `"stride"`, `"padding"`,
    /// `"shape"`) for a zero size, `Same` with a stride other than 1, a padded input
    /// shorter than the kernel or an overflowing size; `DimensionMismatch { expected:
    /// c_in, got }` for another channel count.
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Bias, Shape, conv1d::{Conv1d, Padding}};
    /// let conv = Conv1d { c_in: 6, c_out: 32, kernel: 8, stride: 1,
    ///                     padding: Padding::Zeros(0), bias: Bias::None };
    /// assert_eq!(conv.output_shape(Shape::sequence(6, 128))?, Shape::sequence(32, 121));
    /// let same = Conv1d { padding: Padding::Same, ..conv };
    /// assert_eq!(same.output_shape(Shape::sequence(6, 128))?, Shape::sequence(32, 128));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn output_shape(&self, input: Shape) -> SslResult<Shape> {
        let dims = self.dims(input)?;
        Ok(Shape::sequence(self.c_out, dims.out_len))
    }

    /// `weight [c_out, c_in, kernel]`, then `bias [c_out]` when present (trainable
    /// unless frozen).
    #[must_use]
    pub fn params(&self) -> ParamTensors {
        let mut tensors = ParamTensors::NONE;
        tensors.push("weight", &[self.c_out, self.c_in, self.kernel], true);
        if self.bias.present() {
            tensors.push("bias", &[self.c_out], self.bias == Bias::Trainable);
        }
        tensors
    }

    /// Floats of scratch a call needs at least, whatever the batch: one sample's windows
    /// and outputs, `(C_in·k + C_out)·T_out`. A scratch of `g` times this runs `g`
    /// samples per matrix product (wider products, the same results bit for bit).
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape).
    pub fn scratch_len(&self, input: Shape) -> SslResult<usize> {
        Ok(self.dims(input)?.scratch_len)
    }

    /// Checks the layer, `params`, `x` (`n` samples) and the scratch.
    fn check<'a>(
        &self,
        params: &'a [f32],
        n: usize,
        input: Shape,
        x_len: usize,
        scratch_len: usize,
    ) -> SslResult<Checked<'a>> {
        let dims = self.dims(input)?;
        let bias_len = if self.bias.present() { self.c_out } else { 0 };
        let total = dims.weight_len.checked_add(bias_len).ok_or(OVERFLOW)?;
        check_len(total, params.len())?;
        check_batch(input, n, x_len)?;
        let needed = self.scratch_len(input)?;
        if scratch_len < needed {
            return Err(SslError::CapacityTooSmall {
                needed,
                capacity: scratch_len,
            });
        }
        let (weight, bias) = params.split_at_checked(dims.weight_len).unwrap_or_default();
        Ok((dims, weight, self.bias.present().then_some(bias)))
    }

    /// The forward pass of `n` samples (`x` is `n × C_in × T`, `y` is `n × C_out ×
    /// T_out`, overwritten), the windows in `scratch` ([`scratch_len`](Self::scratch_len)
    /// floats).
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape); `DimensionMismatch` when `params` is not
    /// [`params`](Self::params)'s total length or `x`, `y` not their lengths;
    /// `CapacityTooSmall` when `scratch` is shorter than
    /// [`scratch_len`](Self::scratch_len) (longer is fine); `InvalidParameter` (`"n"`)
    /// for `n = 0`. Nothing is written on error.
    ///
    /// # Examples
    /// ```
    /// use simsiam::kernels::Scalar;
    /// use simsiam::layers::{Bias, Shape, conv1d::{Conv1d, Padding}};
    /// let conv = Conv1d { c_in: 1, c_out: 1, kernel: 2, stride: 1,
    ///                     padding: Padding::Zeros(1), bias: Bias::Trainable };
    /// let params = [1.0, 10.0, 0.5]; // weight [[[1, 10]]], bias [0.5]
    /// let input = Shape::sequence(1, 3);
    /// let mut y = [0.0; 4];
    /// let mut scratch = vec![0.0; conv.scratch_len(input)?];
    /// conv.forward_eval::<Scalar>(&params, 1, input, &[1.0, 2.0, 3.0], &mut y, &mut scratch)?;
    /// assert_eq!(y, [10.5, 21.5, 32.5, 3.5]);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    #[allow(
        clippy::too_many_arguments,
        reason = "parameters, batch, shape, input, output, scratch"
    )]
    pub fn forward_eval<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> SslResult<()> {
        let (dims, weight, bias) = self.check(params, n, input, x.len(), scratch.len())?;
        check_batch(Shape::sequence(self.c_out, dims.out_len), n, y.len())?;
        let shape = self.correlation(&dims, n);
        if dims.window >= CORRELATE_WINDOW
            && correlate_pack_len(&shape).is_ok_and(|len| len <= scratch.len())
        {
            // The same sums in the same order as the windows and the product below.
            return correlate::<K>(&shape, weight, bias, x, y, scratch);
        }
        let group = samples_per_group(&dims, n, scratch.len());
        let group_len = dims.out_len.saturating_mul(group);
        let (col, outs) = scratch
            .split_at_mut_checked(dims.window.saturating_mul(group_len))
            .unwrap_or_default();
        let outs = outs
            .get_mut(..self.c_out.saturating_mul(group_len))
            .unwrap_or_default();
        let group_in = dims.in_size.saturating_mul(group);
        let group_out = dims.out_size.saturating_mul(group);
        for (x_group, y_group) in pieces(x, group_in).zip(pieces_mut(y, group_out)) {
            // The group's windows side by side: `col[c·k + j, s·T_out + t]`.
            let count = x_group.len().checked_div(dims.in_size).unwrap_or(0);
            let ld = dims.out_len.saturating_mul(count);
            let mut column = 0_usize;
            for x_sample in pieces(x_group, dims.in_size) {
                self.windows(
                    &dims,
                    x_sample,
                    col.get_mut(column..).unwrap_or_default(),
                    ld,
                );
                column = column.saturating_add(dims.out_len);
            }
            for (row, o) in pieces_mut(outs, ld).zip(0..self.c_out) {
                let start = bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0);
                row.fill(start);
            }
            // Y = b + W·col: [C_out × C_in·k]·[C_in·k × g·T_out].
            K::gemm_nn_add(
                self.c_out,
                ld,
                dims.window,
                weight,
                dims.window,
                col,
                ld,
                outs,
                ld,
            );
            // Row `o` of the product holds channel `o` of every sample of the group.
            for (row, o) in pieces(outs, ld).zip(0..self.c_out) {
                let at = o.saturating_mul(dims.out_len);
                for (part, y_sample) in
                    pieces(row, dims.out_len).zip(pieces_mut(y_group, dims.out_size))
                {
                    let dst = y_sample.get_mut(at..).unwrap_or_default();
                    dst.iter_mut().zip(part).for_each(|(d, v)| *d = *v);
                }
            }
        }
        Ok(())
    }

    /// The batch of correlations this layer runs on `n` samples.
    fn correlation(&self, dims: &Dims, n: usize) -> Correlation {
        Correlation {
            n,
            c_in: self.c_in,
            len: dims.len,
            c_out: self.c_out,
            kernel: self.kernel,
            stride: self.stride,
            left: dims.left,
            out_len: dims.out_len,
        }
    }

    /// The training forward: the same as [`forward_eval`](Self::forward_eval) (nothing
    /// is saved; the backward reads `x`).
    ///
    /// # Errors
    /// As [`forward_eval`](Self::forward_eval).
    #[allow(
        clippy::too_many_arguments,
        reason = "parameters, batch, shape, input, output, scratch"
    )]
    pub fn forward_train<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut [f32],
    ) -> SslResult<()> {
        self.forward_eval::<K>(params, n, input, x, y, scratch)
    }

    /// The backward pass of `n` samples: `grads` (the layer's parameter layout) gets
    /// `dW += Σ dY·colᵀ` and, for a trainable bias, `db += Σ dY`; `dx`, when given, is
    /// overwritten with `dL/dx` (`n × C_in × T`). `scratch` as for the forward.
    ///
    /// # Errors
    /// As [`forward_eval`](Self::forward_eval), with `dy` `n·C_out·T_out`, `grads` as
    /// long as `params` and `dx` as long as `x`. Nothing is written on error.
    ///
    /// # Examples
    /// ```
    /// use simsiam::kernels::Scalar;
    /// use simsiam::layers::{Bias, Shape, conv1d::{Conv1d, Padding}};
    /// let conv = Conv1d { c_in: 1, c_out: 1, kernel: 2, stride: 1,
    ///                     padding: Padding::Zeros(0), bias: Bias::Trainable };
    /// let (params, x, dy) = ([1.0, 10.0, 0.5], [1.0, 2.0, 3.0], [1.0, -1.0]);
    /// let input = Shape::sequence(1, 3);
    /// let (mut grads, mut dx) = ([0.0; 3], [0.0; 3]);
    /// let mut scratch = vec![0.0; conv.scratch_len(input)?];
    /// conv.backward::<Scalar>(&params, 1, input, &x, &dy, Some(&mut dx), &mut grads, &mut scratch)?;
    /// // dW = [1·1 − 1·2, 1·2 − 1·3], db = 0, dx = [1, 10 − 1, −10].
    /// assert_eq!((grads, dx), ([-1.0, -1.0, 0.0], [1.0, 9.0, -10.0]));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    #[allow(
        clippy::too_many_arguments,
        reason = "parameters, batch, shape, input, output gradient, input gradient, parameter gradients, scratch"
    )]
    pub fn backward<K: Kernels>(
        &self,
        params: &[f32],
        n: usize,
        input: Shape,
        x: &[f32],
        dy: &[f32],
        dx: Option<&mut [f32]>,
        grads: &mut [f32],
        scratch: &mut [f32],
    ) -> SslResult<()> {
        let (dims, weight, _) = self.check(params, n, input, x.len(), scratch.len())?;
        check_batch(Shape::sequence(self.c_out, dims.out_len), n, dy.len())?;
        check_len(params.len(), grads.len())?;
        if let Some(dx) = &dx {
            check_len(x.len(), dx.len())?;
        }
        let (d_weight, d_bias) = grads
            .split_at_mut_checked(dims.weight_len)
            .unwrap_or_default();
        let shape = self.correlation(&dims, n);
        // dW += Σ dY·windows read straight from `x`, where the twin does that.
        let weights_in_place = weights_in_place::<K>(&shape);
        if weights_in_place {
            correlate_weights_add::<K>(&shape, dy, x, d_weight)?;
        }
        let group = samples_per_group(&dims, n, scratch.len());
        let group_len = dims.out_len.saturating_mul(group);
        let (col, grads_t) = scratch
            .split_at_mut_checked(dims.window.saturating_mul(group_len))
            .unwrap_or_default();
        let group_in = dims.in_size.saturating_mul(group);
        let group_out = dims.out_size.saturating_mul(group);
        // The products below read `dY` side by side, unless `dW` is done and no `dx` wanted.
        let side_by_side = !weights_in_place || dx.is_some();
        let mut dx_groups = dx.map(|dx| pieces_mut(dx, group_in));
        for (x_group, dy_group) in pieces(x, group_in).zip(pieces(dy, group_out)) {
            let count = x_group.len().checked_div(dims.in_size).unwrap_or(0);
            let ld = dims.out_len.saturating_mul(count);
            let col = col
                .get_mut(..dims.window.saturating_mul(ld))
                .unwrap_or_default();
            let g = grads_t
                .get_mut(..self.c_out.saturating_mul(ld))
                .unwrap_or_default();
            // The group's output gradients side by side: `g[o, s·T_out + t]`.
            let mut column = 0_usize;
            for dy_sample in pieces(dy_group, dims.out_size) {
                if side_by_side {
                    let rows = pieces_mut(g, ld).zip(pieces(dy_sample, dims.out_len));
                    for (row, d_row) in rows {
                        let dst = row.get_mut(column..).unwrap_or_default();
                        dst.iter_mut().zip(d_row).for_each(|(d, v)| *d = *v);
                    }
                }
                if self.bias == Bias::Trainable {
                    for (d, row) in d_bias.iter_mut().zip(pieces(dy_sample, dims.out_len)) {
                        row.iter().for_each(|v| *d += *v);
                    }
                }
                column = column.saturating_add(dims.out_len);
            }
            if !weights_in_place {
                // dW += dY·colᵀ: [C_out × g·T_out]·[g·T_out × C_in·k], the samples'
                // windows transposed one after the other.
                for (x_sample, col_t) in pieces(x_group, dims.in_size)
                    .zip(pieces_mut(col, dims.window.saturating_mul(dims.out_len)))
                {
                    self.windows_transposed(&dims, x_sample, col_t);
                }
                K::gemm_nn_add(
                    self.c_out,
                    dims.window,
                    ld,
                    g,
                    ld,
                    col,
                    dims.window,
                    d_weight,
                    dims.window,
                );
            }
            let Some(dx_group) = dx_groups.as_mut().and_then(Iterator::next) else {
                continue;
            };
            // dcol = Wᵀ·dY: [C_in·k × C_out]·[C_out × g·T_out], W stored C_out × C_in·k;
            // written (the bits of a zeroed `dcol` added to) without a zeroing pass.
            gemm_tn_set::<K>(
                dims.window,
                ld,
                self.c_out,
                weight,
                dims.window,
                g,
                ld,
                col,
                ld,
            );
            self.add_windows_back(&dims, col, ld, dx_group);
        }
        Ok(())
    }

    /// `col[c·k + j, t] = x[c, t·s + j − left]` (0 outside `x`) for one sample, the
    /// rows `ld` apart (the first `T_out` floats of each).
    fn windows(&self, dims: &Dims, x: &[f32], col: &mut [f32], ld: usize) {
        let mut rows = pieces_mut(col, ld);
        for x_row in pieces(x, dims.len) {
            for j in 0..self.kernel {
                let Some(row) = rows.next() else { return };
                let row = row.get_mut(..dims.out_len).unwrap_or_default();
                if self.stride == 1 {
                    shifted_copy(row, x_row, j, dims.left);
                    continue;
                }
                let mut at = j;
                for v in row.iter_mut() {
                    *v = at
                        .checked_sub(dims.left)
                        .and_then(|i| x_row.get(i))
                        .copied()
                        .unwrap_or(0.0);
                    at = at.saturating_add(self.stride);
                }
            }
        }
    }

    /// `colᵀ[t, c·k + j] = x[c, t·s + j − left]` (0 outside `x`) for one sample.
    fn windows_transposed(&self, dims: &Dims, x: &[f32], col_t: &mut [f32]) {
        let mut first = 0_usize;
        for row in pieces_mut(col_t, dims.window) {
            // A window inside the input (no padding) copies each channel's `k` values as
            // one run; a kernel of 8 (every preset's) as one fixed-size copy.
            let inside = first
                .checked_sub(dims.left)
                .filter(|from| from.saturating_add(self.kernel) <= dims.len);
            match inside {
                Some(from) if self.kernel == RUN => {
                    // Channel `c`'s run starts at `c·T + from` (inside its row: `from + k
                    // ≤ T`), one index step per run instead of a row iterator's.
                    let mut at = from;
                    for part in row.as_chunks_mut::<RUN>().0 {
                        if let Some(run) = x.get(at..).and_then(|r| r.first_chunk::<RUN>()) {
                            *part = *run;
                        }
                        at = at.wrapping_add(dims.len);
                    }
                }
                Some(from) => {
                    for (x_row, part) in pieces(x, dims.len).zip(pieces_mut(row, self.kernel)) {
                        let run = x_row.get(from..).unwrap_or_default();
                        part.iter_mut().zip(run).for_each(|(d, v)| *d = *v);
                    }
                }
                None => {
                    for (x_row, part) in pieces(x, dims.len).zip(pieces_mut(row, self.kernel)) {
                        shifted_copy(part, x_row, first, dims.left);
                    }
                }
            }
            first = first.saturating_add(self.stride);
        }
    }

    /// For each sample of a group (`dx` holds the group's samples, `dcol` their
    /// columns side by side in rows `ld` apart, sample `s` from column `s·T_out`):
    /// `dx = 0`, then `dx[c, t·s + j − left] += dcol[c·k + j, t]` for every window
    /// element inside `x` (`(c, j)`, then `t` ascending). With stride 1 by
    /// [`sum_windows_back`]: each element of `dx` summed in registers over `j` ascending
    /// and stored once, the same sums in the same order (so the same bits).
    fn add_windows_back(&self, dims: &Dims, col: &[f32], ld: usize, dx: &mut [f32]) {
        if self.stride == 1 {
            sum_windows_back(dims, self.kernel, col, ld, dx);
            return;
        }
        let mut column = 0_usize;
        for dx_sample in pieces_mut(dx, dims.in_size) {
            let dcol = col.get(column..).unwrap_or_default();
            self.add_windows_back_runs(dims, dcol, ld, dx_sample);
            column = column.saturating_add(dims.out_len);
        }
    }

    /// [`add_windows_back`](Self::add_windows_back) row of `dcol` by row of `dcol` (`dcol`
    /// starts at the sample's first column): the order that defines the sums.
    fn add_windows_back_runs(&self, dims: &Dims, dcol: &[f32], ld: usize, dx: &mut [f32]) {
        dx.fill(0.0);
        let mut rows = pieces(dcol, ld);
        for dx_row in pieces_mut(dx, dims.len) {
            for j in 0..self.kernel {
                let Some(row) = rows.next() else { return };
                let row = row.get(..dims.out_len).unwrap_or_default();
                if self.stride == 1 {
                    // `dx[t + j − left] += row[t]`: one contiguous run.
                    let skip = dims.left.saturating_sub(j).min(row.len());
                    let from = j.saturating_add(skip).saturating_sub(dims.left);
                    let dst = dx_row.get_mut(from..).unwrap_or_default();
                    let src = row.get(skip..).unwrap_or_default();
                    dst.iter_mut().zip(src).for_each(|(d, g)| *d += *g);
                    continue;
                }
                let mut at = j;
                for g in row {
                    if let Some(d) = at.checked_sub(dims.left).and_then(|i| dx_row.get_mut(i)) {
                        *d += *g;
                    }
                    at = at.saturating_add(self.stride);
                }
            }
        }
    }
}

/// Lanes of the [`sum_windows_back`] blocks: positions of `dx` summed at once.
const BACK_LANES: usize = 8;

/// Eight dropped lanes, then eight kept: `[8 − n..][..8]` drops the first `n` lanes.
const DROP_FIRST: [f32; 2 * BACK_LANES] = {
    let mut m = [KEEP; 2 * BACK_LANES];
    let mut i = 0;
    while i < BACK_LANES {
        m[i] = 0.0;
        i += 1;
    }
    m
};

/// Eight kept lanes, then eight dropped: `[8 − n..][..8]` keeps the first `n` lanes.
const KEEP_FIRST: [f32; 2 * BACK_LANES] = {
    let mut m = [0.0; 2 * BACK_LANES];
    let mut i = 0;
    while i < BACK_LANES {
        m[i] = KEEP;
        i += 1;
    }
    m
};

/// Eight floats of `v` from `at` (a lane is 0 where its index falls outside `v`; only
/// lanes a mask drops fall outside, so their value does not matter).
#[inline(always)]
fn lanes_at(v: &[f32], at: isize) -> f32x8 {
    let run = usize::try_from(at)
        .ok()
        .and_then(|at| v.get(at..))
        .and_then(|rest| rest.first_chunk::<BACK_LANES>());
    match run {
        Some(run) => f32x8::new(*run),
        None => lanes_at_edge(v, at),
    }
}

/// [`lanes_at`] where the eight floats are not all inside `v` (at the ends of a group's
/// rows): lane by lane.
#[cold]
#[inline(never)]
fn lanes_at_edge(v: &[f32], at: isize) -> f32x8 {
    let mut lanes = [0.0; BACK_LANES];
    let mut i = at;
    for lane in &mut lanes {
        if let Some(x) = usize::try_from(i).ok().and_then(|i| v.get(i)) {
            *lane = *x;
        }
        i = i.wrapping_add(1);
    }
    f32x8::new(lanes)
}

/// The mask of the lanes `l` with `0 ≤ start + l < end`.
#[inline(always)]
fn lanes_inside(start: isize, end: isize) -> f32x8 {
    let dropped = start.saturating_neg().clamp(0, 8).unsigned_abs();
    let kept = end.saturating_sub(start).clamp(0, 8).unsigned_abs();
    let mask = |table: &[f32; 2 * BACK_LANES], n: usize| {
        table
            .get(BACK_LANES - n..)
            .and_then(|m| m.first_chunk::<BACK_LANES>())
            .map_or(f32x8::ZERO, |m| f32x8::new(*m))
    };
    mask(&DROP_FIRST, dropped) & mask(&KEEP_FIRST, kept)
}

/// Col2im with stride 1 for a group of samples side by side in `col` (rows `ld`
/// apart, sample `s` from column `s·T_out`; `dx` holds the group's samples):
/// `dx[c, p] = Σ_j dcol[c·k + j, p + left − j]` over `j` ascending where that position
/// `t` is in `[0, T_out)`, from `+0`: the order of [`Conv1d::add_windows_back_runs`],
/// whose running sum starts at the `+0` of its fill. Eight positions of `dx` at a time
/// sum in one vector over `j` and are stored once (no fill; the runs' overlapping adds
/// to one row waited on the previous store). A lane whose `t` is outside the sample
/// adds `+0` (its bits masked, whatever the neighbouring column holds), which changes
/// no sum: a sum from `+0` is never `−0`, and `x + 0 = x` for every other `x`, NaN
/// included. Channel by channel, each channel's `k` rows read left to right across the
/// group's samples.
fn sum_windows_back(dims: &Dims, kernel: usize, col: &[f32], ld: usize, dx: &mut [f32]) {
    let channels = dims.in_size.checked_div(dims.len).unwrap_or(0);
    let quads = channels / BACK_CHANNELS;
    for c in 0..quads {
        let c0 = c.saturating_mul(BACK_CHANNELS);
        sum_channels_back::<BACK_CHANNELS>(dims, kernel, col, ld, dx, c0);
    }
    for c in quads.saturating_mul(BACK_CHANNELS)..channels {
        sum_channels_back::<1>(dims, kernel, col, ld, dx, c);
    }
}

/// Channels [`sum_windows_back`] sums at once: independent chains of adds, and the
/// masks (which depend only on the position and `j`) shared.
const BACK_CHANNELS: usize = 4;

/// The sizes [`sum_block`] walks `col` by (as `isize`, far from overflow).
struct BackGeometry {
    /// Zeros before the input.
    left: isize,
    /// `T_out`.
    out_len: isize,
    /// `k`.
    kernel: isize,
    /// The distance of two rows of `col`.
    ld: isize,
    /// `k·ld`: the distance of two channels' first rows.
    channel_rows: isize,
}

/// The sums of one block of eight positions from `p0` of `CH` channels' `dx`, over
/// `j` ascending from `+0` (see [`sum_windows_back`]); the sample's columns start at
/// `column` of the first channel's row `j = 0`. Inlined: the running sums stay in
/// registers.
#[inline(always)]
fn sum_block<const CH: usize>(
    col: &[f32],
    g: &BackGeometry,
    column: isize,
    p0: isize,
) -> [f32x8; CH] {
    let mut acc = [f32x8::ZERO; CH];
    let mut start = p0.wrapping_add(g.left);
    let mut from = column.wrapping_add(start);
    let signed = |v: usize| isize::try_from(v).unwrap_or(isize::MAX);
    for _ in 0..g.kernel {
        // Channel `c₀ + ch`'s row `j` is `ch·k·ld` further.
        let at = |ch: usize| from.wrapping_add(signed(ch).wrapping_mul(g.channel_rows));
        if start >= 0 && start.wrapping_add(8) <= g.out_len {
            for (a, ch) in acc.iter_mut().zip(0..CH) {
                *a += lanes_at(col, at(ch));
            }
        } else if start < g.out_len && start.wrapping_add(8) > 0 {
            let keep = lanes_inside(start, g.out_len);
            for (a, ch) in acc.iter_mut().zip(0..CH) {
                *a += lanes_at(col, at(ch)) & keep;
            }
        }
        // Row `j + 1` is `ld` further, its position one earlier.
        start = start.wrapping_sub(1);
        from = from.wrapping_add(g.ld).wrapping_sub(1);
    }
    acc
}

/// [`sum_windows_back`] for the `CH` channels from `c0`, every sample of the group.
#[inline(always)]
fn sum_channels_back<const CH: usize>(
    dims: &Dims,
    kernel: usize,
    col: &[f32],
    ld: usize,
    dx: &mut [f32],
    c0: usize,
) {
    // Sizes of checked buffers, far below `isize::MAX`: the wrapping arithmetic below
    // never wraps.
    let signed = |v: usize| isize::try_from(v).unwrap_or(isize::MAX);
    let (left, out_len, kernel_i) = (signed(dims.left), signed(dims.out_len), signed(kernel));
    let ld_i = signed(ld);
    // Channel `c`'s first row, `j = 0`.
    let channel_rows = kernel_i.wrapping_mul(ld_i);
    let mut column = signed(c0).wrapping_mul(channel_rows);
    for dx_sample in pieces_mut(dx, dims.in_size) {
        let rows = dx_sample
            .get_mut(c0.saturating_mul(dims.len)..)
            .unwrap_or_default();
        let mut rows = pieces_mut(rows, dims.len);
        let mut dx_rows: [&mut [f32]; CH] =
            core::array::from_fn(|_| rows.next().unwrap_or_default());
        let geometry = BackGeometry {
            left,
            out_len,
            kernel: kernel_i,
            ld: ld_i,
            channel_rows,
        };
        let sum_block = |p0: isize| sum_block::<CH>(col, &geometry, column, p0);
        let blocks = dims.len / BACK_LANES;
        let mut p0 = 0_isize;
        for b in 0..blocks {
            let sums = sum_block(p0);
            for (row, sum) in dx_rows.iter_mut().zip(sums) {
                if let Some(block) = row.as_chunks_mut::<BACK_LANES>().0.get_mut(b) {
                    *block = sum.to_array();
                }
            }
            p0 = p0.wrapping_add(8);
        }
        if !dims.len.is_multiple_of(BACK_LANES) {
            let sums = sum_block(p0);
            for (row, sum) in dx_rows.iter_mut().zip(sums) {
                let tail = row.as_chunks_mut::<BACK_LANES>().1;
                tail.iter_mut()
                    .zip(sum.to_array())
                    .for_each(|(d, v)| *d = v);
            }
        }
        column = column.wrapping_add(out_len);
    }
}

/// `dst[i] = src[offset + i − left]`, and 0 where that index falls outside `src`: a
/// contiguous copy between two runs of zeros.
fn shifted_copy(dst: &mut [f32], src: &[f32], offset: usize, left: usize) {
    let skip = left.saturating_sub(offset).min(dst.len());
    let from = offset.saturating_add(skip).saturating_sub(left);
    let (head, rest) = dst.split_at_mut_checked(skip).unwrap_or_default();
    head.fill(0.0);
    let src = src.get(from..).unwrap_or_default();
    let count = rest.len().min(src.len());
    let (middle, tail) = rest.split_at_mut_checked(count).unwrap_or_default();
    middle.iter_mut().zip(src).for_each(|(d, v)| *d = *v);
    tail.fill(0.0);
}

/// Samples per matrix product: as many as `scratch_len` floats hold (at least one, at
/// most `n`).
fn samples_per_group(dims: &Dims, n: usize, scratch_len: usize) -> usize {
    scratch_len
        .checked_div(dims.scratch_len)
        .unwrap_or(1)
        .clamp(1, n.max(1))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::{Conv1d, Padding};
    use crate::LcgRng;
    use crate::layers::{Bias, Shape};
    use std::vec::Vec;

    /// Col2im with stride 1 summed in registers (`sum_windows_back`) equals the row by
    /// row adds (`add_windows_back_runs`) bit for bit: kernels 1 to 9, channels in
    /// fours and one by one, padding none,
    /// `Zeros` and `Same`, rows shorter than a block and not a multiple of it, and
    /// values that test the
    /// `+0` of masked lanes (`−0`, cancelling pairs, `±∞`, NaN: any NaN counts as one).
    /// A group of three samples side by side, the rows' two last columns NaN: a lane of
    /// a neighbour or of the padding that leaked into a sum would show.
    #[test]
    fn windows_back_in_registers_equal_the_runs_bit_for_bit() {
        let mut rng = LcgRng::new(7);
        let specials = [
            -0.0,
            0.0,
            1.0,
            -1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let cases = [
            (9, 8, Padding::Zeros(0), 26),
            (5, 8, Padding::Zeros(0), 60),
            (4, 3, Padding::Same, 12),
            (1, 8, Padding::Zeros(0), 8),
            (2, 3, Padding::Zeros(1), 5),
            (2, 8, Padding::Same, 10),
            (2, 9, Padding::Zeros(4), 19),
            (3, 1, Padding::Zeros(0), 13),
            (1, 5, Padding::Zeros(3), 3),
            (2, 4, Padding::Same, 33),
        ];
        for (c_in, kernel, padding, len) in cases {
            let conv = Conv1d {
                c_in,
                c_out: 2,
                kernel,
                stride: 1,
                padding,
                bias: Bias::None,
            };
            let dims = conv.dims(Shape::sequence(c_in, len)).unwrap();
            let count = 3;
            let ld = dims.out_len * count + 2;
            let mut col = std::vec![f32::NAN; dims.window * ld];
            for (i, v) in col.iter_mut().enumerate() {
                if i % ld < dims.out_len * count {
                    *v = if i % 5 == 0 {
                        specials[(i / 5) % specials.len()]
                    } else {
                        rng.next_f32() * 2.0 - 1.0
                    };
                }
            }
            // A pair that cancels in one sum: `x` then `−x` at the same `dx`.
            if dims.out_len > 1 && kernel > 1 {
                col[ld] = -col[1];
            }
            let mut want = std::vec![f32::NAN; count * dims.in_size];
            for (sample, dx) in want.chunks_exact_mut(dims.in_size).enumerate() {
                let dcol = &col[sample * dims.out_len..];
                conv.add_windows_back_runs(&dims, dcol, ld, dx);
            }
            let mut got = std::vec![f32::NAN; want.len()];
            conv.add_windows_back(&dims, &col, ld, &mut got);
            // Every NaN as one: Rust leaves a NaN's sign and payload unspecified
            // (`∞ − ∞` gives x86's negative "indefinite" NaN, and which NaN operand
            // an add passes on is the hardware's choice).
            let bits = |v: &[f32]| {
                v.iter()
                    .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&got), bits(&want), "k {kernel}, {padding:?}, T {len}");
            assert!(want.iter().any(|v| v.is_finite() && *v != 0.0));
        }
    }

    /// The backward's weight gradient is the same whether the twin reads the windows in
    /// place (`correlate_weights_add` where `Kernels::weights_in_place`: `har-conv`'s
    /// kernel of 8, stride 1, no padding) or builds the transposed window matrix for
    /// `gemm_nn_add`: bit for bit, on both twins, with groups of one and of several
    /// samples (any scratch), on a gradient that already holds values.
    #[test]
    fn weight_gradient_in_place_equals_the_window_matrix_bit_for_bit() {
        use crate::kernels::{Kernels, Scalar, Simd};
        fn check<K: Kernels>() {
            let mut rng = LcgRng::new(11);
            // Under miri (seconds per thousand steps) a smaller batch and layer.
            let (n, c_in, len, c_out) = if cfg!(miri) {
                (2, 3, 12, 7)
            } else {
                (7, 5, 30, 13)
            };
            let conv = Conv1d {
                c_in,
                c_out,
                kernel: 8,
                stride: 1,
                padding: Padding::Zeros(0),
                bias: Bias::None,
            };
            let input = Shape::sequence(c_in, len);
            let dims = conv.dims(input).unwrap();
            let mut normal = |len: usize| {
                let mut v = std::vec![0.0; len];
                rng.fill_normal(&mut v);
                v
            };
            let (params, x) = (normal(dims.weight_len), normal(n * dims.in_size));
            let (dy, start) = (normal(n * dims.out_size), normal(dims.weight_len));
            // The window matrix route: `colᵀ` of the whole batch, `dY` side by side.
            let ld = n * dims.out_len;
            let mut col_t = std::vec![0.0; ld * dims.window];
            let mut g = std::vec![0.0; conv.c_out * ld];
            for s in 0..n {
                let x_sample = &x[s * dims.in_size..][..dims.in_size];
                let rows = &mut col_t[s * dims.out_len * dims.window..];
                conv.windows_transposed(&dims, x_sample, &mut rows[..dims.out_len * dims.window]);
                for o in 0..conv.c_out {
                    let from = &dy[s * dims.out_size + o * dims.out_len..][..dims.out_len];
                    g[o * ld + s * dims.out_len..][..dims.out_len].copy_from_slice(from);
                }
            }
            let mut want = start.clone();
            K::gemm_nn_add(
                conv.c_out,
                dims.window,
                ld,
                &g,
                ld,
                &col_t,
                dims.window,
                &mut want,
                dims.window,
            );
            for samples in [1, 2, n] {
                let mut scratch = std::vec![0.0; samples * dims.scratch_len];
                let mut got = start.clone();
                conv.backward::<K>(&params, n, input, &x, &dy, None, &mut got, &mut scratch)
                    .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{samples} samples per group");
            }
            assert_ne!(want, start);
        }
        check::<Simd>();
        check::<Scalar>();
    }
}
