//! Global max pool over time, `nn.AdaptiveMaxPool1d(1)` then `nn.Flatten()`:
//! `[C, T] → [C, 1]`, each channel's largest value.
//!
//! The position that wins follows the same rule as [`MaxPool1d`](super::MaxPool1d)'s
//! (checked in PyTorch 2.15's CPU kernel): left to right, a larger value or a NaN
//! replaces the current one, so the first of tied maxima and the last of several NaNs.
//! The backward gives the channel's gradient to that position, 0 to the others.
//!
//! Memory: nothing saved, no scratch (the backward finds the positions again in `x`).

use super::max_pool1d::{argmax, argmax4};
use super::{Shape, check_batch};
use crate::error::SslResult;
use crate::kernels::{pieces, pieces_mut};

/// `[C, 1]` for an input `[C, T]`.
///
/// # Errors
/// `InvalidParameter` (`"shape"`) for a zero dimension or an overflowing size.
pub fn output_shape(input: Shape) -> SslResult<Shape> {
    input.size()?;
    Ok(Shape::vector(input.channels))
}

/// The forward pass (eval and training) of `n` samples: `x` is `n × C × T`, `y` is
/// `n × C` (overwritten).
///
/// # Errors
/// As [`output_shape`]; `InvalidParameter` (`"n"`) for `n = 0`; `DimensionMismatch`
/// when `x` or `y` has another length. Nothing is written on error.
///
/// # Examples
/// ```
/// use simsiam::layers::{Shape, global_max_pool1d};
/// let mut y = [0.0; 2];
/// global_max_pool1d::forward(1, Shape::sequence(2, 3), &[1.0, 5.0, 2.0, -1.0, -3.0, -2.0], &mut y)?;
/// assert_eq!(y, [5.0, -1.0]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn forward(n: usize, input: Shape, x: &[f32], y: &mut [f32]) -> SslResult<()> {
    let out = output_shape(input)?;
    check_batch(input, n, x.len())?;
    check_batch(out, n, y.len())?;
    let len = input.len;
    let block = len.saturating_mul(4);
    for (rows, out) in pieces(x, block).zip(pieces_mut(y, 4)) {
        if let (Some(rows), Ok(out)) = (four_rows(rows, len), <&mut [f32; 4]>::try_from(&mut *out))
        {
            for (v, (_, value)) in out.iter_mut().zip(argmax4(rows)) {
                *v = value;
            }
            continue;
        }
        for (row, v) in pieces(rows, len).zip(out.iter_mut()) {
            *v = argmax(row).map_or(0.0, |(_, value)| value);
        }
    }
    Ok(())
}

/// The backward pass: `dx` (as long as `x`) is overwritten with each channel's gradient
/// `dy` at the position the forward picked in `x`, 0 elsewhere.
///
/// # Errors
/// As [`forward`], with `dy` as long as `y` and `dx` as `x`.
///
/// # Examples
/// ```
/// use simsiam::layers::{Shape, global_max_pool1d};
/// let mut dx = [9.0; 3];
/// global_max_pool1d::backward(1, Shape::sequence(1, 3), &[5.0, 1.0, 5.0], &[2.0], &mut dx)?;
/// assert_eq!(dx, [2.0, 0.0, 0.0]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn backward(n: usize, input: Shape, x: &[f32], dy: &[f32], dx: &mut [f32]) -> SslResult<()> {
    backward_masked(n, input, x, dy, dx, false)
}

/// [`backward`] followed by the backward of the ReLU whose output `x` is (the gradient
/// zeroed where `x` is not positive or NaN, as [`relu::backward`](super::relu::backward)),
/// in one pass: the same values bit for bit.
///
/// # Errors
/// As [`backward`].
pub(crate) fn backward_through_relu(
    n: usize,
    input: Shape,
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) -> SslResult<()> {
    backward_masked(n, input, x, dy, dx, true)
}

/// [`backward`], and with `relu` the ReLU's mask.
fn backward_masked(
    n: usize,
    input: Shape,
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    relu: bool,
) -> SslResult<()> {
    let out = output_shape(input)?;
    check_batch(input, n, x.len())?;
    check_batch(out, n, dy.len())?;
    check_batch(input, n, dx.len())?;
    dx.fill(0.0);
    // Whether a gradient passes the ReLU at a value of its output (no ReLU: always).
    let keep = |v: f32| !relu || v > 0.0;
    let len = input.len;
    let block = len.saturating_mul(4);
    let blocks = pieces(x, block).zip(pieces_mut(dx, block));
    for ((rows, d_rows), g) in blocks.zip(pieces(dy, 4)) {
        if let (Some(rows), Ok(g)) = (four_rows(rows, len), <&[f32; 4]>::try_from(g)) {
            let picks = argmax4(rows).into_iter().zip(g);
            for (((at, value), g), d_row) in picks.zip(pieces_mut(d_rows, len)) {
                if let (true, Some(d)) = (keep(value), d_row.get_mut(at)) {
                    *d = *g;
                }
            }
            continue;
        }
        let rows = pieces(rows, len).zip(pieces_mut(d_rows, len));
        for ((row, d_row), g) in rows.zip(g) {
            let Some((at, value)) = argmax(row) else {
                continue;
            };
            if let (true, Some(d)) = (keep(value), d_row.get_mut(at)) {
                *d = *g;
            }
        }
    }
    Ok(())
}

/// Four rows of `len` from a block of `4·len` floats (`None` for a shorter block: the
/// batch's last rows).
fn four_rows(block: &[f32], len: usize) -> Option<[&[f32]; 4]> {
    if block.len() != len.checked_mul(4)? {
        return None;
    }
    let mut rows = pieces(block, len);
    Some(core::array::from_fn(|_| rows.next().unwrap_or_default()))
}
