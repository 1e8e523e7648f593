//! The training pass's matrix kernels, `gemm_nn_add` (`C += A·B`), `gemm_tn_add`
//! (`C += Aᵀ·B`) and `gemm_nt_add` (`C += A·Bᵀ`, a dense layer's batch forward), on both
//! twins.
//!
//! The documented contract (`simsiam::kernels::Kernels::gemm_nn_add`): every element of
//! `C` is one running sum from its start value `c₀`, `p` ascending. So:
//! - the scalar twin equals, bit for bit, a naive loop written here in that order with a
//!   separate multiply and add;
//! - the SIMD twin equals the same loop with a fused multiply-add where `wide`'s
//!   `mul_add` is fused (x86 with `fma`, aarch64), else the scalar loop;
//! - each twin is within `γ(k + 1)·S` of the exact (`f64`) value, `S = |c₀| + Σ_p|a_p·b_p|`
//!   (`k` products and the start value: at most `k + 1` roundings on any term), plus the
//!   `f64` oracle's own rounding, `(k + 1)·2⁻⁵³·S`; the twins differ by at most
//!   `sum_error_bound(k + 1, S) = 2·γ(k + 1)·S`;
//! - on small integers nothing rounds: both twins are exact;
//! - bad shapes: the checked functions return the documented error (and leave `c` as it
//!   was), the unchecked trait methods do nothing at all; `c` outside the `m × n` matrix
//!   is never written.
//!
//! Shapes cover 0 and 1, row counts around the register blocks (6, 4, 2, 1 rows), column
//! counts around the lane groups (8/16 lanes, 16/32-column blocks, tails), leading
//! dimensions larger than the width, depths and widths past the cache blocks (256 steps,
//! 512 columns), and products large enough for the SIMD twin to copy `B` into panels
//! (its other path; same sums). Set `PROPTEST_CASES` to change the number of cases
//! (default 256).

use proptest::prelude::*;
use simsiam::SslError;
use simsiam::kernels::{Kernels, Scalar, Simd, scalar, simd, sum_error_bound};

/// Whether `wide`'s `mul_add` rounds once in this build (its documented platform
/// behaviour: `vfmadd` with x86 `fma`, `vfmaq_f32` on aarch64; two roundings elsewhere).
const FUSED: bool = cfg!(any(
    all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "fma"
    ),
    all(target_arch = "aarch64", target_feature = "neon")
));

fn gamma(k: usize) -> f64 {
    sum_error_bound(k, 1.0) / 2.0
}

/// How `A` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `A[i, p] = a[i·lda + p]`, `m × k`.
    Nn,
    /// `A[p, i] = a[p·lda + i]`, stored `k × m`.
    Tn,
    /// `A` as `Nn`; `B[p, j] = b[j·ldb + p]`, stored `n × k`.
    Nt,
}

/// One call's arguments.
#[derive(Debug, Clone)]
struct Case {
    op: Op,
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f32>,
    lda: usize,
    b: Vec<f32>,
    ldb: usize,
    c: Vec<f32>,
    ldc: usize,
}

impl Case {
    /// `(rows, cols)` of the stored `A`.
    fn a_shape(&self) -> (usize, usize) {
        a_shape(self.op, self.m, self.k)
    }

    fn a_at(&self, i: usize, p: usize) -> f32 {
        match self.op {
            Op::Nn | Op::Nt => self.a[i * self.lda + p],
            Op::Tn => self.a[p * self.lda + i],
        }
    }

    fn b_at(&self, p: usize, j: usize) -> f32 {
        match self.op {
            Op::Nt => self.b[j * self.ldb + p],
            Op::Nn | Op::Tn => self.b[p * self.ldb + j],
        }
    }

    /// `(rows, cols)` of the stored `B`.
    fn b_shape(&self) -> (usize, usize) {
        b_shape(self.op, self.n, self.k)
    }

    /// Whether `c[index]` is an element of the `m × n` matrix.
    fn in_c(&self, index: usize) -> bool {
        let (row, col) = (index / self.ldc.max(1), index % self.ldc.max(1));
        row < self.m && col < self.n
    }

    /// The unchecked trait method of twin `K` on a copy of `c`.
    fn run<K: Kernels>(&self) -> Vec<f32> {
        let mut c = self.c.clone();
        let (m, n, k, lda, ldb, ldc) = (self.m, self.n, self.k, self.lda, self.ldb, self.ldc);
        match self.op {
            Op::Nn => K::gemm_nn_add(m, n, k, &self.a, lda, &self.b, ldb, &mut c, ldc),
            Op::Tn => K::gemm_tn_add(m, n, k, &self.a, lda, &self.b, ldb, &mut c, ldc),
            Op::Nt => K::gemm_nt_add(m, n, k, &self.a, lda, &self.b, ldb, &mut c, ldc),
        }
        c
    }

    /// The checked function of a twin (`simd` or `scalar`) on a copy of `c`.
    fn run_checked(&self, twin: Twin) -> (Result<(), SslError>, Vec<f32>) {
        let mut c = self.c.clone();
        let (m, n, k, lda, ldb, ldc) = (self.m, self.n, self.k, self.lda, self.ldb, self.ldc);
        let (a, b) = (&self.a[..], &self.b[..]);
        let result = match (twin, self.op) {
            (Twin::Simd, Op::Nn) => simd::gemm_nn_add(m, n, k, a, lda, b, ldb, &mut c, ldc),
            (Twin::Simd, Op::Tn) => simd::gemm_tn_add(m, n, k, a, lda, b, ldb, &mut c, ldc),
            (Twin::Scalar, Op::Nn) => scalar::gemm_nn_add(m, n, k, a, lda, b, ldb, &mut c, ldc),
            (Twin::Scalar, Op::Tn) => scalar::gemm_tn_add(m, n, k, a, lda, b, ldb, &mut c, ldc),
            (Twin::Simd, Op::Nt) => simd::gemm_nt_add(m, n, k, a, lda, b, ldb, &mut c, ldc),
            (Twin::Scalar, Op::Nt) => scalar::gemm_nt_add(m, n, k, a, lda, b, ldb, &mut c, ldc),
        };
        (result, c)
    }

    /// The documented order written out: for each element, `s = c₀`, then for `p`
    /// ascending `s = s + a·b` (two roundings) or `s = fma(a, b, s)` (one).
    fn naive(&self, fused: bool) -> Vec<f32> {
        let mut c = self.c.clone();
        for i in 0..self.m {
            for j in 0..self.n {
                let mut s = c[i * self.ldc + j];
                for p in 0..self.k {
                    let (x, y) = (self.a_at(i, p), self.b_at(p, j));
                    s = if fused { x.mul_add(y, s) } else { s + x * y };
                }
                c[i * self.ldc + j] = s;
            }
        }
        c
    }

    /// Exact `C[i, j]` (in `f64`: products exact, sums rounded to 2⁻⁵³) and `S`.
    fn exact(&self, i: usize, j: usize) -> (f64, f64) {
        let c0 = f64::from(self.c[i * self.ldc + j]);
        (0..self.k).fold((c0, c0.abs()), |(s, abs), p| {
            let t = f64::from(self.a_at(i, p)) * f64::from(self.b_at(p, j));
            (s + t, abs + t.abs())
        })
    }

    /// The allowed distance of one twin from [`exact`](Self::exact).
    fn tolerance(&self, sum_abs: f64) -> f64 {
        let terms = self.k + 1;
        gamma(terms) * sum_abs + terms as f64 * f64::EPSILON / 2.0 * sum_abs
    }
}

#[derive(Debug, Clone, Copy)]
enum Twin {
    Simd,
    Scalar,
}

fn a_shape(op: Op, m: usize, k: usize) -> (usize, usize) {
    match op {
        Op::Nn | Op::Nt => (m, k),
        Op::Tn => (k, m),
    }
}

fn b_shape(op: Op, n: usize, k: usize) -> (usize, usize) {
    match op {
        Op::Nt => (n, k),
        Op::Nn | Op::Tn => (k, n),
    }
}

/// `(rows − 1)·ld + cols`, or 0 without elements (the documented least length).
fn needed(rows: usize, cols: usize, ld: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * ld + cols
    }
}

/// The documented checks, written independently (`u128`, so nothing overflows here):
/// `a`, `b`, `c` in turn, each its leading dimension (`InvalidParameter` named `lda`,
/// `ldb`, `ldc`) before its length (`InvalidParameter` named `a`, `b`, `c` on overflow,
/// else `DimensionMismatch` when the slice is short).
fn expected_check(case: &Case) -> Result<(), SslError> {
    let (a_rows, a_cols) = case.a_shape();
    let (b_rows, b_cols) = case.b_shape();
    let operands = [
        ("a", "lda", case.a.len(), a_rows, a_cols, case.lda),
        ("b", "ldb", case.b.len(), b_rows, b_cols, case.ldb),
        ("c", "ldc", case.c.len(), case.m, case.n, case.ldc),
    ];
    for (name, ld_name, len, rows, cols, ld) in operands {
        if ld < cols {
            return Err(SslError::InvalidParameter {
                name: ld_name,
                reason: "",
            });
        }
        if rows > 0 && cols > 0 {
            let need = (rows as u128 - 1) * ld as u128 + cols as u128;
            let Ok(need) = usize::try_from(need) else {
                return Err(SslError::InvalidParameter { name, reason: "" });
            };
            if len < need {
                return Err(SslError::DimensionMismatch {
                    expected: need,
                    got: len,
                });
            }
        }
    }
    Ok(())
}

/// Equal errors, `InvalidParameter` compared by name only (the reason is prose).
fn same_error(got: Result<(), SslError>, want: Result<(), SslError>) -> bool {
    match (got, want) {
        (
            Err(SslError::InvalidParameter { name: g, .. }),
            Err(SslError::InvalidParameter { name: w, .. }),
        ) => g == w,
        (got, want) => got == want,
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn moderate(len: usize) -> BoxedStrategy<Vec<f32>> {
    prop::collection::vec(-100.0_f32..100.0, len).boxed()
}

fn small_integers(len: usize) -> BoxedStrategy<Vec<f32>> {
    prop::collection::vec((-8_i8..=8).prop_map(f32::from), len).boxed()
}

/// `(m, n, k)`: mostly small (around the register blocks and lane groups), sometimes
/// deeper than a cache block of steps or wider than a panel of columns, sometimes large
/// enough, with rows far enough apart (`ldb ≥ 1024`), for the SIMD twin to pack `B`
/// (at least two row blocks and 2²⁰ multiply-adds).
fn shape() -> BoxedStrategy<(usize, usize, usize)> {
    if cfg!(miri) {
        // The interpreter is ~1000x slower: small shapes only (the packed path has its
        // own fixed cases, ignored under miri).
        return (0_usize..=20, 0_usize..=70, 0_usize..=40).boxed();
    }
    prop_oneof![
        16 => (0_usize..=20, 0_usize..=70, 0_usize..=40),
        2 => (0_usize..=8, 0_usize..=24, 250_usize..=600),
        2 => (0_usize..=8, 500_usize..=560, 0_usize..=6),
        1 => (12_usize..=20, 1024_usize..=1100, 86_usize..=140),
    ]
    .boxed()
}

/// A valid call: leading dimensions the width plus 0–3, slices their least length plus
/// 0–3, values from `values`.
fn case_with(values: fn(usize) -> BoxedStrategy<Vec<f32>>) -> impl Strategy<Value = Case> {
    let op = prop_oneof![Just(Op::Nn), Just(Op::Tn), Just(Op::Nt)];
    let pads = (0_usize..=3, 0_usize..=3, 0_usize..=3);
    let extras = (0_usize..=3, 0_usize..=3, 0_usize..=3);
    (shape(), op, pads, extras).prop_flat_map(move |((m, n, k), op, (pa, pb, pc), (ea, eb, ec))| {
        let (a_rows, a_cols) = a_shape(op, m, k);
        let (b_rows, b_cols) = b_shape(op, n, k);
        let (lda, ldb, ldc) = (a_cols + pa, b_cols + pb, n + pc);
        (
            values(needed(a_rows, a_cols, lda) + ea),
            values(needed(b_rows, b_cols, ldb) + eb),
            values(needed(m, n, ldc) + ec),
        )
            .prop_map(move |(a, b, c)| Case {
                op,
                m,
                n,
                k,
                a,
                lda,
                b,
                ldb,
                c,
                ldc,
            })
    })
}

/// Checks `got` (a whole `c` buffer) against the exact values, and that nothing outside
/// the matrix changed.
fn check_against_exact(case: &Case, got: &[f32], twin: &str) -> Result<(), TestCaseError> {
    for (index, (g, c0)) in got.iter().zip(&case.c).enumerate() {
        if !case.in_c(index) {
            prop_assert_eq!(
                g.to_bits(),
                c0.to_bits(),
                "{} wrote outside C at {}",
                twin,
                index
            );
        }
    }
    for i in 0..case.m {
        for j in 0..case.n {
            let (exact, sum_abs) = case.exact(i, j);
            let g = f64::from(got[i * case.ldc + j]);
            let tolerance = case.tolerance(sum_abs);
            prop_assert!(
                (g - exact).abs() <= tolerance,
                "{} C[{}, {}] = {} vs exact {} (tolerance {})",
                twin,
                i,
                j,
                g,
                exact,
                tolerance
            );
        }
    }
    Ok(())
}

/// A change that may break a valid case: shorten a slice or a leading dimension by `by`.
#[derive(Debug, Clone, Copy)]
enum Break {
    Nothing,
    Short(usize),
    SmallLd(usize),
}

fn break_case(mut case: Case, what: Break, by: usize) -> Case {
    let shorten = |v: &mut Vec<f32>| v.truncate(v.len().saturating_sub(by));
    match what {
        Break::Nothing => {}
        Break::Short(0) => shorten(&mut case.a),
        Break::Short(1) => shorten(&mut case.b),
        Break::Short(_) => shorten(&mut case.c),
        Break::SmallLd(0) => case.lda = case.lda.saturating_sub(by),
        Break::SmallLd(1) => case.ldb = case.ldb.saturating_sub(by),
        Break::SmallLd(_) => case.ldc = case.ldc.saturating_sub(by),
    }
    case
}

fn breakage() -> impl Strategy<Value = (Break, usize)> {
    let what = prop_oneof![
        1 => Just(Break::Nothing),
        3 => (0_usize..3).prop_map(Break::Short),
        3 => (0_usize..3).prop_map(Break::SmallLd),
    ];
    (what, 1_usize..=5)
}

proptest! {
    #[test]
    fn both_twins_within_bound_of_exact(case in case_with(moderate)) {
        for twin in [Twin::Simd, Twin::Scalar] {
            let (result, got) = case.run_checked(twin);
            prop_assert_eq!(result, Ok(()));
            check_against_exact(&case, &got, &format!("{twin:?}"))?;
        }
    }

    #[test]
    fn twins_agree_within_sum_error_bound(case in case_with(moderate)) {
        let (s, v) = (case.run::<Scalar>(), case.run::<Simd>());
        for i in 0..case.m {
            for j in 0..case.n {
                let (_, sum_abs) = case.exact(i, j);
                let at = i * case.ldc + j;
                let diff = (f64::from(s[at]) - f64::from(v[at])).abs();
                prop_assert!(
                    diff <= sum_error_bound(case.k + 1, sum_abs),
                    "C[{}, {}]: scalar {} simd {}", i, j, s[at], v[at]
                );
            }
        }
    }

    #[test]
    fn exact_on_small_integers(case in case_with(small_integers)) {
        // |C| ≤ 8 + 600·64 < 2²⁴: every partial sum is an integer f32 holds exactly.
        for got in [case.run::<Simd>(), case.run::<Scalar>()] {
            for i in 0..case.m {
                for j in 0..case.n {
                    prop_assert_eq!(f64::from(got[i * case.ldc + j]), case.exact(i, j).0);
                }
            }
        }
    }

    #[test]
    fn scalar_twin_is_the_documented_order_bit_for_bit(case in case_with(moderate)) {
        prop_assert_eq!(bits(&case.run::<Scalar>()), bits(&case.naive(false)));
        let (result, checked) = case.run_checked(Twin::Scalar);
        prop_assert_eq!(result, Ok(()));
        prop_assert_eq!(bits(&checked), bits(&case.naive(false)));
    }

    #[test]
    fn simd_twin_is_the_documented_order_with_its_mul_add(case in case_with(moderate)) {
        prop_assert_eq!(bits(&case.run::<Simd>()), bits(&case.naive(FUSED)));
        let (result, checked) = case.run_checked(Twin::Simd);
        prop_assert_eq!(result, Ok(()));
        prop_assert_eq!(bits(&checked), bits(&case.naive(FUSED)));
    }

    #[test]
    fn bad_shapes_are_errors_or_nothing(case in case_with(small_integers), (what, by) in breakage()) {
        let case = break_case(case, what, by);
        let want = expected_check(&case);
        for twin in [Twin::Simd, Twin::Scalar] {
            let (got, c) = case.run_checked(twin);
            prop_assert!(same_error(got, want), "{:?}: {:?}, want {:?}", twin, got, want);
            if want.is_err() {
                prop_assert_eq!(bits(&c), bits(&case.c), "{:?}: an error leaves c as it was", twin);
            }
        }
        let nothing = want.is_err() || case.m == 0 || case.n == 0 || case.k == 0;
        for (twin, got) in [("simd", case.run::<Simd>()), ("scalar", case.run::<Scalar>())] {
            if nothing {
                prop_assert_eq!(bits(&got), bits(&case.c), "{} changed c", twin);
            } else {
                prop_assert_eq!(f64::from(got[0]), case.exact(0, 0).0, "{}", twin);
            }
        }
    }
}

/// Zero `m`, `n` or `k` with empty slices: `Ok` and `c` untouched; a too-small leading
/// dimension is still an error (the shape is invalid even without elements).
#[test]
fn zero_dimensions_do_nothing() {
    for (m, n, k) in [(0, 3, 2), (2, 0, 2), (2, 3, 0), (0, 0, 0)] {
        for op in [Op::Nn, Op::Tn, Op::Nt] {
            let (a_rows, a_cols) = a_shape(op, m, k);
            let (b_rows, b_cols) = b_shape(op, n, k);
            let case = Case {
                op,
                m,
                n,
                k,
                a: vec![1.0; needed(a_rows, a_cols, a_cols)],
                lda: a_cols,
                b: vec![1.0; needed(b_rows, b_cols, b_cols)],
                ldb: b_cols,
                c: vec![-0.0; needed(m, n, n)],
                ldc: n,
            };
            for twin in [Twin::Simd, Twin::Scalar] {
                let (result, c) = case.run_checked(twin);
                assert_eq!(result, Ok(()), "{m} {n} {k} {op:?} {twin:?}");
                assert_eq!(bits(&c), bits(&case.c));
            }
            assert_eq!(bits(&case.run::<Simd>()), bits(&case.c));
            assert_eq!(bits(&case.run::<Scalar>()), bits(&case.c));
            if b_cols > 0 {
                let small = Case {
                    ldb: b_cols - 1,
                    ..case.clone()
                };
                for twin in [Twin::Simd, Twin::Scalar] {
                    assert!(matches!(
                        small.run_checked(twin).0,
                        Err(SslError::InvalidParameter { name: "ldb", .. })
                    ));
                }
            }
        }
    }
}

/// `(rows − 1)·ld + cols` overflowing `usize` is `InvalidParameter` named after the
/// operand (checked, no allocation of such a slice needed), and nothing unchecked.
#[test]
fn overflowing_lengths_are_errors() {
    let one = [1.0_f32; 4];
    let mut c = [0.5_f32; 4];
    let huge = usize::MAX / 2 + 1;
    for twin_nn in [simd::gemm_nn_add, scalar::gemm_nn_add] {
        // A: 3 × 1 at lda = huge: (3 − 1)·huge + 1 overflows.
        assert!(matches!(
            twin_nn(3, 1, 1, &one, huge, &one, 1, &mut c, 1),
            Err(SslError::InvalidParameter { name: "a", .. })
        ));
        // B: 3 × 1 at ldb = huge.
        assert!(matches!(
            twin_nn(1, 1, 3, &one, 3, &one, huge, &mut c, 1),
            Err(SslError::InvalidParameter { name: "b", .. })
        ));
        // C: 3 × 1 at ldc = huge.
        assert!(matches!(
            twin_nn(3, 1, 1, &one, 1, &one, 1, &mut c, huge),
            Err(SslError::InvalidParameter { name: "c", .. })
        ));
    }
    for twin_tn in [simd::gemm_tn_add, scalar::gemm_tn_add] {
        // A stored k × m = 3 × 1 at lda = huge.
        assert!(matches!(
            twin_tn(1, 1, 3, &one, huge, &one, 1, &mut c, 1),
            Err(SslError::InvalidParameter { name: "a", .. })
        ));
    }
    for twin_nt in [simd::gemm_nt_add, scalar::gemm_nt_add] {
        // B stored n × k = 3 × 1 at ldb = huge.
        assert!(matches!(
            twin_nt(1, 3, 1, &one, 1, &one, huge, &mut c, 3),
            Err(SslError::InvalidParameter { name: "b", .. })
        ));
    }
    <Simd as Kernels>::gemm_nt_add(1, 3, 1, &one, 1, &one, huge, &mut c, 3);
    <Scalar as Kernels>::gemm_nt_add(1, 3, 1, &one, 1, &one, huge, &mut c, 3);
    <Simd as Kernels>::gemm_nn_add(3, 1, 1, &one, huge, &one, 1, &mut c, 1);
    <Scalar as Kernels>::gemm_tn_add(1, 1, 3, &one, huge, &one, 1, &mut c, 1);
    <Simd as Kernels>::gemm_tn_add(3, 1, 1, &one, 1, &one, 1, &mut c, huge);
    assert_eq!(c, [0.5; 4]);
}

/// The training pass's shapes, padded: both twins against the exact values and each
/// other, and the documented order bit for bit.
#[test]
#[cfg_attr(miri, ignore = "too slow under miri")]
fn training_shapes() {
    let mut rng = simsiam::LcgRng::new(7);
    let mut random = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.next_f32() - 0.5).collect() };
    // (op, m, n, k, padding of every leading dimension)
    // The last two pack `B` in the SIMD twin (rows ≥ 1024 apart, ≥ 2²⁰ multiply-adds).
    let shapes = [
        (Op::Tn, 128, 64, 64, 0),
        (Op::Nn, 64, 64, 128, 0),
        (Op::Nn, 67, 530, 300, 3),
        (Op::Tn, 131, 37, 270, 5),
        (Op::Nn, 64, 1024, 200, 0),
        (Op::Tn, 101, 1100, 70, 1),
        // A dense layer's batch forward (`har-dense`: 256 samples, 768 → 256, 256 → 128),
        // and a panel wider than the SIMD twin's packed buffer, with a partial group.
        (Op::Nt, 256, 256, 768, 0),
        (Op::Nt, 256, 128, 256, 0),
        (Op::Nt, 37, 301, 131, 2),
    ];
    for (op, m, n, k, pad) in shapes {
        let (a_rows, a_cols) = a_shape(op, m, k);
        let (b_rows, b_cols) = b_shape(op, n, k);
        let (lda, ldb, ldc) = (a_cols + pad, b_cols + pad, n + pad);
        let case = Case {
            op,
            m,
            n,
            k,
            a: random(needed(a_rows, a_cols, lda)),
            lda,
            b: random(needed(b_rows, b_cols, ldb)),
            ldb,
            c: random(needed(m, n, ldc)),
            ldc,
        };
        let (s, v) = (case.run::<Scalar>(), case.run::<Simd>());
        check_against_exact(&case, &s, "scalar").unwrap();
        check_against_exact(&case, &v, "simd").unwrap();
        assert_eq!(bits(&s), bits(&case.naive(false)), "{op:?} {m} {n} {k}");
        assert_eq!(bits(&v), bits(&case.naive(FUSED)), "{op:?} {m} {n} {k}");
    }
}
