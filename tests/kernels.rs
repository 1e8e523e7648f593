//! One property suite for both kernel twins, plus the twins against each other.
//!
//! Every property in `twin_properties!` runs on `kernels::simd` and on `kernels::scalar`
//! against an `f64` reference. The bounds (see `simsiam::kernels` docs):
//! - a sum of `k` products, in any order, is within `γ(k)·Σ|terms|` of the exact value,
//!   `γ(k) = k·u/(1 − k·u)`, `u = 2⁻²⁴`; so two twins differ by at most
//!   `sum_error_bound(k, Σ|terms|) = 2·γ(k)·Σ|terms|`;
//! - on small integers nothing rounds, and every twin is exact;
//! - after L2 normalisation the norm is within `γ(n) + 4u` of 1, and the twins agree
//!   element-wise within `(γ(n) + 4u)·|x_i|` (sum of squares: `γ(n)` relative; the
//!   square root halves it and adds `u`; the division adds `u`).
//!
//! Set `PROPTEST_CASES` to change the number of cases (default 256).

use proptest::prelude::*;
use simsiam::SslError;
use simsiam::kernels::{scalar, simd, sum_error_bound};

const U: f64 = f32::EPSILON as f64 / 2.0;

fn gamma(k: usize) -> f64 {
    sum_error_bound(k, 1.0) / 2.0
}

/// `f64` reference of `b + Σ w_i x_i` and `|b| + Σ |w_i x_i|`.
fn exact_affine(w: &[f32], x: &[f32], b: f32) -> (f64, f64) {
    w.iter()
        .zip(x)
        .fold((f64::from(b), f64::from(b).abs()), |(s, a), (wi, xi)| {
            let t = f64::from(*wi) * f64::from(*xi);
            (s + t, a + t.abs())
        })
}

/// The long vectors' length: 4096, or 64 under miri (`.ci/steps/40-miri.sh`), where the
/// interpreter is ~1000x slower; 64 still spans two SIMD dot steps and a tail.
const LONG: usize = if cfg!(miri) { 64 } else { 4096 };

fn vector(len: impl Into<prop::collection::SizeRange>) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-100.0_f32..100.0, len)
}

fn small_integers(len: impl Into<prop::collection::SizeRange>) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec((-8_i8..=8).prop_map(f32::from), len)
}

/// A matrix `[rows × cols]`, an input `[cols]` and a bias `[rows]`.
fn affine_case(
    max_rows: usize,
    max_cols: usize,
) -> impl Strategy<Value = (Vec<f32>, Vec<f32>, Vec<f32>)> {
    (0..=max_rows, 0..=max_cols)
        .prop_flat_map(|(rows, cols)| (vector(rows * cols), vector(cols), vector(rows)))
}

macro_rules! twin_properties {
    ($name:ident, $twin:path) => {
        mod $name {
            use super::*;
            use $twin as k;

            proptest! {
                #[test]
                fn dot_within_bound_of_exact(pair in (0_usize..=33).prop_flat_map(|n| (vector(n), vector(n)))) {
                    let (a, b) = pair;
                    let (exact, abs) = exact_affine(&a, &b, 0.0);
                    let got = f64::from(k::dot(&a, &b).unwrap());
                    prop_assert!((got - exact).abs() <= gamma(a.len()) * abs, "{got} vs {exact}");
                }

                #[test]
                fn dot_exact_on_small_integers(pair in (0_usize..=LONG).prop_flat_map(|n| (small_integers(n), small_integers(n)))) {
                    let (a, b) = pair;
                    let (exact, _) = exact_affine(&a, &b, 0.0);
                    prop_assert_eq!(f64::from(k::dot(&a, &b).unwrap()), exact);
                }

                #[test]
                fn matvec_bias_within_bound_of_exact(case in affine_case(9, 33)) {
                    let (w, x, b) = case;
                    let mut y = vec![f32::NAN; b.len()];
                    k::matvec_bias(&w, &x, &b, &mut y).unwrap();
                    for ((yi, row), bi) in y.iter().zip(w.chunks(x.len().max(1))).zip(&b) {
                        let (exact, abs) = exact_affine(row, &x, *bi);
                        prop_assert!((f64::from(*yi) - exact).abs() <= gamma(x.len() + 1) * abs);
                    }
                }

                #[test]
                fn matvec_exact_on_small_integers(rows in 0_usize..=9, cols in 0_usize..=300, seed in any::<u64>()) {
                    let mut rng = simsiam::LcgRng::new(seed);
                    let mut ints = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_usize(17) as f32 - 8.0).collect() };
                    let (w, x, b) = (ints(rows * cols), ints(cols), ints(rows));
                    let mut y = vec![0.0; rows];
                    k::matvec_bias(&w, &x, &b, &mut y).unwrap();
                    for ((yi, row), bi) in y.iter().zip(w.chunks(cols.max(1))).zip(&b) {
                        prop_assert_eq!(f64::from(*yi), exact_affine(row, &x, *bi).0);
                    }
                }

                #[test]
                fn matvec_bias_relu_is_relu_of_matvec_bias(case in affine_case(9, 33)) {
                    let (w, x, b) = case;
                    let (mut plain, mut relu) = (vec![0.0; b.len()], vec![0.0; b.len()]);
                    k::matvec_bias(&w, &x, &b, &mut plain).unwrap();
                    k::matvec_bias_relu(&w, &x, &b, &mut relu).unwrap();
                    for (p, r) in plain.iter().zip(&relu) {
                        prop_assert!(*r >= 0.0);
                        prop_assert_eq!(*r, p.max(0.0));
                    }
                }

                #[test]
                fn matvec_accumulate_adds_to_y(case in affine_case(9, 33)) {
                    let (w, x, b) = case;
                    let (mut with_bias, mut accumulated) = (vec![0.0; b.len()], b.clone());
                    k::matvec_bias(&w, &x, &b, &mut with_bias).unwrap();
                    k::matvec_accumulate(&w, &x, &mut accumulated).unwrap();
                    prop_assert_eq!(with_bias, accumulated);
                }

                #[test]
                fn l2_normalize_gives_unit_norm_or_zero(mut v in prop_oneof![vector(0..=33), vector(LONG..=LONG), Just(vec![0.0; 17])]) {
                    let exact_norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                    let _ = k::l2_normalize(&mut v);
                    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                    if exact_norm == 0.0 {
                        prop_assert!(v.iter().all(|x| *x == 0.0));
                    } else {
                        prop_assert!((norm - 1.0).abs() <= gamma(v.len()) + 4.0 * U, "norm {norm}");
                    }
                }

                #[test]
                fn l2_normalize_matches_an_f64_oracle(v in prop_oneof![vector(1..=33), vector(LONG..=LONG)]) {
                    // The divisor is the norm: a sum of `n` squares (relative error γ(n)),
                    // its square root (halves that, adds u), so within `(γ(n) + 2u)·‖v‖`;
                    // each output is `v_i/‖v‖` within `(γ(n) + 4u)·|v_i|/‖v‖` (one more
                    // rounding for the division, see the module docs).
                    let exact_norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                    prop_assume!(exact_norm > 1e-6);
                    let mut out = v.clone();
                    let divisor = f64::from(k::l2_normalize(&mut out));
                    let tolerance = gamma(v.len()) + 2.0 * U;
                    prop_assert!(
                        (divisor - exact_norm).abs() <= tolerance * exact_norm,
                        "divisor {divisor} vs the f64 norm {exact_norm}"
                    );
                    let tolerance = gamma(v.len()) + 4.0 * U;
                    for (i, (o, x)) in out.iter().zip(&v).enumerate() {
                        let want = f64::from(*x) / exact_norm;
                        prop_assert!(
                            (f64::from(*o) - want).abs() <= tolerance * want.abs(),
                            "entry {i}: {o} vs the f64 oracle's {want}"
                        );
                    }
                }

                #[test]
                fn l2_normalize_floors_tiny_norms(v in prop::collection::vec(-1e-14_f32..1e-14, 1..=8)) {
                    let mut out = v.clone();
                    let divisor = k::l2_normalize(&mut out);
                    prop_assert_eq!(divisor, 1e-12);
                    for (o, x) in out.iter().zip(&v) {
                        prop_assert_eq!(*o, x / 1e-12);
                    }
                }

                #[test]
                fn mismatched_lengths_are_errors(a in vector(0..=20), b in vector(0..=20), extra in 1_usize..5) {
                    if a.len() != b.len() {
                        prop_assert_eq!(k::dot(&a, &b), Err(SslError::DimensionMismatch { expected: a.len(), got: b.len() }));
                    }
                    // w one row short, bias one element long, y of the right length
                    let rows = b.len();
                    let w = vec![1.0; (rows * a.len()).saturating_sub(extra)];
                    let mut y = vec![0.0; rows];
                    if !w.len().eq(&(rows * a.len())) {
                        prop_assert_eq!(
                            k::matvec_bias(&w, &a, &b, &mut y),
                            Err(SslError::DimensionMismatch { expected: rows * a.len(), got: w.len() })
                        );
                        prop_assert_eq!(
                            k::matvec_accumulate(&w, &a, &mut y),
                            Err(SslError::DimensionMismatch { expected: rows * a.len(), got: w.len() })
                        );
                    }
                    let long_bias = vec![0.0; rows + extra];
                    prop_assert_eq!(
                        k::matvec_bias_relu(&vec![0.0; rows * a.len()], &a, &long_bias, &mut y),
                        Err(SslError::DimensionMismatch { expected: rows, got: rows + extra })
                    );
                }
            }
        }
    };
}

twin_properties!(simd_twin, simsiam::kernels::simd);
twin_properties!(scalar_twin, simsiam::kernels::scalar);

proptest! {
    #[test]
    fn twins_agree_on_dot(pair in prop_oneof![0_usize..=33, Just(LONG)].prop_flat_map(|n| (vector(n), vector(n)))) {
        let (a, b) = pair;
        let (_, abs) = exact_affine(&a, &b, 0.0);
        let diff = f64::from(simd::dot(&a, &b).unwrap() - scalar::dot(&a, &b).unwrap()).abs();
        prop_assert!(diff <= sum_error_bound(a.len(), abs), "{diff}");
    }

    #[test]
    fn twins_agree_on_matvec(case in affine_case(13, 70)) {
        let (w, x, b) = case;
        let (mut s, mut v) = (vec![0.0; b.len()], vec![0.0; b.len()]);
        scalar::matvec_bias(&w, &x, &b, &mut s).unwrap();
        simd::matvec_bias(&w, &x, &b, &mut v).unwrap();
        for (((si, vi), row), bi) in s.iter().zip(&v).zip(w.chunks(x.len().max(1))).zip(&b) {
            let (_, abs) = exact_affine(row, &x, *bi);
            prop_assert!(f64::from(si - vi).abs() <= sum_error_bound(x.len() + 1, abs));
        }
    }

    #[test]
    fn twins_agree_on_l2_normalize(v in prop_oneof![vector(0..=33), vector(LONG..=LONG)]) {
        let (mut s, mut m) = (v.clone(), v.clone());
        let _ = scalar::l2_normalize(&mut s);
        let _ = simd::l2_normalize(&mut m);
        let tolerance = gamma(v.len()) + 4.0 * U;
        for (si, mi) in s.iter().zip(&m) {
            prop_assert!(f64::from(si - mi).abs() <= tolerance * f64::from(si.abs()).max(f64::from(f32::MIN_POSITIVE)));
        }
    }
}

/// `sum_error_bound` against the formula of its docs written out independently:
/// `2·γ(k)·s` with `γ(k) = k·u/(1 − k·u)` and `u = 2⁻²⁴` (not `f32::EPSILON`), infinite
/// from `k·u ≥ 1` on. Every tolerance of the twin and oracle tests is built from it, so
/// a bound that grew would loosen them all silently.
#[test]
fn sum_error_bound_is_twice_gamma() {
    let u = 1.0 / 16_777_216.0; // 2⁻²⁴
    let gamma = |k: f64| k * u / (1.0 - k * u);
    for k in [
        0_usize,
        1,
        2,
        3,
        33,
        100,
        4096,
        2049,
        1 << 20,
        (1 << 24) - 1,
    ] {
        for s in [0.0, 1.0, 0.5, 3.75, 1e-30, 1e30] {
            let want = 2.0 * gamma(k as f64) * s;
            let got = sum_error_bound(k, s);
            assert!(
                (got - want).abs() <= 1e-14 * want,
                "sum_error_bound({k}, {s}) = {got:e}, 2·γ(k)·s = {want:e}"
            );
        }
    }
    // Small k: the first-order value 2·k·u, to a relative k·u.
    assert_eq!(sum_error_bound(1, 1.0), 2.0 * u / (1.0 - u));
    for k in [1 << 24, (1 << 24) + 1, usize::MAX] {
        assert_eq!(sum_error_bound(k, 1.0), f64::INFINITY, "k = {k}");
    }
}

/// The SIMD twin runs the lane width its build picks: 16 with `avx512f` or with
/// `--cfg simsiam_f32x16` (how CI runs the 16-lane kernels on CPUs without AVX-512), 8
/// with `avx`, 4 with SSE only and on wasm32 with `simd128` (one `v128`), else 8.
#[test]
fn lane_width_is_the_builds() {
    let expected = if cfg!(any(target_feature = "avx512f", simsiam_f32x16)) {
        16
    } else if cfg!(target_feature = "avx") {
        8
    } else if cfg!(any(target_feature = "sse", target_feature = "simd128")) {
        4
    } else {
        8
    };
    assert_eq!(simsiam::kernels::LANES, expected);
}

/// Which lanes each layer width gets (`kernels::row_lanes`), pinned for the layer widths
/// of the benchmarked heads (default 64/128/64/32, mid 256/512/128/64, paper
/// 2048/2048/512) and around the threshold, for every widest lane count a build has:
/// 16-lane builds (AVX-512, `--cfg simsiam_f32x16`) run rows shorter than 512 on 8
/// lanes; the others always run their own.
#[test]
fn row_lanes_per_layer_width() {
    use simsiam::kernels::{LANES, WIDE_ROW_COLUMNS, row_lanes};
    assert_eq!(WIDE_ROW_COLUMNS, 512);
    // (row length, lanes with widest 16, with 8, with 4)
    let table = [
        (0, 8, 8, 4),
        (1, 8, 8, 4),
        (32, 8, 8, 4),
        (64, 8, 8, 4),
        (128, 8, 8, 4),
        (256, 8, 8, 4),
        (511, 8, 8, 4),
        (512, 16, 8, 4),
        (2048, 16, 8, 4),
        (usize::MAX, 16, 8, 4),
    ];
    for (columns, sixteen, eight, four) in table {
        assert_eq!(
            row_lanes(columns, 16),
            sixteen,
            "{columns} columns, widest 16"
        );
        assert_eq!(row_lanes(columns, 8), eight, "{columns} columns, widest 8");
        assert_eq!(row_lanes(columns, 4), four, "{columns} columns, widest 4");
        let this_build = if LANES == 16 { sixteen } else { LANES };
        assert_eq!(
            row_lanes(columns, LANES),
            this_build,
            "{columns} columns, this build"
        );
    }
}

/// Both sides of the lane threshold, on small integers (nothing rounds, so the twins
/// agree bit for bit): rows one shorter than `WIDE_ROW_COLUMNS` (8 lanes in a 16-lane
/// build), exactly as long and longer with a tail (16 lanes), through `dot`,
/// `matvec_bias` and `matvec2_bias`, with a ragged last block (7 rows).
#[test]
fn twins_agree_exactly_around_the_lane_threshold() {
    use simsiam::kernels::WIDE_ROW_COLUMNS;
    let ints = |len: usize, seed: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 9) as f32 - 4.0)
            .collect()
    };
    let rows = 7;
    for cols in [
        WIDE_ROW_COLUMNS - 1,
        WIDE_ROW_COLUMNS,
        WIDE_ROW_COLUMNS + 17,
    ] {
        let (w, x1, x2, b) = (
            ints(rows * cols, 1),
            ints(cols, 2),
            ints(cols, 3),
            ints(rows, 4),
        );
        assert_eq!(
            simd::dot(&x1, &x2),
            scalar::dot(&x1, &x2),
            "dot, {cols} columns"
        );
        let (mut s, mut v) = (vec![0.0; rows], vec![0.0; rows]);
        scalar::matvec_bias(&w, &x1, &b, &mut s).unwrap();
        simd::matvec_bias(&w, &x1, &b, &mut v).unwrap();
        assert_eq!(v, s, "matvec_bias, {cols} columns");
        let (mut s2, mut v1, mut v2) = (vec![0.0; rows], vec![0.0; rows], vec![0.0; rows]);
        scalar::matvec_bias(&w, &x2, &b, &mut s2).unwrap();
        simd::matvec2_bias(&w, &x1, &x2, &b, &mut v1, &mut v2).unwrap();
        assert_eq!([v1, v2], [s, s2], "matvec2_bias, {cols} columns");
    }
}

#[test]
#[cfg_attr(miri, ignore = "too slow under miri: a 64 x 2048 matrix")]
fn large_matvec_twins_agree() {
    let mut rng = simsiam::LcgRng::new(9);
    let (rows, cols) = (64, 2048);
    let w: Vec<f32> = (0..rows * cols).map(|_| rng.next_f32() - 0.5).collect();
    let x: Vec<f32> = (0..cols).map(|_| rng.next_f32() - 0.5).collect();
    let b: Vec<f32> = (0..rows).map(|_| rng.next_f32() - 0.5).collect();
    let (mut s, mut v) = (vec![0.0; rows], vec![0.0; rows]);
    scalar::matvec_bias(&w, &x, &b, &mut s).unwrap();
    simd::matvec_bias(&w, &x, &b, &mut v).unwrap();
    for (((si, vi), row), bi) in s.iter().zip(&v).zip(w.chunks(cols)).zip(&b) {
        let (exact, abs) = exact_affine(row, &x, *bi);
        assert!(f64::from(si - vi).abs() <= sum_error_bound(cols + 1, abs));
        assert!((f64::from(*vi) - exact).abs() <= gamma(cols + 1) * abs);
    }
}

/// The trait's ragged-row contract (`simsiam::kernels::Kernels`): row `i` of `W` is
/// `w[i·stride + offset .. (i + 1)·stride]` cut to the end of `w` (empty when it starts
/// past the end), and it contributes over the common prefix of *that row* and the input.
mod ragged_rows {
    use super::*;
    use simsiam::kernels::{BATCH_LANES, Kernels, Scalar, Simd};

    /// `(w, stride, offset, x1, x2, y1, y2)`.
    type Case = (
        Vec<f32>,
        usize,
        usize,
        Vec<f32>,
        Vec<f32>,
        Vec<f32>,
        Vec<f32>,
    );

    fn row(w: &[f32], stride: usize, offset: usize, i: usize) -> &[f32] {
        let start = i * stride;
        let end = (start + stride).min(w.len());
        w.get(start..end)
            .and_then(|r| r.get(offset..))
            .unwrap_or_default()
    }

    /// `y[i] + Σ_c row_i[c]·x[c]` over the common prefix, exactly (small integers).
    fn oracle(w: &[f32], stride: usize, offset: usize, x: &[f32], y: &[f32]) -> Vec<f32> {
        y.iter()
            .enumerate()
            .map(|(i, yi)| {
                yi + row(w, stride, offset, i)
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
            })
            .collect()
    }

    /// A ragged case: `w` cut to any length, a stride, an offset, two inputs and two
    /// outputs of independent lengths, all small integers so every order is exact.
    fn case() -> impl Strategy<Value = Case> {
        (1_usize..=40, 0_usize..=13).prop_flat_map(|(stride, rows)| {
            (
                small_integers(0..=stride * rows + 3),
                Just(stride),
                0..=stride + 2,
                small_integers(0..=45),
                small_integers(0..=45),
                small_integers(0..=rows + 2),
                small_integers(0..=rows + 2),
            )
        })
    }

    fn check<K: Kernels>((w, stride, offset, x1, x2, y1, y2): &Case) -> Result<(), TestCaseError> {
        let (stride, offset) = (*stride, *offset);
        let mut y = y1.clone();
        K::matvec_add(w, stride, offset, x1, &mut y);
        prop_assert_eq!(&y, &oracle(w, stride, offset, x1, y1), "matvec_add");

        // Two inputs: each row over the common prefix of the row and both inputs; rows
        // beyond the shorter output untouched.
        let n = x1.len().min(x2.len());
        let rows = y1.len().min(y2.len());
        let (mut a, mut b) = (y1.clone(), y2.clone());
        K::matvec2_add(w, stride, offset, [x1, x2], [&mut a, &mut b]);
        let mut want_a = y1.clone();
        let mut want_b = y2.clone();
        want_a[..rows].copy_from_slice(&oracle(w, stride, offset, &x1[..n], &y1[..rows]));
        want_b[..rows].copy_from_slice(&oracle(w, stride, offset, &x2[..n], &y2[..rows]));
        prop_assert_eq!(&a, &want_a, "matvec2_add, first input");
        prop_assert_eq!(&b, &want_b, "matvec2_add, second input");

        // Sixteen inputs in transposed layout: input `j` is `x1` scaled by `j − 8`.
        let xt: Vec<[f32; BATCH_LANES]> = x1
            .iter()
            .map(|v| core::array::from_fn(|j| v * (j as f32 - 8.0)))
            .collect();
        let mut yt: Vec<[f32; BATCH_LANES]> = y1.iter().map(|v| [*v; BATCH_LANES]).collect();
        K::matmat_t_add(w, stride, offset, &xt, &mut yt);
        for j in 0..BATCH_LANES {
            let xj: Vec<f32> = xt.iter().map(|c| c[j]).collect();
            let got: Vec<f32> = yt.iter().map(|r| r[j]).collect();
            prop_assert_eq!(
                &got,
                &oracle(w, stride, offset, &xj, y1),
                "matmat_t_add, lane {}",
                j
            );
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn simd_twin_follows_the_contract(c in case()) { check::<Simd>(&c)?; }

        #[test]
        fn scalar_twin_follows_the_contract(c in case()) { check::<Scalar>(&c)?; }
    }

    /// The block shape that used to disagree: one short row among four (and among the
    /// batch kernel's row block) must not shorten its neighbours' sums on the SIMD twin.
    #[test]
    fn one_short_row_in_a_block() {
        let stride = 40;
        // Two full rows of 40, a third of 10 (the end of `w`), read from column 1: the
        // first block of four rows is full, short, short and missing.
        let w: Vec<f32> = (0..2 * stride + 10).map(|i| (i % 5) as f32 - 2.0).collect();
        let x: Vec<f32> = (0..39).map(|i| (i % 3) as f32 - 1.0).collect();
        let y = vec![1.0; 8];
        let want = oracle(&w, stride, 1, &x, &y);
        for got in [
            {
                let mut y = y.clone();
                <Simd as Kernels>::matvec_add(&w, stride, 1, &x, &mut y);
                y
            },
            {
                let mut y = y.clone();
                <Scalar as Kernels>::matvec_add(&w, stride, 1, &x, &mut y);
                y
            },
        ] {
            assert_eq!(got, want);
        }
    }
}
