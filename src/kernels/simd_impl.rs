//! The SIMD twin on `wide` lanes.
//!
//! The lane type is picked at compile time: `f32x16` when the build enables `avx512f`,
//! `f32x8` with `avx` (one AVX register), `f32x4` with SSE only (one SSE register) and on
//! wasm32 with `simd128` (one `v128`, which engines keep in one SSE or NEON register),
//! else `f32x8` (two NEON registers on aarch64). `RUSTFLAGS="--cfg simsiam_f32x16"` picks the
//! 16-lane code on any CPU (`wide`'s `f32x16` is then two halves): the same kernels, block
//! sizes and sum orders as an AVX-512 build, so CI runs them where no CPU has `avx512f`.
//! In those 16-lane builds the matrix–vector kernels run rows shorter than
//! [`WIDE_ROW_COLUMNS`](super::WIDE_ROW_COLUMNS) on `f32x8` ([`row_lanes`]).
//! Several independent accumulators keep the FMA latency from bounding the loops. Where `wide` has no vector unit and would
//! emulate its lanes with scalars, every kernel runs the scalar twin's instead
//! ([`VECTOR_UNIT`]).

use super::correlate::{CorrelationDims, window_run};
use super::{
    BATCH_LANES, Gemm, GemmA, Kernels, LOOKAHEAD_COLUMNS, ROW_BLOCK, Scalar, SumEnds, all_at_least,
    gemm_call, gemm_nt_call, next_rows, pieces, pieces_mut, prefix, row_lanes,
    sealed::{self, Sealed as _},
};

#[cfg(any(target_feature = "avx512f", simsiam_f32x16))]
type Lanes = wide::f32x16;
#[cfg(all(
    target_feature = "avx",
    not(any(target_feature = "avx512f", simsiam_f32x16))
))]
type Lanes = wide::f32x8;
#[cfg(all(
    any(target_feature = "sse", target_feature = "simd128"),
    not(any(target_feature = "avx", simsiam_f32x16))
))]
type Lanes = wide::f32x4;
#[cfg(not(any(target_feature = "sse", target_feature = "simd128", simsiam_f32x16)))]
type Lanes = wide::f32x8;

/// How many `f32` one SIMD vector of this build's SIMD twin holds: 16 with `avx512f`, 8
/// with `avx`, 4 on x86 with SSE only (an `f32x8` there is two registers, and eight
/// accumulators of two spilled out of the sixteen) and on wasm32 with `simd128` (one
/// `v128`; engines map it to one of the host's 16 SSE registers on x86-64 for the same
/// reason), else 8 (`wide`'s `f32x8`: two NEON registers on aarch64, or nothing: see
/// [`VECTOR_UNIT`]). The widest lanes the build has: with 16, the matrix–vector kernels
/// run rows shorter than [`WIDE_ROW_COLUMNS`](super::WIDE_ROW_COLUMNS) on 8
/// ([`super::row_lanes`]).
pub const LANES: usize = size_of::<Lanes>() / size_of::<f32>();

/// Independent accumulators in a one-row dot product.
const DOT_CHAINS: usize = 4;
/// Elements consumed per step of the one-row dot product.
const DOT_STEP: usize = DOT_CHAINS * LANES;
/// Elements per row consumed per step of the blocked product (two chains per row).
const ROW_STEP: usize = 2 * LANES;

/// The lanes of [`Kernels::matmat_t_add`]: one input per lane.
type BatchLanes = wide::f32x16;

/// Rows per register block in [`Kernels::matmat_t_add`]: `BATCH_ROWS` accumulators of
/// sixteen lanes, enough independent FMA chains to cover latency × pipes, few enough to
/// stay in registers (32 zmm with AVX-512; 16 ymm with AVX, where an `f32x16` is two;
/// 16 xmm with SSE only and for wasm `simd128`, where it is four). With AVX-512, 8 (FMA
/// latency 4 × two pipes); more rows are more weight streams at once (BENCHMARKS.md,
/// "AVX-512: lanes per layer width").
#[cfg(any(target_feature = "avx512f", simsiam_f32x16))]
const BATCH_ROWS: usize = 8;
#[cfg(all(
    target_feature = "avx",
    not(any(target_feature = "avx512f", simsiam_f32x16))
))]
const BATCH_ROWS: usize = 6;
#[cfg(not(any(target_feature = "avx", target_feature = "avx512f", simsiam_f32x16)))]
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

/// SIMD kernels on `wide` lanes, or, in builds without a vector unit
/// ([`VECTOR_UNIT`] false), the scalar twin's register-blocked kernels.
#[derive(Debug, Clone, Copy, Default)]
pub struct Simd;

/// Whether this build's [`Simd`] twin runs on a vector unit: SSE on x86, NEON on
/// aarch64, or `simd128` on wasm32, the targets where `wide` has vectors.
///
/// Elsewhere (Cortex-M, RISC-V, Armv7 without `neon` in `wide`'s sense) `wide` emulates
/// its lanes with scalars, and that emulation lost to the scalar twin's register-blocked
/// kernels: one default `loss` on the Cortex-M4F took 278 800 instructions against
/// 153 600, a training step 1.75 times the scalar twin's. So there `Simd` runs
/// [`Scalar`]'s kernels, chosen at compile time: the same results bit for bit, and the
/// faster twin is either.
pub const VECTOR_UNIT: bool = cfg!(any(
    target_feature = "sse",
    target_feature = "simd128",
    all(target_feature = "neon", target_arch = "aarch64")
));

/// Rows of `C` per register block of the matrix kernels ([`Kernels::gemm_nn_add`]):
/// `GEMM_ROWS × GEMM_VECS` lane accumulators, enough independent FMA chains to cover
/// latency × pipes, few enough to stay in registers with the `B` vectors and the
/// broadcast `A` value (16 ymm with AVX: 12 + 2 + 1; 32 zmm with AVX-512; 32 q registers
/// on NEON, where an `f32x8` is two; 16 xmm with SSE only and for wasm `simd128`, whose
/// engines have the host's registers: 8 + 2 + 1).
#[cfg(any(target_feature = "avx", target_feature = "neon"))]
const GEMM_ROWS: usize = 6;
#[cfg(not(any(target_feature = "avx", target_feature = "neon")))]
const GEMM_ROWS: usize = 4;
/// Lane vectors per row of a register block (each `B` load feeds `GEMM_ROWS` FMAs).
#[cfg(any(
    target_feature = "sse",
    target_feature = "neon",
    target_feature = "simd128"
))]
const GEMM_VECS: usize = 2;
#[cfg(not(any(
    target_feature = "sse",
    target_feature = "neon",
    target_feature = "simd128"
)))]
const GEMM_VECS: usize = 1;
/// Columns of one register block: a column group.
const GEMM_GROUP: usize = GEMM_VECS * LANES;
/// Whether the build targets an application processor rather than a microcontroller:
/// 64-bit targets, and wasm32 (a wasm engine runs on a host CPU with caches; Rust's
/// wasm32 targets give the main thread 1 MiB of stack, emscripten's 64 KiB). The matrix
/// kernels' cache blocks and the packed path are sized for it ([`GEMM_DEPTH`],
/// [`GEMM_PACK`]).
const APPLICATION_PROCESSOR: bool = cfg!(any(
    target_pointer_width = "64",
    all(target_arch = "wasm32", not(target_os = "emscripten"))
));
/// Steps `p` per cache block: a row block's `A` values (`GEMM_ROWS × GEMM_DEPTH`, 6 KiB
/// with AVX) stay in L1 while they meet every column group of a panel; 64 on
/// microcontrollers. Splitting `p` keeps every element's order: its running sum is
/// stored after one block and loaded, exactly, for the next.
const GEMM_DEPTH: usize = if APPLICATION_PROCESSOR { 256 } else { 64 };
/// Columns per panel when `B` is read in place: the `GEMM_DEPTH × GEMM_PANEL` block of
/// `B` is what every row block passes over before the next panel. A multiple of
/// [`GEMM_GROUP`].
const GEMM_PANEL: usize = 512;
/// Column groups × steps of `B` the packed path copies per panel: 64 KiB of stack on
/// application processors ([`APPLICATION_PROCESSOR`]: deep stacks); microcontrollers
/// never pack.
const GEMM_PACK: usize = if APPLICATION_PROCESSOR {
    16 * 1024 / GEMM_GROUP
} else {
    0
};
/// Whether large products pack `B` ([`GEMM_PACK`]).
const GEMM_PACKS: bool = APPLICATION_PROCESSOR;
// A packed panel holds at least one group of a full cache block of steps.
const _: () = assert!(!GEMM_PACKS || GEMM_PACK >= GEMM_PACK_DEPTH);
/// Steps per cache block of the packed path: with the buffer's 16 K floats, panels of
/// 256 columns (AVX) whose `A` block is packed once for 16 column groups.
const GEMM_PACK_DEPTH: usize = 64;
/// `B` is packed for calls of at least this many multiply-adds (clearing the buffer then
/// costs a few per cent at most) with at least two full row blocks, when its rows are at
/// least [`GEMM_PACK_LD`] apart or it spans at least [`GEMM_PACK_SPAN`] floats: read in
/// place, a row stride that is a multiple of 1 KiB and at least 3 KiB (`har-dense`'s 768
/// inputs: 4 of L1's 64 sets) maps a column group's rows to a few cache sets; below
/// that, reading in place is faster (BENCHMARKS.md, "Measurements behind design choices"
/// and "What limits one training step").
const GEMM_PACK_WORK: usize = 1 << 20;
/// See [`GEMM_PACK_WORK`].
const GEMM_PACK_LD: usize = 768;
/// See [`GEMM_PACK_WORK`].
const GEMM_PACK_SPAN: usize = 1 << 18;

/// One column group of `B` or `C` (`GEMM_VECS` lane vectors).
type Group = [f32; GEMM_GROUP];

/// One step `p` of a register block: `acc[r][v] = A[r]·B[v] + acc[r][v]`, each `B`
/// vector feeding `R` fused multiply-adds, each `A` value broadcast once.
#[inline(always)]
fn gemm_step<const R: usize>(
    acc: &mut [[Lanes; GEMM_VECS]; R],
    a: &[f32; R],
    b: &[Lanes; GEMM_VECS],
) {
    for (acc_row, a_value) in acc.iter_mut().zip(a) {
        let a_lanes = Lanes::splat(*a_value);
        for (sum, b_lanes) in acc_row.iter_mut().zip(b) {
            *sum = a_lanes.mul_add(*b_lanes, *sum);
        }
    }
}

/// A column group as lanes.
#[inline(always)]
fn load_group(group: &Group) -> [Lanes; GEMM_VECS] {
    let mut lanes = [Lanes::ZERO; GEMM_VECS];
    for (l, vector) in lanes.iter_mut().zip(group.as_chunks::<LANES>().0) {
        *l = load(vector);
    }
    lanes
}

/// The first elements of `s` (at most a group) as a group, zero-padded.
#[inline(always)]
fn padded_group(s: &[f32]) -> Group {
    let mut group = [0.0; GEMM_GROUP];
    group.iter_mut().zip(s).for_each(|(g, v)| *g = *v);
    group
}

/// A group of `B` read in place, one step after the other: row `p` of the group starts
/// at `rest[p·ld]`. A whole group is loaded while the slice lasts, also for the last
/// `width < GEMM_GROUP` columns (the extra lanes read the row's padding or the next row,
/// and only reach lanes that are dropped); past its end, the `width` columns zero-padded.
#[inline(always)]
fn strided_groups(
    mut rest: &[f32],
    ld: usize,
    width: usize,
) -> impl Iterator<Item = [Lanes; GEMM_VECS]> {
    core::iter::from_fn(move || {
        let lanes = match rest.first_chunk::<GEMM_GROUP>() {
            Some(group) => load_group(group),
            None => load_group(&padded_group(rest.get(..width).unwrap_or_default())),
        };
        rest = rest.get(ld..).unwrap_or_default();
        Some(lanes)
    })
}

/// One register block: rows `c` (each from its panel's first column), columns
/// `j .. j + width` (`width ≤ GEMM_GROUP`), loaded once, summed in registers over the
/// steps of `a` (`a[p][r] = A[i₀ + r, p₀ + p]`) and `b` with `p` ascending, stored once.
/// Lanes past `width` are computed on padding and dropped. With `zero` the sums start
/// at `+0` instead of `C`'s values (the bits of a `C` of zeros, which is not read).
#[inline(always)]
fn gemm_block<const R: usize>(
    a: &[[f32; R]],
    b: impl Iterator<Item = [Lanes; GEMM_VECS]>,
    c: &mut [&mut [f32]; R],
    (j, width): (usize, usize),
    zero: bool,
) {
    let mut acc = if zero {
        [[Lanes::ZERO; GEMM_VECS]; R]
    } else {
        load_block(c, (j, width))
    };
    for (a_step, b_lanes) in a.iter().zip(b) {
        gemm_step(&mut acc, a_step, &b_lanes);
    }
    store_block(&acc, c, (j, width));
}

/// A register block's running sums from `C`: rows `c` at columns `j .. j + width`
/// (`width ≤ GEMM_GROUP`), the lanes past `width` zero.
#[inline(always)]
fn load_block<const R: usize>(
    c: &[&mut [f32]; R],
    (j, width): (usize, usize),
) -> [[Lanes; GEMM_VECS]; R] {
    let mut acc = [[Lanes::ZERO; GEMM_VECS]; R];
    for (sums, row) in acc.iter_mut().zip(c.iter()) {
        let row = row.get(j..).unwrap_or_default();
        *sums = match row.first_chunk::<GEMM_GROUP>() {
            Some(group) if width >= GEMM_GROUP => load_group(group),
            _ => load_group(&padded_group(row.get(..width).unwrap_or_default())),
        };
    }
    acc
}

/// A register block's sums stored to rows `c` at columns `j .. j + width`; the lanes past
/// `width` are dropped.
#[inline(always)]
fn store_block<const R: usize>(
    acc: &[[Lanes; GEMM_VECS]; R],
    c: &mut [&mut [f32]; R],
    (j, width): (usize, usize),
) {
    for (sums, row) in acc.iter().zip(c.iter_mut()) {
        let row = row.get_mut(j..).unwrap_or_default();
        let mut values = [0.0; GEMM_GROUP];
        for (v, lanes) in values.as_chunks_mut::<LANES>().0.iter_mut().zip(sums) {
            *v = lanes.to_array();
        }
        match row.first_chunk_mut::<GEMM_GROUP>() {
            Some(group) if width >= GEMM_GROUP => *group = values,
            _ => row
                .iter_mut()
                .take(width)
                .zip(values)
                .for_each(|(c, v)| *c = v),
        }
    }
}

/// Where the register blocks of one panel read `B`: `width` columns from `j₀`, steps
/// `p₀ ..`.
trait PanelB {
    /// [`gemm_block`] on the group of panel columns `j .. j + width`.
    fn block<const R: usize>(
        &self,
        a: &[[f32; R]],
        c: &mut [&mut [f32]; R],
        columns: (usize, usize),
    );
}

/// `B` read in place, from `B[p₀, j₀]` at leading dimension `ld`.
struct InPlace<'a> {
    b: &'a [f32],
    ld: usize,
    /// Whether the sums start at `+0` ([`gemm_block`]).
    zero: bool,
}

impl PanelB for InPlace<'_> {
    #[inline(always)]
    fn block<const R: usize>(
        &self,
        a: &[[f32; R]],
        c: &mut [&mut [f32]; R],
        (j, width): (usize, usize),
    ) {
        let b = strided_groups(self.b.get(j..).unwrap_or_default(), self.ld, width);
        gemm_block(a, b, c, (j, width), self.zero);
    }
}

/// `B` packed by [`pack_b`]: group `g` of the panel is `pack[g·kc .. (g + 1)·kc]`.
struct Packed<'a> {
    pack: &'a [Group],
    kc: usize,
    /// Whether the sums start at `+0` ([`gemm_block`]).
    zero: bool,
}

impl PanelB for Packed<'_> {
    #[inline(always)]
    fn block<const R: usize>(
        &self,
        a: &[[f32; R]],
        c: &mut [&mut [f32]; R],
        (j, width): (usize, usize),
    ) {
        let start = (j / GEMM_GROUP).saturating_mul(self.kc);
        let strip = self.pack.get(start..).unwrap_or_default();
        let strip = strip.get(..a.len()).unwrap_or_default();
        gemm_block(a, strip.iter().map(load_group), c, (j, width), self.zero);
    }
}

/// Copies `kc` steps × `width` columns of `B` (from `b = B[p₀, j₀ ..]`, leading
/// dimension `ldb`) into `pack` as [`Packed`] reads them, the last group zero-padded.
fn pack_b(b: &[f32], ldb: usize, kc: usize, width: usize, pack: &mut [Group]) {
    // `0..kc` counts the steps: `enumerate` keeps an overflow check on its counter.
    for (p, row) in (0..kc).zip(pieces(b, ldb)) {
        let row = row.get(..width).unwrap_or_default();
        let (groups, tail) = row.as_chunks::<GEMM_GROUP>();
        let mut at = p;
        for group in groups {
            if let Some(entry) = pack.get_mut(at) {
                *entry = *group;
            }
            at = at.saturating_add(kc);
        }
        if let (false, Some(entry)) = (tail.is_empty(), pack.get_mut(at)) {
            *entry = padded_group(tail);
        }
    }
}

/// The next `N` rows (empty once `rows` runs out), mutable.
#[inline(always)]
fn next_rows_mut<'a, const N: usize>(
    rows: &mut impl Iterator<Item = &'a mut [f32]>,
) -> [&'a mut [f32]; N] {
    core::array::from_fn(|_| rows.next().unwrap_or_default())
}

/// One cache block of the product: steps `p₀ .. p₀ + kc`, panel columns `j₀ .. j₀ + width`.
#[derive(Clone, Copy)]
struct Block {
    p0: usize,
    kc: usize,
    j0: usize,
    width: usize,
}

/// Every block of `R` rows of the panel from row `*i0` on while `R` rows are left: its
/// `A` packed, then the panel's column groups (the last one possibly partial).
#[inline(always)]
fn gemm_rows<'c, const R: usize>(
    g: &Gemm<'_>,
    layout: GemmA,
    (block, panel): (Block, &impl PanelB),
    c_rows: &mut impl Iterator<Item = &'c mut [f32]>,
    i0: &mut usize,
    a_pack: &mut [f32; GEMM_ROWS * GEMM_DEPTH],
) {
    let Block { p0, kc, width, .. } = block;
    let (a_pack, _) = a_pack.as_chunks_mut::<R>();
    let a_pack = a_pack.get_mut(..kc).unwrap_or_default();
    while g.m.saturating_sub(*i0) >= R {
        let mut c_block = next_rows_mut::<R>(c_rows);
        gemm_pack_a(g, layout, (*i0, p0), a_pack);
        gemm_columns(a_pack, panel, &mut c_block, width);
        *i0 = i0.saturating_add(R);
    }
}

/// `A[i₀ + r, p₀ + p]` into `pack[p][r]` for every step `p < pack.len()`, read as
/// `layout` says.
#[inline(always)]
fn gemm_pack_a<const R: usize>(
    g: &Gemm<'_>,
    layout: GemmA,
    (i0, p0): (usize, usize),
    pack: &mut [[f32; R]],
) {
    match layout {
        GemmA::RowMajor if TRANSPOSE_IN_REGISTERS && R <= TRANSPOSE_SIDE => {
            pack_a_rows_avx(g, (i0, p0), pack);
        }
        GemmA::RowMajor => {
            // Rows `i₀ ..` of `A` from column `p₀`: one contiguous row per `r`.
            let start = i0.saturating_mul(g.lda).saturating_add(p0);
            let rows = pieces(g.a.get(start..).unwrap_or_default(), g.lda);
            for (r, row) in (0..R).zip(rows) {
                for (step, value) in pack.iter_mut().zip(row) {
                    if let Some(slot) = step.get_mut(r) {
                        *slot = *value;
                    }
                }
            }
        }
        GemmA::Transposed => {
            // Row `p₀ + p` of the stored `A` holds the block's `R` values side by side.
            let start = p0.saturating_mul(g.lda).saturating_add(i0);
            let rows = pieces(g.a.get(start..).unwrap_or_default(), g.lda);
            for (step, row) in pack.iter_mut().zip(rows) {
                if let Some(values) = row.first_chunk::<R>() {
                    *step = *values;
                }
            }
        }
    }
}

/// One row block (its `A` packed) over the panel's column groups.
#[inline(always)]
fn gemm_columns<const R: usize>(
    a: &[[f32; R]],
    panel: &impl PanelB,
    c_block: &mut [&mut [f32]; R],
    width: usize,
) {
    let mut j = 0;
    while j < width {
        let group_width = width.saturating_sub(j).min(GEMM_GROUP);
        panel.block(a, c_block, (j, group_width));
        j = j.saturating_add(GEMM_GROUP);
    }
}

/// One cache block over all rows of `C`: register blocks of [`GEMM_ROWS`] rows, then 4,
/// 2 and 1 for the last rows.
#[inline(always)]
fn gemm_panel(
    g: &Gemm<'_>,
    layout: GemmA,
    (block, panel): (Block, &impl PanelB),
    (c, ldc): (&mut [f32], usize),
    a_pack: &mut [f32; GEMM_ROWS * GEMM_DEPTH],
) {
    let (j0, j1) = (block.j0, block.j0.saturating_add(block.width));
    let mut c_rows = pieces_mut(c, ldc).map(|row| row.get_mut(j0..j1).unwrap_or_default());
    let mut i0 = 0;
    let bp = (block, panel);
    gemm_rows::<GEMM_ROWS>(g, layout, bp, &mut c_rows, &mut i0, a_pack);
    if GEMM_ROWS > 4 {
        gemm_rows::<4>(g, layout, bp, &mut c_rows, &mut i0, a_pack);
    }
    gemm_rows::<2>(g, layout, bp, &mut c_rows, &mut i0, a_pack);
    gemm_rows::<1>(g, layout, bp, &mut c_rows, &mut i0, a_pack);
}

/// Both matrix kernels on validated operands (at least one element, see
/// [`gemm_call`]), in cache blocks of at most [`GEMM_DEPTH`] steps. Large calls on
/// application processors ([`APPLICATION_PROCESSOR`]) copy `B` into panels first ([`gemm_packed`]); the others read it in
/// place, [`GEMM_PANEL`] columns at a time. Both give the same sums, bit for bit. With
/// `overwrite` the first cache block's sums start at `+0` instead of `C`'s values: `C`
/// is written, as a `C` of zeros would be added to, without being read.
#[inline]
fn gemm(g: &Gemm<'_>, layout: GemmA, c: &mut [f32], ldc: usize, overwrite: bool) {
    let mut a_pack = [0.0; GEMM_ROWS * GEMM_DEPTH];
    let work = g.m.saturating_mul(g.n).saturating_mul(g.k);
    let strided = g.ldb >= GEMM_PACK_LD || g.k.saturating_mul(g.ldb) >= GEMM_PACK_SPAN;
    if GEMM_PACKS && g.m >= 2 * GEMM_ROWS && work >= GEMM_PACK_WORK && strided {
        gemm_packed(g, layout, c, ldc, &mut a_pack, overwrite);
        return;
    }
    let mut p0 = 0;
    while p0 < g.k {
        let kc = g.k.saturating_sub(p0).min(GEMM_DEPTH);
        let b_block = g.b.get(p0.saturating_mul(g.ldb)..).unwrap_or_default();
        let mut j0 = 0;
        while j0 < g.n {
            let width = g.n.saturating_sub(j0).min(GEMM_PANEL);
            let block = Block { p0, kc, j0, width };
            let panel = InPlace {
                b: b_block.get(j0..).unwrap_or_default(),
                ld: g.ldb,
                zero: overwrite && p0 == 0,
            };
            gemm_panel(g, layout, (block, &panel), (&mut *c, ldc), &mut a_pack);
            j0 = j0.saturating_add(width);
        }
        p0 = p0.saturating_add(kc);
    }
}

/// [`gemm`] with `B` copied, one panel at a time, into a contiguous buffer (group by
/// group, step by step), so the register blocks read it in order whatever its leading
/// dimension: read in place, a power-of-two stride maps a group's rows to a few cache
/// sets, and `nn` 64×2048×2048 ran at half the speed of 64×2000×2000.
#[inline(never)]
fn gemm_packed(
    g: &Gemm<'_>,
    layout: GemmA,
    c: &mut [f32],
    ldc: usize,
    a_pack: &mut [f32; GEMM_ROWS * GEMM_DEPTH],
    overwrite: bool,
) {
    let mut b_pack = [[0.0; GEMM_GROUP]; GEMM_PACK];
    let mut p0 = 0;
    while p0 < g.k {
        let kc = g.k.saturating_sub(p0).min(GEMM_PACK_DEPTH);
        let b_block = g.b.get(p0.saturating_mul(g.ldb)..).unwrap_or_default();
        // As many groups as the buffer holds at this depth (`kc ≤ GEMM_PACK`: at least one).
        let groups = GEMM_PACK.checked_div(kc).unwrap_or(1).max(1);
        let panel_width = groups.saturating_mul(GEMM_GROUP);
        let mut j0 = 0;
        while j0 < g.n {
            let width = g.n.saturating_sub(j0).min(panel_width);
            let b_panel = b_block.get(j0..).unwrap_or_default();
            pack_b(b_panel, g.ldb, kc, width, &mut b_pack);
            let block = Block { p0, kc, j0, width };
            let panel = Packed {
                pack: &b_pack,
                kc,
                zero: overwrite && p0 == 0,
            };
            gemm_panel(g, layout, (block, &panel), (&mut *c, ldc), a_pack);
            j0 = j0.saturating_add(width);
        }
        p0 = p0.saturating_add(kc);
    }
}

/// `B` of [`Kernels::gemm_nt_add`] read in place: stored transposed (row `j` of the
/// stored `n × k` matrix is column `j` of `B`), from `B[p₀, j₀]` at leading dimension
/// `ld`. Each step of a group gathers one value from each of its rows: slow, but only
/// targets that never pack ([`GEMM_PACKS`] false) take it.
struct InPlaceTransposed<'a> {
    b: &'a [f32],
    ld: usize,
}

impl PanelB for InPlaceTransposed<'_> {
    #[inline(always)]
    fn block<const R: usize>(
        &self,
        a: &[[f32; R]],
        c: &mut [&mut [f32]; R],
        (j, width): (usize, usize),
    ) {
        let rows = self.b.get(j.saturating_mul(self.ld)..).unwrap_or_default();
        let ld = self.ld;
        let steps = (0..a.len()).map(move |p| {
            let mut group = [0.0; GEMM_GROUP];
            for (value, row) in group.iter_mut().zip(pieces(rows, ld)).take(width) {
                *value = row.get(p).copied().unwrap_or(0.0);
            }
            load_group(&group)
        });
        gemm_block(a, steps, c, (j, width), false);
    }
}

/// Copies `kc` steps × `width` columns of the `B` of [`Kernels::gemm_nt_add`] (from
/// `b = B[p₀, j₀]`: row `j` of the stored matrix is column `j₀ + j` of `B`, leading
/// dimension `ldb`) into `pack` as [`Packed`] reads them, transposing each group of
/// [`GEMM_GROUP`] stored rows; the last group's missing lanes are zeros.
fn pack_b_transposed(b: &[f32], ldb: usize, kc: usize, width: usize, pack: &mut [Group]) {
    let mut rows = pieces(b, ldb).take(width);
    let strips = width.div_ceil(GEMM_GROUP);
    for (strip, group_start) in pieces_mut(pack, kc.max(1))
        .take(strips)
        .zip((0..width).step_by(GEMM_GROUP))
    {
        if width.saturating_sub(group_start) < GEMM_GROUP {
            strip.fill([0.0; GEMM_GROUP]);
        }
        // `0..GEMM_GROUP` counts the lanes: `enumerate` keeps an overflow check.
        for (lane, row) in (0..GEMM_GROUP).zip(rows.by_ref()) {
            for (entry, value) in strip.iter_mut().zip(row.get(..kc).unwrap_or(row)) {
                if let Some(slot) = entry.get_mut(lane) {
                    *slot = *value;
                }
            }
        }
    }
}

/// [`Kernels::gemm_nt_add`] on validated operands (at least one element): on
/// application processors `B` is copied, transposed, into panels ([`pack_b_transposed`],
/// cache blocks of [`GEMM_PACK_DEPTH`] steps, as [`gemm_packed`]); elsewhere it is read
/// in place ([`InPlaceTransposed`], blocks of [`GEMM_DEPTH`] steps × [`GEMM_PANEL`]
/// columns). `A` is read row-major. Both give the same sums, bit for bit.
#[inline(never)]
fn gemm_nt(g: &Gemm<'_>, c: &mut [f32], ldc: usize) {
    let layout = GemmA::RowMajor;
    let mut a_pack = [0.0; GEMM_ROWS * GEMM_DEPTH];
    if GEMM_PACKS {
        let mut b_pack = [[0.0; GEMM_GROUP]; GEMM_PACK];
        let mut p0 = 0;
        while p0 < g.k {
            let kc = g.k.saturating_sub(p0).min(GEMM_PACK_DEPTH);
            let groups = GEMM_PACK.checked_div(kc).unwrap_or(1).max(1);
            let panel_width = groups.saturating_mul(GEMM_GROUP);
            let mut j0 = 0;
            while j0 < g.n {
                let width = g.n.saturating_sub(j0).min(panel_width);
                let start = j0.saturating_mul(g.ldb).saturating_add(p0);
                let b_panel = g.b.get(start..).unwrap_or_default();
                if TRANSPOSE_IN_REGISTERS {
                    pack_b_transposed_avx(b_panel, g.ldb, kc, width, &mut b_pack);
                } else {
                    pack_b_transposed(b_panel, g.ldb, kc, width, &mut b_pack);
                }
                let block = Block { p0, kc, j0, width };
                let panel = Packed {
                    pack: &b_pack,
                    kc,
                    zero: false,
                };
                gemm_panel(g, layout, (block, &panel), (&mut *c, ldc), &mut a_pack);
                j0 = j0.saturating_add(width);
            }
            p0 = p0.saturating_add(kc);
        }
        return;
    }
    let mut p0 = 0;
    while p0 < g.k {
        let kc = g.k.saturating_sub(p0).min(GEMM_DEPTH);
        let mut j0 = 0;
        while j0 < g.n {
            let width = g.n.saturating_sub(j0).min(GEMM_PANEL);
            let start = j0.saturating_mul(g.ldb).saturating_add(p0);
            let panel = InPlaceTransposed {
                b: g.b.get(start..).unwrap_or_default(),
                ld: g.ldb,
            };
            let block = Block { p0, kc, j0, width };
            gemm_panel(g, layout, (block, &panel), (&mut *c, ldc), &mut a_pack);
            j0 = j0.saturating_add(width);
        }
        p0 = p0.saturating_add(kc);
    }
}

#[inline(always)]
fn load(chunk: &[f32; LANES]) -> Lanes {
    Lanes::from(*chunk)
}

/// A lane vector of the matrix–vector kernels, `N` floats: `wide`'s `f32x4`, `f32x8` and
/// `f32x16`, so that one build runs each layer on the lanes [`row_lanes`] picks for its
/// row length.
trait RowVector<const N: usize>: Copy + core::ops::Add<Output = Self> {
    /// All lanes zero.
    const ZERO: Self;
    /// `N` floats as lanes.
    fn load(chunk: &[f32; N]) -> Self;
    /// `self·m + a`, fused where the target has FMA (as `wide`'s `mul_add`).
    fn fma(self, m: Self, a: Self) -> Self;
    /// The sum of the lanes.
    fn reduce_add(self) -> f32;
    /// The lane sums of eight accumulators (two inputs × a block of rows), each a sum of
    /// `N` terms in some order, within [`sum_error_bound`](super::sum_error_bound).
    fn reduce_eight(s: [[Self; ROW_BLOCK]; 2]) -> [[f32; ROW_BLOCK]; 2];
}

impl RowVector<4> for wide::f32x4 {
    const ZERO: Self = Self::ZERO;
    #[inline(always)]
    fn load(chunk: &[f32; 4]) -> Self {
        Self::from(*chunk)
    }
    #[inline(always)]
    fn fma(self, m: Self, a: Self) -> Self {
        self.mul_add(m, a)
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        Self::reduce_add(self)
    }
    /// One 4 × 4 transpose and three adds per four accumulators.
    #[inline(always)]
    fn reduce_eight(s: [[Self; ROW_BLOCK]; 2]) -> [[f32; ROW_BLOCK]; 2] {
        s.map(|rows| {
            let [a, b, c, d] = Self::transpose(rows);
            ((a + b) + (c + d)).to_array()
        })
    }
}

impl RowVector<8> for wide::f32x8 {
    const ZERO: Self = Self::ZERO;
    #[inline(always)]
    fn load(chunk: &[f32; 8]) -> Self {
        Self::from(*chunk)
    }
    #[inline(always)]
    fn fma(self, m: Self, a: Self) -> Self {
        self.mul_add(m, a)
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        Self::reduce_add(self)
    }
    /// With AVX (one register): one 8 × 8 transpose and seven vector adds (31
    /// instructions) instead of eight horizontal sums (about 48). Elsewhere (two NEON registers) eight horizontal sums.
    #[inline(always)]
    fn reduce_eight(s: [[Self; ROW_BLOCK]; 2]) -> [[f32; ROW_BLOCK]; 2] {
        #[cfg(target_feature = "avx")]
        {
            let [[a, b, c, d], [e, f, g, h]] = s;
            let [t0, t1, t2, t3, t4, t5, t6, t7] = Self::transpose([a, b, c, d, e, f, g, h]);
            let [a, b, c, d, e, f, g, h] =
                (((t0 + t1) + (t2 + t3)) + ((t4 + t5) + (t6 + t7))).to_array();
            [[a, b, c, d], [e, f, g, h]]
        }
        #[cfg(not(target_feature = "avx"))]
        {
            s.map(|row| row.map(Self::reduce_add))
        }
    }
}

impl RowVector<16> for wide::f32x16 {
    const ZERO: Self = Self::ZERO;
    #[inline(always)]
    fn load(chunk: &[f32; 16]) -> Self {
        Self::from(*chunk)
    }
    #[inline(always)]
    fn fma(self, m: Self, a: Self) -> Self {
        self.mul_add(m, a)
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        Self::reduce_add(self)
    }
    /// Eight horizontal sums.
    #[inline(always)]
    fn reduce_eight(s: [[Self; ROW_BLOCK]; 2]) -> [[f32; ROW_BLOCK]; 2] {
        s.map(|row| row.map(Self::reduce_add))
    }
}

/// The lanes a 16-lane build runs rows shorter than [`WIDE_ROW_COLUMNS`](super::WIDE_ROW_COLUMNS) on: `f32x8`;
/// in every other build its own [`Lanes`] ([`row_lanes`] never picks fewer).
#[cfg(any(target_feature = "avx512f", simsiam_f32x16))]
type NarrowLanes = wide::f32x8;
/// See above.
#[cfg(not(any(target_feature = "avx512f", simsiam_f32x16)))]
type NarrowLanes = Lanes;
/// Floats in one [`NarrowLanes`].
const NARROW_LANES: usize = size_of::<NarrowLanes>() / size_of::<f32>();
/// [`ROW_STEP`] for [`NarrowLanes`].
const NARROW_ROW_STEP: usize = 2 * NARROW_LANES;
/// [`DOT_STEP`] for [`NarrowLanes`].
const NARROW_DOT_STEP: usize = DOT_CHAINS * NARROW_LANES;
// The kernels run on two lane types: the build's own and the one short rows get.
const _: () = assert!(row_lanes(0, LANES) == NARROW_LANES);
const _: () = assert!(row_lanes(usize::MAX, LANES) == LANES);

/// The two halves of an `S = 2·N` chunk as lanes.
#[inline(always)]
fn load_pair<V: RowVector<N>, const N: usize, const S: usize>(chunk: &[f32; S]) -> (V, V) {
    let (halves, _) = chunk.as_chunks::<N>();
    match halves {
        [lo, hi] => (V::load(lo), V::load(hi)),
        // `S == 2·N` (checked where the kernels start), so there are exactly two halves.
        _ => (V::ZERO, V::ZERO),
    }
}

/// `Σ a_i·b_i` over equal-length scalar tails.
#[inline(always)]
fn tail_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |acc, (ai, bi)| acc + ai * bi)
}

/// `acc + a·b` on four rows at once over a shared `x`. All slices are cut to the common
/// length first, so a short row shortens the product instead of panicking. Each step
/// prefetches the same columns of `ahead`, as [`dot2_add_rows`] does.
#[inline(always)]
fn dot_add_rows<V: RowVector<N>, const N: usize, const S: usize, const PREFETCH_AHEAD: bool>(
    acc: [f32; ROW_BLOCK],
    rows: [&[f32]; ROW_BLOCK],
    x: &[f32],
    ahead: [&[f32]; ROW_BLOCK],
) -> [f32; ROW_BLOCK] {
    const { assert!(S == 2 * N) };
    let n = rows.iter().fold(x.len(), |n, row| n.min(row.len()));
    let x = x.get(..n).unwrap_or_default();
    let rows = rows.map(|row| row.get(..n).unwrap_or_default());
    let (x_steps, x_tail) = x.as_chunks::<S>();
    let [r0, r1, r2, r3] = rows.map(|row| row.as_chunks::<S>());

    let mut lo = [V::ZERO; ROW_BLOCK];
    let mut hi = [V::ZERO; ROW_BLOCK];
    let steps = x_steps.iter().zip(r0.0).zip(r1.0).zip(r2.0).zip(r3.0);
    let step = |lo: &mut [V; ROW_BLOCK], hi: &mut [V; ROW_BLOCK], xs, w: [_; ROW_BLOCK]| {
        let (x_lo, x_hi) = load_pair::<V, N, S>(xs);
        for ((lo, hi), w) in lo.iter_mut().zip(hi.iter_mut()).zip(w) {
            let (w_lo, w_hi) = load_pair::<V, N, S>(w);
            *lo = w_lo.fma(x_lo, *lo);
            *hi = w_hi.fma(x_hi, *hi);
        }
    };
    if PREFETCH_AHEAD && ahead.iter().all(|row| row.len() >= n) {
        // A step covers `S` floats of each row (one 64-byte line with AVX): each
        // line of the next rows is asked for at least once.
        let [a0, a1, a2, a3] = ahead.map(|row| prefix(row, n).as_chunks::<S>().0);
        let ahead = a0.iter().zip(a1).zip(a2).zip(a3);
        for (((((xs, w0), w1), w2), w3), (((f0, f1), f2), f3)) in steps.zip(ahead) {
            for f in [f0, f1, f2, f3] {
                prefetch(f);
            }
            step(&mut lo, &mut hi, xs, [w0, w1, w2, w3]);
        }
    } else {
        for ((((xs, w0), w1), w2), w3) in steps {
            step(&mut lo, &mut hi, xs, [w0, w1, w2, w3]);
        }
    }

    let tails = [r0.1, r1.1, r2.1, r3.1];
    let mut out = acc;
    let [lo, hi] = V::reduce_eight([lo, hi]);
    for (((out, lo), hi), tail) in out.iter_mut().zip(lo).zip(hi).zip(tails) {
        *out += (lo + hi) + tail_dot(tail, x_tail);
    }
    out
}

/// Whether this build prefetches the next block's rows in [`dot2_add_rows`]: x86 with
/// SSE, through `safe_arch`'s prefetches (`core::arch`'s `_mm_prefetch` takes a raw
/// pointer: `unsafe`, which this crate forbids).
const PREFETCH: bool = cfg!(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse"
));

/// Asks for the cache line holding `value` into L2 (a hint: no fault, no effect on
/// results). Into L1 (`prefetch_t0`), a block ahead of the paper head's 8 KiB rows evicts
/// the block being read (BENCHMARKS.md, "Measurements behind design choices").
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse"
    ))]
    safe_arch::prefetch_t1(value);
    #[cfg(not(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse"
    )))]
    let _ = value;
}

/// One column step of [`dot2_add_rows`]: each of the four weight vectors feeds both
/// inputs' accumulators.
#[inline(always)]
fn dot2_step<V: RowVector<N>, const N: usize>(
    (s1, s2): (&mut [V; ROW_BLOCK], &mut [V; ROW_BLOCK]),
    (p, q): (&[f32; N], &[f32; N]),
    w: [&[f32; N]; ROW_BLOCK],
) {
    let (p, q) = (V::load(p), V::load(q));
    for ((s1, s2), w) in s1.iter_mut().zip(s2.iter_mut()).zip(w) {
        let w = V::load(w);
        *s1 = w.fma(p, *s1);
        *s2 = w.fma(q, *s2);
    }
}

/// `acc[j] + rows[r]·x[j]` for four rows and two inputs at once: each weight vector is
/// loaded once and feeds two FMAs, into eight independent accumulators (enough to cover
/// the FMA latency on two pipes). Slices are cut to the common length first.
///
/// With `PREFETCH_AHEAD` (set where the build prefetches, [`PREFETCH`], and rows are long)
/// and `ahead` holding the next block's four rows (as long as these), each step also asks
/// for the same columns of those rows. Streaming
/// the paper head's weights from memory, the kernel alone kept too few cache lines in
/// flight: with two FMAs per weight vector, the out-of-order window covers fewer loads.
///
/// `STEPS` (without lookahead): the rows' length in steps of `N` where the layer's is
/// known at compile time ([`known_steps`]), else 0.
#[inline(always)]
fn dot2_add_rows<
    V: RowVector<N>,
    const N: usize,
    const PREFETCH_AHEAD: bool,
    const STEPS: usize,
>(
    acc: [[f32; ROW_BLOCK]; 2],
    rows: [&[f32]; ROW_BLOCK],
    x: [&[f32]; 2],
    ahead: [&[f32]; ROW_BLOCK],
) -> [[f32; ROW_BLOCK]; 2] {
    let [x1, x2] = x;
    let n = rows
        .iter()
        .fold(x1.len().min(x2.len()), |n, row| n.min(row.len()));
    let cut = |s| prefix(s, n);
    let (x1_lanes, x1_tail) = cut(x1).as_chunks::<N>();
    let (x2_lanes, x2_tail) = cut(x2).as_chunks::<N>();
    let [r0, r1, r2, r3] = rows.map(|row| cut(row).as_chunks::<N>());

    let mut s1 = [V::ZERO; ROW_BLOCK];
    let mut s2 = [V::ZERO; ROW_BLOCK];
    if PREFETCH_AHEAD && ahead.iter().all(|row| row.len() >= n) {
        let steps = x1_lanes
            .iter()
            .zip(x2_lanes)
            .zip(r0.0)
            .zip(r1.0)
            .zip(r2.0)
            .zip(r3.0);
        let [a0, a1, a2, a3] = ahead.map(|row| cut(row).as_chunks::<N>().0);
        let ahead = a0.iter().zip(a1).zip(a2).zip(a3);
        for ((((((p, q), w0), w1), w2), w3), (((f0, f1), f2), f3)) in steps.zip(ahead) {
            for f in [f0, f1, f2, f3] {
                prefetch(f);
            }
            dot2_step((&mut s1, &mut s2), (p, q), [w0, w1, w2, w3]);
        }
    } else {
        let rows = [r0.0, r1.0, r2.0, r3.0];
        let (s, x) = ((&mut s1, &mut s2), [x1_lanes, x2_lanes]);
        if !dot2_fixed_steps::<V, N, STEPS>(s, x, rows) {
            dot2_loop_steps((&mut s1, &mut s2), x, rows);
        }
    }

    let tails = [r0.1, r1.1, r2.1, r3.1];
    let [mut out1, mut out2] = acc;
    let [sums1, sums2] = V::reduce_eight([s1, s2]);
    let sums = sums1.iter().zip(&sums2).zip(tails);
    for ((o1, o2), ((s1, s2), tail)) in out1.iter_mut().zip(out2.iter_mut()).zip(sums) {
        *o1 += s1 + tail_dot(tail, x1_tail);
        *o2 += s2 + tail_dot(tail, x2_tail);
    }
    [out1, out2]
}

/// Whether [`known_steps`] sends rows of 4, 8 or 16 steps to [`dot2_fixed_steps`]:
/// on 64-bit targets. wasm32 keeps the loop (its engines compile and unroll it
/// themselves; not measured there), as do the microcontrollers, where [`VECTOR_UNIT`] is
/// off and the scalar twin runs.
const FIXED_SHORT_ROWS: bool = cfg!(target_pointer_width = "64");

/// The step count of rows of `steps` steps of `n` lanes that [`matvec2_layer_on`] runs
/// on a trip count known at compile time ([`dot2_fixed_steps`]): 4, 8 or 16 (the default
/// head's layers on 8 lanes) where [`FIXED_SHORT_ROWS`] is set and this build runs such
/// rows on `n` lanes ([`row_lanes`]); else 0, the loop.
///
/// Why: through the loop alone, LLVM's runtime unrolling depends on the tuning (for
/// `znver4` four steps per turn and a remainder loop, for `x86-64-v3` or `x86-64-v4`
/// two), and the default head's short rows paid for it where it unrolled more
/// (BENCHMARKS.md, "The 5 % left on Zen 4"). A count known per layer compiles the same
/// under every tuning.
const fn known_steps(steps: usize, n: usize) -> usize {
    match steps {
        4 | 8 | 16 if FIXED_SHORT_ROWS && row_lanes(steps * n, LANES) == n => steps,
        _ => 0,
    }
}

/// [`blocked_matvec2_add`](super::blocked_matvec2_add) without lookahead, on
/// [`dot2_add_rows`] for rows of `STEPS` steps (0: any length).
#[inline(always)]
fn blocked_short_matvec2<V: RowVector<N>, const N: usize, const STEPS: usize>(
    (w, row_stride, offset, x, ends_y): (&[f32], usize, usize, [&[f32]; 2], MatvecOut2<'_, '_>),
) {
    let kernel = dot2_add_rows::<V, N, false, STEPS>;
    super::blocked_matvec2_add::<Simd, false>(w, row_stride, offset, x, ends_y, kernel);
}

/// Where a two-input layer's sums go: how they start and end, and the two outputs.
type MatvecOut2<'e, 'y> = (SumEnds<'e>, [&'y mut [f32]; 2]);

/// [`dot2_step`] over the common length of `x` and `rows`, in column order.
#[inline(always)]
fn dot2_loop_steps<V: RowVector<N>, const N: usize>(
    (s1, s2): (&mut [V; ROW_BLOCK], &mut [V; ROW_BLOCK]),
    [p, q]: [&[[f32; N]]; 2],
    [w0, w1, w2, w3]: [&[[f32; N]]; ROW_BLOCK],
) {
    let steps = p.iter().zip(q).zip(w0).zip(w1).zip(w2).zip(w3);
    for (((((p, q), w0), w1), w2), w3) in steps {
        dot2_step((&mut *s1, &mut *s2), (p, q), [w0, w1, w2, w3]);
    }
}

/// [`dot2_loop_steps`] on a trip count known at compile time, `K`, where
/// [`known_steps`] gives `K` for it and every slice is exactly `K` steps long. Returns
/// whether it ran (else nothing is done). Same steps in the same order, so the same sums.
#[inline(always)]
fn dot2_fixed_steps<V: RowVector<N>, const N: usize, const K: usize>(
    (s1, s2): (&mut [V; ROW_BLOCK], &mut [V; ROW_BLOCK]),
    x: [&[[f32; N]]; 2],
    rows: [&[[f32; N]]; ROW_BLOCK],
) -> bool {
    if K == 0 || known_steps(K, N) != K {
        return false;
    }
    let [Some(p), Some(q)] = x.map(<&[[f32; N]; K]>::try_from).map(Result::ok) else {
        return false;
    };
    let [Some(w0), Some(w1), Some(w2), Some(w3)] =
        rows.map(<&[[f32; N]; K]>::try_from).map(Result::ok)
    else {
        return false;
    };
    let steps = p.iter().zip(q).zip(w0).zip(w1).zip(w2).zip(w3);
    for (((((p, q), w0), w1), w2), w3) in steps {
        dot2_step((&mut *s1, &mut *s2), (p, q), [w0, w1, w2, w3]);
    }
    true
}

/// [`Sealed::matvec_layer`](sealed::Sealed::matvec_layer) on lanes `V` (`N` floats,
/// `S = 2·N` per step).
#[inline(always)]
fn matvec_layer_on<V: RowVector<N>, const N: usize, const S: usize>(
    w: &[f32],
    row_stride: usize,
    offset: usize,
    x: &[f32],
    (ends, y): (SumEnds<'_>, &mut [f32]),
) {
    // Two copies of the blocked loop: small heads keep the one without lookahead (in the
    // copy with it, a default-size `loss` was 7 % slower though it never prefetched).
    if PREFETCH && x.len() >= LOOKAHEAD_COLUMNS {
        let kernel = dot_add_rows::<V, N, S, true>;
        super::blocked_matvec_add::<Simd, true>(w, row_stride, offset, x, (ends, y), kernel);
    } else {
        let kernel = dot_add_rows::<V, N, S, false>;
        super::blocked_matvec_add::<Simd, false>(w, row_stride, offset, x, (ends, y), kernel);
    }
}

/// [`Sealed::matvec2_layer`](sealed::Sealed::matvec2_layer) on lanes `V` (`N` floats).
#[inline(always)]
fn matvec2_layer_on<V: RowVector<N>, const N: usize>(
    w: &[f32],
    row_stride: usize,
    offset: usize,
    x: [&[f32]; 2],
    (ends, y): (SumEnds<'_>, [&mut [f32]; 2]),
) {
    // As in `matvec_layer_on`: the lookahead only where rows are long.
    let [x1, x2] = x;
    if PREFETCH && x1.len().min(x2.len()) >= LOOKAHEAD_COLUMNS {
        let kernel = dot2_add_rows::<V, N, true, 0>;
        super::blocked_matvec2_add::<Simd, true>(w, row_stride, offset, x, (ends, y), kernel);
    } else {
        // Rows of 4, 8 or 16 steps on a trip count known at compile time.
        let args = (w, row_stride, offset, x, (ends, y));
        match known_steps(x1.len().min(x2.len()) / N, N) {
            4 => blocked_short_matvec2::<V, N, 4>(args),
            8 => blocked_short_matvec2::<V, N, 8>(args),
            16 => blocked_short_matvec2::<V, N, 16>(args),
            _ => blocked_short_matvec2::<V, N, 0>(args),
        }
    }
}

/// [`Kernels::dot_add`] on lanes `V` (`N` floats, `S = DOT_CHAINS·N` per step).
#[inline(always)]
fn dot_add_on<V: RowVector<N>, const N: usize, const S: usize>(
    acc: f32,
    a: &[f32],
    b: &[f32],
) -> f32 {
    const { assert!(S == DOT_CHAINS * N) };
    let n = a.len().min(b.len());
    let (a, b) = (prefix(a, n), prefix(b, n));
    let (a_steps, a_rest) = a.as_chunks::<S>();
    let (b_steps, b_rest) = b.as_chunks::<S>();

    let mut chains = [V::ZERO; DOT_CHAINS];
    for (a_step, b_step) in a_steps.iter().zip(b_steps) {
        let (a_lanes, _) = a_step.as_chunks::<N>();
        let (b_lanes, _) = b_step.as_chunks::<N>();
        for ((chain, x), y) in chains.iter_mut().zip(a_lanes).zip(b_lanes) {
            *chain = V::load(x).fma(V::load(y), *chain);
        }
    }
    // What is left is shorter than `S`: whole vectors into chain 0, then scalars.
    let (a_lanes, a_tail) = a_rest.as_chunks::<N>();
    let (b_lanes, b_tail) = b_rest.as_chunks::<N>();
    let [c0, c1, c2, c3] = chains;
    let mut c0 = c0;
    for (x, y) in a_lanes.iter().zip(b_lanes) {
        c0 = V::load(x).fma(V::load(y), c0);
    }
    acc + ((c0 + c1) + (c2 + c3)).reduce_add() + tail_dot(a_tail, b_tail)
}

impl sealed::Sealed for Simd {
    const LANE_SUMS: bool = VECTOR_UNIT;

    #[inline]
    fn matvec_layer(
        w: &[f32],
        row_stride: usize,
        offset: usize,
        x: &[f32],
        ends: SumEnds<'_>,
        y: &mut [f32],
    ) {
        if !VECTOR_UNIT {
            return Scalar::matvec_layer(w, row_stride, offset, x, ends, y);
        }
        let ends_y = (ends, y);
        if row_lanes(x.len(), LANES) == LANES {
            matvec_layer_on::<Lanes, LANES, ROW_STEP>(w, row_stride, offset, x, ends_y);
        } else {
            let kernel = matvec_layer_on::<NarrowLanes, NARROW_LANES, NARROW_ROW_STEP>;
            kernel(w, row_stride, offset, x, ends_y);
        }
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
        if !VECTOR_UNIT {
            return Scalar::matvec2_layer(w, row_stride, offset, x, ends, y);
        }
        let [x1, x2] = x;
        if row_lanes(x1.len().min(x2.len()), LANES) == LANES {
            matvec2_layer_on::<Lanes, LANES>(w, row_stride, offset, x, (ends, y));
        } else {
            matvec2_layer_on::<NarrowLanes, NARROW_LANES>(w, row_stride, offset, x, (ends, y));
        }
    }

    #[inline]
    fn correlate(
        d: &CorrelationDims,
        w: &[f32],
        start: Option<&[f32]>,
        x: &[f32],
        y: &mut [f32],
        pack: &mut [f32],
    ) {
        if !VECTOR_UNIT {
            return Scalar::correlate(d, w, start, x, y, pack);
        }
        correlate_simd(d, w, start, x, y, pack);
    }

    #[inline]
    fn weights_in_place(d: &CorrelationDims) -> bool {
        VECTOR_UNIT && weights_in_place(d)
    }

    #[inline]
    fn correlate_weights_add(d: &CorrelationDims, dy: &[f32], x: &[f32], dw: &mut [f32]) {
        if !VECTOR_UNIT {
            return Scalar::correlate_weights_add(d, dy, x, dw);
        }
        if weights_in_place(d) {
            correlate_weights_direct(d, dy, x, dw);
        } else {
            correlate_weights_simd(d, dy, x, dw);
        }
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
        let layout = GemmA::Transposed;
        if VECTOR_UNIT && let Some((g, c)) = gemm_call(layout, m, n, k, a, lda, b, ldb, c, ldc) {
            gemm(&g, layout, c, ldc, true);
            return;
        }
        super::zero_block(c, m, n, ldc);
        Self::gemm_tn_add(m, n, k, a, lda, b, ldb, c, ldc);
    }
}

impl Kernels for Simd {
    #[inline]
    fn dot_add(acc: f32, a: &[f32], b: &[f32]) -> f32 {
        if !VECTOR_UNIT {
            return Scalar::dot_add(acc, a, b);
        }
        if row_lanes(a.len().min(b.len()), LANES) == LANES {
            dot_add_on::<Lanes, LANES, DOT_STEP>(acc, a, b)
        } else {
            dot_add_on::<NarrowLanes, NARROW_LANES, NARROW_DOT_STEP>(acc, a, b)
        }
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
        if !VECTOR_UNIT {
            return Scalar::matmat_t_add(w, row_stride, offset, xt, yt);
        }
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
        if !VECTOR_UNIT {
            return Scalar::gemm_nn_add(m, n, k, a, lda, b, ldb, c, ldc);
        }
        let layout = GemmA::RowMajor;
        if let Some((g, c)) = gemm_call(layout, m, n, k, a, lda, b, ldb, c, ldc) {
            gemm(&g, layout, c, ldc, false);
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
        if !VECTOR_UNIT {
            return Scalar::gemm_tn_add(m, n, k, a, lda, b, ldb, c, ldc);
        }
        let layout = GemmA::Transposed;
        if let Some((g, c)) = gemm_call(layout, m, n, k, a, lda, b, ldb, c, ldc) {
            gemm(&g, layout, c, ldc, false);
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
        if !VECTOR_UNIT {
            return Scalar::gemm_nt_add(m, n, k, a, lda, b, ldb, c, ldc);
        }
        if let Some((g, c)) = gemm_nt_call(m, n, k, a, lda, b, ldb, c, ldc) {
            gemm_nt(&g, c, ldc);
        }
    }

    #[inline]
    fn divide(v: &mut [f32], divisor: f32) {
        if !VECTOR_UNIT {
            return Scalar::divide(v, divisor);
        }
        let (vectors, tail) = v.as_chunks_mut::<LANES>();
        let d = Lanes::splat(divisor);
        for chunk in vectors {
            *chunk = (load(chunk) / d).to_array();
        }
        tail.iter_mut().for_each(|x| *x /= divisor);
    }
}

// Correlations (`super::correlate`): the window gather folded into the operand packing.

/// Output positions `(s, t)` of one register block of [`correlate_simd`] (`None` past the
/// batch's last).
type Positions = [Option<(usize, usize)>; GEMM_ROWS];

/// `(s, t)` one position further in `n × T_out`, row-major.
#[inline(always)]
fn next_position(d: &CorrelationDims, (s, t): (usize, usize)) -> (usize, usize) {
    let t = t.saturating_add(1);
    if t < d.out_len {
        (s, t)
    } else {
        (s.saturating_add(1), 0)
    }
}

/// The next [`GEMM_ROWS`] output positions from `*at`, advancing it.
#[inline(always)]
fn next_positions(d: &CorrelationDims, at: &mut (usize, usize)) -> Positions {
    core::array::from_fn(|_| {
        let here = *at;
        if here.0 >= d.n {
            return None;
        }
        *at = next_position(d, here);
        Some(here)
    })
}

/// Sample `s` of `x` (`C_in × T` floats; empty past the end).
#[inline(always)]
fn sample<'x>(d: &CorrelationDims, x: &'x [f32], s: usize) -> &'x [f32] {
    x.get(s.saturating_mul(d.in_size)..)
        .and_then(|v| v.get(..d.in_size))
        .unwrap_or_default()
}

/// `a[c·k + j][r] = x̃[s_r, c, t_r·stride + j − left]` for the block's positions
/// (`(s_r, t_r)`, 0 for a missing one): a register block's windows, `A` of the product,
/// for the blocks [`correlate_sums_direct`] cannot read in place (across a sample's
/// edge, beside the padding, a stride above 1), row by row.
/// `(s, first)` when the block's positions all lie in sample `s`, stride 1, and every
/// window reads inside its rows from position `first` (`t₀ − left`) on.
#[inline(always)]
fn inside_one_sample(d: &CorrelationDims, positions: &Positions) -> Option<(usize, usize)> {
    let (Some((s, t0)), Some((s_last, _))) = (positions[0], positions[GEMM_ROWS - 1]) else {
        return None;
    };
    let first = t0.checked_sub(d.left).filter(|from| {
        from.saturating_add(GEMM_ROWS - 1)
            .saturating_add(d.kernel)
            .le(&d.len)
    })?;
    (s == s_last && d.stride == 1).then_some((s, first))
}

/// [`correlate_sums`] for a block of [`inside_one_sample`]: step `c·k + j` broadcasts
/// `x[s, c, first + j ..][..GEMM_ROWS]` straight from the sample's row (no packed copy).
#[inline(never)]
fn correlate_sums_direct(
    d: &CorrelationDims,
    x_sample: &[f32],
    first: usize,
    strip: &[Group],
    begin: &Group,
) -> [Group; GEMM_ROWS] {
    let mut acc = [load_group(begin); GEMM_ROWS];
    let mut b = strip.iter();
    for x_row in pieces(x_sample, d.len) {
        let run = x_row.get(first..).unwrap_or_default();
        for (j, b_step) in (0..d.kernel).zip(b.by_ref()) {
            if let Some(a_step) = run.get(j..).and_then(|r| r.first_chunk::<GEMM_ROWS>()) {
                gemm_step(&mut acc, a_step, &load_group(b_step));
            }
        }
    }
    let mut sums = [[0.0; GEMM_GROUP]; GEMM_ROWS];
    for (values, lanes) in sums.iter_mut().zip(&acc) {
        for (v, vector) in values.as_chunks_mut::<LANES>().0.iter_mut().zip(lanes) {
            *v = vector.to_array();
        }
    }
    sums
}

#[inline(always)]
fn pack_windows(d: &CorrelationDims, x: &[f32], positions: &Positions, a: &mut [[f32; GEMM_ROWS]]) {
    for (position, r) in positions.iter().zip(0..GEMM_ROWS) {
        let Some((s, t)) = *position else {
            a.iter_mut().for_each(|entry| entry[r] = 0.0);
            continue;
        };
        let first = t.saturating_mul(d.stride);
        // Taps `lo .. hi` read inside the row, the others the padding's zeros.
        let lo = d.left.saturating_sub(first).min(d.kernel);
        let hi = d
            .len
            .saturating_add(d.left)
            .saturating_sub(first)
            .clamp(lo, d.kernel);
        let from = first.saturating_add(lo).saturating_sub(d.left);
        let rows = pieces(sample(d, x, s), d.len);
        for (a_channel, x_row) in pieces_mut(a, d.kernel).zip(rows) {
            let (head, rest) = a_channel.split_at_mut_checked(lo).unwrap_or_default();
            let (middle, tail) = rest
                .split_at_mut_checked(hi.saturating_sub(lo))
                .unwrap_or_default();
            head.iter_mut().for_each(|entry| entry[r] = 0.0);
            let run = x_row.get(from..).unwrap_or_default();
            for (entry, v) in middle.iter_mut().zip(run) {
                entry[r] = *v;
            }
            tail.iter_mut().for_each(|entry| entry[r] = 0.0);
        }
    }
}

/// One register block of [`correlate_simd`]: `GEMM_ROWS` positions' windows (`a`) times
/// one strip of `Wᵀ`, each sum from `begin` over the steps in order. Not inlined: its
/// accumulators then stay in registers (inlined into the caller's loops, they were stored
/// to the stack at every step).
#[inline(never)]
fn correlate_sums(a: &[[f32; GEMM_ROWS]], strip: &[Group], begin: &Group) -> [Group; GEMM_ROWS] {
    let mut acc = [load_group(begin); GEMM_ROWS];
    for (a_step, b) in a.iter().zip(strip) {
        gemm_step(&mut acc, a_step, &load_group(b));
    }
    let mut sums = [[0.0; GEMM_GROUP]; GEMM_ROWS];
    for (values, lanes) in sums.iter_mut().zip(&acc) {
        for (v, vector) in values.as_chunks_mut::<LANES>().0.iter_mut().zip(lanes) {
            *v = vector.to_array();
        }
    }
    sums
}

/// [`correlate`](super::correlate::correlate) on checked operands, SIMD twin: `Y` as the
/// product `(n·T_out) × C_out = windows · Wᵀ`, register blocks of [`GEMM_ROWS`] output
/// positions (crossing samples) × one column group of output channels, summed in registers
/// over the whole window (`(c, j)` ascending, from the start value) and stored once, each
/// lane to its `y[s, o, t]`. `Wᵀ` is packed once by column groups into `pack`; a block
/// inside one sample reads its windows straight from `x` ([`correlate_sums_direct`]), any
/// other has them packed after `Wᵀ` first ([`pack_windows`]).
fn correlate_simd(
    d: &CorrelationDims,
    w: &[f32],
    start: Option<&[f32]>,
    x: &[f32],
    y: &mut [f32],
    pack: &mut [f32],
) {
    let groups = d.c_out.div_ceil(GEMM_GROUP);
    let b_len = groups.saturating_mul(GEMM_GROUP).saturating_mul(d.window);
    let (b_part, a_part) = pack.split_at_mut_checked(b_len).unwrap_or_default();
    let b_pack = b_part.as_chunks_mut::<GEMM_GROUP>().0;
    let a_pack = a_part.as_chunks_mut::<GEMM_ROWS>().0;
    let a_pack = a_pack.get_mut(..d.window).unwrap_or_default();
    // Wᵀ by strips of GEMM_GROUP output channels: `strip[p][lane] = W[o₀ + lane, p]`.
    let w_strips = pieces(w, GEMM_GROUP.saturating_mul(d.window));
    for (strip, w_rows) in pieces_mut(b_pack, d.window).zip(w_strips) {
        strip.fill([0.0; GEMM_GROUP]);
        for (w_row, lane) in pieces(w_rows, d.window).zip(0..GEMM_GROUP) {
            for (entry, v) in strip.iter_mut().zip(w_row) {
                entry[lane] = *v;
            }
        }
    }
    let mut at = (0_usize, 0_usize);
    while at.0 < d.n {
        let positions = next_positions(d, &mut at);
        // A block of one sample away from the padding (stride 1) reads its windows
        // straight from the rows of `x`; any other is packed first.
        let direct = inside_one_sample(d, &positions);
        if direct.is_none() {
            pack_windows(d, x, &positions, a_pack);
        }
        let strips = pieces(b_pack, d.window).zip((0..d.c_out).step_by(GEMM_GROUP));
        for (strip, o0) in strips {
            let width = d.c_out.saturating_sub(o0).min(GEMM_GROUP);
            let mut begin = [0.0; GEMM_GROUP];
            if let Some(values) = start.and_then(|v| v.get(o0..)) {
                begin.iter_mut().zip(values).for_each(|(b, v)| *b = *v);
            }
            let sums = match direct {
                Some((s, from)) => correlate_sums_direct(d, sample(d, x, s), from, strip, &begin),
                None => correlate_sums(a_pack, strip, &begin),
            };
            if let (Some((s, _)), Some((_, t0))) = (direct, positions[0]) {
                // One sample, consecutive positions: each channel's outputs are one run.
                let mut base = s
                    .saturating_mul(d.out_size)
                    .saturating_add(o0.saturating_mul(d.out_len))
                    .saturating_add(t0);
                for lane in 0..width {
                    let run = y
                        .get_mut(base..)
                        .and_then(|v| v.first_chunk_mut::<GEMM_ROWS>());
                    if let Some(run) = run {
                        *run = core::array::from_fn(|r| {
                            let value = sums.get(r).and_then(|v| v.get(lane));
                            value.copied().unwrap_or(0.0)
                        });
                    }
                    base = base.saturating_add(d.out_len);
                }
                continue;
            }
            for (values, position) in sums.iter().zip(&positions) {
                let Some((s, t)) = *position else { continue };
                let base = s
                    .saturating_mul(d.out_size)
                    .saturating_add(o0.saturating_mul(d.out_len))
                    .saturating_add(t);
                let out = y.get_mut(base..).unwrap_or_default();
                let lanes = values.iter().take(width);
                for (v, dst) in lanes.zip(out.iter_mut().step_by(d.out_len)) {
                    *dst = *v;
                }
            }
        }
    }
}

/// Steps `(s, t)` per cache block of [`correlate_weights_simd`].
const CORR_DEPTH: usize = if APPLICATION_PROCESSOR { 64 } else { 16 };
/// Window columns per panel of [`correlate_weights_simd`] (a multiple of every build's
/// [`GEMM_GROUP`]): with [`CORR_DEPTH`] steps, 64 KiB of stack on application processors.
const CORR_PANEL: usize = if APPLICATION_PROCESSOR { 256 } else { 64 };
const _: () = assert!(CORR_PANEL.is_multiple_of(GEMM_GROUP));

/// Packs `kc` steps from `from` × window columns `j₀ .. j₀ + width` of `B[(s, t), (c, j)] =
/// x̃[s, c, t·stride + j − left]` into `pack` as [`Packed`] reads them (group `g`, step
/// `p` at `pack[g·kc + p]`), one step's panel at a time through `row`.
fn pack_window_panel(
    d: &CorrelationDims,
    x: &[f32],
    (from, kc): ((usize, usize), usize),
    (j0, width): (usize, usize),
    row: &mut [f32; CORR_PANEL],
    pack: &mut [Group],
) {
    let (c_first, j_first) = (
        j0.checked_div(d.kernel).unwrap_or(0),
        j0.checked_rem(d.kernel).unwrap_or(0),
    );
    let groups = width.div_ceil(GEMM_GROUP);
    let mut at = from;
    for step in 0..kc {
        let (s, t) = at;
        let x_sample = sample(d, x, s);
        let first = t.saturating_mul(d.stride);
        let (mut q, mut c, mut j) = (0_usize, c_first, j_first);
        while q < width {
            let run = d
                .kernel
                .saturating_sub(j)
                .min(width.saturating_sub(q))
                .max(1);
            let x_row = x_sample
                .get(c.saturating_mul(d.len)..)
                .and_then(|r| r.get(..d.len))
                .unwrap_or_default();
            let end = q.saturating_add(run);
            let dst = row.get_mut(q..end).unwrap_or_default();
            window_run(dst, x_row, first.saturating_add(j), d.left);
            (q, c, j) = (end, c.saturating_add(1), 0);
        }
        let chunks = row.as_chunks::<GEMM_GROUP>().0.iter().take(groups);
        for (chunk, g) in chunks.zip(0..groups) {
            if let Some(entry) = pack.get_mut(g.saturating_mul(kc).saturating_add(step)) {
                *entry = *chunk;
            }
        }
        at = next_position(d, at);
    }
}

/// Every block of `R` rows of `dW` (output channels from `*o0` on) while `R` are left:
/// its `dy` values packed (`a[p][r] = dy[s, o₀ + r, t]` for the block's steps), then the
/// panel's column groups ([`gemm_columns`]).
#[allow(
    clippy::too_many_arguments,
    reason = "the block, the panel and the rows"
)]
#[inline(always)]
fn weight_rows<'c, const R: usize>(
    d: &CorrelationDims,
    dy: &[f32],
    (from, kc): ((usize, usize), usize),
    panel: &Packed<'_>,
    width: usize,
    c_rows: &mut impl Iterator<Item = &'c mut [f32]>,
    o0: &mut usize,
    a_pack: &mut [f32; GEMM_ROWS * CORR_DEPTH],
) {
    let (a, _) = a_pack.as_chunks_mut::<R>();
    let a = a.get_mut(..kc).unwrap_or_default();
    while d.c_out.saturating_sub(*o0) >= R {
        let mut c_block = next_rows_mut::<R>(c_rows);
        pack_dy(d, dy, from, *o0, a);
        gemm_columns(a, panel, &mut c_block, width);
        *o0 = o0.saturating_add(R);
    }
}

/// `a[p][r] = dy[s, o₀ + r, t]` for the steps `(s, t)` from `from` on, one per entry.
#[inline(always)]
fn pack_dy<const R: usize>(
    d: &CorrelationDims,
    dy: &[f32],
    from: (usize, usize),
    o0: usize,
    a: &mut [[f32; R]],
) {
    for r in 0..R {
        let channel = o0.saturating_add(r).saturating_mul(d.out_len);
        // The block's steps run by samples: one contiguous piece of this channel each.
        let (mut s, mut t) = from;
        let mut entries = a.iter_mut();
        while entries.len() > 0 {
            let count = d.out_len.saturating_sub(t).max(1);
            let start = s
                .saturating_mul(d.out_size)
                .saturating_add(channel)
                .saturating_add(t);
            let run = dy.get(start..).unwrap_or_default();
            let run = run.get(..count).unwrap_or(run);
            for (entry, v) in entries.by_ref().take(count).zip(run) {
                entry[r] = *v;
            }
            (s, t) = (s.saturating_add(1), 0);
        }
    }
}

/// The kernel length of [`correlate_weights_direct`]: a channel's window is one run of
/// eight floats of its row.
const DIRECT_RUN: usize = 8;
/// Channels per column group of [`correlate_weights_direct`] (every build's group is a
/// multiple of eight columns).
const DIRECT_CHANNELS: usize = GEMM_GROUP / DIRECT_RUN;
const _: () = assert!(GEMM_GROUP.is_multiple_of(DIRECT_RUN) && DIRECT_CHANNELS >= 1);
/// Whether [`correlate_weights_direct`] runs on this build's lanes: at most eight, so
/// that no lane vector spans two window runs. `f32x16` (AVX-512) would join two runs
/// per vector, and that measured slower than the window matrix
/// (BENCHMARKS.md, "The `har-conv` step, fifth pass").
const DIRECT_LANES: bool = LANES <= DIRECT_RUN;

/// Whether [`correlate_weights_direct`] takes `d`: stride 1, a kernel of
/// [`DIRECT_RUN`], and every window inside the input (no padding read).
pub(crate) fn weights_in_place(d: &CorrelationDims) -> bool {
    DIRECT_LANES
        && d.stride == 1
        && d.kernel == DIRECT_RUN
        && d.left == 0
        && d.out_len.saturating_add(DIRECT_RUN - 1) <= d.len
}

/// One register block of [`correlate_weights_direct`]: rows `c` of `dW` (from their
/// first column) over the column group of window channels `c₀ ..` (eight columns each,
/// `j .. j + width`), summed over the `a.len()` steps from `(s, t)`; step `(s, t)` reads
/// `x[s, c, t .. t + 8]` straight from the sample's rows. A channel past `C_in` reads the
/// last channel's row: its lanes are past `width` and dropped.
#[inline(always)]
fn direct_block<const R: usize>(
    d: &CorrelationDims,
    x: &[f32],
    (mut s, mut t): (usize, usize),
    c0: usize,
    a: &[[f32; R]],
    c: &mut [&mut [f32]; R],
    (j, width): (usize, usize),
) {
    let mut acc = load_block(c, (j, width));
    let last = d.c_in.saturating_sub(1);
    let mut steps = a.iter();
    while steps.len() > 0 && s < d.n {
        // The block's steps in sample `s`: positions `t .. t + count`, windows
        // `x[s, c, t .. t + count + 7]`.
        let count = d.out_len.saturating_sub(t).min(steps.len());
        let x_sample = sample(d, x, s);
        let runs: [&[f32]; DIRECT_CHANNELS] = core::array::from_fn(|q| {
            let start = c0
                .saturating_add(q)
                .min(last)
                .saturating_mul(d.len)
                .saturating_add(t);
            x_sample
                .get(start..)
                .and_then(|run| run.get(..count.saturating_add(DIRECT_RUN - 1)))
                .unwrap_or_default()
        });
        let mut windows = runs.map(|run| run.windows(DIRECT_RUN));
        for a_step in steps.by_ref().take(count) {
            let mut group = [0.0; GEMM_GROUP];
            let parts = group.as_chunks_mut::<DIRECT_RUN>().0.iter_mut();
            for (part, window) in parts.zip(windows.iter_mut()) {
                if let Some(values) = window.next().and_then(|w| w.first_chunk::<DIRECT_RUN>()) {
                    *part = *values;
                }
            }
            gemm_step(&mut acc, a_step, &load_group(&group));
        }
        (s, t) = (s.saturating_add(1), 0);
    }
    store_block(&acc, c, (j, width));
}

/// Every block of `R` rows of `dW` from `*o0` on while `R` are left, for the cache
/// block of `a.len()` steps from `from`: `dy` packed, then each column group summed over
/// the steps with its windows read in place ([`direct_block`]).
#[inline(always)]
fn direct_rows<'c, const R: usize>(
    d: &CorrelationDims,
    (dy, x): (&[f32], &[f32]),
    (from, kc): ((usize, usize), usize),
    c_rows: &mut impl Iterator<Item = &'c mut [f32]>,
    o0: &mut usize,
    a_pack: &mut [f32; GEMM_ROWS * GEMM_DEPTH],
) {
    let (a, _) = a_pack.as_chunks_mut::<R>();
    let a = a.get_mut(..kc).unwrap_or_default();
    while d.c_out.saturating_sub(*o0) >= R {
        let mut c_block = next_rows_mut::<R>(c_rows);
        pack_dy(d, dy, from, *o0, a);
        let (mut j, mut c0) = (0_usize, 0_usize);
        while j < d.window {
            let width = d.window.saturating_sub(j).min(GEMM_GROUP);
            direct_block(d, x, from, c0, a, &mut c_block, (j, width));
            j = j.saturating_add(GEMM_GROUP);
            c0 = c0.saturating_add(DIRECT_CHANNELS);
        }
        *o0 = o0.saturating_add(R);
    }
}

/// [`correlate_weights_add`](super::correlate::correlate_weights_add) on checked
/// operands of [`weights_in_place`], SIMD twin: the register blocks of the matrix
/// kernels with each step's `B` (a window, eight floats per channel) read straight from
/// the rows of `x`: no window matrix, and the rows of a few samples stay in L1 where a
/// window matrix (`n·T_out × C_in·k`) would stream from L2. Cache blocks of
/// [`GEMM_DEPTH`] steps; every weight one running sum over `(s, t)` ascending, stored and
/// reloaded exactly between blocks, so the bits of [`correlate_weights_simd`] and of the
/// window matrix with [`Kernels::gemm_nn_add`].
fn correlate_weights_direct(d: &CorrelationDims, dy: &[f32], x: &[f32], dw: &mut [f32]) {
    let mut a_pack = [0.0_f32; GEMM_ROWS * GEMM_DEPTH];
    let steps = d.n.saturating_mul(d.out_len);
    let mut p0 = 0_usize;
    while p0 < steps {
        let kc = steps.saturating_sub(p0).min(GEMM_DEPTH);
        let from = (
            p0.checked_div(d.out_len).unwrap_or(0),
            p0.checked_rem(d.out_len).unwrap_or(0),
        );
        let mut c_rows = pieces_mut(dw, d.window);
        let mut o0 = 0_usize;
        let (block, a) = ((from, kc), &mut a_pack);
        direct_rows::<GEMM_ROWS>(d, (dy, x), block, &mut c_rows, &mut o0, a);
        if GEMM_ROWS > 4 {
            direct_rows::<4>(d, (dy, x), block, &mut c_rows, &mut o0, a);
        }
        direct_rows::<2>(d, (dy, x), block, &mut c_rows, &mut o0, a);
        direct_rows::<1>(d, (dy, x), block, &mut c_rows, &mut o0, a);
        p0 = p0.saturating_add(kc);
    }
}

/// [`correlate_weights_add`](super::correlate::correlate_weights_add) on checked
/// operands, SIMD twin: `dW += dY · windows` as `C_out × (C_in·k)` with `n·T_out` steps,
/// the windows packed straight from `x` panel by panel ([`pack_window_panel`], cache
/// blocks of [`CORR_DEPTH`] steps), through the matrix kernels' register blocks: every
/// weight one running sum over `(s, t)` ascending, stored and reloaded exactly between
/// blocks.
fn correlate_weights_simd(d: &CorrelationDims, dy: &[f32], x: &[f32], dw: &mut [f32]) {
    let mut b_pack = [[0.0_f32; GEMM_GROUP]; CORR_PANEL / GEMM_GROUP * CORR_DEPTH];
    let mut a_pack = [0.0_f32; GEMM_ROWS * CORR_DEPTH];
    let mut row = [0.0_f32; CORR_PANEL];
    let steps = d.n.saturating_mul(d.out_len);
    let mut p0 = 0_usize;
    while p0 < steps {
        let kc = steps.saturating_sub(p0).min(CORR_DEPTH);
        let from = (
            p0.checked_div(d.out_len).unwrap_or(0),
            p0.checked_rem(d.out_len).unwrap_or(0),
        );
        let mut j0 = 0_usize;
        while j0 < d.window {
            let width = d.window.saturating_sub(j0).min(CORR_PANEL);
            pack_window_panel(d, x, (from, kc), (j0, width), &mut row, &mut b_pack);
            let panel = Packed {
                pack: &b_pack,
                kc,
                zero: false,
            };
            let j1 = j0.saturating_add(width);
            let mut c_rows =
                pieces_mut(dw, d.window).map(|r| r.get_mut(j0..j1).unwrap_or_default());
            let mut o0 = 0_usize;
            let block = (from, kc);
            let a = &mut a_pack;
            weight_rows::<GEMM_ROWS>(d, dy, block, &panel, width, &mut c_rows, &mut o0, a);
            if GEMM_ROWS > 4 {
                weight_rows::<4>(d, dy, block, &panel, width, &mut c_rows, &mut o0, a);
            }
            weight_rows::<2>(d, dy, block, &panel, width, &mut c_rows, &mut o0, a);
            weight_rows::<1>(d, dy, block, &panel, width, &mut c_rows, &mut o0, a);
            j0 = j1;
        }
        p0 = p0.saturating_add(kc);
    }
}

/// Side of the square blocks [`pack_b_transposed_avx`] transposes in registers.
const TRANSPOSE_SIDE: usize = 8;

/// Whether [`pack_b_transposed`]'s full column groups are transposed in 8 × 8 register
/// blocks ([`pack_b_transposed_avx`]): with AVX, where `wide`'s `f32x8::transpose` is
/// eight unpacks and eight shuffles (elsewhere it gathers lane by lane).
const TRANSPOSE_IN_REGISTERS: bool =
    cfg!(target_feature = "avx") && GEMM_GROUP.is_multiple_of(TRANSPOSE_SIDE);

/// [`pack_b_transposed`] with every full group of [`GEMM_GROUP`] stored rows and every
/// full run of eight steps transposed as 8 × 8 blocks in registers (the same values in
/// the same places); the steps past the last full run of eight, and a last group of
/// fewer rows, as [`pack_b_transposed`] copies them.
fn pack_b_transposed_avx(b: &[f32], ldb: usize, kc: usize, width: usize, pack: &mut [Group]) {
    use wide::f32x8;
    let full_steps = kc.saturating_sub(kc % TRANSPOSE_SIDE);
    let strips = width.div_ceil(GEMM_GROUP);
    for (strip, group_start) in pieces_mut(pack, kc.max(1))
        .take(strips)
        .zip((0..width).step_by(GEMM_GROUP))
    {
        let strip_b = b.get(group_start.saturating_mul(ldb)..).unwrap_or_default();
        let rows_left = width.saturating_sub(group_start);
        if rows_left < GEMM_GROUP {
            pack_b_transposed(strip_b, ldb, kc, rows_left, strip);
            continue;
        }
        // Lanes `sub·8 .. sub·8 + 8` of each step: stored rows `sub·8 ..` of the group.
        for sub in 0..GEMM_GROUP / TRANSPOSE_SIDE {
            let first_row = strip_b
                .get(sub.saturating_mul(TRANSPOSE_SIDE).saturating_mul(ldb)..)
                .unwrap_or_default();
            let mut rows: [&[f32]; TRANSPOSE_SIDE] = [&[]; TRANSPOSE_SIDE];
            for (slot, row) in rows.iter_mut().zip(pieces(first_row, ldb)) {
                *slot = row.get(..full_steps).unwrap_or_default();
            }
            let lanes = sub.saturating_mul(TRANSPOSE_SIDE)..;
            let steps = strip.as_chunks_mut::<TRANSPOSE_SIDE>().0.iter_mut();
            for (run, steps) in (0..full_steps / TRANSPOSE_SIDE).zip(steps) {
                let at = run.saturating_mul(TRANSPOSE_SIDE);
                let block = load_runs(&rows, at);
                for (step, column) in steps.iter_mut().zip(f32x8::transpose(block)) {
                    if let Some(dst) = step
                        .get_mut(lanes.clone())
                        .and_then(<[f32]>::first_chunk_mut::<TRANSPOSE_SIDE>)
                    {
                        *dst = column.to_array();
                    }
                }
            }
        }
        // The last `kc mod 8` steps, value by value.
        for (lane, row) in (0..GEMM_GROUP).zip(pieces(strip_b, ldb)) {
            let rest = row.get(full_steps..kc).unwrap_or_default();
            let steps = strip.get_mut(full_steps..).unwrap_or_default();
            for (entry, value) in steps.iter_mut().zip(rest) {
                if let Some(slot) = entry.get_mut(lane) {
                    *slot = *value;
                }
            }
        }
    }
}

/// The eight floats at `at` of each row as one `f32x8` (zeros for a row too short),
/// the block an 8 × 8 transpose takes. A loop, always inlined: `rows.map(..)` compiled
/// to an out-of-line `try_map` per block (about 1 % of a `har-conv` step's samples).
#[inline(always)]
fn load_runs(rows: &[&[f32]; TRANSPOSE_SIDE], at: usize) -> [wide::f32x8; TRANSPOSE_SIDE] {
    let mut block = [wide::f32x8::ZERO; TRANSPOSE_SIDE];
    for (lanes, row) in block.iter_mut().zip(rows) {
        if let Some(v) = row
            .get(at..)
            .and_then(<[f32]>::first_chunk::<TRANSPOSE_SIDE>)
        {
            *lanes = wide::f32x8::from(*v);
        }
    }
    block
}

/// [`gemm_pack_a`] for a row-major `A` with every full run of eight steps transposed as
/// an 8 × 8 block in registers (`R ≤ 8` rows, the missing rows zeros that are never
/// stored): the same values in the same places. The steps past the last full run of
/// eight are copied value by value. Returns the steps done (all of `pack`), or 0 when
/// `R > 8` (then nothing is written).
#[inline(always)]
fn pack_a_rows_avx<const R: usize>(
    g: &Gemm<'_>,
    (i0, p0): (usize, usize),
    pack: &mut [[f32; R]],
) -> usize {
    use wide::f32x8;
    if R > TRANSPOSE_SIDE {
        return 0;
    }
    let kc = pack.len();
    let full_steps = kc.saturating_sub(kc % TRANSPOSE_SIDE);
    let start = i0.saturating_mul(g.lda).saturating_add(p0);
    let mut rows: [&[f32]; TRANSPOSE_SIDE] = [&[]; TRANSPOSE_SIDE];
    for (slot, row) in rows
        .iter_mut()
        .take(R)
        .zip(pieces(g.a.get(start..).unwrap_or_default(), g.lda))
    {
        *slot = row.get(..kc).unwrap_or(row);
    }
    let (runs, _) = pack.as_chunks_mut::<TRANSPOSE_SIDE>();
    for (run, steps) in (0..full_steps / TRANSPOSE_SIDE).zip(runs) {
        let at = run.saturating_mul(TRANSPOSE_SIDE);
        let block = load_runs(&rows, at);
        for (step, column) in steps.iter_mut().zip(f32x8::transpose(block)) {
            for (slot, value) in step.iter_mut().zip(column.to_array()) {
                *slot = value;
            }
        }
    }
    for (r, row) in (0..R).zip(rows) {
        let steps = pack.get_mut(full_steps..).unwrap_or_default();
        for (step, value) in steps
            .iter_mut()
            .zip(row.get(full_steps..).unwrap_or_default())
        {
            if let Some(slot) = step.get_mut(r) {
                *slot = *value;
            }
        }
    }
    kc
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 7) % 1000) as f32 - 500.0
            })
            .collect()
    }

    /// The weight gradient with its windows read in place ([`correlate_weights_direct`])
    /// gives [`correlate_weights_simd`]'s sums (windows packed per panel) bit for bit:
    /// several cache blocks of steps and blocks that cross samples (`n·T_out` above
    /// [`GEMM_DEPTH`]), outputs shorter than the input allows, a last column group
    /// short of channels (odd `C_in`, on every width), and output channels that reach
    /// the register blocks of 6, 4, 2 and 1 rows. The values have fractions and a start
    /// that is not zero, so a step summed in another order, twice or not at all changes
    /// the bits; a NaN after each row's windows would show a read past them. The kernel
    /// is checked on every width; [`weights_in_place`] picks it on lanes of at most 8.
    #[test]
    fn weights_in_place_equal_the_packed_panels_bit_for_bit() {
        use super::super::correlate::Correlation;
        // (n, C_in, T, C_out, T_out); under miri (minutes per million steps) the small
        // ones.
        let shapes: &[(usize, usize, usize, usize, usize)] = if cfg!(miri) {
            &[(3, 3, 30, 7, 23), (1, 1, 8, 3, 1)]
        } else {
            &[
                (20, 16, 26, 13, 19),
                (3, 3, 30, 7, 23),
                (5, 5, 40, 11, 12),
                (1, 1, 8, 3, 1),
                (9, 32, 60, 64, 53),
            ]
        };
        for &(n, c_in, len, c_out, out_len) in shapes {
            let shape = Correlation {
                n,
                c_in,
                len,
                c_out,
                kernel: DIRECT_RUN,
                stride: 1,
                left: 0,
                out_len,
            };
            let d = shape.dims().unwrap();
            assert_eq!(weights_in_place(&d), DIRECT_LANES, "{shape:?}");
            let mut x: Vec<f32> = values(n * c_in * len, 1).iter().map(|v| v / 7.0).collect();
            // Past the windows of each row (`T_out + 7 ≤ T`): never read.
            for row in x.chunks_mut(len) {
                row[out_len + DIRECT_RUN - 1..].fill(f32::NAN);
            }
            let dy: Vec<f32> = values(n * c_out * out_len, 2)
                .iter()
                .map(|v| v / 3.0)
                .collect();
            let start: Vec<f32> = values(c_out * c_in * DIRECT_RUN, 3)
                .iter()
                .map(|v| v / 9.0)
                .collect();
            let (mut direct, mut packed) = (start.clone(), start.clone());
            correlate_weights_direct(&d, &dy, &x, &mut direct);
            correlate_weights_simd(&d, &dy, &x, &mut packed);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&direct), bits(&packed), "{shape:?}");
            assert!(direct.iter().all(|v| v.is_finite()), "{shape:?}");
            assert_ne!(bits(&direct), bits(&start), "{shape:?}");
        }
        // Outside the in-place path: another kernel, a stride, padding, a window past
        // the input.
        let base = Correlation {
            n: 2,
            c_in: 2,
            len: 20,
            c_out: 3,
            kernel: 8,
            stride: 1,
            left: 0,
            out_len: 13,
        };
        assert_eq!(weights_in_place(&base.dims().unwrap()), DIRECT_LANES);
        for other in [
            Correlation { kernel: 7, ..base },
            Correlation {
                stride: 2,
                out_len: 7,
                ..base
            },
            Correlation { left: 1, ..base },
            Correlation {
                out_len: 14,
                ..base
            },
        ] {
            assert!(!weights_in_place(&other.dims().unwrap()), "{other:?}");
        }
    }

    /// Rows of 4, 8 and 16 steps on the narrow lanes: [`known_steps`] picks them (on
    /// 64-bit targets), [`dot2_fixed_steps`] runs and gives [`dot2_loop_steps`]'s sums
    /// bit for bit, and so does [`dot2_add_rows`] with and without the known count. The
    /// values have fractions, so a step taken in another order or twice, or one left
    /// out, changes the rounding.
    #[test]
    fn fixed_steps_equal_the_loop() {
        type V = NarrowLanes;
        const N: usize = NARROW_LANES;
        type Sums = ([V; ROW_BLOCK], [V; ROW_BLOCK]);
        type Rows<'a> = [&'a [f32]; ROW_BLOCK];
        type Kernel = fn([[f32; ROW_BLOCK]; 2], Rows, [&[f32]; 2], Rows) -> [[f32; ROW_BLOCK]; 2];
        let bits = |(s1, s2): &Sums| [s1, s2].map(|s| s.map(|v| v.to_array().map(f32::to_bits)));
        for k in [4, 8, 16] {
            let data: Vec<Vec<[f32; N]>> = (0..6)
                .map(|seed| {
                    let v: Vec<f32> = values(k * N, seed).iter().map(|v| v / 7.0).collect();
                    v.as_chunks::<N>().0.to_vec()
                })
                .collect();
            let x = [&data[0][..], &data[1][..]];
            let rows = [&data[2][..], &data[3][..], &data[4][..], &data[5][..]];
            let start = || -> Sums { ([V::ZERO; ROW_BLOCK], [V::ZERO; ROW_BLOCK]) };
            let (mut looped, mut fixed) = (start(), start());
            dot2_loop_steps((&mut looped.0, &mut looped.1), x, rows);
            let (ran, whole): (bool, Kernel) = match k {
                4 => (
                    dot2_fixed_steps::<V, N, 4>((&mut fixed.0, &mut fixed.1), x, rows),
                    dot2_add_rows::<V, N, false, 4>,
                ),
                8 => (
                    dot2_fixed_steps::<V, N, 8>((&mut fixed.0, &mut fixed.1), x, rows),
                    dot2_add_rows::<V, N, false, 8>,
                ),
                _ => (
                    dot2_fixed_steps::<V, N, 16>((&mut fixed.0, &mut fixed.1), x, rows),
                    dot2_add_rows::<V, N, false, 16>,
                ),
            };
            let want = if FIXED_SHORT_ROWS { k } else { 0 };
            assert_eq!(known_steps(k, N), want, "{k} steps");
            assert_eq!(ran, FIXED_SHORT_ROWS, "{k} steps");
            if ran {
                assert_eq!(bits(&fixed), bits(&looped), "{k} steps");
            }
            assert_ne!(bits(&looped), bits(&start()), "{k} steps");
            let flat: Vec<&[f32]> = data.iter().map(|d| d.as_flattened()).collect();
            let (x, rows) = ([flat[0], flat[1]], [flat[2], flat[3], flat[4], flat[5]]);
            let acc = [[0.5, -1.0, 2.0, 0.25]; 2];
            let general = dot2_add_rows::<V, N, false, 0>(acc, rows, x, [&[]; ROW_BLOCK]);
            let got = whole(acc, rows, x, [&[]; ROW_BLOCK]);
            assert_eq!(
                got.map(|o| o.map(f32::to_bits)),
                general.map(|o| o.map(f32::to_bits))
            );
        }
    }

    /// The register transposes pack `B` (of `gemm_nt`) exactly as the value-by-value
    /// copy: every step count (full runs of eight and a tail), full and partial groups.
    #[test]
    fn transposed_b_pack_in_registers_equals_copy() {
        for (kc, width, ldb) in [
            (64, 256, 768),
            (8, 16, 8),
            (13, 40, 29),
            (7, 17, 7),
            (64, 5, 70),
            (1, 33, 3),
        ] {
            if cfg!(miri) && width * ldb > 4096 {
                continue; // har-dense's shape: minutes under miri; the small ones reach every path
            }
            let b = values(width * ldb, kc);
            let strips = width.div_ceil(GEMM_GROUP);
            let mut copied = vec![[f32::NAN; GEMM_GROUP]; strips * kc];
            let mut transposed = copied.clone();
            pack_b_transposed(&b, ldb, kc, width, &mut copied);
            pack_b_transposed_avx(&b, ldb, kc, width, &mut transposed);
            let bits = |p: &[Group]| p.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&copied), bits(&transposed), "kc {kc} width {width}");
        }
    }

    fn pack_a_both<const R: usize>(
        m: usize,
        k: usize,
        lda: usize,
        (i0, p0, kc): (usize, usize, usize),
    ) {
        let a = values(m * lda, R + kc);
        let g = Gemm {
            m,
            n: 1,
            k,
            a: &a[..(m - 1) * lda + k],
            lda,
            b: &[0.0],
            ldb: 1,
        };
        let mut copied = vec![[f32::NAN; R]; kc];
        let mut transposed = copied.clone();
        // The value-by-value copy: `gemm_pack_a`'s row-major arm before the transposes.
        let rows = pieces(g.a.get(i0 * lda + p0..).unwrap_or_default(), lda);
        for (r, row) in (0..R).zip(rows) {
            for (step, value) in copied.iter_mut().zip(row) {
                step[r] = *value;
            }
        }
        assert_eq!(pack_a_rows_avx::<R>(&g, (i0, p0), &mut transposed), kc);
        let bits = |p: &[[f32; R]]| p.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&copied), bits(&transposed), "R {R} kc {kc}");
    }

    /// The register transposes pack a row-major `A` exactly as the value-by-value copy.
    #[test]
    fn row_major_a_pack_in_registers_equals_copy() {
        for (m, k, lda, at) in [
            (12, 768, 768, (6, 64, 64)),
            (7, 20, 21, (1, 3, 17)),
            (6, 9, 9, (0, 0, 9)),
        ] {
            if cfg!(miri) && m * lda > 4096 {
                continue; // as in the test above
            }
            pack_a_both::<6>(m, k, lda, at);
            pack_a_both::<4>(m, k, lda, at);
            pack_a_both::<2>(m, k, lda, at);
            pack_a_both::<1>(m, k, lda, at);
        }
    }
}
