//! Batched 1-D cross-correlations (a convolution layer's products) with the window gather
//! ("im2col") folded into the kernels' operand packing: no window matrix is ever written
//! out.
//!
//! - [`correlate`]: `y[s, o, t] = start[o] + Σ_{c, j} W[o, c, j]·x̃[s, c, t·stride + j − left]`,
//!   `x̃` being `x` inside `[0, len)` and 0 outside (the zero padding): PyTorch's
//!   `conv1d` forward. A convolution's input gradient (stride 1) is the same product on
//!   the output gradient with the kernel flipped and transposed.
//! - [`correlate_weights_add`]: `dW[o, c, j] += Σ_{s, t} dy[s, o, t]·x̃[s, c, t·stride + j − left]`,
//!   a convolution's weight gradient.
//!
//! # Summation order and the twins
//! Every element is one running sum from its start value: for [`correlate`] over
//! `(c, j)` ascending (`p = c·k + j`), padding terms (`W·0`) included; for
//! [`correlate_weights_add`] over `(s, t)` ascending. The scalar twin multiplies and adds
//! separately, the SIMD twin with `wide`'s `mul_add` (FMA where the target has it), so the
//! twins differ by at most
//! [`sum_error_bound`](super::sum_error_bound)`(terms + 1, |start| + Σ|products|)` per
//! element, as the matrix kernels ([`Kernels::gemm_nn_add`]).
//! These are the orders of a window matrix followed by those matrix kernels, so the
//! results equal that route's bit for bit on each twin.
//!
//! # Memory
//! [`correlate`] takes a caller buffer of [`correlate_pack_len`] floats, whatever the batch
//! (the SIMD twin packs `Wᵀ` there by groups of output channels, and one register block's
//! windows; the scalar twin does not use it). [`correlate_weights_add`] needs none; its
//! SIMD twin packs `dy` for one register block on the stack (at most `6 × 256` floats)
//! and, with a kernel of 8, stride 1 and no window over the padding, reads the windows
//! straight from `x`; otherwise it copies panels of windows to the stack as
//! [`Kernels::gemm_nn_add`] does (64 KiB on 64-bit targets).

use super::{Kernels, pieces, pieces_mut};
use crate::error::{SslError, SslResult, check_len};

/// The widest column group of any build's SIMD twin (`f32x16` lanes, two vectors).
const MAX_GROUP: usize = 32;
/// The most rows of any build's register block.
const MAX_ROWS: usize = 8;

/// The shape of a batch of 1-D cross-correlations (see [the module](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Correlation {
    /// Samples `n`.
    pub n: usize,
    /// Input channels `C_in`.
    pub c_in: usize,
    /// Input length `T`.
    pub len: usize,
    /// Output channels `C_out`.
    pub c_out: usize,
    /// Kernel length `k`.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zeros before the input: output `t` reads from input position `t·stride − left`.
    pub left: usize,
    /// Output length `T_out` (any: positions past the input read zeros).
    pub out_len: usize,
}

pub(crate) use checked::CorrelationDims;

/// A private module: its `pub` type is reachable from the sealed trait's methods but not
/// from outside the crate.
mod checked {
    /// A [`Correlation`](super::Correlation) checked: every size at least 1, every index
    /// within `usize`.
    #[derive(Debug, Clone, Copy)]
    pub struct CorrelationDims {
        pub n: usize,
        pub c_in: usize,
        pub len: usize,
        pub c_out: usize,
        pub kernel: usize,
        pub stride: usize,
        pub left: usize,
        pub out_len: usize,
        /// `C_in·k`.
        pub window: usize,
        /// `C_in·T`.
        pub in_size: usize,
        /// `C_out·T_out`.
        pub out_size: usize,
    }
}

const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "shape",
    reason: "a correlation's size overflows usize",
};

fn mul(a: usize, b: usize) -> SslResult<usize> {
    a.checked_mul(b).ok_or(OVERFLOW)
}

impl Correlation {
    /// Checks the sizes (all at least 1; every length and index fits `usize`).
    pub(crate) fn dims(&self) -> SslResult<CorrelationDims> {
        let sizes = [
            self.n,
            self.c_in,
            self.len,
            self.c_out,
            self.kernel,
            self.stride,
            self.out_len,
        ];
        if sizes.contains(&0) {
            return Err(SslError::InvalidParameter {
                name: "shape",
                reason: "a correlation's sizes must be at least 1",
            });
        }
        let window = mul(self.c_in, self.kernel)?;
        let in_size = mul(self.c_in, self.len)?;
        let out_size = mul(self.c_out, self.out_len)?;
        // The last position read, `(T_out − 1)·stride + k − 1`, and the batches' lengths.
        mul(self.out_len.saturating_sub(1), self.stride)?
            .checked_add(self.kernel)
            .ok_or(OVERFLOW)?;
        mul(self.n, in_size)?;
        mul(self.n, out_size)?;
        mul(self.c_out, window)?;
        Ok(CorrelationDims {
            n: self.n,
            c_in: self.c_in,
            len: self.len,
            c_out: self.c_out,
            kernel: self.kernel,
            stride: self.stride,
            left: self.left,
            out_len: self.out_len,
            window,
            in_size,
            out_size,
        })
    }
}

/// Floats of the buffer [`correlate`] needs for `shape`: `(⌈C_out/32⌉·32 + 8)·C_in·k`
/// (the SIMD twin's packed `Wᵀ` and one register block's windows, for the widest lanes of
/// any build), the same for both twins.
///
/// # Errors
/// `InvalidParameter` (`"shape"`) for a zero size or an overflowing length.
pub fn correlate_pack_len(shape: &Correlation) -> SslResult<usize> {
    let d = shape.dims()?;
    let columns = d
        .c_out
        .div_ceil(MAX_GROUP)
        .checked_mul(MAX_GROUP)
        .and_then(|c| c.checked_add(MAX_ROWS))
        .ok_or(OVERFLOW)?;
    mul(columns, d.window)
}

/// Checks a [`correlate`] call.
pub(crate) fn correlate_operands(
    shape: &Correlation,
    w: &[f32],
    start: Option<&[f32]>,
    x: &[f32],
    y: &[f32],
    pack: &[f32],
) -> SslResult<CorrelationDims> {
    let d = shape.dims()?;
    check_len(d.c_out.saturating_mul(d.window), w.len())?;
    if let Some(start) = start {
        check_len(d.c_out, start.len())?;
    }
    check_len(d.n.saturating_mul(d.in_size), x.len())?;
    check_len(d.n.saturating_mul(d.out_size), y.len())?;
    let needed = correlate_pack_len(shape)?;
    if pack.len() < needed {
        return Err(SslError::CapacityTooSmall {
            needed,
            capacity: pack.len(),
        });
    }
    Ok(d)
}

/// Checks a [`correlate_weights_add`] call.
pub(crate) fn weights_operands(
    shape: &Correlation,
    dy: &[f32],
    x: &[f32],
    dw: &[f32],
) -> SslResult<CorrelationDims> {
    let d = shape.dims()?;
    check_len(d.n.saturating_mul(d.out_size), dy.len())?;
    check_len(d.n.saturating_mul(d.in_size), x.len())?;
    check_len(d.c_out.saturating_mul(d.window), dw.len())?;
    Ok(d)
}

/// The batch of correlations `shape` on twin `K`: `y` (`n × C_out × T_out`) is
/// overwritten with `start[o] + Σ_{c, j} W[o, c, j]·x̃[s, c, t·stride + j − left]`
/// (`start` 0 when `None`), `W` is `C_out × C_in × k`, `x` is `n × C_in × T`. Order and
/// twin bound: [the module](self).
///
/// # Errors
/// `InvalidParameter` (`"shape"`) for a zero size or an overflowing length;
/// `DimensionMismatch` when `w`, `start`, `x` or `y` is not its length (checked in that
/// order); `CapacityTooSmall` when `pack` is shorter than [`correlate_pack_len`]. `y` is
/// untouched on error.
///
/// # Examples
/// ```
/// use simsiam::kernels::{Scalar, Simd, correlate::{Correlation, correlate, correlate_pack_len}};
/// // One sample, one channel [1, 2, 3], kernel [1, 10], one zero on each side.
/// let shape = Correlation { n: 1, c_in: 1, len: 3, c_out: 1, kernel: 2, stride: 1, left: 1, out_len: 4 };
/// let mut pack = vec![0.0; correlate_pack_len(&shape)?];
/// let mut y = [0.0; 4];
/// correlate::<Simd>(&shape, &[1.0, 10.0], Some(&[0.5]), &[1.0, 2.0, 3.0], &mut y, &mut pack)?;
/// assert_eq!(y, [10.5, 21.5, 32.5, 3.5]);
/// correlate::<Scalar>(&shape, &[1.0, 10.0], None, &[1.0, 2.0, 3.0], &mut y, &mut pack)?;
/// assert_eq!(y, [10.0, 21.0, 32.0, 3.0]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn correlate<K: Kernels>(
    shape: &Correlation,
    w: &[f32],
    start: Option<&[f32]>,
    x: &[f32],
    y: &mut [f32],
    pack: &mut [f32],
) -> SslResult<()> {
    let d = correlate_operands(shape, w, start, x, y, pack)?;
    K::correlate(&d, w, start, x, y, pack);
    Ok(())
}

/// The weight gradient of the batch of correlations `shape` on twin `K`:
/// `dW[o, c, j] += Σ_{s, t} dy[s, o, t]·x̃[s, c, t·stride + j − left]`, `dy` being
/// `n × C_out × T_out`, `x` `n × C_in × T`, `dW` `C_out × C_in × k`. Order and twin bound:
/// [the module](self).
///
/// # Errors
/// `InvalidParameter` (`"shape"`) for a zero size or an overflowing length;
/// `DimensionMismatch` when `dy`, `x` or `dw` is not its length (in that order). `dw` is
/// untouched on error.
///
/// # Examples
/// ```
/// use simsiam::kernels::{Simd, correlate::{Correlation, correlate_weights_add}};
/// let shape = Correlation { n: 1, c_in: 1, len: 3, c_out: 1, kernel: 2, stride: 1, left: 0, out_len: 2 };
/// let mut dw = [0.0; 2];
/// correlate_weights_add::<Simd>(&shape, &[1.0, -1.0], &[1.0, 2.0, 3.0], &mut dw)?;
/// assert_eq!(dw, [1.0 - 2.0, 2.0 - 3.0]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn correlate_weights_add<K: Kernels>(
    shape: &Correlation,
    dy: &[f32],
    x: &[f32],
    dw: &mut [f32],
) -> SslResult<()> {
    let d = weights_operands(shape, dy, x, dw)?;
    K::correlate_weights_add(&d, dy, x, dw);
    Ok(())
}

/// Whether twin `K` runs [`correlate_weights_add`] on `shape` with its windows read
/// straight from `x` ([`Sealed::weights_in_place`](super::sealed::Sealed::weights_in_place)).
#[cfg(feature = "conv")]
pub(crate) fn weights_in_place<K: Kernels>(shape: &Correlation) -> bool {
    shape.dims().is_ok_and(|d| K::weights_in_place(&d))
}

/// `x̃[c, i − left]` of one sample's `x_sample` (`C_in × T`): 0 outside `[0, T)`.
#[inline(always)]
pub(crate) fn padded(d: &CorrelationDims, x_sample: &[f32], c: usize, i: usize) -> f32 {
    i.checked_sub(d.left)
        .filter(|i| *i < d.len)
        .and_then(|i| x_sample.get(c.saturating_mul(d.len).saturating_add(i)))
        .copied()
        .unwrap_or(0.0)
}

/// `dst[q] = x̃[first + q − left]` of one input row (`T` floats): a copy between runs of
/// zeros, a plain copy when the whole run lies inside the row.
#[inline(always)]
pub(crate) fn window_run(dst: &mut [f32], x_row: &[f32], first: usize, left: usize) {
    if let Some(src) = first
        .checked_sub(left)
        .and_then(|from| x_row.get(from..))
        .and_then(|src| src.get(..dst.len()))
    {
        dst.iter_mut().zip(src).for_each(|(d, v)| *d = *v);
        return;
    }
    let mut at = first;
    for v in dst.iter_mut() {
        *v = at
            .checked_sub(left)
            .and_then(|i| x_row.get(i))
            .copied()
            .unwrap_or(0.0);
        at = at.saturating_add(1);
    }
}

/// The scalar twin of [`correlate`] on checked operands: per output, one running sum from
/// its start over `(c, j)` ascending, a multiply then an add per term.
pub(crate) fn correlate_scalar(
    d: &CorrelationDims,
    w: &[f32],
    start: Option<&[f32]>,
    x: &[f32],
    y: &mut [f32],
) {
    for (x_sample, y_sample) in pieces(x, d.in_size).zip(pieces_mut(y, d.out_size)) {
        for ((y_row, w_row), o) in pieces_mut(y_sample, d.out_len)
            .zip(pieces(w, d.window))
            .zip(0..d.c_out)
        {
            let begin = start.and_then(|s| s.get(o)).copied().unwrap_or(0.0);
            let mut first = 0_usize;
            for v in y_row.iter_mut() {
                let mut sum = begin;
                for (w_channel, c) in pieces(w_row, d.kernel).zip(0..d.c_in) {
                    for (weight, j) in w_channel.iter().zip(0..d.kernel) {
                        sum += *weight * padded(d, x_sample, c, first.saturating_add(j));
                    }
                }
                *v = sum;
                first = first.saturating_add(d.stride);
            }
        }
    }
}

/// The scalar twin of [`correlate_weights_add`] on checked operands: each weight's running
/// sum from its value over `(s, t)` ascending, a multiply then an add per term.
pub(crate) fn correlate_weights_scalar(d: &CorrelationDims, dy: &[f32], x: &[f32], dw: &mut [f32]) {
    for (x_sample, dy_sample) in pieces(x, d.in_size).zip(pieces(dy, d.out_size)) {
        for (dw_row, dy_row) in pieces_mut(dw, d.window).zip(pieces(dy_sample, d.out_len)) {
            let mut first = 0_usize;
            for g in dy_row {
                for (dw_channel, x_row) in pieces_mut(dw_row, d.kernel).zip(pieces(x_sample, d.len))
                {
                    let mut at = first;
                    for v in dw_channel.iter_mut() {
                        let value = at
                            .checked_sub(d.left)
                            .and_then(|i| x_row.get(i))
                            .copied()
                            .unwrap_or(0.0);
                        *v += *g * value;
                        at = at.saturating_add(1);
                    }
                }
                first = first.saturating_add(d.stride);
            }
        }
    }
}
