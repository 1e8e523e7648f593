//! The scalar twin: the reference crate's sums, left to right, no FMA, with rows in
//! register blocks (each row's order unchanged).

use super::correlate::{self, CorrelationDims};
use super::{
    BATCH_LANES, GemmA, Kernels, ROW_BLOCK, SumEnds, gemm_call, gemm_nt_call, pieces, pieces_mut,
    sealed::{self, Sealed as _},
};

/// `acc[r] + rows[r]·x` for [`ROW_BLOCK`] rows (each at least `x.len()` long), every sum
/// left to right from its start value: the reference's order, bit for bit. Each `x[c]`
/// is loaded once for the block: on an FPU without vectors (the Cortex-M4F) a column of
/// the two-view product ([`dot2_add_rows`]) is six loads and eight multiply–accumulates,
/// 2 instructions per multiply–add with the loop's two. (Blocks of six and eight rows
/// run out of integer registers for the row pointers there.) The rows are zipped by name, not looped over: at
/// opt-level "s" a loop over the block is not unrolled and costs a bounds check per
/// weight.
#[inline(always)]
fn dot_add_rows(acc: [f32; ROW_BLOCK], rows: [&[f32]; ROW_BLOCK], x: &[f32]) -> [f32; ROW_BLOCK] {
    let [r0, r1, r2, r3] = rows;
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    for ((((p, w0), w1), w2), w3) in x.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
        a0 += w0 * p;
        a1 += w1 * p;
        a2 += w2 * p;
        a3 += w3 * p;
    }
    [a0, a1, a2, a3]
}

/// [`dot_add_rows`] for two inputs through the same rows: each weight is loaded once for
/// both, eight running sums in the reference's order (`x[0]`, `x[1]` equally long,
/// every row at least as long).
#[inline(always)]
fn dot2_add_rows(
    acc: [[f32; ROW_BLOCK]; 2],
    rows: [&[f32]; ROW_BLOCK],
    x: [&[f32]; 2],
) -> [[f32; ROW_BLOCK]; 2] {
    let [r0, r1, r2, r3] = rows;
    let [x1, x2] = x;
    let [
        [mut a0, mut a1, mut a2, mut a3],
        [mut b0, mut b1, mut b2, mut b3],
    ] = acc;
    let columns = x1.iter().zip(x2).zip(r0).zip(r1).zip(r2).zip(r3);
    for (((((p, q), w0), w1), w2), w3) in columns {
        a0 += w0 * p;
        b0 += w0 * q;
        a1 += w1 * p;
        b1 += w1 * q;
        a2 += w2 * p;
        b2 += w2 * q;
        a3 += w3 * p;
        b3 += w3 * q;
    }
    [[a0, a1, a2, a3], [b0, b1, b2, b3]]
}

/// Scalar kernels: `acc += a_i * b_i` left to right, exactly as `oxicuda-ssl` sums.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scalar;

impl sealed::Sealed for Scalar {
    const LANE_SUMS: bool = false;

    #[inline]
    fn matvec_layer(
        w: &[f32],
        row_stride: usize,
        offset: usize,
        x: &[f32],
        ends: SumEnds<'_>,
        y: &mut [f32],
    ) {
        super::blocked_matvec_add::<Self, false>(
            w,
            row_stride,
            offset,
            x,
            (ends, y),
            |acc, rows, x, _| dot_add_rows(acc, rows, x),
        );
    }

    #[inline]
    fn matvec2_layer(
        w: &[f32],
        row_stride: usize,
        offset: usize,
        x: [&[f32]; 2],
        ends: SumEnds<'_>,
        y: [&mut [f32]; 2],
    ) {
        super::blocked_matvec2_add::<Self, false>(
            w,
            row_stride,
            offset,
            x,
            (ends, y),
            |acc, rows, x, _| dot2_add_rows(acc, rows, x),
        );
    }

    #[inline]
    fn correlate(
        d: &CorrelationDims,
        w: &[f32],
        start: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
        _pack: &mut [f32],
    ) {
        correlate::correlate_scalar(d, w, start, x, y);
    }

    #[inline]
    fn weights_in_place(_: &CorrelationDims) -> bool {
        false
    }

    #[inline]
    fn correlate_weights_add(d: &CorrelationDims, dy: &[f32], x: &[f32], dw: &mut [f32]) {
        correlate::correlate_weights_scalar(d, dy, x, dw);
    }

    fn gemm_tn_set(
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
        super::zero_block(c, m, n, ldc);
        Self::gemm_tn_add(m, n, k, a, lda, b, ldb, c, ldc);
    }
}

impl Kernels for Scalar {
    #[inline]
    fn dot_add(acc: f32, a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).fold(acc, |acc, (ai, bi)| acc + ai * bi)
    }

    #[inline]
    fn matvec_add(w: &[f32], row_stride: usize, offset: usize, x: &[f32], y: &mut [f32]) {
        Self::matvec_layer(w, row_stride, offset, x, SumEnds::ACCUMULATE, y);
    }

    #[inline]
    fn matvec2_add(
        w: &[f32],
        row_stride: usize,
        offset: usize,
        x: [&[f32]; 2],
        y: [&mut [f32]; 2],
    ) {
        Self::matvec2_layer(w, row_stride, offset, x, SumEnds::ACCUMULATE, y);
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

    #[inline]
    fn gemm_nt_add(
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
        let Some((g, c)) = gemm_nt_call(m, n, k, a, lda, b, ldb, c, ldc) else {
            return;
        };
        // Row `i` of `C` and of `A`; the rows of the stored `B` four at a time
        // ([`dot_add_rows`], each `x[p]` loaded once for the block), every `C[i, j]` one
        // running sum from its start value, `p` ascending, no FMA.
        for (c_row, a_row) in pieces_mut(c, ldc).zip(pieces(g.a, lda)) {
            let a_row = a_row.get(..k).unwrap_or_default();
            let c_row = c_row.get_mut(..n).unwrap_or_default();
            let mut b_rows = pieces(g.b, ldb).map(|row| row.get(..k).unwrap_or_default());
            let (blocks, rest) = c_row.as_chunks_mut::<ROW_BLOCK>();
            for block in blocks {
                let rows: [&[f32]; ROW_BLOCK] =
                    core::array::from_fn(|_| b_rows.next().unwrap_or_default());
                *block = dot_add_rows(*block, rows, a_row);
            }
            for (c_ij, b_row) in rest.iter_mut().zip(b_rows) {
                *c_ij = a_row
                    .iter()
                    .zip(b_row)
                    .fold(*c_ij, |acc, (x, w)| acc + w * x);
            }
        }
    }
}
