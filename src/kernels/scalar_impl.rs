//! The scalar twin: the reference crate's loops, left to right, no FMA.

use super::{BATCH_LANES, GemmA, Kernels, gemm_call, pieces, pieces_mut};

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
        for (yi, row) in y.iter_mut().zip(super::strided_rows(w, row_stride, offset)) {
            *yi = Self::dot_add(*yi, row, x);
        }
    }

    #[inline]
    fn matvec2_add(
        w: &[f32],
        row_stride: usize,
        offset: usize,
        x: [&[f32]; 2],
        y: [&mut [f32]; 2],
    ) {
        let [x1, x2] = x;
        let n = x1.len().min(x2.len());
        let (x1, x2) = (
            x1.get(..n).unwrap_or_default(),
            x2.get(..n).unwrap_or_default(),
        );
        let [y1, y2] = y;
        let rows = super::strided_rows(w, row_stride, offset);
        for ((y1i, y2i), row) in y1.iter_mut().zip(y2.iter_mut()).zip(rows) {
            // One pass over the row; each output still adds left to right from its start.
            let (a, b) = row
                .iter()
                .zip(x1.iter().zip(x2))
                .fold((*y1i, *y2i), |(a, b), (wi, (p, q))| {
                    (a + wi * p, b + wi * q)
                });
            *y1i = a;
            *y2i = b;
        }
    }

    #[inline]
    fn matmat_t_add(
        w: &[f32],
        row_stride: usize,
        offset: usize,
        xt: &[[f32; BATCH_LANES]],
        yt: &mut [[f32; BATCH_LANES]],
    ) {
        for (y, row) in yt
            .iter_mut()
            .zip(super::strided_rows(w, row_stride, offset))
        {
            for (wc, xc) in row.iter().zip(xt) {
                // Each `y[j]` still adds its terms left to right, one at a time.
                y.iter_mut().zip(xc).for_each(|(yj, xj)| *yj += wc * xj);
            }
        }
    }

    #[inline]
    fn divide(v: &mut [f32], divisor: f32) {
        v.iter_mut().for_each(|x| *x /= divisor);
    }

    #[inline]
    fn gemm_nn_add(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        let layout = GemmA::RowMajor;
        let Some((g, c)) = gemm_call(layout, m, n, k, a, lda, b, ldb, c, ldc) else {
            return;
        };
        // Row `i` of `C` and of `A`, then `p` ascending: every `C[i, j]` adds its products
        // one at a time, in order (`c + a·b`, two roundings; Rust never contracts to FMA).
        for (c_row, a_row) in pieces_mut(c, ldc).zip(pieces(g.a, lda)) {
            let c_row = c_row.get_mut(..n).unwrap_or_default();
            for (a_ip, b_row) in a_row.iter().take(k).zip(pieces(g.b, ldb)) {
                for (c_ij, b_pj) in c_row.iter_mut().zip(b_row) {
                    *c_ij += a_ip * b_pj;
                }
            }
        }
    }

    #[inline]
    fn gemm_tn_add(
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        let layout = GemmA::Transposed;
        let Some((g, c)) = gemm_call(layout, m, n, k, a, lda, b, ldb, c, ldc) else {
            return;
        };
        // Row `i` of `C` (column `i` of the stored `A`), then `p` ascending, as above.
        // (`0..m` counts the rows: `enumerate` keeps an overflow check on its counter.)
        for (i, c_row) in (0..m).zip(pieces_mut(c, ldc)) {
            let c_row = c_row.get_mut(..n).unwrap_or_default();
            // `A[p, i]` is the first element of the `p`-th stride from `a[i]`.
            let a_column = pieces(g.a.get(i..).unwrap_or_default(), lda).filter_map(<[f32]>::first);
            for (a_pi, b_row) in a_column.zip(pieces(g.b, ldb)).take(k) {
                for (c_ij, b_pj) in c_row.iter_mut().zip(b_row) {
                    *c_ij += a_pi * b_pj;
                }
            }
        }
    }
}
