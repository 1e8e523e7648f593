//! The scalar twin: the reference crate's loops, left to right, no FMA.

use super::Kernels;

/// Scalar kernels: `acc += a_i * b_i` left to right, exactly as `oxicuda-ssl` sums.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scalar;

impl Kernels for Scalar {
    #[inline]
    fn dot_add(acc: f32, a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).fold(acc, |acc, (ai, bi)| acc + ai * bi)
    }

    #[inline]
    fn matvec_add(w: &[f32], row_stride: usize, offset: usize, x: &[f32], y: &mut [f32]) {
        for (yi, row) in y.iter_mut().zip(w.chunks(row_stride.max(1))) {
            let row = row.get(offset..).unwrap_or_default();
            *yi = Self::dot_add(*yi, row, x);
        }
    }

    #[inline]
    fn divide(v: &mut [f32], divisor: f32) {
        v.iter_mut().for_each(|x| *x /= divisor);
    }
}
