//! `nn.ReLU`, in place: `y = max(x, 0)`.
//!
//! - Forward (eval and training): the crate's hidden-layer ReLU (the model's and the
//!   training step's): values in `[f32::MIN, 0)` become `+0`; zeros, positive values,
//!   NaN and `−∞` stay. PyTorch maps `−∞` to 0; here a non-finite pre-activation (an
//!   overflowed sum) is kept so that a finiteness check downstream sees it.
//! - Backward: `dx = dy` where `y > 0`, else 0 (PyTorch's `threshold_backward` on the
//!   output: the gradient at 0 is 0), and 0 where `y` is NaN (as the training step).
//!   It reads the forward's output `y`; nothing else is saved.

use super::{Shape, check_batch};
use crate::error::SslResult;

/// The input's shape: ReLU keeps it.
///
/// # Errors
/// `InvalidParameter` (`"shape"`) for a zero dimension or an overflowing size.
pub fn output_shape(input: Shape) -> SslResult<Shape> {
    input.size()?;
    Ok(input)
}

/// ReLU on `n` samples of shape `input`, in place.
///
/// # Errors
/// `InvalidParameter` for `n = 0`, a zero dimension or an overflowing size;
/// `DimensionMismatch` when `y` is not `n·C·T` long. Nothing is written on error.
///
/// # Examples
/// ```
/// use simsiam::layers::{Shape, relu};
/// let mut y = [-1.0, 0.0, 2.0, f32::NEG_INFINITY];
/// relu::forward(2, Shape::vector(2), &mut y)?;
/// assert_eq!(y, [0.0, 0.0, 2.0, f32::NEG_INFINITY]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn forward(n: usize, input: Shape, y: &mut [f32]) -> SslResult<()> {
    check_batch(input, n, y.len())?;
    crate::kernels::relu_in_place(y);
    Ok(())
}

/// The backward pass: `grad` holds `dL/dy` on entry and `dL/dx` on return, zeroed where
/// the forward's output `y` is not positive (or NaN).
///
/// # Errors
/// As [`forward`], for `y` and `grad`. Nothing is written on error.
///
/// # Examples
/// ```
/// use simsiam::layers::{Shape, relu};
/// let y = [0.0, 2.0];
/// let mut grad = [5.0, 7.0];
/// relu::backward(1, Shape::vector(2), &y, &mut grad)?;
/// assert_eq!(grad, [0.0, 7.0]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn backward(n: usize, input: Shape, y: &[f32], grad: &mut [f32]) -> SslResult<()> {
    check_batch(input, n, y.len())?;
    check_batch(input, n, grad.len())?;
    // A select, not a branch on the data: `y > 0` is false for NaN and for `y ≤ 0`.
    grad.iter_mut()
        .zip(y)
        .for_each(|(g, y)| *g = if *y > 0.0 { *g } else { 0.0 });
    Ok(())
}
