//! Slice kernels, each in two twins with the same names and signatures:
//! [`simd`] on `wide` lanes and [`scalar`], the plain loops of the reference crate.
//!
//! Both twins are always compiled. The model picks one at run time through
//! [`Backend`]; generic code picks one at compile time through [`Kernels`].
//!
//! # Error bound between the twins
//! The twins sum in different orders (SIMD keeps several lane accumulators, the scalar
//! twin adds left to right), so their results differ by rounding. For a sum of `k`
//! products `s = Σ a_i·b_i`, any order (with or without FMA) satisfies
//! `|fl(s) − s| ≤ γ(k)·Σ|a_i·b_i|`, with `γ(k) = k·u / (1 − k·u)` and `u = 2⁻²⁴`
//! (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1). Two twins therefore
//! differ by at most `2·γ(k)·Σ|a_i·b_i|`: that is [`sum_error_bound`], and the property
//! suite checks exactly this. On inputs where no rounding happens (small integers) the
//! twins agree exactly. The bound assumes no product underflows into the subnormal
//! range; where some do, each may add up to `2⁻¹⁴⁹` of absolute error (the kernels fuzz
//! target allows `2·k·2⁻¹⁴⁹` more).
//!
//! The matrix kernels of the training pass ([`Kernels::gemm_nn_add`],
//! [`Kernels::gemm_tn_add`]) sum every element in the same order on both twins (its start
//! value, then `p` ascending); the twins differ only in whether a multiply and its add
//! round once (FMA) or twice, so by at most `sum_error_bound(k + 1, |c₀| + Σ|a_p·b_p|)`
//! per element (the start value counts as one more term).

pub mod correlate;
mod scalar_impl;
mod simd_impl;

use crate::error::{SslError, SslResult, check_len};

pub use scalar_impl::Scalar;
pub use simd_impl::{LANES, Simd, VECTOR_UNIT};

/// Inputs one [`Kernels::matmat_t_add`] call carries side by side (the batch API's group).
pub const BATCH_LANES: usize = 16;

/// Row length (floats) from which a 16-lane build (`avx512f`, or `--cfg simsiam_f32x16`)
/// runs the matrix–vector kernels on its 16 lanes; shorter rows run on 8
/// ([`row_lanes`]). Why this length: BENCHMARKS.md, "AVX-512: lanes per layer width".
pub const WIDE_ROW_COLUMNS: usize = 512;

/// The lanes the SIMD twin's matrix–vector kernels ([`Kernels::matvec_add`],
/// [`Kernels::matvec2_add`], [`Kernels::dot_add`], and the layers built on them) use for
/// rows of `columns` floats, in a build whose widest lane vector holds `widest` floats
/// (this build's is [`LANES`]): 8 for rows shorter than [`WIDE_ROW_COLUMNS`] when
/// `widest` is 16 or more, else `widest`.
///
/// A short row cut into 16-lane steps runs only a few of them before its register block
/// is reduced, and the reduction of 16 lanes costs more than that of 8 (which AVX does
/// with one transpose); long rows gain from the wider loads. Every build, including the
/// `--cfg simsiam_f32x16` one CI runs on AVX2 machines, goes through this function, so
/// the choice is tested where no CPU has AVX-512. Both lane widths sum within
/// [`sum_error_bound`] of the scalar twin.
///
/// # Examples
/// ```
/// use simsiam::kernels::{WIDE_ROW_COLUMNS, row_lanes};
/// assert_eq!(row_lanes(64, 16), 8); // the default head's layers
/// assert_eq!(row_lanes(2048, 16), 16); // the paper head's
/// assert_eq!(row_lanes(WIDE_ROW_COLUMNS, 16), 16);
/// assert_eq!(row_lanes(2048, 8), 8); // an AVX2 build
/// ```
#[must_use]
pub const fn row_lanes(columns: usize, widest: usize) -> usize {
    if widest > 8 && columns < WIDE_ROW_COLUMNS {
        8
    } else {
        widest
    }
}

/// The floor the reference puts under a norm before dividing by it.
pub const NORM_FLOOR: f32 = 1e-12;

/// The primitive operations a backend provides. Shapes are *not* checked here: the
/// checked entry points are the functions of [`simd`] and [`scalar`], and the model,
/// which validates shapes once. They never panic.
///
/// # Ragged rows
/// On mismatched lengths both twins compute the same terms (they differ only in
/// summation order, within [`sum_error_bound`]): every row of `W` contributes over the
/// common prefix of *that row* and the input(s); a missing row (past the end of `w`)
/// is empty, so its output keeps its start value. In particular one short row never
/// shortens its neighbours' sums. `tests/kernels.rs` checks this on both twins.
///
/// Sealed: [`Simd`] and [`Scalar`] are the only implementations, so primitives can be
/// added without breaking anyone. Pick one as a type parameter of the head
/// (`SimSiamHead::with_kernels::<K>()`) or at run time through [`Backend`].
pub trait Kernels: sealed::Sealed {
    /// `acc + Σ a_i·b_i` over the common prefix of `a` and `b`.
    fn dot_add(acc: f32, a: &[f32], b: &[f32]) -> f32;

    /// For each `i`: `y[i] += W[i, offset .. offset + x.len()] · x`, where row `i` of `W`
    /// starts at `w[i·row_stride]` and runs to the end of its stride (or of `w`). A short
    /// row contributes over its own length, a missing one not at all (see the trait docs).
    fn matvec_add(w: &[f32], row_stride: usize, offset: usize, x: &[f32], y: &mut [f32]);

    /// Two inputs through the same rows, each weight load feeding both products: for each
    /// `i`, `y[0][i] += W[i, offset ..]·x[0]` and `y[1][i] += W[i, offset ..]·x[1]`, with
    /// `W` as in [`matvec_add`](Self::matvec_add). Each product runs over the common prefix
    /// of the row, `x[0]` and `x[1]`; rows beyond the shorter `y` are skipped.
    ///
    /// The scalar twin sums every output exactly as [`matvec_add`](Self::matvec_add) does
    /// (start value, then left to right, no FMA: the reference's order, bit for bit); the
    /// SIMD twin keeps one lane accumulator per row and input, within [`sum_error_bound`].
    fn matvec2_add(w: &[f32], row_stride: usize, offset: usize, x: [&[f32]; 2], y: [&mut [f32]; 2]);

    /// [`BATCH_LANES`] inputs at once, in transposed layout: `xt[c]` holds column `c` of
    /// every input and `yt[i]` output `i` of every input. For each row `i`:
    /// `yt[i][j] += Σ_c W[i, offset + c]·xt[c][j]`, with `W` as in
    /// [`matvec_add`](Self::matvec_add), `c` over the common length of the row and `xt`;
    /// rows beyond `yt` are skipped.
    ///
    /// Every output is one running sum from its start value, column after column: the
    /// scalar twin is exactly the reference's order (no FMA), the SIMD twin the same order
    /// with a fused multiply-add, vectorised across the inputs. No horizontal reduction.
    fn matmat_t_add(
        w: &[f32],
        row_stride: usize,
        offset: usize,
        xt: &[[f32; BATCH_LANES]],
        yt: &mut [[f32; BATCH_LANES]],
    );

    /// `v[i] /= divisor` for every element (a true division, as the reference does).
    fn divide(v: &mut [f32], divisor: f32);

    /// Matrix product into an accumulator, all row-major ("NN", the training pass's
    /// `dX = G·W`): for `i < m`, `j < n`, `C[i, j] += Σ_{p < k} A[i, p]·B[p, j]`, with
    /// `A[i, p] = a[i·lda + p]`, `B[p, j] = b[p·ldb + j]` and `C[i, j] = c[i·ldc + j]`.
    ///
    /// # Summation order
    /// Every element of `C` is one running sum from its start value, `p` ascending
    /// (`0, 1, …, k − 1`). The scalar twin adds each product with a separate multiply and
    /// add (no FMA): exactly that order, bit for bit the same on every platform. The SIMD
    /// twin runs the same order per element with `wide`'s `mul_add` (vectorised across
    /// `j`, register-blocked over `i`): one rounding per step where the target has a
    /// fused multiply-add (x86 with `fma`, aarch64), else the scalar twin's multiply and
    /// add, and then the scalar twin's result bit for bit. So the twins differ only by
    /// FMA rounding, for each element by at most
    /// [`sum_error_bound`]`(k + 1, |C₀[i, j]| + Σ_p |A[i, p]·B[p, j]|)`, with `C₀` the
    /// start value; on inputs where nothing rounds (small integers) they agree exactly.
    ///
    /// # Shapes
    /// `A` is `m × k`, `B` is `k × n`, `C` is `m × n`, and a `rows × cols` operand at
    /// leading dimension `ld` needs `ld ≥ cols` and a slice of at least
    /// `(rows − 1)·ld + cols` elements (its last element). The call does nothing at all
    /// when `m`, `n` or `k` is zero (with `k = 0`, `C += 0`), when a leading dimension is
    /// smaller than its row width or when a slice is too short: checked up front, in
    /// `O(1)`, an overflowing length counting as too short. The checked entry points
    /// ([`simd::gemm_nn_add`], [`scalar::gemm_nn_add`]) return an error instead. Elements of
    /// `c` outside the `m × n` matrix (between rows, after the last) are never written.
    ///
    /// # Stack
    /// The SIMD twin copies blocks of `A` (and, for large products on 64-bit targets, of
    /// `B`) to the stack: at most 70 KiB on 64-bit targets, 1.5 KiB on 32-bit ones with a
    /// vector unit (i686 with SSE, wasm32 with `simd128`). The scalar twin uses none, and
    /// so does the SIMD twin where [`VECTOR_UNIT`] is false.
    #[allow(
        clippy::too_many_arguments,
        reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
    )]
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
    );

    /// Matrix product with `A` transposed ("TN", the training pass's `dW += Gᵀ·X`): for
    /// `i < m`, `j < n`, `C[i, j] += Σ_{p < k} A[p, i]·B[p, j]`, where `A` is stored
    /// `k × m`, `A[p, i] = a[p·lda + i]`; `B` (`k × n`) and `C` (`m × n`) as in
    /// [`gemm_nn_add`](Self::gemm_nn_add).
    ///
    /// Summation order, twin bound and shapes as [`gemm_nn_add`](Self::gemm_nn_add), with
    /// `a` a `k × m` operand (`lda ≥ m`, at least `(k − 1)·lda + m` elements).
    #[allow(
        clippy::too_many_arguments,
        reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
    )]
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
    );

    /// Matrix product with `B` transposed ("NT", a dense layer's forward `Y = X·Wᵀ` over a
    /// batch): for `i < m`, `j < n`, `C[i, j] += Σ_{p < k} A[i, p]·B[j, p]`, where `B` is
    /// stored `n × k`, `B[j, p] = b[j·ldb + p]` (a row-major weight matrix `[d_out, d_in]`);
    /// `A` (`m × k`) and `C` (`m × n`) as in [`gemm_nn_add`](Self::gemm_nn_add).
    ///
    /// Summation order and twin bound as [`gemm_nn_add`](Self::gemm_nn_add): every element
    /// one running sum from its start value, `p` ascending; the scalar twin without FMA
    /// (the order of [`matvec_add`](Self::matvec_add) on the scalar twin, bit for bit),
    /// the SIMD twin with `wide`'s `mul_add`. Shapes as there, with `b` an `n × k` operand
    /// (`ldb ≥ k`, at least `(n − 1)·ldb + k` elements).
    ///
    /// # Stack
    /// The SIMD twin copies `B`, transposed, into column groups on the stack (64 KiB on
    /// application processors: 64-bit targets and wasm32) and blocks of `A` as
    /// [`gemm_nn_add`](Self::gemm_nn_add); elsewhere it reads `B` in place.
    #[allow(
        clippy::too_many_arguments,
        reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
    )]
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
    );

    /// `Σ v_i²`.
    #[inline]
    fn sum_squares(v: &[f32]) -> f32 {
        Self::dot_add(0.0, v, v)
    }
}

mod sealed {
    use super::{ROW_BLOCK, relu_keeping_non_finite};

    /// Where each output sum of a layer kernel ([`Sealed::matvec_layer`]) starts.
    #[derive(Debug, Clone, Copy)]
    pub enum SumStart<'a> {
        /// At the output's current value: the kernel adds to it (as [`Kernels::matvec_add`](super::Kernels::matvec_add)).
        Output,
        /// At 0 (a layer without bias).
        Zero,
        /// At `values[i]` (the layer's bias, cut to the output rows). Shorter than the
        /// output, it is ignored: every row starts at its current value, as for `Output`.
        Values(&'a [f32]),
    }

    /// How a layer kernel starts and ends each output sum: the bias folded into the start
    /// value and the ReLU applied as each register block is stored, instead of a copy before
    /// and a pass after the kernel (together about 5 800 instructions, 7 %, of a default
    /// `loss` on the Cortex-M4F).
    #[derive(Debug, Clone, Copy)]
    pub struct SumEnds<'a> {
        pub start: SumStart<'a>,
        /// Apply [`relu_keeping_non_finite`] to every finished sum.
        pub relu: bool,
    }

    impl<'a> SumEnds<'a> {
        /// Add to the output, nothing after: [`Kernels::matvec_add`](super::Kernels::matvec_add).
        pub(crate) const ACCUMULATE: Self = Self {
            start: SumStart::Output,
            relu: false,
        };

        /// `self` for an output of `rows` rows: start values cut to `rows`, or dropped when
        /// fewer (see [`SumStart::Values`]).
        #[inline(always)]
        pub(crate) fn fitted(self, rows: usize) -> Self {
            match self.start {
                SumStart::Values(values) => Self {
                    start: values
                        .get(..rows)
                        .map_or(SumStart::Output, SumStart::Values),
                    relu: self.relu,
                },
                _ => self,
            }
        }

        /// The start values of the output rows from `row` on (`None` for a row that starts
        /// at its current value), then `fill` for the rows after the slice.
        #[inline(always)]
        pub(crate) fn starts_from(self, row: usize) -> (&'a [f32], Option<f32>) {
            match self.start {
                SumStart::Output => (&[], None),
                SumStart::Zero => (&[], Some(0.0)),
                SumStart::Values(values) => (values.get(row..).unwrap_or_default(), None),
            }
        }

        /// The start values of the output's register blocks (`None`: the block's own).
        #[inline(always)]
        pub(crate) fn block_starts(self) -> impl Iterator<Item = Option<[f32; ROW_BLOCK]>> + 'a {
            let (values, fill) = self.starts_from(0);
            let (blocks, _) = values.as_chunks::<ROW_BLOCK>();
            blocks
                .iter()
                .copied()
                .map(Some)
                .chain(core::iter::repeat(fill.map(|f| [f; ROW_BLOCK])))
        }

        /// The start values of the single rows from `row` on (`None`: the row's own).
        #[inline(always)]
        pub(crate) fn row_starts(self, row: usize) -> impl Iterator<Item = Option<f32>> + 'a {
            let (values, fill) = self.starts_from(row);
            values
                .iter()
                .copied()
                .map(Some)
                .chain(core::iter::repeat(fill))
        }

        /// A finished sum as the layer stores it.
        #[inline(always)]
        pub(crate) fn end(self, sum: f32) -> f32 {
            if self.relu {
                relu_keeping_non_finite(sum)
            } else {
                sum
            }
        }

        /// A finished register block as the layer stores it.
        #[inline(always)]
        pub(crate) fn end_block(self, sums: [f32; ROW_BLOCK]) -> [f32; ROW_BLOCK] {
            if self.relu {
                let [s0, s1, s2, s3] = sums;
                [
                    relu_keeping_non_finite(s0),
                    relu_keeping_non_finite(s1),
                    relu_keeping_non_finite(s2),
                    relu_keeping_non_finite(s3),
                ]
            } else {
                sums
            }
        }
    }

    /// Keeps [`Kernels`](super::Kernels) implementable only inside this crate, and holds
    /// the crate's own primitives (callable through `K: Kernels`, invisible outside).
    pub trait Sealed {
        /// Whether sums over the positions of a sequence (BatchNorm's statistics over
        /// time, `layers::batch_norm`) run in lanes along the positions (the SIMD twin
        /// on a vector unit) or one chain per channel in the reference's order.
        const LANE_SUMS: bool;

        /// One dense layer (or a block of its rows or columns) for one input: for each
        /// `i`, `y[i] = end(start[i] + W[i, offset ..]·x)`, `W` and the ragged-row rules
        /// as in [`Kernels::matvec_add`](super::Kernels::matvec_add), the start value and
        /// the end as `ends` says. The sums run exactly as `matvec_add`'s from that start.
        fn matvec_layer(
            w: &[f32],
            row_stride: usize,
            offset: usize,
            x: &[f32],
            ends: SumEnds<'_>,
            y: &mut [f32],
        );

        /// [`matvec_layer`](Self::matvec_layer) for two inputs through the same rows, as
        /// [`Kernels::matvec2_add`](super::Kernels::matvec2_add) runs them (the same
        /// start values for both).
        fn matvec2_layer(
            w: &[f32],
            row_stride: usize,
            offset: usize,
            x: [&[f32]; 2],
            ends: SumEnds<'_>,
            y: [&mut [f32]; 2],
        );

        /// [`correlate`](super::correlate::correlate) on checked operands.
        fn correlate(
            d: &super::correlate::CorrelationDims,
            w: &[f32],
            start: Option<&[f32]>,
            x: &[f32],
            y: &mut [f32],
            pack: &mut [f32],
        );

        /// Whether [`correlate_weights_add`](super::correlate::correlate_weights_add)
        /// on `d` reads its windows straight from `x` (no window matrix), so that a
        /// convolution's backward should call it for its weight gradient rather than
        /// build the window matrix for [`Kernels::gemm_nn_add`](super::Kernels::gemm_nn_add)
        /// (the same bits either way).
        fn weights_in_place(d: &super::correlate::CorrelationDims) -> bool;

        /// [`correlate_weights_add`](super::correlate::correlate_weights_add) on checked
        /// operands.
        fn correlate_weights_add(
            d: &super::correlate::CorrelationDims,
            dy: &[f32],
            x: &[f32],
            dw: &mut [f32],
        );

        /// [`Kernels::gemm_tn_add`](super::Kernels::gemm_tn_add) onto a `C` of zeros
        /// without reading `C`: `C[i, j] = Σ_p A[p, i]·B[p, j]` for `i < m`, `j < n`,
        /// the bits that zeroing that block and calling `gemm_tn_add` give (and, where the
        /// SIMD twin does not run the product itself, what it does). Elements of `c`
        /// outside the block are not touched.
        #[allow(
            clippy::too_many_arguments,
            reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
        )]
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
        );
    }
}

/// Zeroes `C[i, j]` for `i < m`, `j < n` (rows `ldc` apart; whatever of it `c` holds).
pub(crate) fn zero_block(c: &mut [f32], m: usize, n: usize, ldc: usize) {
    for row in pieces_mut(c, ldc.max(1)).take(m) {
        let row_len = row.len();
        row.get_mut(..n.min(row_len)).unwrap_or_default().fill(0.0);
    }
}

/// `C = Aᵀ·B` on the twin `K` ([`sealed::Sealed::gemm_tn_set`]): `gemm_tn_add` onto a
/// zeroed block, without the zeroing pass (a convolution's backward is its only caller).
#[cfg(feature = "conv")]
#[allow(
    clippy::too_many_arguments,
    reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
)]
#[inline]
pub(crate) fn gemm_tn_set<K: Kernels>(
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
    K::gemm_tn_set(m, n, k, a, lda, b, ldb, c, ldc);
}

/// Whether `K` sums a sequence's positions in lanes ([`sealed::Sealed::LANE_SUMS`]).
#[inline]
pub(crate) const fn lane_sums<K: Kernels>() -> bool {
    K::LANE_SUMS
}

/// Which kernel twin a model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// The `wide` lanes (width chosen at compile time, see [`LANES`]).
    #[default]
    Simd,
    /// The reference crate's scalar loops: bit-for-bit its summation order.
    Scalar,
}

/// The largest difference the twins may show for a sum of `terms` products whose
/// absolute values add up to `sum_abs`: `2·γ(terms)·sum_abs` (see the module docs).
///
/// Returns `f64::INFINITY` when `terms·u ≥ 1`, where the bound says nothing.
///
/// # Examples
/// ```
/// use simsiam::kernels::{scalar, simd, sum_error_bound};
/// let a = [0.1_f32; 100];
/// let b = [0.3_f32; 100];
/// let diff = (simd::dot(&a, &b)? - scalar::dot(&a, &b)?).abs();
/// assert!(f64::from(diff) <= sum_error_bound(100, 100.0 * 0.03));
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[must_use]
pub fn sum_error_bound(terms: usize, sum_abs: f64) -> f64 {
    let unit_roundoff = f64::from(f32::EPSILON) / 2.0;
    let k_u = terms as f64 * unit_roundoff;
    if k_u >= 1.0 {
        return f64::INFINITY;
    }
    2.0 * k_u / (1.0 - k_u) * sum_abs
}

/// All bits set: as an `f32x8` lane mask, a lane kept by `&` (`0.0` drops it).
pub(crate) const KEEP: f32 = f32::from_bits(u32::MAX);

/// Consecutive pieces of `len` elements (the last may be shorter; `len` 0 counts as 1).
///
/// `slice::chunks` without its division: `Chunks::size_hint` (which `zip` calls) divides
/// by the chunk size, and where the optimiser leaves it out of line (`opt-level = "z"`)
/// that division keeps a panic path the no-panic link check would catch. This iterator
/// has none.
#[inline]
pub(crate) fn pieces<T>(slice: &[T], len: usize) -> impl Iterator<Item = &[T]> {
    let len = len.max(1);
    let mut rest = slice;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (piece, tail) = rest.split_at_checked(len).unwrap_or((rest, &[]));
        rest = tail;
        Some(piece)
    })
}

/// The rows of a row-major matrix as the kernels see them: row `i` starts at
/// `w[i·row_stride + offset]` and runs to the end of its stride (callers cut it to the
/// input's length). A missing or short row is empty or short, never a panic.
#[inline]
pub(crate) fn strided_rows(
    w: &[f32],
    row_stride: usize,
    offset: usize,
) -> impl Iterator<Item = &[f32]> {
    pieces(w, row_stride).map(move |row| row.get(offset..).unwrap_or_default())
}

/// The next `N` rows (empty once `rows` runs out). A loop over the array, always inlined:
/// `[(); N].map(..)` here compiled to an out-of-line `try_map` per block.
#[inline(always)]
pub(crate) fn next_rows<'a, const N: usize>(
    rows: &mut impl Iterator<Item = &'a [f32]>,
) -> [&'a [f32]; N] {
    let mut block: [&[f32]; N] = [&[]; N];
    for slot in &mut block {
        *slot = rows.next().unwrap_or_default();
    }
    block
}

/// Whether every row has at least `n` elements: then a register block of rows can be cut
/// to one common length and still give each row its own prefix sum (the trait's contract).
#[inline(always)]
pub(crate) fn all_at_least<const R: usize>(rows: &[&[f32]; R], n: usize) -> bool {
    rows.iter()
        .fold(usize::MAX, |shortest, row| shortest.min(row.len()))
        >= n
}

/// The first `n` elements (all of `s` when it is shorter).
#[inline(always)]
pub(crate) fn prefix(s: &[f32], n: usize) -> &[f32] {
    s.get(..n).unwrap_or(s)
}

/// Rows per register block of the matrix–vector kernels, on both twins: each `x` load
/// feeds them all.
pub(crate) const ROW_BLOCK: usize = 4;

pub(crate) use sealed::{SumEnds, SumStart};

/// Row length from which the SIMD twin has [`blocked_matvec_add`] and
/// [`blocked_matvec2_add`] pass the next block's rows along (to be prefetched): 2 KiB
/// rows, so that the four rows of a block (8 KiB) no longer sit in L1 between calls of a
/// small head, which prefetching would only slow down.
pub(crate) const LOOKAHEAD_COLUMNS: usize = 512;

/// The rows of one register block (`ROW_BLOCK·stride` floats, or fewer at the end of
/// the matrix), each from `offset` to its end (`stride` ≥ 1; rows past the end empty).
/// Written out row by row: as a loop (an iterator step per row, or a loop over the
/// block) this cost about forty instructions a row on the Cortex-M4F at opt-level "s".
#[inline(always)]
fn split_rows(block: &[f32], stride: usize, offset: usize) -> [&[f32]; ROW_BLOCK] {
    let (r0, rest) = next_row(block, stride, offset);
    let (r1, rest) = next_row(rest, stride, offset);
    let (r2, rest) = next_row(rest, stride, offset);
    let (r3, _) = next_row(rest, stride, offset);
    [r0, r1, r2, r3]
}

/// The first row of `rows` from `offset` on, and the rows after it (`stride` ≥ 1).
#[inline(always)]
fn next_row(rows: &[f32], stride: usize, offset: usize) -> (&[f32], &[f32]) {
    let (whole, rest) = rows.split_at_checked(stride).unwrap_or((rows, &[]));
    (whole.get(offset..).unwrap_or_default(), rest)
}

/// Where the rows of a register block start in the block (`offset` into each row of
/// `stride` floats), when every row holds `n` columns from there; `None` otherwise (then
/// every block is ragged).
#[inline(always)]
fn full_row_starts(stride: usize, offset: usize, n: usize) -> Option<[usize; ROW_BLOCK]> {
    if offset.checked_add(n)? > stride {
        return None;
    }
    // Written out: a loop over the four starts cost about fifty instructions a call on
    // the Cortex-M4F.
    let s1 = offset.checked_add(stride)?;
    let s2 = s1.checked_add(stride)?;
    let s3 = s2.checked_add(stride)?;
    Some([offset, s1, s2, s3])
}

/// The rows of `block` at `starts`, each exactly `n` long; `None` when the block is short
/// (the matrix's last, ragged block). One bounds check a row: the per-block set-up was
/// about 150 instructions on the Cortex-M4F when the rows were split to their ends and
/// then cut to `n`.
#[inline(always)]
fn full_rows(block: &[f32], starts: [usize; ROW_BLOCK], n: usize) -> Option<[&[f32]; ROW_BLOCK]> {
    let row = |start: usize| block.get(start..)?.get(..n);
    let [s0, s1, s2, s3] = starts;
    Some([row(s0)?, row(s1)?, row(s2)?, row(s3)?])
}

/// The register blocks of a matrix in order (`ROW_BLOCK` rows of `stride` floats; empty
/// past the matrix's end), shared by [`blocked_matvec_add`] and [`blocked_matvec2_add`]
/// (made by [`row_blocks`]). With `LOOKAHEAD`, the next block is taken one step early, so
/// that its rows can be prefetched while the current block runs; without, as the
/// loop's own step (240 instructions less a `loss` on the Cortex-M4F).
struct RowBlocks<'w, I, const LOOKAHEAD: bool> {
    blocks: I,
    /// The next block, with `LOOKAHEAD`.
    next: &'w [f32],
}

/// The register blocks of `w` ([`RowBlocks`]).
#[inline(always)]
fn row_blocks<const LOOKAHEAD: bool>(
    w: &[f32],
    stride: usize,
) -> RowBlocks<'_, impl Iterator<Item = &[f32]>, LOOKAHEAD> {
    let mut blocks = pieces(w, stride.saturating_mul(ROW_BLOCK));
    let next = if LOOKAHEAD {
        blocks.next().unwrap_or_default()
    } else {
        &[]
    };
    RowBlocks { blocks, next }
}

impl<'w, I: Iterator<Item = &'w [f32]>, const LOOKAHEAD: bool> RowBlocks<'w, I, LOOKAHEAD> {
    /// The next block, and with `LOOKAHEAD` the one after it (`None` without).
    #[inline(always)]
    fn next_block(&mut self) -> (&'w [f32], Option<&'w [f32]>) {
        if LOOKAHEAD {
            let block = core::mem::replace(&mut self.next, self.blocks.next().unwrap_or_default());
            (block, Some(self.next))
        } else {
            (self.blocks.next().unwrap_or_default(), None)
        }
    }

    /// The block after the last one taken: the rows after the whole blocks.
    #[inline(always)]
    fn rest(mut self) -> &'w [f32] {
        if LOOKAHEAD {
            self.next
        } else {
            self.blocks.next().unwrap_or_default()
        }
    }
}

/// [`Kernels::matvec_add`] for both twins, with the sums' start and end as `ends` says:
/// rows in register blocks of [`ROW_BLOCK`] through the twin's `dot_add_rows`
/// (`acc[r] + rows[r]·x`, every row at least `x.len()` long), a ragged block (short or
/// missing rows) and the last rows one at a time through `K::dot_add`. With `LOOKAHEAD`
/// (the twin sets it for rows of at least [`LOOKAHEAD_COLUMNS`]), each block also passes
/// the next block's rows to `dot_add_rows` (empty for the last block), for it to
/// prefetch.
#[inline(always)]
pub(crate) fn blocked_matvec_add<K: Kernels, const LOOKAHEAD: bool>(
    w: &[f32],
    row_stride: usize,
    offset: usize,
    x: &[f32],
    (ends, y): (SumEnds<'_>, &mut [f32]),
    dot_add_rows: impl Fn(
        [f32; ROW_BLOCK],
        [&[f32]; ROW_BLOCK],
        &[f32],
        [&[f32]; ROW_BLOCK],
    ) -> [f32; ROW_BLOCK],
) {
    let stride = row_stride.max(1);
    let mut blocks = row_blocks::<LOOKAHEAD>(w, stride);
    let n = x.len();
    let starts = full_row_starts(stride, offset, n);
    let ends = ends.fitted(y.len());
    let (y_blocks, y_rest) = y.as_chunks_mut::<ROW_BLOCK>();
    let block_rows = y_blocks.as_flattened().len();
    for (y_block, start) in y_blocks.iter_mut().zip(ends.block_starts()) {
        let (block, next) = blocks.next_block();
        let full = |block| starts.and_then(|starts| full_rows(block, starts, n));
        let start = start.unwrap_or(*y_block);
        let sums = match full(block) {
            Some(rows) => dot_add_rows(start, rows, x, next.and_then(full).unwrap_or_default()),
            None => {
                // A ragged block (only with short or missing rows): each row over its
                // own common prefix with `x`.
                let mut sums = start;
                for (sum, row) in sums.iter_mut().zip(split_rows(block, stride, offset)) {
                    *sum = K::dot_add(*sum, row, x);
                }
                sums
            }
        };
        *y_block = ends.end_block(sums);
    }
    if y_rest.is_empty() {
        return;
    }
    let rows = split_rows(blocks.rest(), stride, offset);
    for ((yi, row), start) in y_rest.iter_mut().zip(rows).zip(ends.row_starts(block_rows)) {
        *yi = ends.end(K::dot_add(start.unwrap_or(*yi), row, x));
    }
}

/// The outputs after the first `whole` blocks: the blocks' rest, then the rows that made
/// no block.
#[inline(always)]
fn after_blocks<'y>(
    y_blocks: &'y mut [[f32; ROW_BLOCK]],
    whole: usize,
    y_rest: &'y mut [f32],
) -> impl Iterator<Item = &'y mut f32> {
    let blocks = y_blocks.get_mut(whole..).unwrap_or_default();
    blocks
        .as_flattened_mut()
        .iter_mut()
        .chain(y_rest.iter_mut())
}

/// [`Kernels::matvec2_add`] for both twins, blocked and with the sums' start and end as
/// in [`blocked_matvec_add`] (the same start values for both inputs); the twin's
/// `dot2_add_rows` feeds each weight load to both inputs, and with `LOOKAHEAD` the next
/// block's rows as [`blocked_matvec_add`] does.
#[inline(always)]
pub(crate) fn blocked_matvec2_add<K: Kernels, const LOOKAHEAD: bool>(
    w: &[f32],
    row_stride: usize,
    offset: usize,
    x: [&[f32]; 2],
    (ends, y): (SumEnds<'_>, [&mut [f32]; 2]),
    dot2_add_rows: impl Fn(
        [[f32; ROW_BLOCK]; 2],
        [&[f32]; ROW_BLOCK],
        [&[f32]; 2],
        [&[f32]; ROW_BLOCK],
    ) -> [[f32; ROW_BLOCK]; 2],
) {
    let stride = row_stride.max(1);
    let [y1, y2] = y;
    let rows = y1.len().min(y2.len());
    let ends = ends.fitted(rows);
    let (y1_blocks, y1_rest) = y1.as_chunks_mut::<ROW_BLOCK>();
    let (y2_blocks, y2_rest) = y2.as_chunks_mut::<ROW_BLOCK>();
    let whole_blocks = y1_blocks.len().min(y2_blocks.len());
    let [x1, x2] = x;
    let n = x1.len().min(x2.len());
    let (x1, x2) = (prefix(x1, n), prefix(x2, n));
    let mut blocks = row_blocks::<LOOKAHEAD>(w, stride);
    let starts = full_row_starts(stride, offset, n);
    let y_blocks = y1_blocks.iter_mut().zip(y2_blocks.iter_mut());
    for ((b1, b2), start) in y_blocks.zip(ends.block_starts()) {
        let (block, next) = blocks.next_block();
        let full = |block| starts.and_then(|starts| full_rows(block, starts, n));
        let (s1, s2) = start.map_or((*b1, *b2), |s| (s, s));
        let [sums1, sums2] = match full(block) {
            Some(rows) => dot2_add_rows(
                [s1, s2],
                rows,
                [x1, x2],
                next.and_then(full).unwrap_or_default(),
            ),
            None => {
                // A ragged block: each row over its own common prefix.
                let rows = split_rows(block, stride, offset);
                let (mut s1, mut s2) = (s1, s2);
                for ((a1, a2), row) in s1.iter_mut().zip(s2.iter_mut()).zip(rows) {
                    *a1 = K::dot_add(*a1, row, x1);
                    *a2 = K::dot_add(*a2, row, x2);
                }
                [s1, s2]
            }
        };
        *b1 = ends.end_block(sums1);
        *b2 = ends.end_block(sums2);
    }
    // Rows after the last whole block of the shorter output (at most three): one row at
    // a time. (Their set-up is about a hundred instructions on the Cortex-M4F, so it is
    // skipped when there are none.)
    let first_rest_row = whole_blocks.saturating_mul(ROW_BLOCK);
    if first_rest_row >= rows {
        return;
    }
    let y1_rest = after_blocks(y1_blocks, whole_blocks, y1_rest);
    let y2_rest = after_blocks(y2_blocks, whole_blocks, y2_rest);
    let rows = split_rows(blocks.rest(), stride, offset);
    let rest = y1_rest.zip(y2_rest).zip(rows);
    for (((y1i, y2i), row), start) in rest.zip(ends.row_starts(first_rest_row)) {
        let (s1, s2) = start.map_or((*y1i, *y2i), |s| (s, s));
        *y1i = ends.end(K::dot_add(s1, row, x1));
        *y2i = ends.end(K::dot_add(s2, row, x2));
    }
}

/// [`pieces`] for mutable slices.
#[inline]
pub(crate) fn pieces_mut<T>(slice: &mut [T], len: usize) -> impl Iterator<Item = &mut [T]> {
    let len = len.max(1);
    let mut rest = slice;
    core::iter::from_fn(move || {
        let taken = core::mem::take(&mut rest);
        if taken.is_empty() {
            return None;
        }
        let at = len.min(taken.len());
        let (piece, tail) = taken.split_at_mut_checked(at).unwrap_or((&mut [], &mut []));
        rest = tail;
        Some(piece)
    })
}

/// Rows × cols with overflow turned into an error.
pub(crate) fn checked_area(rows: usize, cols: usize) -> SslResult<usize> {
    rows.checked_mul(cols).ok_or(SslError::InvalidParameter {
        name: "w",
        reason: "rows × cols overflows usize",
    })
}

/// The least length of a `rows × cols` matrix at leading dimension `ld`: the index of its
/// last element plus one, `(rows − 1)·ld + cols` (0 when it has no element).
///
/// # Errors
/// `InvalidParameter` named `ld_name` when `ld < cols`, named `name` when the length
/// overflows `usize`.
fn strided_len(
    rows: usize,
    cols: usize,
    ld: usize,
    name: &'static str,
    ld_name: &'static str,
) -> SslResult<usize> {
    if ld < cols {
        return Err(SslError::InvalidParameter {
            name: ld_name,
            reason: "leading dimension smaller than the row width",
        });
    }
    if rows == 0 || cols == 0 {
        return Ok(0);
    }
    rows.saturating_sub(1)
        .checked_mul(ld)
        .and_then(|start| start.checked_add(cols))
        .ok_or(SslError::InvalidParameter {
            name,
            reason: "(rows − 1)·ld + cols overflows usize",
        })
}

/// One operand of a matrix kernel: `rows × cols` at leading dimension `ld`, in a slice of
/// `len` elements. Returns the length its shape needs.
///
/// # Errors
/// As [`strided_len`]; then `DimensionMismatch { expected: needed, got: len }` when the
/// slice is shorter than that.
fn check_operand(
    len: usize,
    (rows, cols, ld): (usize, usize, usize),
    name: &'static str,
    ld_name: &'static str,
) -> SslResult<usize> {
    let needed = strided_len(rows, cols, ld, name, ld_name)?;
    if len < needed {
        return Err(SslError::DimensionMismatch {
            expected: needed,
            got: len,
        });
    }
    Ok(needed)
}

/// How a matrix kernel reads `A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GemmA {
    /// `A` is `m × k`, `A[i, p] = a[i·lda + p]` ([`Kernels::gemm_nn_add`]).
    RowMajor,
    /// `A` is stored `k × m`, `A[p, i] = a[p·lda + i]` ([`Kernels::gemm_tn_add`]).
    Transposed,
}

/// The read-only side of a validated matrix-kernel call: the shapes, and `a`, `b` cut to
/// the lengths their shapes need (each ends at its last element).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gemm<'a> {
    /// Rows of `C`.
    pub(crate) m: usize,
    /// Columns of `B` and `C`.
    pub(crate) n: usize,
    /// Terms per element.
    pub(crate) k: usize,
    /// `A`, as [`GemmA`] says.
    pub(crate) a: &'a [f32],
    /// Leading dimension of `a`.
    pub(crate) lda: usize,
    /// `B`, `k × n`.
    pub(crate) b: &'a [f32],
    /// Leading dimension of `b`.
    pub(crate) ldb: usize,
}

/// Checks a matrix-kernel call: `a`, then `b`, then `c`, each its leading dimension
/// before its length. Returns the inputs and `c`, cut to the lengths their shapes need.
///
/// # Errors
/// As [`check_operand`], for the first operand at fault.
#[allow(
    clippy::too_many_arguments,
    reason = "the kernels' BLAS signature plus the layout of A"
)]
pub(crate) fn gemm_operands<'a, 'c>(
    layout: GemmA,
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    ldb: usize,
    c: &'c mut [f32],
    ldc: usize,
) -> SslResult<(Gemm<'a>, &'c mut [f32])> {
    let a_shape = match layout {
        GemmA::RowMajor => (m, k, lda),
        GemmA::Transposed => (k, m, lda),
    };
    cut_operands((m, n, k), (a, a_shape), (b, (k, n, ldb)), (c, ldc))
}

/// Checks `a`, `b` and `c` (in that order) against their shapes `(rows, columns, leading
/// dimension)`, `c`'s being `m × n`, and cuts each to the length its shape needs: the
/// common part of [`gemm_operands`] and [`gemm_nt_operands`].
fn cut_operands<'a, 'c>(
    (m, n, k): (usize, usize, usize),
    (a, a_shape): (&'a [f32], (usize, usize, usize)),
    (b, b_shape): (&'a [f32], (usize, usize, usize)),
    (c, ldc): (&'c mut [f32], usize),
) -> SslResult<(Gemm<'a>, &'c mut [f32])> {
    let a_len = check_operand(a.len(), a_shape, "a", "lda")?;
    let b_len = check_operand(b.len(), b_shape, "b", "ldb")?;
    let c_len = check_operand(c.len(), (m, n, ldc), "c", "ldc")?;
    let gemm = Gemm {
        m,
        n,
        k,
        a: a.get(..a_len).unwrap_or_default(),
        lda: a_shape.2,
        b: b.get(..b_len).unwrap_or_default(),
        ldb: b_shape.2,
    };
    Ok((gemm, c.get_mut(..c_len).unwrap_or_default()))
}

/// Checks a call of [`Kernels::gemm_nt_add`]: `a` (`m × k`), then `b` (`n × k`), then
/// `c` (`m × n`), each its leading dimension before its length. Returns the inputs and
/// `c` cut to the lengths their shapes need (in the returned [`Gemm`], `b` is the stored
/// `n × k` matrix).
///
/// # Errors
/// As [`check_operand`], for the first operand at fault.
#[allow(clippy::too_many_arguments, reason = "the kernels' BLAS signature")]
pub(crate) fn gemm_nt_operands<'a, 'c>(
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    ldb: usize,
    c: &'c mut [f32],
    ldc: usize,
) -> SslResult<(Gemm<'a>, &'c mut [f32])> {
    cut_operands((m, n, k), (a, (m, k, lda)), (b, (n, k, ldb)), (c, ldc))
}

/// [`gemm_nt_operands`] for the unchecked kernels: `None` (do nothing) on any error and
/// when `m`, `n` or `k` is zero.
#[allow(clippy::too_many_arguments, reason = "the kernels' BLAS signature")]
#[inline]
pub(crate) fn gemm_nt_call<'a, 'c>(
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    ldb: usize,
    c: &'c mut [f32],
    ldc: usize,
) -> Option<(Gemm<'a>, &'c mut [f32])> {
    if m == 0 || n == 0 || k == 0 {
        return None;
    }
    gemm_nt_operands(m, n, k, a, lda, b, ldb, c, ldc).ok()
}

/// [`gemm_operands`] for the unchecked kernels: `None` (do nothing) on any error and when
/// `m`, `n` or `k` is zero, so the kernels only ever see at least one whole element.
#[allow(
    clippy::too_many_arguments,
    reason = "the kernels' BLAS signature plus the layout of A"
)]
#[inline]
pub(crate) fn gemm_call<'a, 'c>(
    layout: GemmA,
    m: usize,
    n: usize,
    k: usize,
    a: &'a [f32],
    lda: usize,
    b: &'a [f32],
    ldb: usize,
    c: &'c mut [f32],
    ldc: usize,
) -> Option<(Gemm<'a>, &'c mut [f32])> {
    if m == 0 || n == 0 || k == 0 {
        return None;
    }
    gemm_operands(layout, m, n, k, a, lda, b, ldb, c, ldc).ok()
}

/// `y = b` then `y += W·x`, shapes checked: `W` is `[y.len() × x.len()]` row-major.
fn checked_matvec_bias<K: Kernels>(
    w: &[f32],
    x: &[f32],
    b: &[f32],
    y: &mut [f32],
) -> SslResult<()> {
    check_len(y.len(), b.len())?;
    check_len(checked_area(y.len(), x.len())?, w.len())?;
    y.iter_mut().zip(b).for_each(|(yi, bi)| *yi = *bi);
    K::matvec_add(w, x.len(), 0, x, y);
    Ok(())
}

/// `y1 = b`, `y2 = b`, then both `+= W·x` in one pass over `W`, shapes checked.
fn checked_matvec2_bias<K: Kernels>(
    w: &[f32],
    x: [&[f32]; 2],
    b: &[f32],
    y: [&mut [f32]; 2],
) -> SslResult<()> {
    let [x1, x2] = x;
    let [y1, y2] = y;
    check_len(x1.len(), x2.len())?;
    check_len(y1.len(), b.len())?;
    check_len(b.len(), y2.len())?;
    check_len(checked_area(y1.len(), x1.len())?, w.len())?;
    y1.copy_from_slice(b);
    y2.copy_from_slice(b);
    K::matvec2_add(w, x1.len(), 0, [x1, x2], [y1, y2]);
    Ok(())
}

/// Rows of `W` per panel in [`matmat_add`]: the SIMD twin's register block.
const PANEL_ROWS: usize = 4;
/// Columns per panel in [`matmat_add`]: a `PANEL_ROWS × PANEL_COLS` panel of `W` is 8 KiB
/// and a group of eight inputs' matching columns 16 KiB, so both stay in a 32 KiB L1
/// while every input pair of the group passes over the panel.
const PANEL_COLS: usize = 512;

/// Matrix × matrix for a group of inputs: for every `j` and row `i`,
/// `ys[j][i] += W[i, offset .. offset + k]·xs[j]`, with `W` row-major at `row_stride`
/// (as [`Kernels::matvec_add`]) and `k` the shortest input. Register- and cache-blocked:
/// the weights are walked in panels of [`PANEL_ROWS`] rows × [`PANEL_COLS`] columns, and
/// each panel feeds every input pair through [`Kernels::matvec2_add`] (an odd last
/// input through [`Kernels::matvec_add`]) before the next panel is read. So `W` is read
/// from memory once per call whatever the number of inputs. One pair or one input
/// skips the panels: a single kernel call over all of `W`.
///
/// Each output still sums its terms from its start value in column order, panel after
/// panel, so on the scalar twin the result is bit for bit that of one `matvec_add` per
/// input; on the SIMD twin it is within [`sum_error_bound`] of it.
pub(crate) fn matmat_add<K: Kernels>(
    w: &[f32],
    row_stride: usize,
    offset: usize,
    xs: &[&[f32]],
    ys: &mut [&mut [f32]],
) {
    // One pair (or one input): no other input shares a panel, so one pass over `W`, each
    // row block summed over all its columns: the weights stream row after row, and each
    // block takes one horizontal sum instead of one per `PANEL_COLS` columns (the
    // official paper head's one-pair loss, x86-64-v3: 4.62 -> 3.85 ms).
    match (xs, &mut *ys) {
        ([x1, x2], [y1, y2]) => return K::matvec2_add(w, row_stride, offset, [x1, x2], [y1, y2]),
        ([x], [y]) => return K::matvec_add(w, row_stride, offset, x, y),
        _ => {}
    }
    let k = xs.iter().map(|x| x.len()).min().unwrap_or(0);
    let rows = ys.iter().map(|y| y.len()).min().unwrap_or(0);
    // Rows short enough to fit one panel: a single panel of all rows, so one kernel call
    // per input pair (same sums: the kernels block rows by four from the panel start).
    let panel_rows = if k <= PANEL_COLS {
        rows.max(1)
    } else {
        PANEL_ROWS
    };
    let panel_len = row_stride.saturating_mul(panel_rows).max(1);
    // The first row of each panel is a running sum, not `step_by`, whose run-time step
    // check would keep a panic path where it is not inlined.
    let mut r0 = 0_usize;
    for panel in pieces(w, panel_len) {
        if r0 >= rows {
            break;
        }
        let r1 = r0.saturating_add(panel_rows).min(rows);
        for k0 in (0..k).step_by(PANEL_COLS) {
            let k1 = k0.saturating_add(PANEL_COLS).min(k);
            let column = offset.saturating_add(k0);
            let mut x_pairs = xs.chunks_exact(2);
            let mut y_pairs = ys.chunks_exact_mut(2);
            for (x_pair, y_pair) in x_pairs.by_ref().zip(y_pairs.by_ref()) {
                if let ([x1, x2], [y1, y2]) = (x_pair, y_pair) {
                    let x = [
                        x1.get(k0..k1).unwrap_or_default(),
                        x2.get(k0..k1).unwrap_or_default(),
                    ];
                    let y = [
                        y1.get_mut(r0..r1).unwrap_or_default(),
                        y2.get_mut(r0..r1).unwrap_or_default(),
                    ];
                    K::matvec2_add(panel, row_stride, column, x, y);
                }
            }
            if let ([x], [y]) = (x_pairs.remainder(), y_pairs.into_remainder()) {
                let x = x.get(k0..k1).unwrap_or_default();
                let y = y.get_mut(r0..r1).unwrap_or_default();
                K::matvec_add(panel, row_stride, column, x, y);
            }
        }
        r0 = r1;
    }
}

/// One layer for a group of one or two inputs (the forward pass's single input and the
/// loss's two views): [`Sealed::matvec_layer`](sealed::Sealed::matvec_layer) or
/// [`Sealed::matvec2_layer`](sealed::Sealed::matvec2_layer), the sums' start and end as
/// `ends` says. Other group sizes (and an `xs` and `ys` of different lengths) do nothing:
/// larger groups take [`matmat_add`], whose panel path would be dead code here (1 KiB of
/// the firmware's `.text`).
#[inline]
pub(crate) fn matvec_layer_group<K: Kernels>(
    w: &[f32],
    row_stride: usize,
    offset: usize,
    xs: &[&[f32]],
    (ends, ys): (SumEnds<'_>, &mut [&mut [f32]]),
) {
    match (xs, ys) {
        ([x1, x2], [y1, y2]) => K::matvec2_layer(w, row_stride, offset, [x1, x2], ends, [y1, y2]),
        ([x], [y]) => K::matvec_layer(w, row_stride, offset, x, ends, y),
        _ => {}
    }
}

/// The hidden layer's ReLU, `v_i = max(v_i, 0)` for finite `v_i`; NaN and ±inf stay as
/// they are. A non-finite pre-activation means a partial sum overflowed (`−inf` can come
/// from a sum whose exact value is positive, NaN from `inf − inf`), so it must reach the
/// output's finiteness check instead of silently becoming 0 and giving a finite, wrong
/// result. For both twins (it does no arithmetic to reorder); without a vector unit as a
/// comparison, since `f32::max` is a library call (`fmaxf`) on FPUs without `vmaxnm`,
/// such as the Cortex-M4F's. Zeros stay as they are (as `max` keeps `−0` on x86-64 and the
/// reference does).
#[inline]
pub(crate) fn relu_in_place(v: &mut [f32]) {
    if VECTOR_UNIT {
        // Keeping some lanes as they are compiles to masked stores (`vmaskmovps`,
        // microcoded on AMD cores: 8 % of a default `loss` on Zen 3). So: one pass to
        // see whether every value is finite (the rule), then a plain `max`.
        if v.iter().fold(true, |finite, x| finite & x.is_finite()) {
            v.iter_mut().for_each(|x| *x = x.max(0.0));
        } else {
            v.iter_mut()
                .for_each(|x| *x = if x.is_finite() { x.max(0.0) } else { *x });
        }
    } else {
        v.iter_mut().for_each(|x| *x = relu_keeping_non_finite(*x));
    }
}

/// [`relu_in_place`] for one value: `[f32::MIN, 0)` becomes 0, and NaN, `−∞`, zeros and
/// positive values stay. Those are the bit patterns `0x8000_0001..=0xff7f_ffff`, one
/// integer comparison (on the Cortex-M4F two float comparisons, each with its flags
/// move, took a third more instructions; on x86-64 it is a compare and a conditional
/// move).
#[inline(always)]
pub(crate) fn relu_keeping_non_finite(x: f32) -> f32 {
    const FIRST: u32 = 0x8000_0001;
    const COUNT: u32 = 0xff7f_ffff - FIRST + 1;
    if x.to_bits().wrapping_sub(FIRST) < COUNT {
        0.0
    } else {
        x
    }
}

/// The public kernels' ReLU, `v_i = max(v_i, 0)`: NaN becomes 0, as `f32::max` does.
#[inline]
pub(crate) fn relu_zeroing_nan(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// `√x`, correctly rounded (as the reference's `f32::sqrt`). With AVX enabled it is the
/// VEX-encoded `vsqrtps` (through `wide`): `libm::sqrtf` is the legacy-SSE `sqrtss` in
/// inline assembly, which after 256-bit code stalls for hundreds of cycles on some CPUs
/// (BENCHMARKS.md, "Measurements behind design choices"). Both are IEEE square roots, so the result is the same.
#[inline]
fn sqrt(x: f32) -> f32 {
    #[cfg(target_feature = "avx")]
    {
        let [root, ..] = wide::f32x4::splat(x).sqrt().to_array();
        root
    }
    #[cfg(not(target_feature = "avx"))]
    {
        libm::sqrtf(x)
    }
}

/// `v / max(‖v‖₂, 1e-12)` in place; returns the divisor used.
#[inline]
pub(crate) fn l2_normalize_with<K: Kernels>(v: &mut [f32]) -> f32 {
    divide_by_norm::<K>(v, K::sum_squares(v), NORM_FLOOR)
}

/// `v / max(√sum_squares, floor)` in place, for a `sum_squares` of `v` already computed;
/// returns the divisor used.
#[inline]
pub(crate) fn divide_by_norm<K: Kernels>(v: &mut [f32], sum_squares: f32, floor: f32) -> f32 {
    let norm = sqrt(sum_squares).max(floor);
    K::divide(v, norm);
    norm
}

/// Writes one twin's public, shape-checked kernel functions.
macro_rules! kernel_twin {
    ($(#[$doc:meta])* $module:ident, $backend:ty) => {
        $(#[$doc])*
        pub mod $module {
            use crate::error::{SslResult, check_len};

            /// Dot product `Σ a_i·b_i`.
            ///
            /// # Errors
            /// [`SslError::DimensionMismatch`](crate::SslError::DimensionMismatch) when
            /// `b.len() != a.len()`.
            pub fn dot(a: &[f32], b: &[f32]) -> SslResult<f32> {
                check_len(a.len(), b.len())?;
                Ok(<$backend as super::Kernels>::dot_add(0.0, a, b))
            }

            /// Matrix–vector product with bias, `y = W·x + b`, for a row-major `W` of
            /// shape `[y.len() × x.len()]`.
            ///
            /// # Errors
            /// `DimensionMismatch` when `b.len() != y.len()` or
            /// `w.len() != y.len()·x.len()`; `InvalidParameter` when that product
            /// overflows `usize`.
            pub fn matvec_bias(w: &[f32], x: &[f32], b: &[f32], y: &mut [f32]) -> SslResult<()> {
                super::checked_matvec_bias::<$backend>(w, x, b, y)
            }

            /// [`matvec_bias`] followed by ReLU: `y = max(W·x + b, 0)`.
            ///
            /// # Errors
            /// As [`matvec_bias`].
            pub fn matvec_bias_relu(w: &[f32], x: &[f32], b: &[f32], y: &mut [f32]) -> SslResult<()> {
                super::checked_matvec_bias::<$backend>(w, x, b, y)?;
                super::relu_zeroing_nan(y);
                Ok(())
            }

            /// Two inputs through one matrix in one pass over it (each weight load feeds
            /// two products): `y1 = W·x1 + b` and `y2 = W·x2 + b`, `W` row-major of shape
            /// `[b.len() × x1.len()]`. Each output is within
            /// [`sum_error_bound`](super::sum_error_bound) of the other twin's, and the
            /// scalar twin equals two [`matvec_bias`] calls bit for bit.
            ///
            /// # Errors
            /// `DimensionMismatch` when `x2.len() != x1.len()`, `y1.len() != b.len()`,
            /// `y2.len() != b.len()` or `w.len() != b.len()·x1.len()` (checked in that
            /// order); `InvalidParameter` when that product overflows `usize`.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("use simsiam::kernels::", stringify!($module), ";")]
            /// let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 × 3
            /// let (mut y1, mut y2) = ([0.0; 2], [0.0; 2]);
            #[doc = concat!(stringify!($module), "::matvec2_bias(&w, &[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0], &[0.5, 0.5], &mut y1, &mut y2)?;")]
            /// assert_eq!((y1, y2), ([1.5, 4.5], [3.5, 6.5]));
            /// # Ok::<(), simsiam::SslError>(())
            /// ```
            pub fn matvec2_bias(
                w: &[f32],
                x1: &[f32],
                x2: &[f32],
                b: &[f32],
                y1: &mut [f32],
                y2: &mut [f32],
            ) -> SslResult<()> {
                super::checked_matvec2_bias::<$backend>(w, [x1, x2], b, [y1, y2])
            }

            /// Accumulating matrix–vector product `y += W·x` for a row-major `W` of
            /// shape `[y.len() × x.len()]`.
            ///
            /// # Errors
            /// `DimensionMismatch` when `w.len() != y.len()·x.len()`; `InvalidParameter`
            /// when that product overflows `usize`.
            pub fn matvec_accumulate(w: &[f32], x: &[f32], y: &mut [f32]) -> SslResult<()> {
                check_len(super::checked_area(y.len(), x.len())?, w.len())?;
                <$backend as super::Kernels>::matvec_add(w, x.len(), 0, x, y);
                Ok(())
            }

            /// Matrix product into an accumulator, all row-major:
            /// `C[i, j] += Σ_{p < k} A[i, p]·B[p, j]` for `i < m`, `j < n`, with
            /// `A[i, p] = a[i·lda + p]`, `B[p, j] = b[p·ldb + j]`, `C[i, j] = c[i·ldc + j]`
            /// (`A` is `m × k`, `B` is `k × n`, `C` is `m × n`). Each element sums from
            /// its start value with `p` ascending; see
            /// [`Kernels::gemm_nn_add`](super::Kernels::gemm_nn_add) for the order of
            /// each twin and the bound between them. `m`, `n` or `k` zero: `c` unchanged.
            ///
            /// # Errors
            /// Checked for `a`, then `b`, then `c`, and `c` is left untouched on error:
            /// `InvalidParameter` (`"lda"`, `"ldb"`, `"ldc"`) when a leading dimension is
            /// smaller than its row width (`lda < k`, `ldb < n`, `ldc < n`);
            /// `InvalidParameter` (`"a"`, `"b"`, `"c"`) when `(rows − 1)·ld + cols`
            /// overflows `usize`; `DimensionMismatch { expected, got }` when a slice is
            /// shorter than that length (`expected`, the least length; `got`, the
            /// slice's). Longer slices are fine.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("use simsiam::kernels::", stringify!($module), ";")]
            /// // A = [[1, 2], [3, 4]] (2 × 2), B = [[1, 0, 2], [0, 1, 3]] (2 × 3), stored with
            /// // a padding column (ldb = 4); C starts at 1 and has ldc = 3.
            /// let a = [1.0, 2.0, 3.0, 4.0];
            /// let b = [1.0, 0.0, 2.0, -9.0, 0.0, 1.0, 3.0];
            /// let mut c = [1.0; 6];
            #[doc = concat!(stringify!($module), "::gemm_nn_add(2, 3, 2, &a, 2, &b, 4, &mut c, 3)?;")]
            /// assert_eq!(c, [2.0, 3.0, 9.0, 4.0, 5.0, 19.0]);
            /// // `b` one element short of its last row:
            /// assert_eq!(
            #[doc = concat!("    ", stringify!($module), "::gemm_nn_add(2, 3, 2, &a, 2, &b[..6], 4, &mut c, 3),")]
            ///     Err(simsiam::SslError::DimensionMismatch { expected: 7, got: 6 })
            /// );
            /// # Ok::<(), simsiam::SslError>(())
            /// ```
            #[allow(
                clippy::too_many_arguments,
                reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
            )]
            pub fn gemm_nn_add(
                m: usize,
                n: usize,
                k: usize,
                a: &[f32],
                lda: usize,
                b: &[f32],
                ldb: usize,
                c: &mut [f32],
                ldc: usize,
            ) -> SslResult<()> {
                let layout = super::GemmA::RowMajor;
                super::gemm_operands(layout, m, n, k, a, lda, b, ldb, c, ldc)?;
                <$backend as super::Kernels>::gemm_nn_add(m, n, k, a, lda, b, ldb, c, ldc);
                Ok(())
            }

            /// Matrix product with `A` transposed: `C[i, j] += Σ_{p < k} A[p, i]·B[p, j]`
            /// for `i < m`, `j < n`, where `A` is stored `k × m`, `A[p, i] = a[p·lda + i]`;
            /// `B` and `C` as in [`gemm_nn_add`]. Same summation order and twin bound
            /// ([`Kernels::gemm_tn_add`](super::Kernels::gemm_tn_add)).
            ///
            /// # Errors
            /// As [`gemm_nn_add`], with `a` a `k × m` operand: `lda < m` is an error,
            /// and `a` needs `(k − 1)·lda + m` elements.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("use simsiam::kernels::", stringify!($module), ";")]
            /// // Gᵀ·X: G is k × m = 2 × 2 (rows [1, 2] and [3, 4]), X is 2 × 3.
            /// let g = [1.0, 2.0, 3.0, 4.0];
            /// let x = [1.0, 0.0, 2.0, 0.0, 1.0, 3.0];
            /// let mut dw = [0.0; 6];
            #[doc = concat!(stringify!($module), "::gemm_tn_add(2, 3, 2, &g, 2, &x, 3, &mut dw, 3)?;")]
            /// assert_eq!(dw, [1.0, 3.0, 11.0, 2.0, 4.0, 16.0]);
            /// // A leading dimension smaller than the row width:
            /// assert!(matches!(
            #[doc = concat!("    ", stringify!($module), "::gemm_tn_add(2, 3, 2, &g, 1, &x, 3, &mut dw, 3),")]
            ///     Err(simsiam::SslError::InvalidParameter { name: "lda", .. })
            /// ));
            /// # Ok::<(), simsiam::SslError>(())
            /// ```
            #[allow(
                clippy::too_many_arguments,
                reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
            )]
            pub fn gemm_tn_add(
                m: usize,
                n: usize,
                k: usize,
                a: &[f32],
                lda: usize,
                b: &[f32],
                ldb: usize,
                c: &mut [f32],
                ldc: usize,
            ) -> SslResult<()> {
                let layout = super::GemmA::Transposed;
                super::gemm_operands(layout, m, n, k, a, lda, b, ldb, c, ldc)?;
                <$backend as super::Kernels>::gemm_tn_add(m, n, k, a, lda, b, ldb, c, ldc);
                Ok(())
            }

            /// Matrix product with `B` transposed: `C[i, j] += Σ_{p < k} A[i, p]·B[j, p]`
            /// for `i < m`, `j < n`, where `B` is stored `n × k`, `B[j, p] = b[j·ldb + p]`
            /// (a dense layer's forward over a batch, `Y += X·Wᵀ`); `A` and `C` as in
            /// [`gemm_nn_add`]. Same summation order and twin bound
            /// ([`Kernels::gemm_nt_add`](super::Kernels::gemm_nt_add)).
            ///
            /// # Errors
            /// As [`gemm_nn_add`], with `b` an `n × k` operand: `ldb < k` is an error,
            /// and `b` needs `(n − 1)·ldb + k` elements.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("use simsiam::kernels::", stringify!($module), ";")]
            /// // X·Wᵀ: X is 2 × 2 (rows [1, 2] and [3, 4]), W is 3 × 2 (rows [1, 0], [0, 1], [2, 3]).
            /// let x = [1.0, 2.0, 3.0, 4.0];
            /// let w = [1.0, 0.0, 0.0, 1.0, 2.0, 3.0];
            /// let mut y = [0.0; 6];
            #[doc = concat!(stringify!($module), "::gemm_nt_add(2, 3, 2, &x, 2, &w, 2, &mut y, 3)?;")]
            /// assert_eq!(y, [1.0, 2.0, 8.0, 3.0, 4.0, 18.0]);
            /// // `w` one element short of its last row:
            /// assert_eq!(
            #[doc = concat!("    ", stringify!($module), "::gemm_nt_add(2, 3, 2, &x, 2, &w[..5], 2, &mut y, 3),")]
            ///     Err(simsiam::SslError::DimensionMismatch { expected: 6, got: 5 })
            /// );
            /// # Ok::<(), simsiam::SslError>(())
            /// ```
            #[allow(
                clippy::too_many_arguments,
                reason = "the BLAS signature: three shapes, three operands, three leading dimensions"
            )]
            pub fn gemm_nt_add(
                m: usize,
                n: usize,
                k: usize,
                a: &[f32],
                lda: usize,
                b: &[f32],
                ldb: usize,
                c: &mut [f32],
                ldc: usize,
            ) -> SslResult<()> {
                super::gemm_nt_operands(m, n, k, a, lda, b, ldb, c, ldc)?;
                <$backend as super::Kernels>::gemm_nt_add(m, n, k, a, lda, b, ldb, c, ldc);
                Ok(())
            }

            /// In-place L2 normalisation with the reference's floor:
            /// `v / max(‖v‖₂, 1e-12)`. Returns the divisor used. The result has norm 1
            /// (within rounding) unless `‖v‖₂ < 1e-12`; a zero vector stays zero.
            /// Non-finite input gives non-finite output (the model checks; this kernel
            /// does not).
            #[must_use = "the norm is often needed; ignore it with `let _ =`"]
            pub fn l2_normalize(v: &mut [f32]) -> f32 {
                super::l2_normalize_with::<$backend>(v)
            }

            /// In-place ReLU, `v_i = max(v_i, 0)` (`NaN` becomes `0`, as `f32::max` does).
            pub fn relu(v: &mut [f32]) {
                super::relu_zeroing_nan(v);
            }
        }
    };
}

kernel_twin!(
    /// SIMD twins on `wide` lanes ([`LANES`] wide, chosen at compile time).
    simd,
    super::Simd
);
kernel_twin!(
    /// Scalar twins: the reference crate's loops, summing left to right. The baseline.
    scalar,
    super::Scalar
);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::sealed::Sealed as _;
    use super::{Kernels, Scalar, Simd, SumEnds, SumStart, relu_in_place};
    use std::{vec, vec::Vec};

    /// `values`, made reproducible: small multiples of 1/8 with both signs, so some sums
    /// end negative (the ReLU has work) and the twins' sums of products stay exact.
    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 17) as f32 / 8.0 - 1.0)
            .collect()
    }

    /// What a layer kernel must equal: the start values copied in, the accumulating
    /// kernel, then the ReLU over the whole output.
    fn unfused<K: Kernels>(
        (w, stride, offset): (&[f32], usize, usize),
        x: &[f32],
        ends: SumEnds<'_>,
        y: &mut [f32],
    ) {
        match ends.start {
            SumStart::Output => {}
            SumStart::Zero => y.fill(0.0),
            SumStart::Values(v) if v.len() >= y.len() => y.copy_from_slice(&v[..y.len()]),
            SumStart::Values(_) => {}
        }
        K::matvec_add(w, stride, offset, x, y);
        if ends.relu {
            relu_in_place(y);
        }
    }

    /// The start values and the ReLU folded into the kernels give the results of the
    /// separate steps bit for bit, on both twins, for one input and for two, over whole
    /// blocks, ragged rows and the rows after the last block; a start slice shorter
    /// than the output is ignored.
    fn layer_kernels_equal_separate_steps<K: Kernels>() {
        let bias = values(11, 5);
        for (rows, cols, offset) in [(8_usize, 16, 0), (11, 9, 0), (7, 5, 3), (1, 33, 2)] {
            let starts = [
                SumStart::Output,
                SumStart::Zero,
                SumStart::Values(&bias),
                // Short: it covers a whole block and part of the rows after it.
                SumStart::Values(&bias[..rows.saturating_sub(2)]),
            ];
            let stride = cols + offset;
            // One row short: its block is ragged.
            let w = values(rows * stride - 1, 1);
            let x1 = values(cols, 2);
            let x2 = values(cols, 3);
            for start in starts {
                for relu in [false, true] {
                    let ends = SumEnds { start, relu };
                    let old = values(rows, 4);
                    let mut want1 = old.clone();
                    let mut want2 = old.clone();
                    unfused::<K>((&w, stride, offset), &x1, ends, &mut want1);
                    unfused::<K>((&w, stride, offset), &x2, ends, &mut want2);
                    let mut y1 = old.clone();
                    K::matvec_layer(&w, stride, offset, &x1, ends, &mut y1);
                    assert_eq!(y1, want1, "one input {rows}x{cols}+{offset} {ends:?}");
                    let (mut y1, mut y2) = (old.clone(), old.clone());
                    K::matvec2_layer(&w, stride, offset, [&x1, &x2], ends, [&mut y1, &mut y2]);
                    assert_eq!(
                        [y1, y2],
                        [want1, want2],
                        "two inputs {rows}x{cols}+{offset} {ends:?}"
                    );
                }
            }
        }
    }

    /// Rows long enough for the SIMD twin's lookahead ([`super::LOOKAHEAD_COLUMNS`]):
    /// three whole blocks, each prefetching the next, then a row after them. The values
    /// are multiples of 1/8 below 1 in magnitude, so every sum is exact in any order and
    /// the twins must agree bit for bit.
    #[test]
    fn simd_lookahead_equals_scalar() {
        let (rows, cols, offset) = (13, super::LOOKAHEAD_COLUMNS + 88, 5);
        let stride = cols + offset;
        let w = values(rows * stride, 1);
        let (x1, x2) = (values(cols, 2), values(cols, 3));
        let bias = values(rows, 5);
        let ends = SumEnds {
            start: SumStart::Values(&bias),
            relu: true,
        };
        let mut want = [vec![0.0; rows], vec![0.0; rows]];
        let [w1, w2] = &mut want;
        Scalar::matvec2_layer(&w, stride, offset, [&x1, &x2], ends, [w1, w2]);
        let mut got = [vec![0.0; rows], vec![0.0; rows]];
        let [g1, g2] = &mut got;
        Simd::matvec2_layer(&w, stride, offset, [&x1, &x2], ends, [g1, g2]);
        assert_eq!(got, want, "two inputs");
        let mut got = vec![0.0; rows];
        Simd::matvec_layer(&w, stride, offset, &x1, ends, &mut got);
        assert_eq!(got, want[0], "one input");
        assert!(
            want[0].iter().any(|&v| v > 0.0),
            "every sum was cut by the ReLU"
        );
    }

    #[test]
    fn scalar_layer_kernels_equal_separate_steps() {
        layer_kernels_equal_separate_steps::<Scalar>();
    }

    #[test]
    fn simd_layer_kernels_equal_separate_steps() {
        layer_kernels_equal_separate_steps::<Simd>();
    }

    /// `gemm_tn_set` gives the bits of `gemm_tn_add` onto a zeroed block, on both twins,
    /// whatever `C` held (NaN here), and leaves the elements outside the `m × n` block
    /// (`ldc > n`) alone: a few rows and columns, more steps than one cache block
    /// (`k = 300`), and a shape the SIMD twin packs (`24 × 800 × 128`, two packed
    /// blocks of steps, the second of which must add to the first's sums). A first
    /// block that still read `C`, or a later block that started from zero, changes
    /// the bits.
    #[test]
    fn gemm_tn_set_equals_add_onto_zeros() {
        fn check<K: Kernels>(m: usize, n: usize, k: usize) {
            let (lda, ldb, ldc) = (m + 1, n + 2, n + 3);
            let a: Vec<f32> = (0..k * lda)
                .map(|i| ((i * 37 + 11) % 101) as f32 / 7.0 - 7.0)
                .collect();
            let b: Vec<f32> = (0..k * ldb)
                .map(|i| ((i * 53 + 5) % 97) as f32 / 9.0 - 5.0)
                .collect();
            let mut want = vec![f32::NAN; m * ldc];
            super::zero_block(&mut want, m, n, ldc);
            K::gemm_tn_add(m, n, k, &a, lda, &b, ldb, &mut want, ldc);
            let mut got = vec![f32::NAN; m * ldc];
            K::gemm_tn_set(m, n, k, &a, lda, &b, ldb, &mut got, ldc);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let inside = i % ldc < n;
                assert!(
                    inside || g.is_nan(),
                    "{m}×{n}×{k}: outside element {i} written"
                );
                if inside {
                    assert_eq!(g.to_bits(), w.to_bits(), "{m}×{n}×{k}: element {i}");
                }
            }
        }
        for (m, n, k) in [(5, 7, 3), (13, 40, 300), (24, 800, 128), (1, 1, 1)] {
            if cfg!(miri) && m * n * k > 1_000 {
                continue; // minutes under miri; the GEMM tests of tests/kernels reach the packs
            }
            check::<Scalar>(m, n, k);
            check::<Simd>(m, n, k);
        }
    }
}
