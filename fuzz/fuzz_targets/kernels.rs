//! The kernel twins through the public `simsiam::kernels::{simd, scalar}` functions on
//! arbitrary finite data: equal within `simsiam::kernels::sum_error_bound` (plus the
//! absolute error of products that underflow, which that relative bound does not
//! cover), and mismatched lengths give `DimensionMismatch` with the documented payload.
//! The matrix kernels (`gemm_nn_add`, `gemm_tn_add`) run on arbitrary shapes, leading
//! dimensions (too small, huge, overflowing) and slice lengths: the documented error or,
//! per element, the twin bound `sum_error_bound(k + 1, |c₀| + Σ|a·b|)`; `c` untouched on
//! error and outside the matrix.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use simsiam::SslError;
use simsiam::kernels::{scalar, simd, sum_error_bound};
use simsiam_fuzz::{SUBNORMAL, any_dim, floats, length};

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

/// Finite data only: non-finite values are replaced (the twins then both give NaN/inf,
/// which is not a difference to bound).
fn finite(u: &mut Unstructured<'_>, len: usize) -> Result<Vec<f32>> {
    Ok(floats(u, len)?
        .into_iter()
        .map(|v| if v.is_finite() { v } else { 1.0 })
        .collect())
}

/// The allowed difference for a sum of `terms` products with these absolute values,
/// or `None` when the sum may overflow `f32` (nothing to compare then).
fn allowed(terms: usize, sum_abs: f64) -> Option<f64> {
    (sum_abs < f64::from(f32::MAX) / 2.0)
        .then(|| sum_error_bound(terms, sum_abs) + 2.0 * terms as f64 * SUBNORMAL)
}

fn close(a: f32, b: f32, terms: usize, sum_abs: f64, what: &str) {
    if let Some(bound) = allowed(terms, sum_abs) {
        let diff = (f64::from(a) - f64::from(b)).abs();
        assert!(
            diff <= bound,
            "{what}: simd {a} scalar {b} diff {diff} > {bound}"
        );
    }
}

fn abs_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) * f64::from(*y)).abs())
        .sum()
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let rows = u.int_in_range(0..=40)?;
    let cols = u.int_in_range(0..=80)?;
    let x = finite(u, cols)?;
    let a_len = length(u, cols)?;
    let a = finite(u, a_len)?;
    let w_len = length(u, rows * cols)?;
    let w = finite(u, w_len)?;
    let b_len = length(u, rows)?;
    let b = finite(u, b_len)?;
    let y0 = finite(u, rows)?;

    // dot
    let (d_simd, d_scalar) = (simd::dot(&a, &x), scalar::dot(&a, &x));
    if a.len() == x.len() {
        close(
            d_simd.unwrap(),
            d_scalar.unwrap(),
            cols,
            abs_dot(&a, &x),
            "dot",
        );
    } else {
        let e = SslError::DimensionMismatch {
            expected: a.len(),
            got: x.len(),
        };
        assert_eq!((d_simd, d_scalar), (Err(e), Err(e)));
    }

    // matvec_bias, matvec_bias_relu, matvec_accumulate
    let expected = if b.len() != rows {
        Err(SslError::DimensionMismatch {
            expected: rows,
            got: b.len(),
        })
    } else if w.len() != rows * cols {
        Err(SslError::DimensionMismatch {
            expected: rows * cols,
            got: w.len(),
        })
    } else {
        Ok(())
    };
    let row_abs = |i: usize, start: f32| -> f64 {
        f64::from(start.abs()) + abs_dot(&w[i * cols..(i + 1) * cols], &x)
    };
    for relu in [false, true] {
        let (mut ys, mut yc) = (y0.clone(), y0.clone());
        let (rs, rc) = if relu {
            (
                simd::matvec_bias_relu(&w, &x, &b, &mut ys),
                scalar::matvec_bias_relu(&w, &x, &b, &mut yc),
            )
        } else {
            (
                simd::matvec_bias(&w, &x, &b, &mut ys),
                scalar::matvec_bias(&w, &x, &b, &mut yc),
            )
        };
        assert_eq!((rs, rc), (expected, expected));
        if expected.is_ok() {
            for i in 0..rows {
                close(ys[i], yc[i], cols + 1, row_abs(i, b[i]), "matvec_bias");
                if relu {
                    assert!(ys[i] >= 0.0 && yc[i] >= 0.0);
                }
            }
        } else {
            assert_eq!((&ys, &yc), (&y0, &y0), "an error leaves y untouched");
        }
    }
    let (mut ys, mut yc) = (y0.clone(), y0.clone());
    let (rs, rc) = (
        simd::matvec_accumulate(&w, &x, &mut ys),
        scalar::matvec_accumulate(&w, &x, &mut yc),
    );
    if w.len() == rows * cols {
        assert_eq!((rs, rc), (Ok(()), Ok(())));
        for i in 0..rows {
            close(
                ys[i],
                yc[i],
                cols + 1,
                row_abs(i, y0[i]),
                "matvec_accumulate",
            );
        }
    } else {
        let e = SslError::DimensionMismatch {
            expected: rows * cols,
            got: w.len(),
        };
        assert_eq!((rs, rc), (Err(e), Err(e)));
    }

    // l2_normalize: the divisors agree as square roots of sums that agree, and so do
    // the normalised vectors.
    let (mut vs, mut vc) = (a.clone(), a.clone());
    let (ns, nc) = (simd::l2_normalize(&mut vs), scalar::l2_normalize(&mut vc));
    let squares = abs_dot(&a, &a);
    if let Some(bound) = allowed(a.len(), squares) {
        let (ns, nc) = (f64::from(ns), f64::from(nc));
        let rounding = 4.0 * f64::from(f32::EPSILON);
        let norm_bound = bound / (ns + nc) + rounding * ns.max(nc);
        assert!(
            (ns - nc).abs() <= norm_bound,
            "l2 norm: simd {ns} scalar {nc}"
        );
        for ((s, c), v) in vs.iter().zip(&vc).zip(&a) {
            let v = f64::from(v.abs());
            let diff = (f64::from(*s) - f64::from(*c)).abs();
            let limit = v * (ns - nc).abs() / (ns * nc) + rounding * v / ns.min(nc) + SUBNORMAL;
            assert!(diff <= limit, "l2 entry: simd {s} scalar {c}");
        }
    }

    // relu: one loop for both twins, identical results.
    let (mut rs, mut rc) = (a.clone(), a.clone());
    simd::relu(&mut rs);
    scalar::relu(&mut rc);
    assert_eq!(rs, rc);

    gemm(u)
}

/// `(rows − 1)·ld + cols` (0 without elements), `None` when it overflows.
fn needed(rows: usize, cols: usize, ld: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(ld)?.checked_add(cols)
}

/// A leading dimension for rows of `cols`: usually `cols` plus 0–3, sometimes one short,
/// sometimes any dimension (huge, overflowing).
fn leading_dim(u: &mut Unstructured<'_>, cols: usize) -> Result<usize> {
    Ok(match u.int_in_range(0_u8..=7)? {
        0 => cols.saturating_sub(1),
        1 => any_dim(u)?,
        _ => cols + u.int_in_range(0..=3)?,
    })
}

/// A slice length for an operand needing `needed` elements: [`length`] when that is
/// small, else a few elements (too short: an error).
fn operand_len(u: &mut Unstructured<'_>, needed: Option<usize>) -> Result<usize> {
    match needed {
        Some(n) if n <= 4096 => length(u, n),
        _ => u.int_in_range(0..=64),
    }
}

/// The documented checks: `a`, `b`, `c` in turn, each its leading dimension
/// (`InvalidParameter` named `lda`, `ldb`, `ldc`) before its length (`InvalidParameter`
/// named `a`, `b`, `c` on overflow, else `DimensionMismatch` when short).
fn expected_gemm(operands: [(&'static str, usize, usize, usize, usize); 3]) -> Option<SslError> {
    for (name, len, rows, cols, ld) in operands {
        let ld_name = match name {
            "a" => "lda",
            "b" => "ldb",
            _ => "ldc",
        };
        if ld < cols {
            return Some(SslError::InvalidParameter {
                name: ld_name,
                reason: "",
            });
        }
        match needed(rows, cols, ld) {
            None => return Some(SslError::InvalidParameter { name, reason: "" }),
            Some(need) if len < need => {
                return Some(SslError::DimensionMismatch {
                    expected: need,
                    got: len,
                });
            }
            Some(_) => {}
        }
    }
    None
}

/// The same error (`InvalidParameter` compared by name: the reason is prose).
fn same_error(got: std::result::Result<(), SslError>, want: Option<SslError>) -> bool {
    match (got, want) {
        (Ok(()), None) => true,
        (
            Err(SslError::InvalidParameter { name: g, .. }),
            Some(SslError::InvalidParameter { name: w, .. }),
        ) => g == w,
        (Err(g), Some(w)) => g == w,
        _ => false,
    }
}

fn gemm(u: &mut Unstructured<'_>) -> Result<()> {
    let m = u.int_in_range(0..=16)?;
    let n = u.int_in_range(0..=40)?;
    let k = u.int_in_range(0..=24)?;
    let transposed: bool = u.arbitrary()?;
    // `A` as stored: `m × k`, or `k × m` for `gemm_tn_add`.
    let (a_rows, a_cols) = if transposed { (k, m) } else { (m, k) };
    let (lda, ldb, ldc) = (
        leading_dim(u, a_cols)?,
        leading_dim(u, n)?,
        leading_dim(u, n)?,
    );
    let a_len = operand_len(u, needed(a_rows, a_cols, lda))?;
    let a = finite(u, a_len)?;
    let b_len = operand_len(u, needed(k, n, ldb))?;
    let b = finite(u, b_len)?;
    let c_len = operand_len(u, needed(m, n, ldc))?;
    let c = finite(u, c_len)?;

    let want = expected_gemm([
        ("a", a.len(), a_rows, a_cols, lda),
        ("b", b.len(), k, n, ldb),
        ("c", c.len(), m, n, ldc),
    ]);
    let (mut cs, mut cc) = (c.clone(), c.clone());
    let (rs, rc) = if transposed {
        (
            simd::gemm_tn_add(m, n, k, &a, lda, &b, ldb, &mut cs, ldc),
            scalar::gemm_tn_add(m, n, k, &a, lda, &b, ldb, &mut cc, ldc),
        )
    } else {
        (
            simd::gemm_nn_add(m, n, k, &a, lda, &b, ldb, &mut cs, ldc),
            scalar::gemm_nn_add(m, n, k, &a, lda, &b, ldb, &mut cc, ldc),
        )
    };
    assert!(same_error(rs, want), "simd gemm: {rs:?}, want {want:?}");
    assert!(same_error(rc, want), "scalar gemm: {rc:?}, want {want:?}");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    if want.is_some() {
        assert_eq!(bits(&cs), bits(&c), "an error leaves c untouched (simd)");
        assert_eq!(bits(&cc), bits(&c), "an error leaves c untouched (scalar)");
        return Ok(());
    }
    let a_at = |i: usize, p: usize| {
        if transposed {
            a[p * lda + i]
        } else {
            a[i * lda + p]
        }
    };
    for (index, ((s, v), c0)) in cs.iter().zip(&cc).zip(&c).enumerate() {
        let (i, j) = (index / ldc.max(1), index % ldc.max(1));
        if i >= m || j >= n {
            assert_eq!(
                (s.to_bits(), v.to_bits()),
                (c0.to_bits(), c0.to_bits()),
                "written outside C"
            );
            continue;
        }
        let sum_abs = (0..k).fold(f64::from(c0.abs()), |acc, p| {
            acc + (f64::from(a_at(i, p)) * f64::from(b[p * ldb + j])).abs()
        });
        close(*s, *v, k + 1, sum_abs, "gemm");
    }
    Ok(())
}
