//! `nn.MaxPool1d(k)`: stride `k`, no padding, floor mode: `[C, T] → [C, ⌊T/k⌋]`, each
//! output the largest of its `k` inputs; the last `T mod k` positions are dropped.
//!
//! Which position wins, as PyTorch 2.15's CPU kernel (checked there: its `indices` and
//! the gradient's position): scanning the window left to right, a value replaces the
//! current one when it is larger *or NaN*. So on ties the first occurrence wins, a NaN
//! anywhere makes the output NaN, and of several NaNs the last one wins. The backward
//! gives each output's gradient to that position and 0 to every other input.
//!
//! Memory: nothing saved and no scratch: the backward finds the positions again in `x`
//! (the forward's input), with the same rule.

use super::{Shape, check_batch, nonzero};
use crate::error::{SslError, SslResult};
use crate::kernels::{KEEP, pieces, pieces_mut};
use wide::f32x8;

/// A max pool over windows of `kernel` positions, stride `kernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaxPool1d {
    /// Window length and stride `k`.
    pub kernel: usize,
}

/// Of a pair `[a, b]`, whether PyTorch picks `b` ([`argmax`]'s rule on a window of two:
/// `b` is larger or NaN).
#[inline(always)]
fn picks_second([a, b]: [f32; 2]) -> bool {
    b > a || b.is_nan()
}

/// The position (in `window`) PyTorch picks and its value; `None` for an empty window.
#[inline]
pub(crate) fn argmax(window: &[f32]) -> Option<(usize, f32)> {
    let (first, rest) = window.split_first()?;
    let mut best = (0_usize, *first);
    for (v, i) in rest.iter().zip(1_usize..) {
        if *v > best.1 || v.is_nan() {
            best = (i, *v);
        }
    }
    Some(best)
}

/// [`argmax`] of four windows at once (each over the first `min` of their lengths
/// elements): four independent chains instead of one, and no branch on the data. The
/// position is [`argmax`]'s: the first largest value, or the last NaN when there is one
/// (tracked apart, so the running maximum is `f32::max`, which ignores NaN, and every
/// choice a select on integers).
#[inline]
pub(crate) fn argmax4(windows: [&[f32]; 4]) -> [(usize, f32); 4] {
    let first = windows.map(|w| w.first().copied().unwrap_or(0.0));
    let mut at = [0_usize; 4];
    let mut best = first;
    let mut nan_at = [0_usize; 4];
    let mut any_nan = first.map(f32::is_nan);
    let [r0, r1, r2, r3] = windows.map(|w| w.get(1..).unwrap_or_default());
    let columns = r0.iter().zip(r1).zip(r2).zip(r3);
    for ((((v0, v1), v2), v3), i) in columns.zip(1_usize..) {
        let values = [*v0, *v1, *v2, *v3];
        for r in 0..4 {
            let v = values[r];
            at[r] = if v > best[r] { i } else { at[r] };
            best[r] = best[r].max(v);
            nan_at[r] = if v.is_nan() { i } else { nan_at[r] };
            any_nan[r] |= v.is_nan();
        }
    }
    core::array::from_fn(|r| {
        let i = if any_nan[r] { nan_at[r] } else { at[r] };
        (i, windows[r].get(i).copied().unwrap_or(0.0))
    })
}

impl MaxPool1d {
    /// `[C, ⌊T/k⌋]` for an input `[C, T]`.
    ///
    /// # Errors
    /// `InvalidParameter` (`"kernel"`, `"shape"`) for a zero kernel, a zero dimension,
    /// an overflowing size or `T < k`.
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Shape, max_pool1d::MaxPool1d};
    /// assert_eq!(MaxPool1d { kernel: 2 }.output_shape(Shape::sequence(32, 121))?,
    ///            Shape::sequence(32, 60));
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn output_shape(&self, input: Shape) -> SslResult<Shape> {
        let kernel = nonzero(self.kernel, "kernel")?;
        input.size()?;
        let len = input.len / kernel;
        if len == 0 {
            return Err(SslError::InvalidParameter {
                name: "shape",
                reason: "input shorter than the kernel",
            });
        }
        Ok(Shape::sequence(input.channels, len))
    }

    /// The forward pass (eval and training) of `n` samples: `x` is `n × C × T`, `y` is
    /// `n × C × ⌊T/k⌋` (overwritten).
    ///
    /// # Errors
    /// As [`output_shape`](Self::output_shape); `InvalidParameter` (`"n"`) for `n = 0`;
    /// `DimensionMismatch` when `x` or `y` has another length. Nothing is written on
    /// error.
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Shape, max_pool1d::MaxPool1d};
    /// let mut y = [0.0; 2];
    /// MaxPool1d { kernel: 2 }.forward(1, Shape::sequence(1, 5), &[1.0, 3.0, 4.0, 2.0, 9.0], &mut y)?;
    /// assert_eq!(y, [3.0, 4.0]);
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn forward(&self, n: usize, input: Shape, x: &[f32], y: &mut [f32]) -> SslResult<()> {
        let out = self.output_shape(input)?;
        check_batch(input, n, x.len())?;
        check_batch(out, n, y.len())?;
        for (x_row, y_row) in pieces(x, input.len).zip(pieces_mut(y, out.len)) {
            if self.kernel == 2 {
                // The common pool of two: the same rule, pair by pair (vectorised).
                for (pair, v) in x_row.as_chunks::<2>().0.iter().zip(y_row.iter_mut()) {
                    let [a, b] = *pair;
                    *v = if picks_second(*pair) { b } else { a };
                }
                continue;
            }
            for (window, v) in pieces(x_row, self.kernel).zip(y_row.iter_mut()) {
                *v = argmax(window).map_or(0.0, |(_, value)| value);
            }
        }
        Ok(())
    }

    /// The backward pass: `dx` (as long as `x`) is overwritten with each output's
    /// gradient `dy` at the position the forward picked in `x`, 0 elsewhere.
    ///
    /// # Errors
    /// As [`forward`](Self::forward), with `dy` as long as `y` and `dx` as `x`.
    ///
    /// # Examples
    /// ```
    /// use simsiam::layers::{Shape, max_pool1d::MaxPool1d};
    /// let mut dx = [9.0; 5];
    /// let x = [1.0, 3.0, 4.0, 4.0, 9.0];
    /// MaxPool1d { kernel: 2 }.backward(1, Shape::sequence(1, 5), &x, &[10.0, 20.0], &mut dx)?;
    /// assert_eq!(dx, [0.0, 10.0, 20.0, 0.0, 0.0]); // a tie: the first position
    /// # Ok::<(), simsiam::SslError>(())
    /// ```
    pub fn backward(
        &self,
        n: usize,
        input: Shape,
        x: &[f32],
        dy: &[f32],
        dx: &mut [f32],
    ) -> SslResult<()> {
        self.backward_masked(n, input, x, dy, dx, false)
    }

    /// [`backward`](Self::backward) followed by the backward of the ReLU whose output `x`
    /// is (the gradient zeroed where `x` is not positive or NaN, as
    /// [`relu::backward`](super::relu::backward)), in one pass: the same values bit for
    /// bit.
    ///
    /// # Errors
    /// As [`backward`](Self::backward).
    pub(crate) fn backward_through_relu(
        &self,
        n: usize,
        input: Shape,
        x: &[f32],
        dy: &[f32],
        dx: &mut [f32],
    ) -> SslResult<()> {
        self.backward_masked(n, input, x, dy, dx, true)
    }

    /// [`backward`](Self::backward), and with `relu` the ReLU's mask: each element of
    /// `dx` written once (no fill first for the pool of two).
    fn backward_masked(
        &self,
        n: usize,
        input: Shape,
        x: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        relu: bool,
    ) -> SslResult<()> {
        let out = self.output_shape(input)?;
        check_batch(input, n, x.len())?;
        check_batch(out, n, dy.len())?;
        check_batch(input, n, dx.len())?;
        // Whether a gradient passes the ReLU at a value of its output (no ReLU: always).
        let keep = |v: f32| !relu || v > 0.0;
        let rows = pieces(x, input.len).zip(pieces_mut(dx, input.len));
        for ((x_row, dx_row), dy_row) in rows.zip(pieces(dy, out.len)) {
            if self.kernel == 2 {
                if relu {
                    pairs_back::<true>(x_row, dy_row, dx_row);
                } else {
                    pairs_back::<false>(x_row, dy_row, dx_row);
                }
                continue;
            }
            dx_row.fill(0.0);
            let windows = pieces(x_row, self.kernel).zip(pieces_mut(dx_row, self.kernel));
            for ((window, d_window), g) in windows.zip(dy_row) {
                let Some((i, value)) = argmax(window) else {
                    continue;
                };
                if let (true, Some(d)) = (keep(value), d_window.get_mut(i)) {
                    *d = *g;
                }
            }
        }
        Ok(())
    }
}

/// Pairs [`pairs_back`] handles at once: one vector of eight `dx`.
const PAIRS: usize = 4;

/// The lanes of a block that hold a pair's first position.
const FIRSTS: [f32; 2 * PAIRS] = [KEEP, 0.0, KEEP, 0.0, KEEP, 0.0, KEEP, 0.0];

/// The pool of two's backward on one row (`dx_row` as long as `x_row`, `dy_row` one
/// per pair), with `RELU` the ReLU's mask: each pair's gradient to the position
/// [`picks_second`] names, 0 to the other and to an odd last position; each `dx`
/// written once, by masks rather than a branch on the data (which a branch predictor
/// misses half the time). [`PAIRS`] pairs as one vector of eight lanes: a lane of a
/// pair's first position `a` (partner `b`) takes the gradient when `b > a || b` NaN is
/// false, a second position `b` (partner `a`) when it is true (the same comparison,
/// read from the other lane), and with the ReLU only where its own value is `> 0`;
/// the gradient's bits kept by the mask or `+0`. Then the row's last pairs one by one.
#[inline(always)]
fn pairs_back<const RELU: bool>(x_row: &[f32], dy_row: &[f32], dx_row: &mut [f32]) {
    let firsts = f32x8::new(FIRSTS);
    let (x_blocks, x_rest) = x_row.as_chunks::<{ 2 * PAIRS }>();
    let (d_blocks, d_rest) = dx_row.as_chunks_mut::<{ 2 * PAIRS }>();
    let (g_blocks, g_rest) = dy_row.as_chunks::<PAIRS>();
    let blocks = x_blocks.iter().zip(d_blocks.iter_mut()).zip(g_blocks);
    for ((x, d), g) in blocks {
        let [x0, x1, x2, x3, x4, x5, x6, x7] = *x;
        let [g0, g1, g2, g3] = *g;
        let v = f32x8::new(*x);
        let partner = f32x8::new([x1, x0, x3, x2, x5, x4, x7, x6]);
        let grads = f32x8::new([g0, g0, g1, g1, g2, g2, g3, g3]);
        // First lanes: `picks_second([v, partner])`; second lanes: `picks_second([partner, v])`.
        let partner_wins = partner.simd_gt(v) | partner.is_nan();
        let own_wins = v.simd_gt(partner) | v.is_nan();
        let mut take = (firsts & !partner_wins) | (!firsts & own_wins);
        if RELU {
            take &= v.simd_gt(f32x8::ZERO);
        }
        *d = (grads & take).to_array();
    }
    let keep = |v: f32| !RELU || v > 0.0;
    let pairs = x_rest.as_chunks::<2>().0.iter();
    let (d_pairs, d_tail) = d_rest.as_chunks_mut::<2>();
    for ((pair, d), g) in pairs.zip(d_pairs.iter_mut()).zip(g_rest) {
        let second = picks_second(*pair);
        let [a, b] = *pair;
        *d = [
            if !second && keep(a) { *g } else { 0.0 },
            if second && keep(b) { *g } else { 0.0 },
        ];
    }
    d_tail.fill(0.0);
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::{MaxPool1d, argmax};
    use crate::layers::{Shape, global_max_pool1d, relu};
    use std::vec::Vec;

    /// A ReLU's outputs: zeros (also tied), positives, ties, NaN, and what a ReLU keeps
    /// below 0 (`−∞`, see `relu`).
    fn relu_outputs(len: usize) -> Vec<f32> {
        let pattern = [
            0.0,
            2.0,
            2.0,
            0.0,
            1.0,
            0.0,
            0.0,
            f32::NEG_INFINITY,
            3.0,
            0.5,
        ];
        let mut v: Vec<f32> = (0..len)
            .map(|i| pattern[(i * 7 + i / 3) % pattern.len()])
            .collect();
        v[len / 2] = f32::NAN;
        v
    }

    /// The pool of two's backward (lanes of four pairs, then pairs one by one) gives
    /// each window's gradient to the position `argmax` picks, bit for bit, with and
    /// without the ReLU's mask: ties, zeros, `−∞` and NaN, rows of whole blocks, with
    /// pairs after them and odd.
    #[test]
    fn pairs_backward_equals_argmax_per_window() {
        for t in [2, 3, 7, 8, 9, 16, 21, 53, 121] {
            let x = relu_outputs(3 * t);
            let mut x2 = x.clone();
            x2.iter_mut().step_by(4).for_each(|v| *v = f32::NAN);
            for x in [x, x2] {
                let shape = Shape::sequence(3, t);
                let pairs = t / 2;
                let dy: Vec<f32> = (0..3 * pairs).map(|i| i as f32 + 1.0).collect();
                for relu in [false, true] {
                    let mut want = std::vec![0.0_f32; x.len()];
                    for (r, row) in x.chunks_exact(t).enumerate() {
                        for (i, window) in row.chunks_exact(2).enumerate() {
                            let (at, value) = argmax(window).unwrap();
                            if !relu || value > 0.0 {
                                want[r * t + 2 * i + at] = dy[r * pairs + i];
                            }
                        }
                    }
                    let mut got = std::vec![f32::NAN; x.len()];
                    let pool = MaxPool1d { kernel: 2 };
                    pool.backward_masked(1, shape, &x, &dy, &mut got, relu)
                        .unwrap();
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "T {t}, relu {relu}");
                }
            }
        }
    }

    /// The pools' backward through the ReLU before them equals the pool's backward then
    /// the ReLU's, bit for bit: pools of 2 (odd rows too) and 3, the global pool in fours
    /// and in a short last group.
    #[test]
    fn backward_through_relu_equals_the_two_steps() {
        let cases = [
            (2, 2, 3, 9),
            (2, 1, 2, 8),
            (2, 2, 2, 21),
            (2, 1, 3, 53),
            (3, 2, 2, 10),
            (5, 3, 3, 5),
        ];
        for (kernel, n, c, t) in cases {
            let shape = Shape::sequence(c, t);
            let x = relu_outputs(n * c * t);
            let pool = MaxPool1d { kernel };
            let out = pool.output_shape(shape).unwrap();
            let dy: Vec<f32> = (0..n * out.size().unwrap())
                .map(|i| i as f32 + 1.0)
                .collect();
            let mut want = std::vec![f32::NAN; x.len()];
            pool.backward(n, shape, &x, &dy, &mut want).unwrap();
            relu::backward(n, shape, &x, &mut want).unwrap();
            let mut got = std::vec![f32::NAN; x.len()];
            pool.backward_through_relu(n, shape, &x, &dy, &mut got)
                .unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "pool of {kernel}, {n}×{c}×{t}");
            assert!(got.iter().any(|v| *v != 0.0), "every gradient masked");

            let g: Vec<f32> = (0..n * c).map(|i| i as f32 + 1.0).collect();
            let mut want = std::vec![f32::NAN; x.len()];
            global_max_pool1d::backward(n, shape, &x, &g, &mut want).unwrap();
            relu::backward(n, shape, &x, &mut want).unwrap();
            let mut got = std::vec![f32::NAN; x.len()];
            global_max_pool1d::backward_through_relu(n, shape, &x, &g, &mut got).unwrap();
            assert_eq!(bits(&got), bits(&want), "global pool, {n}×{c}×{t}");
        }
    }
}
