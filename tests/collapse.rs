//! The collapse monitor (`simsiam::train`): `output_std` against an `f64` oracle within
//! its documented bound, closed forms (collapsed and orthonormal outputs), the errors,
//! the moving average by hand, and lightly's numbers computed with PyTorch.
//!
//! The bound (see `output_std`'s docs): with `u = 2⁻²⁴`, `γ(k) = k·u/(1 − k·u)`,
//! `|ŝ − s| ≤ γ(n + 8)·s + 2·√(n/(n − 1))·(γ(2n) + γ(dim + 5)/√dim)`. The oracle
//! normalises and takes the two-pass mean and variance in `f64`; its own error is the
//! same bound with `u = 2⁻⁵³`, added to the allowance.
//!
//! Run with `--nocapture` to see the largest error measured, as a fraction of the bound.
//! Set `PROPTEST_CASES` to change the number of cases (default 256).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use simsiam::SslError;
use simsiam::kernels::NORM_FLOOR;
use simsiam::train::{CollapseMonitor, collapse_level, output_std, output_std_scratch_len};

const U: f64 = f32::EPSILON as f64 / 2.0;
const U64: f64 = f64::EPSILON / 2.0;

fn gamma_with(unit: f64, k: usize) -> f64 {
    let ku = k as f64 * unit;
    assert!(ku < 1.0 / 8.0, "outside the bound's range");
    ku / (1.0 - ku)
}

/// The documented bound on `|ŝ − s|` for unit roundoff `unit`.
fn bound_with(unit: f64, n: usize, dim: usize, s: f64) -> f64 {
    let rows = (n as f64 / (n - 1) as f64).sqrt();
    gamma_with(unit, n + 8) * s
        + 2.0 * rows * (gamma_with(unit, 2 * n) + gamma_with(unit, dim + 5) / (dim as f64).sqrt())
}

/// What `output_std` may differ from the oracle's value `s` by: its bound plus the
/// oracle's own.
fn allowance(n: usize, dim: usize, s: f64) -> f64 {
    bound_with(U, n, dim, s) + bound_with(U64, n, dim, s)
}

/// `torch.std(F.normalize(z, dim=1), dim=0).mean()` in `f64` on the same `f32` inputs.
fn oracle(outputs: &[f32], dim: usize) -> f64 {
    let rows: Vec<Vec<f64>> = outputs
        .chunks_exact(dim)
        .map(|row| {
            let norm = row
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt()
                .max(f64::from(NORM_FLOOR));
            row.iter().map(|&x| f64::from(x) / norm).collect()
        })
        .collect();
    let n = rows.len() as f64;
    let stds = (0..dim).map(|j| {
        let mean = rows.iter().map(|r| r[j]).sum::<f64>() / n;
        let squares = rows.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>();
        (squares / (n - 1.0)).sqrt()
    });
    stds.sum::<f64>() / dim as f64
}

fn std_of(outputs: &[f32], dim: usize) -> Result<f32, SslError> {
    let mut scratch = vec![0.0_f32; output_std_scratch_len(dim)];
    output_std(outputs, dim, &mut scratch)
}

/// A proptest runner for `test` (failures persisted beside this file, as `proptest!` does).
fn runner(test: &'static str) -> TestRunner {
    TestRunner::new(Config {
        source_file: Some(file!()),
        test_name: Some(test),
        ..Config::default()
    })
}

/// `dim` values in ±100 with at least one above 10⁻³ in magnitude and none nonzero below
/// 10⁻⁶ (so that scaling the row by up to `2^±20` or `10^±3` stays in the normal range).
fn plain_row(dim: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-100.0_f32..100.0, dim).prop_filter("a row of normal values", |row| {
        row.iter().any(|x| x.abs() > 1e-3) && row.iter().all(|x| *x == 0.0 || x.abs() >= 1e-6)
    })
}

/// `n` rows of `dim` values in ±100, each row scaled by `2^e`: mostly `e = 0`; else
/// from 2⁻⁴⁵ (norms near the `1e-12` floor) to 2⁷⁰ (sums of squares that overflow `f32`).
fn batch(max_n: usize, max_dim: usize) -> impl Strategy<Value = (Vec<f32>, usize)> {
    (2..=max_n, 1..=max_dim).prop_flat_map(|(n, dim)| {
        let exponent = prop_oneof![4 => Just(0), 1 => -45_i32..=70];
        let row = (prop::collection::vec(-100.0_f32..100.0, dim), exponent)
            .prop_map(|(row, e)| row.iter().map(|x| x * 2.0_f32.powi(e)).collect::<Vec<_>>());
        prop::collection::vec(row, n).prop_map(move |rows| (rows.concat(), dim))
    })
}

#[test]
fn within_the_documented_bound_of_an_f64_oracle() {
    let worst = RefCell::new((0.0_f64, 0.0_f64)); // (error / allowance, relative error)
    runner("within_the_documented_bound_of_an_f64_oracle")
        .run(&batch(48, 64), |(outputs, dim)| {
            let n = outputs.len() / dim;
            let got = f64::from(std_of(&outputs, dim).unwrap());
            let exact = oracle(&outputs, dim);
            let error = (got - exact).abs();
            let allowed = allowance(n, dim, exact);
            prop_assert!(
                error <= allowed,
                "n {n} dim {dim}: got {got}, oracle {exact}, error {error:e} > {allowed:e}"
            );
            let mut w = worst.borrow_mut();
            w.0 = w.0.max(error / allowed);
            if exact > 0.0 {
                w.1 = w.1.max(error / exact);
            }
            Ok(())
        })
        .unwrap();
    let (ratio, relative) = worst.into_inner();
    eprintln!("largest error: {ratio:.3e} of the bound; relative {relative:.3e}");
}

#[test]
fn huge_outputs_are_measured_not_flushed() {
    // Sums of squares above f32::MAX: PyTorch's f32 F.normalize gives zero rows here
    // (std 0.0, "collapsed"); in f64 it gives 0.46060125877810254 (the snippet in
    // `matches_lightly_on_a_fixed_batch`, batch `big`).
    let big = [
        3e19, 1e19, 0.0, 0.0, //
        1e19, -3e19, 2e19, 0.0, //
        0.0, 0.0, 1e30, -1e30,
    ];
    let got = f64::from(std_of(&big, 4).unwrap());
    let exact = oracle(&big, 4);
    assert!((exact - 0.460_601_258_778_102_54).abs() < 1e-15);
    assert!(
        (got - exact).abs() <= allowance(3, 4, exact),
        "{got} vs {exact}"
    );
    // One huge row among ordinary ones: the huge row is normalised like the others.
    let mixed = [1e30, 0.0, 0.0, 1.0];
    assert_eq!(
        std_of(&mixed, 2).unwrap(),
        std_of(&[1.0, 0.0, 0.0, 1.0], 2).unwrap()
    );
}

#[test]
fn tiny_outputs_use_the_norm_floor() {
    // Norms below 1e-12 divide by 1e-12, as F.normalize does: rows stay short.
    let tiny = [1e-13, 0.0, 0.0, 1e-13, 0.0, 0.0];
    let got = f64::from(std_of(&tiny, 2).unwrap());
    let exact = oracle(&tiny, 2);
    assert!(exact > 0.0 && exact < 0.1, "{exact}");
    assert!(
        (got - exact).abs() <= allowance(3, 2, exact),
        "{got} vs {exact}"
    );
    // All-zero rows normalise to zero rows: no spread at all.
    assert_eq!(std_of(&[0.0; 12], 3).unwrap(), 0.0);
}

#[test]
fn identical_rows_give_exactly_zero() {
    // Any row, including huge (2⁷⁰) and tiny (2⁻⁴⁵) ones: take the first of a batch.
    runner("identical_rows_give_exactly_zero")
        .run(&(batch(2, 64), 2_usize..=64), |((rows, dim), n)| {
            let outputs = rows[..dim].repeat(n);
            let std = std_of(&outputs, dim).unwrap();
            prop_assert_eq!(std, 0.0);
            prop_assert_eq!(collapse_level(std, dim), 1.0);
            Ok(())
        })
        .unwrap();
}

#[test]
fn rows_scaled_by_powers_of_two_give_exactly_zero() {
    // Scaling by 2^e scales the sum of squares by 4^e and the norm by 2^e exactly (no
    // value leaves the normal range here), so every row normalises to the same bits.
    let case = (1_usize..=32)
        .prop_flat_map(|dim| (plain_row(dim), prop::collection::vec(-20_i32..=20, 2..=32)));
    runner("rows_scaled_by_powers_of_two_give_exactly_zero")
        .run(&case, |(row, exponents)| {
            let dim = row.len();
            let outputs: Vec<f32> = exponents
                .iter()
                .flat_map(|&e| row.iter().map(move |x| x * 2.0_f32.powi(e)))
                .collect();
            prop_assert_eq!(std_of(&outputs, dim).unwrap(), 0.0);
            Ok(())
        })
        .unwrap();
}

#[test]
fn positively_scaled_copies_are_zero_within_rounding() {
    let case = (1_usize..=64)
        .prop_flat_map(|dim| (plain_row(dim), prop::collection::vec(1e-3_f32..1e3, 2..=64)));
    let worst = Cell::new(0.0_f64);
    runner("positively_scaled_copies_are_zero_within_rounding")
        .run(&case, |(row, scales)| {
            let dim = row.len();
            let n = scales.len();
            let outputs: Vec<f32> = scales
                .iter()
                .flat_map(|&c| row.iter().map(move |x| x * c))
                .collect();
            // The scaled copies are no longer exact multiples after rounding: the exact
            // value is the oracle's (0 up to those roundings).
            let exact = oracle(&outputs, dim);
            let std = f64::from(std_of(&outputs, dim).unwrap());
            let allowed = allowance(n, dim, exact);
            prop_assert!(std <= exact + allowed, "n {n} dim {dim}: {std} vs {exact}");
            prop_assert!(
                exact <= allowance(n, dim, 0.0),
                "the copies are not collapsed"
            );
            let level = f64::from(collapse_level(std as f32, dim));
            prop_assert!(level >= 1.0 - (dim as f64).sqrt() * (exact + allowed) - U);
            worst.set(worst.get().max(std));
            Ok(())
        })
        .unwrap();
    eprintln!("largest std of scaled copies: {:.3e}", worst.get());
}

/// Rows `n` of an orthogonal `n × n` matrix `Q`. Column `j` has unit length and sum
/// `c_j = Σ_i Q_ij`, so its squared deviations from the mean `c_j/n` add up to
/// `Σ_i Q_ij² − n·(c_j/n)² = 1 − c_j²/n`, and
/// `output_std = (1/n)·Σ_j √((1 − c_j²/n)/(n − 1))`.
/// - Identity (or any signed permutation, each row scaled): `c_j = ±1`, every column
///   gives `√((1 − 1/n)/(n − 1)) = 1/√n`: `output_std = 1/√dim`, the healthy value, and
///   collapse level 0.
/// - Sylvester's Hadamard matrix `H/√n` (`n` a power of two): the first column is all
///   `1/√n` (`c = √n`, std 0), every other column sums to 0 (std `1/√(n − 1)`):
///   `output_std = (n − 1)/n · 1/√(n − 1) = √(n − 1)/n`.
#[test]
fn orthonormal_rows_have_the_closed_form() {
    for n in 2..=64 {
        let mut identity = vec![0.0_f32; n * n];
        identity.iter_mut().step_by(n + 1).for_each(|x| *x = 1.0);
        let expected = 1.0 / (n as f64).sqrt();
        let got = std_of(&identity, n).unwrap();
        let error = (f64::from(got) - expected).abs();
        assert!(
            error <= allowance(n, n, expected),
            "identity {n}: {got} vs {expected}"
        );
        let level = collapse_level(got, n);
        assert!(f64::from(level) <= (n as f64).sqrt() * allowance(n, n, expected) + U);
    }
    let mut n: usize = 2;
    while n <= 64 {
        let hadamard: Vec<f32> = (0..n * n)
            .map(|k| {
                if ((k / n) & (k % n)).count_ones().is_multiple_of(2) {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        let expected = ((n - 1) as f64).sqrt() / n as f64;
        assert!((oracle(&hadamard, n) - expected).abs() < 1e-14);
        let got = std_of(&hadamard, n).unwrap();
        let error = (f64::from(got) - expected).abs();
        assert!(
            error <= allowance(n, n, expected),
            "Hadamard {n}: {got} vs {expected}"
        );
        n *= 2;
    }
}

#[test]
fn signed_permutations_give_one_over_root_dim() {
    // Row i is ±c_i·e_π(i): after normalisation a signed permutation matrix.
    let case = (2_usize..=64).prop_flat_map(|n| {
        (
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            prop::collection::vec((any::<bool>(), 1e-3_f32..1e3), n),
        )
    });
    runner("signed_permutations_give_one_over_root_dim")
        .run(&case, |(permutation, signs)| {
            let n = permutation.len();
            let mut outputs = vec![0.0_f32; n * n];
            for (i, (&j, &(negative, scale))) in permutation.iter().zip(&signs).enumerate() {
                outputs[i * n + j] = if negative { -scale } else { scale };
            }
            let expected = 1.0 / (n as f64).sqrt();
            let got = f64::from(std_of(&outputs, n).unwrap());
            prop_assert!((got - expected).abs() <= allowance(n, n, expected));
            Ok(())
        })
        .unwrap();
}

#[test]
fn errors_in_their_documented_order() {
    fn invalid(name: &str) -> impl Fn(SslError) -> bool + '_ {
        move |e| matches!(e, SslError::InvalidParameter { name: n, .. } if n == name)
    }
    let mut scratch = [0.0_f32; 16];
    // dim 0, before everything else.
    assert!(invalid("dim")(
        output_std(&[1.0; 4], 0, &mut scratch).unwrap_err()
    ));
    assert!(invalid("dim")(
        output_std(&[f32::NAN], 0, &mut []).unwrap_err()
    ));
    // A length that is not a multiple of dim: expected is the largest multiple below.
    let mismatch = |expected, got| SslError::DimensionMismatch { expected, got };
    assert_eq!(output_std(&[1.0; 7], 3, &mut scratch), Err(mismatch(6, 7)));
    assert_eq!(output_std(&[1.0; 2], 3, &mut scratch), Err(mismatch(0, 2)));
    assert_eq!(output_std(&[f32::NAN; 7], 3, &mut []), Err(mismatch(6, 7)));
    // Fewer than two rows.
    assert!(invalid("n")(
        output_std(&[1.0; 3], 3, &mut scratch).unwrap_err()
    ));
    assert!(invalid("n")(output_std(&[], 3, &mut scratch).unwrap_err()));
    assert!(invalid("n")(
        output_std(&[f32::NAN; 3], 3, &mut []).unwrap_err()
    ));
    // Short scratch (exactly 2·dim is enough).
    let short = |capacity| SslError::CapacityTooSmall {
        needed: 6,
        capacity,
    };
    assert_eq!(output_std(&[1.0; 6], 3, &mut scratch[..5]), Err(short(5)));
    assert_eq!(output_std(&[f32::NAN; 6], 3, &mut []), Err(short(0)));
    assert!(output_std(&[1.0, 2.0, 3.0, 3.0, 2.0, 1.0], 3, &mut scratch[..6]).is_ok());
    // Non-finite values, anywhere.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for at in 0..6 {
            let mut outputs = [0.5_f32; 6];
            outputs[at] = bad;
            assert_eq!(
                output_std(&outputs, 3, &mut scratch),
                Err(SslError::NonFinite {
                    location: "outputs"
                })
            );
        }
    }
    assert_eq!(output_std_scratch_len(0), 0);
    assert_eq!(output_std_scratch_len(usize::MAX), usize::MAX);
}

#[test]
fn scratch_contents_and_extra_length_do_not_matter() {
    runner("scratch_contents_and_extra_length_do_not_matter")
        .run(&batch(16, 16), |(outputs, dim)| {
            let exact_length = std_of(&outputs, dim).unwrap();
            let mut dirty = vec![f32::NAN; output_std_scratch_len(dim) + 5];
            let got = output_std(&outputs, dim, &mut dirty).unwrap();
            prop_assert_eq!(got.to_bits(), exact_length.to_bits());
            Ok(())
        })
        .unwrap();
}

#[test]
fn weights_outside_zero_to_one_are_rejected() {
    for bad in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(
            matches!(
                CollapseMonitor::with_weight(bad),
                Err(SslError::InvalidParameter { name: "weight", .. })
            ),
            "{bad}"
        );
    }
    for good in [0.0, -0.0, 0.5, 0.9, 0.999_999] {
        assert!(CollapseMonitor::with_weight(good).is_ok(), "{good}");
    }
    assert_eq!(
        CollapseMonitor::with_weight(0.9).unwrap(),
        CollapseMonitor::new()
    );
    assert_eq!(CollapseMonitor::default(), CollapseMonitor::new());
}

/// Two orthogonal rows of dim 2 (std `√(1/2)`) and two identical ones (std 0).
const SPREAD: [f32; 4] = [1.0, 0.0, 0.0, 1.0];
const SAME: [f32; 4] = [0.6, 0.8, 0.6, 0.8];

#[test]
fn moving_average_by_hand() {
    let mut scratch = [0.0_f32; 4];
    let spread = std_of(&SPREAD, 2).unwrap();
    assert!((f64::from(spread) - 0.5_f64.sqrt()).abs() <= allowance(2, 2, 0.5_f64.sqrt()));
    let s = f64::from(spread);

    // Before any update: lightly's start, avg 0 (collapse level 1).
    let mut monitor = CollapseMonitor::new();
    assert_eq!(monitor.average_std(), 0.0);
    assert_eq!(monitor.collapse_level(), 1.0);
    assert_eq!(monitor.normalized_std(), 0.0);

    // w = 0.9: avg = 0.1·s, then 0.9·0.1·s = 0.09·s, then 0.9·0.09·s + 0.1·s = 0.181·s.
    let hand = [0.1 * s, 0.09 * s, 0.181 * s];
    // lightly's own lines, `avg_output_std = w * avg_output_std + (1 - w) * output_std`.
    let mut lightly = 0.0_f64;
    for (batch, expected) in [SPREAD, SAME, SPREAD].iter().zip(hand) {
        let std = monitor.update(batch, 2, &mut scratch).unwrap();
        let w = 0.9;
        lightly = w * lightly + (1.0 - w) * f64::from(std);
        assert_eq!(monitor.average_std().to_bits(), lightly.to_bits());
        assert!((monitor.average_std() - expected).abs() <= 4.0 * U64 * expected);
        let root_dim = 2.0_f64.sqrt();
        assert_eq!(monitor.normalized_std(), root_dim * lightly);
        assert_eq!(
            monitor.collapse_level(),
            (1.0 - root_dim * lightly).max(0.0)
        );
    }
    assert!((monitor.normalized_std() - 0.181).abs() < 1e-6);

    // w = 0.5: every step is exact in binary: s/2, s/4, s/8 + s/2.
    let mut halves = CollapseMonitor::with_weight(0.5).unwrap();
    for (batch, expected) in [SPREAD, SAME, SPREAD]
        .iter()
        .zip([s / 2.0, s / 4.0, 0.625 * s])
    {
        halves.update(batch, 2, &mut scratch).unwrap();
        assert_eq!(halves.average_std(), expected);
    }

    // w = 0: the last batch only.
    let mut last = CollapseMonitor::with_weight(0.0).unwrap();
    last.update(&SPREAD, 2, &mut scratch).unwrap();
    assert_eq!(last.average_std(), s);
    last.update(&SAME, 2, &mut scratch).unwrap();
    assert_eq!(last.average_std(), 0.0);
    assert_eq!(last.collapse_level(), 1.0);

    // The collapse level and normalised std use the dim of the last update.
    let mut wide = CollapseMonitor::with_weight(0.0).unwrap();
    wide.update(
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        3,
        &mut [0.0; 6],
    )
    .unwrap();
    let expected = 1.0 / 3.0_f64.sqrt();
    assert!((wide.normalized_std() - 3.0_f64.sqrt() * wide.average_std()).abs() == 0.0);
    assert!((wide.normalized_std() - 1.0).abs() < 1e-6);
    assert!((wide.average_std() - expected).abs() < 1e-7);
    assert!(wide.collapse_level() < 1e-6);
}

#[test]
fn a_failed_update_leaves_the_monitor_unchanged() {
    let mut scratch = [0.0_f32; 4];
    let mut monitor = CollapseMonitor::new();
    monitor.update(&SPREAD, 2, &mut scratch).unwrap();
    let before = monitor;
    assert!(
        monitor
            .update(&[f32::NAN, 0.0, 1.0, 0.0], 2, &mut scratch)
            .is_err()
    );
    assert!(monitor.update(&SPREAD, 3, &mut scratch).is_err());
    assert!(monitor.update(&SPREAD[..2], 2, &mut scratch).is_err());
    assert!(monitor.update(&SPREAD, 2, &mut scratch[..3]).is_err());
    assert_eq!(monitor, before);
}

/// Expected values from PyTorch 2.15.0 (float32 on CPU) and lightly's training-loop lines:
///
/// ```python
/// import math, torch
/// import torch.nn.functional as F
/// def std(z): return torch.std(F.normalize(z, dim=1), dim=0).mean()
/// z = torch.tensor([[ 0.5, -1.25,  2.0,  0.75],
///                   [ 1.5,  0.25, -0.5,  1.0 ],
///                   [-0.75, 2.5,   1.25, -1.5],
///                   [ 0.0,  0.5,   3.0,  -0.25],
///                   [ 2.25, -0.5,  0.75,  0.5]], dtype=torch.float32)
/// print(std(z).item(), std(z.double()).item())
/// # 0.45880669355392456 0.45880668030171134
/// batches = [z, z[:1].repeat(5, 1), z * torch.tensor([[1.0],[2.0],[0.5],[4.0],[3.0]])]
/// avg = 0.
/// for b in batches:
///     o = torch.std(F.normalize(b, dim=1), 0).mean()
///     w = 0.9
///     avg = w * avg + (1 - w) * o.item()
///     print(o.item(), avg, max(0., 1 - math.sqrt(4) * avg))
/// # 0.45880669355392456 0.045880669355392444 0.9082386612892152
/// # 0.0 0.0412926024198532 0.9174147951602936
/// # 0.45880669355392456 0.08304401153326033 0.8339119769334793
/// big = torch.tensor([[3e19, 1e19, 0, 0], [1e19, -3e19, 2e19, 0], [0, 0, 1e30, -1e30]])
/// print(std(big).item(), std(big.double()).item())
/// # 0.0 0.46060125877810254
/// ```
#[test]
fn matches_lightly_on_a_fixed_batch() {
    #[rustfmt::skip]
    let z: [f32; 20] = [
        0.5, -1.25, 2.0, 0.75,
        1.5, 0.25, -0.5, 1.0,
        -0.75, 2.5, 1.25, -1.5,
        0.0, 0.5, 3.0, -0.25,
        2.25, -0.5, 0.75, 0.5,
    ];
    // PyTorch's f32 result as Python prints it (`.item()` widens it to f64 exactly).
    const TORCH: f64 = 0.458_806_693_553_924_56;
    const TORCH_F32: f32 = TORCH as f32;
    assert_eq!(f64::from(TORCH_F32), TORCH);
    const TORCH_F64: f64 = 0.458_806_680_301_711_34;
    let got = std_of(&z, 4).unwrap();
    assert!((f64::from(got) - TORCH_F64).abs() <= allowance(5, 4, TORCH_F64));
    let ulps = (got.to_bits() as i64 - TORCH_F32.to_bits() as i64).abs();
    eprintln!("ours {got:e}, PyTorch f32 {TORCH_F32:e}: {ulps} ulp apart");
    assert!(ulps <= 2, "{got} vs PyTorch {TORCH_F32}");

    let collapsed = z[..4].repeat(5);
    let scales = [1.0_f32, 2.0, 0.5, 4.0, 3.0];
    let scaled: Vec<f32> = z
        .chunks(4)
        .zip(scales)
        .flat_map(|(row, c)| row.iter().map(move |x| x * c))
        .collect();
    let lightly = [
        (0.045_880_669_355_392_444, 0.908_238_661_289_215_2),
        (0.041_292_602_419_853_2, 0.917_414_795_160_293_6),
        (0.083_044_011_533_260_33, 0.833_911_976_933_479_3),
    ];
    let mut monitor = CollapseMonitor::new();
    let mut scratch = [0.0_f32; 8];
    for (batch, (average, level)) in [&z[..], &collapsed, &scaled].into_iter().zip(lightly) {
        monitor.update(batch, 4, &mut scratch).unwrap();
        if got == TORCH_F32 {
            // Same batch stds as PyTorch: lightly's average and level bit for bit.
            assert_eq!(monitor.average_std(), average);
            assert_eq!(monitor.collapse_level(), level);
        } else {
            assert!((monitor.average_std() - average).abs() <= 0.1 * allowance(5, 4, 0.5));
            assert!((monitor.collapse_level() - level).abs() <= 0.2 * allowance(5, 4, 0.5));
        }
    }
}

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System` unchanged; only counts calls in a const-initialised
// thread-local `Cell`, which itself never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn makes_no_allocation() {
    let outputs: Vec<f32> = (0..64 * 32).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut scratch = vec![0.0_f32; output_std_scratch_len(32)];
    let before = ALLOCATIONS.with(Cell::get);
    let mut monitor = CollapseMonitor::new();
    let std = output_std(&outputs, 32, &mut scratch).unwrap();
    monitor.update(&outputs, 32, &mut scratch).unwrap();
    let _ = output_std(&outputs, 0, &mut scratch);
    let level = monitor.collapse_level() + f64::from(collapse_level(std, 32));
    let after = ALLOCATIONS.with(Cell::get);
    assert!(level.is_finite());
    assert_eq!(after - before, 0);
    // The counter does see allocations on this thread.
    drop(std::hint::black_box(vec![1.0_f32; 10]));
    assert!(ALLOCATIONS.with(Cell::get) > after);
}
