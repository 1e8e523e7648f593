//! The augmentations of issue 21 (`simsiam::augment`): the generator against its
//! reference, the rotations (orthonormal, norm-preserving, uniform on SO(3)), the
//! normal sampler's distribution, the scale and jitter distributions in the views, the
//! documented draw order replayed bit for bit, pinned output bits (the firmware checks
//! the same), every error, no panic on any input (proptest) and no allocation.
//!
//! Statistical bounds are five standard errors of the statistic (CLT) around its exact
//! value, on a fixed seed, so every run gives the same verdict; a correct sampler
//! passes with probability ≈ 1 − 6·10⁻⁷ per bound on a random seed. The heavy ones are
//! skipped under miri.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use simsiam::SslError;
use simsiam::augment::{
    Augmenter, Rotation, ViewRecipe, Xoshiro128PlusPlus, add_jitter, rotate_triads_into,
    scale_channels, standardize,
};

// ---------------------------------------------------------------------------------------
// A counting allocator (per thread), for `no_allocation`.

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

fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

// ---------------------------------------------------------------------------------------
// Helpers.

const C: usize = 6;
/// Samples per channel: the recipe's 128; 8 under miri (the interpreter is ~1000× slower).
const T: usize = if cfg!(miri) { 8 } else { 128 };
const W: usize = C * T;

/// A deterministic raw window with exact values (multiples of 1/64 in [−2, 2]), acc-like
/// then gyro-like.
fn raw_window(salt: usize) -> Vec<f32> {
    (0..W)
        .map(|i| ((i * 37 + salt * 101) % 257) as f32 / 64.0 - 2.0)
        .collect()
}

const MEAN: [f32; C] = [0.25, -0.5, 0.125, 0.0, 0.0625, -0.03125];
const STD: [f32; C] = [0.5, 0.75, 0.375, 1.5, 1.25, 2.0];

/// `|observed − expected| ≤ 5·sd`, with a message.
fn within_5_sd(name: &str, observed: f64, expected: f64, sd: f64) {
    assert!(
        (observed - expected).abs() <= 5.0 * sd,
        "{name}: {observed} is not within 5·{sd} of {expected}"
    );
}

/// The standard normal CDF.
fn phi(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// FNV-1a over the bits of `values`.
fn fnv1a(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        v.to_bits()
            .to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    })
}

fn hex(values: &[f32]) -> Vec<String> {
    values
        .iter()
        .map(|v| format!("{:08x}", v.to_bits()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The generator.

#[test]
fn xoshiro128plusplus_matches_the_reference_implementation() {
    // The reference xoshiro128plusplus.c from state {1, 2, 3, 4} (rand_xoshiro's test).
    let mut rng = Xoshiro128PlusPlus::from_state([1, 2, 3, 4]).unwrap();
    let expected = [
        641,
        1_573_767,
        3_222_811_527,
        3_517_856_514,
        836_907_274,
        4_247_214_768,
        3_867_114_732,
        1_355_841_295,
        495_546_011,
        621_204_420,
    ];
    for e in expected {
        assert_eq!(rng.next_u32(), e);
    }
}

#[test]
fn seeding_is_splitmix64() {
    // SplitMix64 from 0: 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 (Vigna's splitmix64.c).
    assert_eq!(
        Xoshiro128PlusPlus::from_seed(0).state(),
        [0x7b1d_cdaf, 0xe220_a839, 0xa1b9_65f4, 0x6e78_9e6a]
    );
}

#[test]
fn state_round_trips_and_the_zero_state_is_refused() {
    let mut rng = Xoshiro128PlusPlus::from_seed(99);
    for _ in 0..37 {
        rng.next_normal();
    }
    let saved = rng.state();
    let mut resumed = Xoshiro128PlusPlus::from_state(saved).unwrap();
    assert_eq!(resumed, rng);
    for _ in 0..1000 {
        assert_eq!(resumed.next_normal().to_bits(), rng.next_normal().to_bits());
    }
    assert!(matches!(
        Xoshiro128PlusPlus::from_state([0; 4]),
        Err(SslError::InvalidParameter { name: "state", .. })
    ));
    assert!(Xoshiro128PlusPlus::from_state([0, 0, 0, 1]).is_ok());
}

// ---------------------------------------------------------------------------------------
// Rotations.

fn matrix_f64(rotation: &Rotation) -> [[f64; 3]; 3] {
    rotation.matrix.map(|row| row.map(f64::from))
}

/// `max |MᵀM − I|` and `|det M − 1|`, in `f64` (exact enough: products of f32 are exact).
fn orthonormality_errors(rotation: &Rotation) -> (f64, f64) {
    let m = matrix_f64(rotation);
    let mut worst = 0.0_f64;
    for i in 0..3 {
        for j in 0..3 {
            let dot: f64 = (0..3).map(|k| m[k][i] * m[k][j]).sum();
            let identity = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((dot - identity).abs());
        }
    }
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    (worst, (det - 1.0).abs())
}

#[test]
fn rotations_are_orthonormal_with_determinant_one() {
    let draws = if cfg!(miri) { 50 } else { 200_000 };
    let bound = f64::from(Rotation::ORTHONORMALITY_BOUND);
    let mut rng = Xoshiro128PlusPlus::from_seed(11);
    let (mut worst_orth, mut worst_det) = (0.0_f64, 0.0_f64);
    for _ in 0..draws {
        let (orth, det) = orthonormality_errors(&Rotation::random(&mut rng));
        worst_orth = worst_orth.max(orth);
        worst_det = worst_det.max(det);
    }
    // Quaternions of any length, from tiny to huge: s = 2/|q|² normalises them.
    let mut data = Xoshiro128PlusPlus::from_seed(12);
    for scale in [1e-18_f32, 1e-9, 1e-3, 1.0, 7.0, 1e4, 1e9, 1e18] {
        for _ in 0..(draws / 100).max(10) {
            let q = [(); 4].map(|()| data.next_normal() * scale);
            let (orth, det) = orthonormality_errors(&Rotation::from_quaternion(q).unwrap());
            worst_orth = worst_orth.max(orth);
            worst_det = worst_det.max(det);
        }
    }
    println!(
        "worst |MᵀM − I| = {:.2} u, |det − 1| = {:.2} u (bound {:.0} u)",
        worst_orth * 16_777_216.0,
        worst_det * 16_777_216.0,
        bound * 16_777_216.0
    );
    assert!(worst_orth <= bound, "MᵀM − I: {worst_orth:e} > {bound:e}");
    assert!(worst_det <= bound, "det − 1: {worst_det:e} > {bound:e}");
    // And the formula is a rotation in the stated convention: a quarter turn about z.
    let half = std::f32::consts::FRAC_1_SQRT_2;
    let quarter = Rotation::from_quaternion([half, 0.0, 0.0, half]).unwrap();
    let [x, y, z] = quarter.apply([1.0, 0.0, 0.0]);
    assert!(x.abs() < 1e-7 && (y - 1.0).abs() < 1e-7 && z == 0.0);
    let [x, y, z] = quarter.apply([0.0, 1.0, 0.0]);
    assert!((x + 1.0).abs() < 1e-7 && y.abs() < 1e-7 && z == 0.0);
    assert_eq!(
        Rotation::from_quaternion([-2.0, 0.0, 0.0, 0.0]).unwrap(),
        Rotation::IDENTITY
    );
}

#[test]
fn rotation_preserves_each_triads_norm() {
    let windows = if cfg!(miri) { 2 } else { 2_000 };
    let bound = f64::from(Rotation::NORM_BOUND);
    let mut rng = Xoshiro128PlusPlus::from_seed(21);
    let mut data = Xoshiro128PlusPlus::from_seed(22);
    let (mut raw, mut out) = (vec![0.0_f32; W], vec![0.0_f32; W]);
    let mut worst = 0.0_f64;
    for w in 0..windows {
        // Magnitudes from 1e-20 to 1e20 (no product underflows), some exact zeros.
        let scale = 10f32.powi((w % 41) as i32 - 20);
        for v in &mut raw {
            *v = data.next_normal() * scale;
        }
        raw[w % W] = 0.0;
        let rotation = Rotation::random(&mut rng);
        rotate_triads_into(&raw, C, T, &rotation, &mut out).unwrap();
        for triad in 0..C / 3 {
            for t in 0..T {
                let norm = |v: &[f32]| {
                    (0..3)
                        .map(|r| f64::from(v[(3 * triad + r) * T + t]).powi(2))
                        .sum::<f64>()
                        .sqrt()
                };
                let (before, after) = (norm(&raw), norm(&out));
                let relative = if before == 0.0 {
                    after
                } else {
                    (after - before).abs() / before
                };
                worst = worst.max(relative);
            }
        }
    }
    println!(
        "worst relative norm change: {:.2} u (bound {:.0} u)",
        worst * 16_777_216.0,
        bound * 16_777_216.0
    );
    assert!(worst <= bound, "{worst:e} > {bound:e}");
}

#[test]
#[cfg_attr(miri, ignore = "statistical: too slow under miri")]
fn rotations_are_uniform_on_so3() {
    // Haar measure: E[M_ij] = 0, E[M_ij²] = 1/3 (Var M_ij² = 1/5 − 1/9 = 4/45);
    // tr M = 4w² − 1 with w² ~ Beta(1/2, 3/2): E tr = 0, E tr² = 1, E tr⁴ = 3.
    let n = 200_000;
    let mut rng = Xoshiro128PlusPlus::from_seed(31);
    let (mut sum, mut sum_sq) = ([[0.0_f64; 3]; 3], [[0.0_f64; 3]; 3]);
    let (mut trace_sum, mut trace_sq) = (0.0_f64, 0.0_f64);
    let mut image_cross = 0.0_f64; // E[x·y] of the image of a fixed vector: 0
    for _ in 0..n {
        let m = matrix_f64(&Rotation::random(&mut rng));
        for i in 0..3 {
            for j in 0..3 {
                sum[i][j] += m[i][j];
                sum_sq[i][j] += m[i][j] * m[i][j];
            }
        }
        let trace = m[0][0] + m[1][1] + m[2][2];
        trace_sum += trace;
        trace_sq += trace * trace;
        image_cross += m[0][0] * m[1][0];
    }
    let n_f = n as f64;
    for i in 0..3 {
        for j in 0..3 {
            within_5_sd(
                &format!("E M[{i}][{j}]"),
                sum[i][j] / n_f,
                0.0,
                (1.0 / 3.0 / n_f).sqrt(),
            );
            within_5_sd(
                &format!("E M[{i}][{j}]²"),
                sum_sq[i][j] / n_f,
                1.0 / 3.0,
                (4.0 / 45.0 / n_f).sqrt(),
            );
        }
    }
    within_5_sd("E tr", trace_sum / n_f, 0.0, (1.0 / n_f).sqrt());
    within_5_sd("E tr²", trace_sq / n_f, 1.0, (2.0 / n_f).sqrt());
    // E[(x·y)²] for a uniform unit vector is 1/15.
    within_5_sd("E x·y", image_cross / n_f, 0.0, (1.0 / 15.0 / n_f).sqrt());
}

// ---------------------------------------------------------------------------------------
// The normal sampler.

#[test]
#[cfg_attr(miri, ignore = "statistical: too slow under miri")]
fn normal_sampler_has_the_standard_normal_distribution() {
    let n = 1_000_000;
    let mut rng = Xoshiro128PlusPlus::from_seed(41);
    let mut samples: Vec<f64> = (0..n).map(|_| f64::from(rng.next_normal())).collect();
    let n_f = n as f64;
    let moment = |k: i32| samples.iter().map(|x| x.powi(k)).sum::<f64>() / n_f;
    // Var x^k = E x^{2k} − (E x^k)²: 1, 2, 15, 96.
    within_5_sd("mean", moment(1), 0.0, (1.0 / n_f).sqrt());
    within_5_sd("E x²", moment(2), 1.0, (2.0 / n_f).sqrt());
    within_5_sd("E x³", moment(3), 0.0, (15.0 / n_f).sqrt());
    within_5_sd("E x⁴", moment(4), 3.0, (96.0 / n_f).sqrt());
    // Tail masses: beyond 3σ, beyond the ziggurat's tail start R, beyond 4σ (binomial sd).
    for (cut, name) in [
        (3.0, "|x| > 3"),
        (3.442_619_855_9, "|x| > R"),
        (4.0, "|x| > 4"),
    ] {
        let p = 2.0 * phi(-cut);
        let count = samples.iter().filter(|x| x.abs() > cut).count() as f64;
        within_5_sd(name, count, n_f * p, (n_f * p * (1.0 - p)).sqrt());
    }
    assert!(samples.iter().all(|x| x.abs() < 8.3)); // the documented largest magnitude
    // Chi-square over 160 bins of 0.05 on [−4, 4] plus the two tails (161 degrees of
    // freedom: mean 161, sd √322 ≈ 17.9); bound: mean + 6 sd.
    let mut edges = vec![f64::NEG_INFINITY];
    edges.extend((0..=160).map(|i| -4.0 + 0.05 * f64::from(i)));
    edges.push(f64::INFINITY);
    let mut counts = vec![0_u64; edges.len() - 1];
    for &x in &samples {
        let bin = edges.partition_point(|&e| e <= x) - 1;
        counts[bin] += 1;
    }
    let chi2: f64 = counts
        .iter()
        .enumerate()
        .map(|(b, &c)| {
            let expected = n_f * (phi(edges[b + 1]) - phi(edges[b]));
            (c as f64 - expected).powi(2) / expected
        })
        .sum();
    assert!(chi2 < 161.0 + 6.0 * 322f64.sqrt(), "chi-square {chi2}");
    // Kolmogorov–Smirnov: √n·D < 1.95 (p ≈ 0.001).
    samples.sort_by(f64::total_cmp);
    let d = samples
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = phi(x);
            (f - i as f64 / n_f).max((i + 1) as f64 / n_f - f)
        })
        .fold(0.0, f64::max);
    assert!(n_f.sqrt() * d < 1.95, "KS √n·D = {}", n_f.sqrt() * d);
    println!(
        "chi2 = {chi2:.1} (161 dof), KS √n·D = {:.3}",
        n_f.sqrt() * d
    );
}

#[test]
#[cfg_attr(miri, ignore = "statistical: too slow under miri")]
fn every_ziggurat_layer_has_its_exact_mass() {
    // The layers' edges 0 < x₁ < … < x₁₂₇ = R (Marsaglia–Tsang, 128 layers), recomputed
    // here; the mass of |x| between consecutive edges and beyond R is exact from Φ. A
    // mistake confined to one layer (a table entry, a wedge or the tail) moves mass in or
    // out of its interval: each interval's count must be within 5.5 binomial sd
    // (Bonferroni over 128 intervals), 4·10⁶ draws; the tail's shape must match too.
    const R: f64 = 3.442_619_855_896_646;
    let f = |x: f64| (-0.5 * x * x).exp();
    let area =
        R * f(R) + (std::f64::consts::FRAC_PI_2).sqrt() * libm::erfc(R / std::f64::consts::SQRT_2);
    let mut edges = vec![R];
    while edges.len() < 127 {
        let x = *edges.last().unwrap();
        edges.push((-2.0 * (area / x + f(x)).ln()).sqrt());
    }
    edges.push(0.0);
    edges.reverse(); // 0, x₁, …, x₁₂₇ = R
    edges.push(f64::INFINITY);
    let n = 4_000_000;
    let mut counts = vec![0_u64; edges.len() - 1];
    let mut rng = Xoshiro128PlusPlus::from_seed(42);
    let mut tail = Vec::new();
    for _ in 0..n {
        let x = f64::from(rng.next_normal()).abs();
        counts[edges.partition_point(|&e| e <= x) - 1] += 1;
        if x > R {
            tail.push(x);
        }
    }
    // The tail's shape: Kolmogorov–Smirnov of |x| given |x| > R (about 2300 values),
    // √m·D < 1.95 (p ≈ 0.001).
    tail.sort_by(f64::total_cmp);
    let m = tail.len() as f64;
    let beyond = phi(-R);
    let d = tail
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let cdf = 1.0 - phi(-x) / beyond;
            (cdf - i as f64 / m).max((i + 1) as f64 / m - cdf)
        })
        .fold(0.0, f64::max);
    assert!(m.sqrt() * d < 1.95, "tail KS √m·D = {}", m.sqrt() * d);
    let n_f = f64::from(n);
    let mut worst = (0.0_f64, 0);
    for (i, &count) in counts.iter().enumerate() {
        let p = 2.0 * (phi(edges[i + 1]) - phi(edges[i]));
        let z = (count as f64 - n_f * p) / (n_f * p * (1.0 - p)).sqrt();
        if z.abs() > worst.0.abs() {
            worst = (z, i);
        }
    }
    println!(
        "largest |z| over the layer intervals: {:.2} (interval {})",
        worst.0, worst.1
    );
    assert!(
        worst.0.abs() < 5.5,
        "interval {} is {:.1} sd off",
        worst.1,
        worst.0
    );
}

#[test]
#[cfg_attr(miri, ignore = "statistical: too slow under miri")]
fn consecutive_normals_are_uncorrelated() {
    // Lag-1 and lag-2 correlations (sd 1/√n each), and the sign against the magnitude
    // of the next draw (the ziggurat's bits for the layer, sign and value are disjoint).
    let n = 1_000_000;
    let mut rng = Xoshiro128PlusPlus::from_seed(43);
    let x: Vec<f64> = (0..n).map(|_| f64::from(rng.next_normal())).collect();
    let n_f = (n - 2) as f64;
    let lag = |k: usize| x.iter().zip(&x[k..]).map(|(a, b)| a * b).sum::<f64>() / n_f;
    within_5_sd("lag-1 correlation", lag(1), 0.0, (1.0 / n_f).sqrt());
    within_5_sd("lag-2 correlation", lag(2), 0.0, (1.0 / n_f).sqrt());
    // E[x_i · x_i²] = E x³ = 0 is the skew; E[|x_i| · x_{i+1}] = 0 across draws.
    let cross = x.windows(2).map(|w| w[0].abs() * w[1]).sum::<f64>() / n_f;
    within_5_sd("E |x_i| x_{i+1}", cross, 0.0, (1.0 / n_f).sqrt());
}

// ---------------------------------------------------------------------------------------
// The views: the draw order, replayed through the public steps, bit for bit.

/// A view made by the public steps from a clone of the generator, following the module's
/// documented draw order.
fn replay_view(
    recipe: ViewRecipe,
    raw: &[f32],
    mean: &[f32],
    std: &[f32],
    rng: &mut Xoshiro128PlusPlus,
) -> Vec<f32> {
    let mut out = raw.to_vec();
    if recipe.rotate {
        let rotation = Rotation::random(rng);
        rotate_triads_into(raw, C, T, &rotation, &mut out).unwrap();
    }
    standardize(&mut out, C, T, mean, std).unwrap();
    scale_channels(&mut out, C, T, recipe.scale_sigma, rng).unwrap();
    add_jitter(&mut out, recipe.jitter_sigma, rng).unwrap();
    out
}

#[test]
fn two_views_are_the_documented_steps_in_the_documented_draw_order() {
    for recipe in [
        ViewRecipe::HAPT,
        ViewRecipe {
            rotate: false,
            ..ViewRecipe::HAPT
        },
        ViewRecipe {
            rotate: true,
            scale_sigma: 0.3,
            jitter_sigma: 0.0,
        },
    ] {
        let augmenter = Augmenter::new(recipe, C, T, &MEAN, &STD).unwrap();
        let raws: Vec<f32> = (0..3).flat_map(raw_window).collect();
        let mut rng = Xoshiro128PlusPlus::from_seed(51);
        let mut replay = rng.clone();
        let (mut views1, mut views2) = (vec![0.0; 3 * W], vec![0.0; 3 * W]);
        augmenter
            .two_views_batch(&raws, 3, &mut rng, &mut views1, &mut views2)
            .unwrap();
        for i in 0..3 {
            let raw = &raws[i * W..(i + 1) * W];
            let v1 = replay_view(recipe, raw, &MEAN, &STD, &mut replay);
            let v2 = replay_view(recipe, raw, &MEAN, &STD, &mut replay);
            assert_eq!(
                hex(&views1[i * W..(i + 1) * W]),
                hex(&v1),
                "window {i} view 1"
            );
            assert_eq!(
                hex(&views2[i * W..(i + 1) * W]),
                hex(&v2),
                "window {i} view 2"
            );
        }
        assert_eq!(rng, replay, "the batch drew exactly the replay's draws");
        // two_views and view_into agree with the batch.
        let mut single = Xoshiro128PlusPlus::from_seed(51);
        let (mut v1, mut v2) = (vec![0.0; W], vec![0.0; W]);
        augmenter
            .two_views(&raws[..W], &mut single, &mut v1, &mut v2)
            .unwrap();
        assert_eq!(hex(&v1), hex(&views1[..W]));
        assert_eq!(hex(&v2), hex(&views2[..W]));
        augmenter
            .view_into(&raws[W..2 * W], &mut single, &mut v1)
            .unwrap();
        assert_eq!(hex(&v1), hex(&views1[W..2 * W]));
    }
}

#[test]
fn jitter_is_the_last_draws_in_element_order() {
    // Raw 0, mean 0, std 1: rotation, standardisation and scale leave 0, so the view is
    // exactly jitter_sigma · n for the normals after the 4 rotation and C scale draws.
    let zeros = [0.0_f32; W];
    let augmenter = Augmenter::new(ViewRecipe::HAPT, C, T, &[0.0; C], &[1.0; C]).unwrap();
    let mut rng = Xoshiro128PlusPlus::from_seed(52);
    let mut replay = rng.clone();
    let mut view = vec![0.0; W];
    augmenter.view_into(&zeros, &mut rng, &mut view).unwrap();
    for _ in 0..4 + C {
        replay.next_normal();
    }
    let expected: Vec<f32> = (0..W).map(|_| 0.1 * replay.next_normal()).collect();
    // `+ 0.0`: the view adds the jitter to +0.0 (turning a −0.0 jitter into +0.0).
    let expected: Vec<f32> = expected.iter().map(|v| 0.0 + v).collect();
    assert_eq!(hex(&view), hex(&expected));
    assert_eq!(rng, replay);
}

#[test]
#[cfg_attr(miri, ignore = "statistical: too slow under miri")]
fn jitter_in_the_views_is_normal_with_sigma_0_1() {
    // view − (standardised rotated raw) with the scale at 1 (raw 0, so the base is 0):
    // mean 0 (sd 0.1/√n), variance 0.01 (sd 0.01·√(2/n)), kurtosis 3.
    let zeros = [0.0_f32; W];
    let augmenter = Augmenter::new(ViewRecipe::HAPT, C, T, &[0.0; C], &[1.0; C]).unwrap();
    let mut rng = Xoshiro128PlusPlus::from_seed(53);
    let (mut v1, mut v2) = (vec![0.0; W], vec![0.0; W]);
    let (mut s1, mut s2, mut s4, mut n) = (0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    for _ in 0..500 {
        augmenter
            .two_views(&zeros, &mut rng, &mut v1, &mut v2)
            .unwrap();
        for &v in v1.iter().chain(&v2) {
            let v = f64::from(v);
            s1 += v;
            s2 += v * v;
            s4 += v.powi(4);
            n += 1.0;
        }
    }
    within_5_sd("jitter mean", s1 / n, 0.0, 0.1 / n.sqrt());
    within_5_sd("jitter variance", s2 / n, 0.01, 0.01 * (2.0 / n).sqrt());
    within_5_sd("jitter E x⁴", s4 / n, 3e-4, 1e-4 * (96.0 / n).sqrt());
}

#[test]
#[cfg_attr(miri, ignore = "statistical: too slow under miri")]
fn scale_in_the_views_is_normal_around_1_with_sigma_0_1_per_channel() {
    // Without jitter, view = base · s_c: the scale is view / base, one per channel per
    // view (the same for every sample of the channel), N(1, 0.1²), independent across
    // channels and views.
    let recipe = ViewRecipe {
        jitter_sigma: 0.0,
        ..ViewRecipe::HAPT
    };
    let raw = raw_window(3);
    let augmenter = Augmenter::new(recipe, C, T, &MEAN, &STD).unwrap();
    let mut rng = Xoshiro128PlusPlus::from_seed(54);
    let (mut v1, mut v2) = (vec![0.0; W], vec![0.0; W]);
    let mut scales = Vec::new();
    for _ in 0..5_000 {
        let mut replay = rng.clone();
        augmenter
            .two_views(&raw, &mut rng, &mut v1, &mut v2)
            .unwrap();
        for view in [&v1, &v2] {
            // base = standardised rotated raw, replayed (the rotation's 4 draws; then
            // the C scale draws and the C·T jitter draws, made though the jitter's sigma
            // is 0, which this test skips).
            let rotation = Rotation::random(&mut replay);
            let mut base = vec![0.0; W];
            rotate_triads_into(&raw, C, T, &rotation, &mut base).unwrap();
            standardize(&mut base, C, T, &MEAN, &STD).unwrap();
            for _ in 0..C + W {
                replay.next_normal();
            }
            let mut row_scales = [0.0_f64; C];
            for c in 0..C {
                // The sample of largest |base| in the channel gives the scale to ~1 ulp.
                let t = (0..T)
                    .max_by(|&a, &b| base[c * T + a].abs().total_cmp(&base[c * T + b].abs()))
                    .unwrap();
                let scale = f64::from(view[c * T + t]) / f64::from(base[c * T + t]);
                for t in 0..T {
                    let expected = f64::from(base[c * T + t]) * scale;
                    let tolerance = 4.0 * f64::from(f32::EPSILON) * expected.abs() + 1e-30;
                    assert!((f64::from(view[c * T + t]) - expected).abs() <= tolerance);
                }
                row_scales[c] = scale;
            }
            scales.push(row_scales);
        }
    }
    let n = scales.len() as f64;
    for c in 0..C {
        let mean = scales.iter().map(|s| s[c]).sum::<f64>() / n;
        let var = scales.iter().map(|s| (s[c] - 1.0).powi(2)).sum::<f64>() / n;
        within_5_sd(
            &format!("scale mean, channel {c}"),
            mean,
            1.0,
            0.1 / n.sqrt(),
        );
        within_5_sd(
            &format!("scale variance, channel {c}"),
            var,
            0.01,
            0.01 * (2.0 / n).sqrt(),
        );
    }
    // Channels 0 and 3 (acc x, gyro x) and the two views of a window: uncorrelated.
    let cross = scales
        .iter()
        .map(|s| (s[0] - 1.0) * (s[3] - 1.0))
        .sum::<f64>()
        / n;
    within_5_sd("channel 0 × 3 covariance", cross, 0.0, 0.01 / n.sqrt());
    let pairs = scales.len() / 2;
    let views = (0..pairs)
        .map(|i| (scales[2 * i][1] - 1.0) * (scales[2 * i + 1][1] - 1.0))
        .sum::<f64>()
        / pairs as f64;
    within_5_sd(
        "view 1 × view 2 covariance",
        views,
        0.0,
        0.01 / (pairs as f64).sqrt(),
    );
}

// ---------------------------------------------------------------------------------------
// Pinned bits: a change of the generator, the sampler, the tables or the draw order
// shows here; the firmware checks the same values (and the x86-64-v3 build, run with
// RUSTFLAGS="-C target-cpu=x86-64-v3", must give them too).

#[test]
fn pinned_bits_for_seed_42() {
    let mut rng = Xoshiro128PlusPlus::from_seed(42);
    let words: Vec<String> = (0..4).map(|_| format!("{:08x}", rng.next_u32())).collect();
    assert_eq!(words, PINNED_U32);

    let mut rng = Xoshiro128PlusPlus::from_seed(42);
    let normals: Vec<f32> = (0..8).map(|_| rng.next_normal()).collect();
    assert_eq!(hex(&normals), PINNED_NORMALS);
    // A long stream: about 1.2 % of draws take the slow paths (wedges, tail).
    let count = if cfg!(miri) { 2_000 } else { 100_000 };
    let stream: Vec<f32> = (0..count).map(|_| rng.next_normal()).collect();
    if !cfg!(miri) {
        assert_eq!(format!("{:016x}", fnv1a(&stream)), PINNED_STREAM_HASH);
    }

    // Rotation matrices: every entry's rounding is pinned.
    let mut rng = Xoshiro128PlusPlus::from_seed(42);
    let count = if cfg!(miri) { 20 } else { 10_000 };
    let matrices: Vec<f32> = (0..count)
        .flat_map(|_| Rotation::random(&mut rng).matrix.into_iter().flatten())
        .collect();
    if !cfg!(miri) {
        assert_eq!(format!("{:016x}", fnv1a(&matrices)), PINNED_ROTATIONS_HASH);
    }
    assert_eq!(hex(&matrices[..9]), PINNED_FIRST_ROTATION);

    let augmenter = Augmenter::new(ViewRecipe::HAPT, C, T, &MEAN, &STD).unwrap();
    let raw = raw_window(0);
    let mut rng = Xoshiro128PlusPlus::from_seed(42);
    let (mut v1, mut v2) = (vec![0.0; W], vec![0.0; W]);
    augmenter
        .two_views(&raw, &mut rng, &mut v1, &mut v2)
        .unwrap();
    if !cfg!(miri) {
        let ends = [v1[0], v1[1], v1[W - 1], v2[0], v2[1], v2[W - 1]];
        assert_eq!(hex(&ends), PINNED_VIEW_ENDS);
        let both: Vec<f32> = v1.iter().chain(&v2).copied().collect();
        assert_eq!(format!("{:016x}", fnv1a(&both)), PINNED_VIEWS_HASH);
        assert_eq!(rng.state(), PINNED_STATE_AFTER_VIEWS);
    }
}

const PINNED_U32: [&str; 4] = ["9d9452c1", "6909d440", "6148a68f", "54829a5b"];
const PINNED_NORMALS: [&str; 8] = [
    "bf73babb", "3f210878", "be9b4868", "3f238cc7", "3f87fb9b", "bf8c3e47", "3faa62fb", "3fb84d92",
];
const PINNED_STREAM_HASH: &str = "1707bc790632cb45";
const PINNED_ROTATIONS_HASH: &str = "ea8ebb0821d357e3";
const PINNED_FIRST_ROTATION: [&str; 9] = [
    "3ee3d5ca", "3eed31fb", "3f443286", "bf62fe57", "3ddd1ca8", "3ee62ed1", "3e008b78", "bf612e76",
    "3eeaeae8",
];
const PINNED_VIEW_ENDS: [&str; 6] = [
    "bea8bd4e", "c0a3db02", "bf5315b6", "40238c02", "3f4cc5d8", "3f145ac1",
];
const PINNED_VIEWS_HASH: &str = "13dcfddf2dde8ab0";
const PINNED_STATE_AFTER_VIEWS: [u32; 4] = [4044808901, 2472524379, 535455341, 1626363638];

// ---------------------------------------------------------------------------------------
// Errors.

#[test]
fn every_bad_input_is_its_typed_error() {
    use SslError::{DimensionMismatch, InvalidParameter, NonFinite};
    let ok = ViewRecipe::HAPT;
    let (mean, std) = (&MEAN[..], &STD[..]);
    fn new<'a>(
        recipe: ViewRecipe,
        channels: usize,
        len: usize,
        mean: &'a [f32],
        std: &'a [f32],
    ) -> Result<Augmenter<'a>, SslError> {
        Augmenter::new(recipe, channels, len, mean, std)
    }
    // The recipe.
    for (recipe, name) in [
        (
            ViewRecipe {
                scale_sigma: -0.1,
                ..ok
            },
            "scale_sigma",
        ),
        (
            ViewRecipe {
                scale_sigma: f32::NAN,
                ..ok
            },
            "scale_sigma",
        ),
        (
            ViewRecipe {
                jitter_sigma: f32::INFINITY,
                ..ok
            },
            "jitter_sigma",
        ),
        (
            ViewRecipe {
                jitter_sigma: -0.0 - 1e-30,
                ..ok
            },
            "jitter_sigma",
        ),
    ] {
        assert!(matches!(recipe.validate(), Err(InvalidParameter { name: n, .. }) if n == name));
        assert!(
            matches!(new(recipe, C, T, mean, std), Err(InvalidParameter { name: n, .. }) if n == name)
        );
    }
    // The shape.
    assert!(matches!(
        new(ok, 0, T, &[], &[]),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    assert!(matches!(
        new(ok, C, 0, mean, std),
        Err(InvalidParameter { name: "len", .. })
    ));
    assert!(matches!(
        new(ok, 4, T, &mean[..4], &std[..4]),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    let no_rotation = ViewRecipe {
        rotate: false,
        ..ok
    };
    assert!(new(no_rotation, 4, T, &mean[..4], &std[..4]).is_ok());
    assert!(matches!(
        new(ok, 3, usize::MAX, &mean[..3], &std[..3]),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    // The statistics.
    assert_eq!(
        new(ok, C, T, &mean[..5], std),
        Err(DimensionMismatch {
            expected: 6,
            got: 5
        })
    );
    assert_eq!(
        new(ok, C, T, mean, &[1.0; 7]),
        Err(DimensionMismatch {
            expected: 6,
            got: 7
        })
    );
    let mut bad_mean = MEAN;
    bad_mean[2] = f32::NAN;
    assert_eq!(
        new(ok, C, T, &bad_mean, std),
        Err(NonFinite { location: "mean" })
    );
    for bad in [0.0, -0.0, -1.0, f32::INFINITY, f32::NAN] {
        let mut bad_std = STD;
        bad_std[5] = bad;
        assert!(
            matches!(
                new(ok, C, T, mean, &bad_std),
                Err(InvalidParameter { name: "std", .. })
            ),
            "{bad}"
        );
    }
    // The buffers, and non-finite windows (no draw made: the generator is unchanged).
    let augmenter = new(ok, C, T, mean, std).unwrap();
    let raw = raw_window(0);
    let mut rng = Xoshiro128PlusPlus::from_seed(1);
    let before = rng.clone();
    let (mut v1, mut v2) = (vec![0.0; W], vec![0.0; W]);
    let short = W - 1;
    assert_eq!(
        augmenter.view_into(&raw[..short], &mut rng, &mut v1),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        augmenter.view_into(&raw, &mut rng, &mut v1[..short]),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        augmenter.two_views(&raw[..short], &mut rng, &mut v1, &mut v2),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        augmenter.two_views(&raw, &mut rng, &mut v1[..short], &mut v2),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        augmenter.two_views(&raw, &mut rng, &mut v1, &mut v2[..short]),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        augmenter.two_views_batch(&raw, 2, &mut rng, &mut v1, &mut v2),
        Err(DimensionMismatch {
            expected: 2 * W,
            got: W
        })
    );
    assert_eq!(
        augmenter.two_views_batch(&raw, 1, &mut rng, &mut v1[..short], &mut v2),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        augmenter.two_views_batch(&raw, 1, &mut rng, &mut v1, &mut v2[..short]),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert!(matches!(
        augmenter.two_views_batch(&raw, usize::MAX, &mut rng, &mut v1, &mut v2),
        Err(InvalidParameter { name: "n", .. })
    ));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut raw = raw.clone();
        raw[W - 1] = bad;
        assert_eq!(
            augmenter.view_into(&raw, &mut rng, &mut v1),
            Err(NonFinite { location: "window" })
        );
        assert_eq!(
            augmenter.two_views(&raw, &mut rng, &mut v1, &mut v2),
            Err(NonFinite { location: "window" })
        );
        assert_eq!(
            augmenter.two_views_batch(&raw, 1, &mut rng, &mut v1, &mut v2),
            Err(NonFinite { location: "window" })
        );
    }
    assert_eq!(rng, before, "a refused call draws nothing");
    assert_eq!(
        augmenter.two_views_batch(&[], 0, &mut rng, &mut [], &mut []),
        Ok(())
    );
    assert_eq!(rng, before, "an empty batch draws nothing");
    // Finite input, overflowing view: huge raw values over a small std.
    let tiny_std = [1e-39_f32; C];
    let overflowing = new(ok, C, T, mean, &tiny_std).unwrap();
    assert_eq!(
        overflowing.view_into(&raw, &mut rng, &mut v1),
        Err(NonFinite { location: "view" })
    );
    assert_eq!(
        overflowing.two_views(&raw, &mut rng, &mut v1, &mut v2),
        Err(NonFinite { location: "view" })
    );
    let huge = vec![f32::MAX; W];
    assert_eq!(
        augmenter.view_into(&huge, &mut rng, &mut v1),
        Err(NonFinite { location: "view" })
    );

    // The steps, one by one.
    let rotation = Rotation::random(&mut rng);
    let mut out = vec![0.0; W];
    assert!(matches!(
        rotate_triads_into(&raw, 0, T, &rotation, &mut out),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    assert!(matches!(
        rotate_triads_into(&raw, C, 0, &rotation, &mut out),
        Err(InvalidParameter { name: "len", .. })
    ));
    assert!(matches!(
        rotate_triads_into(&raw[..4 * T], 4, T, &rotation, &mut out[..4 * T]),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    assert!(matches!(
        rotate_triads_into(&raw, 3, usize::MAX, &rotation, &mut out),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    assert_eq!(
        rotate_triads_into(&raw[..short], C, T, &rotation, &mut out),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        rotate_triads_into(&raw, C, T, &rotation, &mut out[..short]),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    let mut nan_raw = raw.clone();
    nan_raw[7] = f32::NAN;
    assert_eq!(
        rotate_triads_into(&nan_raw, C, T, &rotation, &mut out),
        Err(NonFinite { location: "window" })
    );
    let mut nan_rotation = rotation;
    nan_rotation.matrix[1][2] = f32::INFINITY;
    assert_eq!(
        rotate_triads_into(&raw, C, T, &nan_rotation, &mut out),
        Err(NonFinite {
            location: "rotation"
        })
    );
    let stretch = Rotation {
        matrix: [[f32::MAX, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    };
    assert_eq!(
        rotate_triads_into(&raw, C, T, &stretch, &mut out),
        Err(NonFinite { location: "view" })
    );
    assert!(matches!(
        Rotation::from_quaternion([0.0; 4]),
        Err(InvalidParameter {
            name: "quaternion",
            ..
        })
    ));
    assert!(matches!(
        Rotation::from_quaternion([1e-20, 0.0, 0.0, 0.0]),
        Err(InvalidParameter {
            name: "quaternion",
            ..
        })
    ));
    assert_eq!(
        Rotation::from_quaternion([f32::NAN, 1.0, 0.0, 0.0]),
        Err(NonFinite {
            location: "quaternion"
        })
    );
    assert_eq!(
        Rotation::from_quaternion([1e20, 1e20, 0.0, 0.0]),
        Err(NonFinite {
            location: "quaternion"
        })
    );

    let mut window = raw.clone();
    assert!(matches!(
        standardize(&mut window, 0, T, mean, std),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    assert!(matches!(
        standardize(&mut window, C, 0, mean, std),
        Err(InvalidParameter { name: "len", .. })
    ));
    assert_eq!(
        standardize(&mut window[..short], C, T, mean, std),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        standardize(&mut window, C, T, &mean[..1], std),
        Err(DimensionMismatch {
            expected: C,
            got: 1
        })
    );
    assert_eq!(
        standardize(&mut window, C, T, mean, &std[..1]),
        Err(DimensionMismatch {
            expected: C,
            got: 1
        })
    );
    assert_eq!(
        standardize(&mut window, C, T, &bad_mean, std),
        Err(NonFinite { location: "mean" })
    );
    assert!(matches!(
        standardize(&mut window, C, T, mean, &[0.0; C]),
        Err(InvalidParameter { name: "std", .. })
    ));
    assert_eq!(
        standardize(&mut nan_raw.clone(), C, T, mean, std),
        Err(NonFinite { location: "window" })
    );
    assert_eq!(
        standardize(&mut window, C, T, mean, &tiny_std),
        Err(NonFinite { location: "view" })
    );

    let mut window = raw.clone();
    let before = rng.clone();
    assert!(matches!(
        scale_channels(&mut window, 0, T, 0.1, &mut rng),
        Err(InvalidParameter {
            name: "channels",
            ..
        })
    ));
    assert!(matches!(
        scale_channels(&mut window, C, 0, 0.1, &mut rng),
        Err(InvalidParameter { name: "len", .. })
    ));
    assert!(matches!(
        scale_channels(&mut window, C, T, -1.0, &mut rng),
        Err(InvalidParameter {
            name: "scale_sigma",
            ..
        })
    ));
    assert_eq!(
        scale_channels(&mut window[..short], C, T, 0.1, &mut rng),
        Err(DimensionMismatch {
            expected: W,
            got: short
        })
    );
    assert_eq!(
        scale_channels(&mut nan_raw.clone(), C, T, 0.1, &mut rng),
        Err(NonFinite { location: "window" })
    );
    assert!(matches!(
        add_jitter(&mut window, f32::NAN, &mut rng),
        Err(InvalidParameter {
            name: "jitter_sigma",
            ..
        })
    ));
    assert_eq!(
        add_jitter(&mut nan_raw.clone(), 0.1, &mut rng),
        Err(NonFinite { location: "window" })
    );
    assert_eq!(rng, before, "a refused step draws nothing");
    let mut huge = vec![f32::MAX; W];
    assert_eq!(
        scale_channels(&mut huge, C, T, 1e30, &mut rng),
        Err(NonFinite { location: "view" })
    );
    let mut huge = vec![f32::MAX; W];
    assert_eq!(
        add_jitter(&mut huge, f32::MAX, &mut rng),
        Err(NonFinite { location: "view" })
    );
}

#[test]
fn errors_display() {
    let error = Augmenter::new(ViewRecipe::HAPT, 4, 2, &[0.0; 4], &[1.0; 4]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid parameter `channels`: rotation needs whole (x, y, z) triads: a multiple of 3"
    );
    let error = Xoshiro128PlusPlus::from_state([0; 4]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid parameter `state`: the all-zero state is not a xoshiro128++ state"
    );
}

// ---------------------------------------------------------------------------------------
// No panic, no allocation.

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => -10.0_f32..10.0,
        1 => Just(0.0_f32),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::MAX),
        1 => Just(1e-40_f32),
        1 => any::<f32>(),
    ]
}

proptest! {
    #[test]
    fn no_input_panics(
        channels in 0_usize..10,
        len in 0_usize..12,
        extra in prop::array::uniform4(-2_isize..3),
        n in 0_usize..4,
        values in prop::collection::vec(any_f32(), 0..400),
        stats in prop::collection::vec(any_f32(), 20),
        recipe in (any::<bool>(), any_f32(), any_f32()),
        seed in any::<u64>(),
    ) {
        let size = |base: usize, delta: isize| base.saturating_add_signed(delta);
        let window = channels * len;
        let take = |k: usize| &values[..k.min(values.len())];
        let raw = take(size(n * window, extra[0]));
        let mean = &stats[..size(channels, extra[1]).min(10)];
        let std = &stats[10..10 + size(channels, extra[2]).min(10)];
        let recipe = ViewRecipe { rotate: recipe.0, scale_sigma: recipe.1, jitter_sigma: recipe.2 };
        let mut rng = Xoshiro128PlusPlus::from_seed(seed);
        let mut v1 = vec![0.0; size(n * window, extra[3])];
        let mut v2 = vec![0.0; n * window];
        if let Ok(augmenter) = Augmenter::new(recipe, channels, len, mean, std) {
            if augmenter.two_views_batch(raw, n, &mut rng, &mut v1, &mut v2).is_ok() {
                prop_assert!(v1.iter().chain(&v2).all(|v| v.is_finite()));
            }
            let _ = augmenter.two_views(raw, &mut rng, &mut v1, &mut v2);
            let _ = augmenter.view_into(raw, &mut rng, &mut v2);
        }
        let rotation = Rotation::from_quaternion([stats[0], stats[1], stats[2], stats[3]])
            .unwrap_or(Rotation::IDENTITY);
        let _ = rotate_triads_into(raw, channels, len, &rotation, &mut v1);
        let mut w = raw.to_vec();
        let _ = standardize(&mut w, channels, len, mean, std);
        let _ = scale_channels(&mut w, channels, len, recipe.scale_sigma, &mut rng);
        let _ = add_jitter(&mut w, recipe.jitter_sigma, &mut rng);
    }
}

#[test]
fn no_allocation() {
    let raws: Vec<f32> = (0..2).flat_map(raw_window).collect();
    let (mut v1, mut v2) = (vec![0.0; 2 * W], vec![0.0; 2 * W]);
    let mut window = raws[..W].to_vec();
    let count = allocations_in(|| {
        let mut rng = Xoshiro128PlusPlus::from_seed(3);
        let augmenter = Augmenter::new(ViewRecipe::HAPT, C, T, &MEAN, &STD).unwrap();
        augmenter
            .two_views_batch(&raws, 2, &mut rng, &mut v1, &mut v2)
            .unwrap();
        augmenter
            .two_views(&raws[..W], &mut rng, &mut v1[..W], &mut v2[..W])
            .unwrap();
        augmenter
            .view_into(&raws[W..], &mut rng, &mut v1[W..])
            .unwrap();
        let rotation = Rotation::random(&mut rng);
        rotate_triads_into(&raws[..W], C, T, &rotation, &mut window).unwrap();
        standardize(&mut window, C, T, &MEAN, &STD).unwrap();
        scale_channels(&mut window, C, T, 0.1, &mut rng).unwrap();
        add_jitter(&mut window, 0.1, &mut rng).unwrap();
        let mut normals = [0.0_f32; 64];
        rng.fill_normal(&mut normals);
        let saved = Xoshiro128PlusPlus::from_state(rng.state()).unwrap();
        std::hint::black_box((saved, normals));
        // Errors allocate nothing either.
        let _ = augmenter.two_views(&raws, &mut rng, &mut v1, &mut v2);
    });
    assert_eq!(count, 0);
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1.0_f32; 10]))) >= 1);
}
