//! The SIMD twin on `wide` lanes.
//!
//! The lane type is picked at compile time: `f32x16` when the build enables `avx512f`,
//! else `f32x8` (which `wide` lowers to one AVX register, two SSE registers, two NEON
//! registers, or eight scalars, depending on the target features). Several independent
//! accumulators keep the FMA latency from bounding the loops.

use super::{BATCH_LANES, Kernels};

#[cfg(target_feature = "avx512f")]
type Lanes = wide::f32x16;
#[cfg(not(target_feature = "avx512f"))]
type Lanes = wide::f32x8;

/// How many `f32` one SIMD vector holds in this build (16 with `avx512f`, else 8).
#[cfg(target_feature = "avx512f")]
pub const LANES: usize = 16;
/// How many `f32` one SIMD vector holds in this build (16 with `avx512f`, else 8).
#[cfg(not(target_feature = "avx512f"))]
pub const LANES: usize = 8;

/// Independent accumulators in a one-row dot product.
const DOT_CHAINS: usize = 4;
/// Elements consumed per step of the one-row dot product.
const DOT_STEP: usize = DOT_CHAINS * LANES;
/// Rows computed together in a matrix–vector product (each `x` load feeds them all).
const ROW_BLOCK: usize = 4;
/// Elements per row consumed per step of the blocked product (two chains per row).
const ROW_STEP: usize = 2 * LANES;

/// The lanes of [`Kernels::matmat_t_add`]: one input per lane.
type BatchLanes = wide::f32x16;

/// Rows per register block in [`Kernels::matmat_t_add`]: `BATCH_ROWS` accumulators of
/// sixteen lanes, enough independent FMA chains to cover latency × pipes, few enough to
/// stay in registers (32 zmm with AVX-512; 16 ymm with AVX, where an `f32x16` is two).
#[cfg(target_feature = "avx512f")]
const BATCH_ROWS: usize = 12;
#[cfg(all(target_feature = "avx", not(target_feature = "avx512f")))]
const BATCH_ROWS: usize = 6;
#[cfg(not(target_feature = "avx"))]
const BATCH_ROWS: usize = 2;

/// `yt[r] += rows[r]·xt` for `R` rows, over the common length, sixteen inputs per lane:
/// per column, one load of `xt[c]`, `R` broadcast weights and `R` FMAs.
#[inline(always)]
fn batch_rows<const R: usize>(
    rows: [&[f32]; R],
    xt: &[[f32; BATCH_LANES]],
    yt: &mut [[f32; BATCH_LANES]; R],
) {
    let k = rows.iter().fold(xt.len(), |k, row| k.min(row.len()));
    let Some(xt) = xt.get(..k) else {
        return;
    };
    let mut cut: [&[f32]; R] = [&[]; R];
    for (slot, row) in cut.iter_mut().zip(rows) {
        match row.get(..k) {
            Some(row) => *slot = row,
            None => return,
        }
    }
    let mut acc = yt.map(BatchLanes::from);
    for (c, x) in xt.iter().enumerate() {
        let x = BatchLanes::from(*x);
        for (a, row) in acc.iter_mut().zip(&cut) {
            if let Some(w) = row.get(c) {
                *a = BatchLanes::splat(*w).mul_add(x, *a);
            }
        }
    }
    *yt = acc.map(|a| a.to_array());
}

/// SIMD kernels on `wide` lanes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simd;

#[inline(always)]
fn load(chunk: &[f32; LANES]) -> Lanes {
    Lanes::from(*chunk)
}

/// The two halves of a `ROW_STEP` chunk as lanes.
#[inline(always)]
fn load_pair(chunk: &[f32; ROW_STEP]) -> (Lanes, Lanes) {
    let (halves, _) = chunk.as_chunks::<LANES>();
    match halves {
        [lo, hi] => (load(lo), load(hi)),
        // `ROW_STEP == 2 * LANES`, so there are always exactly two halves.
        _ => (Lanes::ZERO, Lanes::ZERO),
    }
}

/// `Σ a_i·b_i` over equal-length scalar tails.
#[inline(always)]
fn tail_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |acc, (ai, bi)| acc + ai * bi)
}

/// `acc + a·b` on four rows at once over a shared `x`. All slices are cut to the common
/// length first, so a short row shortens the product instead of panicking.
#[inline(always)]
fn dot_add_rows(acc: [f32; ROW_BLOCK], rows: [&[f32]; ROW_BLOCK], x: &[f32]) -> [f32; ROW_BLOCK] {
    let n = rows.iter().fold(x.len(), |n, row| n.min(row.len()));
    let x = x.get(..n).unwrap_or_default();
    let rows = rows.map(|row| row.get(..n).unwrap_or_default());
    let (x_steps, x_tail) = x.as_chunks::<ROW_STEP>();
    let [r0, r1, r2, r3] = rows.map(|row| row.as_chunks::<ROW_STEP>());

    let mut lo = [Lanes::ZERO; ROW_BLOCK];
    let mut hi = [Lanes::ZERO; ROW_BLOCK];
    let steps = x_steps.iter().zip(r0.0).zip(r1.0).zip(r2.0).zip(r3.0);
    for ((((xs, w0), w1), w2), w3) in steps {
        let (x_lo, x_hi) = load_pair(xs);
        for ((lo, hi), w) in lo.iter_mut().zip(hi.iter_mut()).zip([w0, w1, w2, w3]) {
            let (w_lo, w_hi) = load_pair(w);
            *lo = w_lo.mul_add(x_lo, *lo);
            *hi = w_hi.mul_add(x_hi, *hi);
        }
    }

    let tails = [r0.1, r1.1, r2.1, r3.1];
    let mut out = acc;
    for (((out, lo), hi), tail) in out.iter_mut().zip(lo).zip(hi).zip(tails) {
        *out += (lo + hi).reduce_add() + tail_dot(tail, x_tail);
    }
    out
}

/// Whether every row has at least `n` elements: then a register block of rows can be cut
/// to one common length and still give each row its own prefix sum (the trait's contract).
#[inline(always)]
fn all_at_least<const R: usize>(rows: &[&[f32]; R], n: usize) -> bool {
    rows.iter().all(|row| row.len() >= n)
}

/// The first `n` elements (all of `s` when it is shorter).
#[inline(always)]
fn prefix(s: &[f32], n: usize) -> &[f32] {
    s.get(..n).unwrap_or(s)
}

/// `acc[j] + rows[r]·x[j]` for four rows and two inputs at once: each weight vector is
/// loaded once and feeds two FMAs, into eight independent accumulators (enough to cover
/// the FMA latency on two pipes). Slices are cut to the common length first.
#[inline(always)]
fn dot2_add_rows(
    acc: [[f32; ROW_BLOCK]; 2],
    rows: [&[f32]; ROW_BLOCK],
    x: [&[f32]; 2],
) -> [[f32; ROW_BLOCK]; 2] {
    let [x1, x2] = x;
    let n = rows
        .iter()
        .fold(x1.len().min(x2.len()), |n, row| n.min(row.len()));
    let cut = |s| prefix(s, n);
    let (x1_lanes, x1_tail) = cut(x1).as_chunks::<LANES>();
    let (x2_lanes, x2_tail) = cut(x2).as_chunks::<LANES>();
    let [r0, r1, r2, r3] = rows.map(|row| cut(row).as_chunks::<LANES>());

    let mut s1 = [Lanes::ZERO; ROW_BLOCK];
    let mut s2 = [Lanes::ZERO; ROW_BLOCK];
    let steps = x1_lanes
        .iter()
        .zip(x2_lanes)
        .zip(r0.0)
        .zip(r1.0)
        .zip(r2.0)
        .zip(r3.0);
    for (((((p, q), w0), w1), w2), w3) in steps {
        let (p, q) = (load(p), load(q));
        for ((s1, s2), w) in s1.iter_mut().zip(s2.iter_mut()).zip([w0, w1, w2, w3]) {
            let w = load(w);
            *s1 = w.mul_add(p, *s1);
            *s2 = w.mul_add(q, *s2);
        }
    }

    let tails = [r0.1, r1.1, r2.1, r3.1];
    let [mut out1, mut out2] = acc;
    let sums = s1.iter().zip(&s2).zip(tails);
    for ((o1, o2), ((s1, s2), tail)) in out1.iter_mut().zip(out2.iter_mut()).zip(sums) {
        *o1 += s1.reduce_add() + tail_dot(tail, x1_tail);
        *o2 += s2.reduce_add() + tail_dot(tail, x2_tail);
    }
    [out1, out2]
}

/// The next `N` rows (empty once `rows` runs out). A loop over the array, always inlined:
/// `[(); N].map(..)` here compiled to an out-of-line `try_map` per block, ~11 % of a
/// default-size `project`.
#[inline(always)]
fn next_rows<'a, const N: usize>(rows: &mut impl Iterator<Item = &'a [f32]>) -> [&'a [f32]; N] {
    let mut block: [&[f32]; N] = [&[]; N];
    for slot in &mut block {
        *slot = rows.next().unwrap_or_default();
    }
    block
}

impl Kernels for Simd {
    #[inline]
    fn dot_add(acc: f32, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (
            a.get(..n).unwrap_or_default(),
            b.get(..n).unwrap_or_default(),
        );
        let (a_steps, a_rest) = a.as_chunks::<DOT_STEP>();
        let (b_steps, b_rest) = b.as_chunks::<DOT_STEP>();

        let mut chains = [Lanes::ZERO; DOT_CHAINS];
        for (a_step, b_step) in a_steps.iter().zip(b_steps) {
            let (a_lanes, _) = a_step.as_chunks::<LANES>();
            let (b_lanes, _) = b_step.as_chunks::<LANES>();
            for ((chain, x), y) in chains.iter_mut().zip(a_lanes).zip(b_lanes) {
                *chain = load(x).mul_add(load(y), *chain);
            }
        }
        // What is left is shorter than `DOT_STEP`: whole vectors into chain 0, then scalars.
        let (a_lanes, a_tail) = a_rest.as_chunks::<LANES>();
        let (b_lanes, b_tail) = b_rest.as_chunks::<LANES>();
        let [c0, c1, c2, c3] = chains;
        let mut c0 = c0;
        for (x, y) in a_lanes.iter().zip(b_lanes) {
            c0 = load(x).mul_add(load(y), c0);
        }
        acc + ((c0 + c1) + (c2 + c3)).reduce_add() + tail_dot(a_tail, b_tail)
    }

    #[inline]
    fn matvec_add(w: &[f32], row_stride: usize, offset: usize, x: &[f32], y: &mut [f32]) {
        let mut rows = super::strided_rows(w, row_stride, offset);
        let (y_blocks, y_rest) = y.as_chunks_mut::<ROW_BLOCK>();
        for y_block in y_blocks {
            let block = next_rows::<ROW_BLOCK>(&mut rows);
            *y_block = if all_at_least(&block, x.len()) {
                dot_add_rows(*y_block, block, x)
            } else {
                // A ragged block (only with short or missing rows): each row over its own
                // common prefix with `x`, as the scalar twin does.
                let mut sums = *y_block;
                for (sum, row) in sums.iter_mut().zip(block) {
                    *sum = Self::dot_add(*sum, row, x);
                }
                sums
            };
        }
        for (yi, row) in y_rest.iter_mut().zip(rows) {
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
        let mut rows = super::strided_rows(w, row_stride, offset);
        let [y1, y2] = y;
        let (y1_blocks, y1_rest) = y1.as_chunks_mut::<ROW_BLOCK>();
        let (y2_blocks, y2_rest) = y2.as_chunks_mut::<ROW_BLOCK>();
        let blocks = y1_blocks.len().min(y2_blocks.len());
        let [x1, x2] = x;
        let n = x1.len().min(x2.len());
        let (x1, x2) = (prefix(x1, n), prefix(x2, n));
        for (b1, b2) in y1_blocks.iter_mut().zip(y2_blocks.iter_mut()) {
            let block = next_rows::<ROW_BLOCK>(&mut rows);
            if all_at_least(&block, n) {
                [*b1, *b2] = dot2_add_rows([*b1, *b2], block, [x1, x2]);
            } else {
                // A ragged block: each row over its own common prefix, as the scalar twin.
                for ((s1, s2), row) in b1.iter_mut().zip(b2.iter_mut()).zip(block) {
                    *s1 = Self::dot_add(*s1, row, x1);
                    *s2 = Self::dot_add(*s2, row, x2);
                }
            }
        }
        // Rows after the last whole block of the shorter output (at most three when the
        // outputs have equal length): one row at a time.
        let y1_rest = y1_blocks
            .get_mut(blocks..)
            .unwrap_or_default()
            .as_flattened_mut()
            .iter_mut()
            .chain(y1_rest.iter_mut());
        let y2_rest = y2_blocks
            .get_mut(blocks..)
            .unwrap_or_default()
            .as_flattened_mut()
            .iter_mut()
            .chain(y2_rest.iter_mut());
        for ((y1i, y2i), row) in y1_rest.zip(y2_rest).zip(rows) {
            *y1i = Self::dot_add(*y1i, row, x1);
            *y2i = Self::dot_add(*y2i, row, x2);
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
        let mut rows = super::strided_rows(w, row_stride, offset);
        let (blocks, rest) = yt.as_chunks_mut::<BATCH_ROWS>();
        for block in blocks {
            let block_rows = next_rows::<BATCH_ROWS>(&mut rows);
            if all_at_least(&block_rows, xt.len()) {
                batch_rows(block_rows, xt, block);
            } else {
                // A ragged block: each row over its own common length with `xt`.
                for (y, row) in block.iter_mut().zip(block_rows) {
                    batch_rows([row], xt, core::array::from_mut(y));
                }
            }
        }
        for (y, row) in rest.iter_mut().zip(rows) {
            batch_rows([row], xt, core::array::from_mut(y));
        }
    }

    #[inline]
    fn divide(v: &mut [f32], divisor: f32) {
        let (vectors, tail) = v.as_chunks_mut::<LANES>();
        let d = Lanes::splat(divisor);
        for chunk in vectors {
            *chunk = (load(chunk) / d).to_array();
        }
        tail.iter_mut().for_each(|x| *x /= divisor);
    }
}
