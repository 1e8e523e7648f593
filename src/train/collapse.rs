//! The collapse monitor of SimSiam (Chen & He, CVPR 2021, §4.1 and Fig. 2): the
//! standard deviation of the L2-normalised outputs, as lightly computes it
//! (`lightly.utils.debug.std_of_l2_normalized` and the moving average of lightly's
//! SimSiam example).
//!
//! For `n` output rows `z_i` of `dim` values:
//!
//! ```text
//! x_i  = z_i / max(‖z_i‖₂, 1e-12)                       (F.normalize(z, dim=1))
//! σ_j  = √( Σ_i (x_ij − x̄_j)² / (n − 1) )                (torch.std(x, dim=0), unbiased)
//! std  = (1/dim) · Σ_j σ_j                               (.mean())
//! ```
//!
//! Outputs spread over the sphere (a zero-mean isotropic Gaussian before normalising)
//! give `std ≈ 1/√dim`; outputs collapsed onto one direction give `std = 0`. Hence the
//! two readings lightly prints: the *normalised* std `√dim·std` (≈ 1 healthy, 0
//! collapsed) and the *collapse level* `max(0, 1 − √dim·std)` (0 healthy, 1 collapsed).
//!
//! - [`output_std`]: one batch, into `2·dim` floats of caller scratch
//!   ([`output_std_scratch_len`]);
//! - [`collapse_level`]: lightly's collapse level of a std;
//! - [`CollapseMonitor`]: the moving average over batches of lightly's example.
//!
//! Nothing here allocates or panics; every bad input is an [`SslError`].

use crate::error::{SslError, SslResult, check_finite, check_len};
use crate::kernels::{Kernels, NORM_FLOOR, Scalar, pieces};

/// The floats of scratch [`output_std`] needs for rows of `dim` values: `2·dim` (a
/// running mean and a sum of squared deviations per dimension), i.e. `8·dim` bytes.
///
/// Saturates at `usize::MAX` (no slice is that long, so the call then reports
/// `CapacityTooSmall`).
///
/// # Examples
/// ```
/// assert_eq!(simsiam::train::output_std_scratch_len(2048), 4096);
/// ```
#[must_use]
pub const fn output_std_scratch_len(dim: usize) -> usize {
    dim.saturating_mul(2)
}

/// The mean over dimensions of the per-dimension standard deviation of the
/// L2-normalised rows: lightly's `std_of_l2_normalized(z)`, that is
/// `torch.std(F.normalize(z, dim=1), dim=0).mean()`.
///
/// `outputs` holds `n` rows `z_i` of `dim` values, row-major:
///
/// ```text
/// x_i  = z_i / max(‖z_i‖₂, 1e-12)                       (F.normalize(z, dim=1))
/// σ_j  = √( Σ_i (x_ij − x̄_j)² / (n − 1) )                (torch.std(x, dim=0), unbiased)
/// std  = (1/dim) · Σ_j σ_j                               (.mean())
/// ```
///
/// About `1/√dim` for outputs spread over the sphere (a zero-mean isotropic Gaussian
/// before normalising), `0` for outputs collapsed onto one direction; `√dim·std` is
/// then ≈ 1 healthy and 0 collapsed, and [`collapse_level`] `= max(0, 1 − √dim·std)` the
/// reverse.
///
/// # Memory and cost
/// `scratch` must hold at least [`output_std_scratch_len(dim)`](output_std_scratch_len)
/// `= 2·dim` floats (a longer one is fine; its first `2·dim` floats are overwritten);
/// nothing else but a small fixed stack frame. It reads `outputs` twice (two passes: the
/// mean, then the squared deviations from it), normalising every row in each pass: about
/// `4·n·dim` additions or multiply-adds and `3·n·dim` divisions, plus `dim` square roots
/// and `dim` `f64` additions.
///
/// # Accuracy
/// Each row is normalised in `f32` as `F.normalize` does (sum of squares, square root,
/// a true division). The mean per dimension is a running mean, `m += (x − m)/k`, and the
/// squared deviations from it are summed in a second pass (a two-pass algorithm: no
/// cancellation); the per-dimension standard deviations are averaged in `f64`. Rows whose sum of
/// squares overflows `f32` (a norm above ~1.8·10¹⁹) are first divided by their largest
/// magnitude, so huge outputs are measured correctly (PyTorch's `f32` `F.normalize` turns
/// them into zeros, reporting a collapse).
///
/// Let `s` be the exact value (real arithmetic on the same `f32` inputs), `u = 2⁻²⁴`,
/// `γ(k) = k·u/(1 − k·u)`. When `(dim + 5)·u ≤ 1/8` and `(2n + 8)·u ≤ 1/8` (up to about
/// a million rows and two million dimensions), and no square or quotient underflows
/// below `2⁻¹²⁶`, the result `ŝ` satisfies
///
/// ```text
/// |ŝ − s| ≤ γ(n + 8)·s + 2·√(n/(n − 1))·(γ(2n) + γ(dim + 5)/√dim).
/// ```
///
/// The terms: normalisation moves each value by at most `γ(dim + 5)` relative, which
/// moves the std by at most `γ(dim + 5)·√(n/((n − 1)·dim))` (the std is 1-Lipschitz in
/// the rows, which have at most unit length); the running mean is within `γ(2n)·max|x|`
/// of the true mean, which adds at most `√(n/(n − 1))` times that to each `σ_j`; the
/// deviations, their squares, their sum, the division by `n − 1`, the square root, the
/// `f64` mean and the final rounding to `f32` add `γ(n + 8)` relative. For `n = 256`,
/// `dim = 2048` the bound is `1.6·10⁻⁵·s + 6.7·10⁻⁵`; the measured errors are far
/// smaller (`tests/collapse.rs`: at most 4 % of the bound, 2·10⁻⁷ relative). Rows that
/// are exact copies of each other (or of each other times powers of two, within the
/// normal range) give exactly `0`: their deviations from the running mean are exactly
/// zero.
///
/// # Errors
/// In this order: [`SslError::InvalidParameter`] when `dim` is 0;
/// [`SslError::DimensionMismatch`] when `outputs.len()` is not a multiple of `dim`
/// (`expected`: the largest multiple of `dim` not above it); `InvalidParameter` when
/// there are fewer than two rows (a standard deviation needs two);
/// [`SslError::CapacityTooSmall`] when `scratch` is shorter than `2·dim`;
/// [`SslError::NonFinite`] (`"outputs"`) when a value is NaN or infinite.
///
/// # Examples
/// ```
/// use simsiam::train::{output_std, output_std_scratch_len};
/// const DIM: usize = 4;
/// let mut scratch = [0.0_f32; output_std_scratch_len(DIM)];
///
/// // Four orthogonal directions: the healthy value 1/√dim = 0.5.
/// let spread = [
///     1.0, 0.0, 0.0, 0.0, //
///     0.0, 2.0, 0.0, 0.0, //
///     0.0, 0.0, 3.0, 0.0, //
///     0.0, 0.0, 0.0, 4.0,
/// ];
/// let std = output_std(&spread, DIM, &mut scratch)?;
/// assert!((std - 0.5).abs() < 1e-6);
///
/// // Every row a power-of-two multiple of one vector: collapsed, exactly 0.
/// let collapsed = [1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, 8.0, 0.5, 1.0, 1.5, 2.0];
/// assert_eq!(output_std(&collapsed, DIM, &mut scratch)?, 0.0);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn output_std(outputs: &[f32], dim: usize, scratch: &mut [f32]) -> SslResult<f32> {
    let n = row_count(outputs.len(), dim)?;
    if n < 2 {
        return Err(SslError::InvalidParameter {
            name: "n",
            reason: "a standard deviation needs at least two rows",
        });
    }
    let needed = output_std_scratch_len(dim);
    let capacity = scratch.len();
    let (mean, squares) = scratch
        .get_mut(..needed)
        .and_then(|used| used.split_at_mut_checked(dim))
        .ok_or(SslError::CapacityTooSmall { needed, capacity })?;
    check_finite(outputs, "outputs")?;

    // Pass 1: the running mean of each dimension. The first row sets it exactly (0 + x/1),
    // so identical rows keep it exact and their deviations below are exactly 0.
    // The row count is kept by hand: `enumerate` would add an overflow check (it cannot
    // overflow: there are at most `outputs.len()` rows).
    mean.fill(0.0);
    let mut rows = 0_usize;
    for row in pieces(outputs, dim) {
        rows = rows.saturating_add(1);
        let count = rows as f32;
        RowScale::of(row).zip_normalised(row, mean.iter_mut(), |m, x| *m += (x - *m) / count);
    }

    // Pass 2: the sum of squared deviations from that mean (each row normalised again,
    // bit for bit as in pass 1).
    squares.fill(0.0);
    for row in pieces(outputs, dim) {
        RowScale::of(row).zip_normalised(row, squares.iter_mut().zip(&*mean), |(s, m), x| {
            let deviation = x - *m;
            *s += deviation * deviation;
        });
    }

    let denominator = n.saturating_sub(1) as f32;
    let total: f64 = squares
        .iter()
        .map(|s| f64::from(libm::sqrtf(s / denominator)))
        .sum();
    Ok((total / dim as f64) as f32)
}

/// `n` when `len == n·dim`; `InvalidParameter` for `dim == 0`, else `DimensionMismatch`
/// (expected: the largest multiple of `dim` not above `len`).
fn row_count(len: usize, dim: usize) -> SslResult<usize> {
    let n = len.checked_div(dim).ok_or(SslError::InvalidParameter {
        name: "dim",
        reason: "must be at least 1",
    })?;
    check_len(n.saturating_mul(dim), len)?;
    Ok(n)
}

/// How one row is brought to unit length.
#[derive(Clone, Copy)]
enum RowScale {
    /// `x / max(‖row‖, 1e-12)`, as `F.normalize` computes it.
    Norm(f32),
    /// `(x / peak) / ‖row / peak‖`, for a row whose sum of squares overflows `f32`
    /// (its norm is then far above the `1e-12` floor).
    PeakThenNorm(f32, f32),
}

impl RowScale {
    /// The divisor(s) for `row` (finite values).
    fn of(row: &[f32]) -> Self {
        let sum_squares = Scalar::sum_squares(row);
        if sum_squares.is_finite() {
            return Self::Norm(libm::sqrtf(sum_squares).max(NORM_FLOOR));
        }
        let peak = row.iter().fold(0.0_f32, |peak, x| peak.max(x.abs()));
        let scaled = row.iter().fold(0.0_f32, |sum, x| {
            let y = x / peak;
            sum + y * y
        });
        Self::PeakThenNorm(peak, libm::sqrtf(scaled))
    }

    /// Calls `f(a, x̂)` for each accumulator `a` beside its normalised value `x̂`.
    #[inline(always)]
    fn zip_normalised<A>(
        self,
        row: &[f32],
        accumulators: impl Iterator<Item = A>,
        mut f: impl FnMut(A, f32),
    ) {
        match self {
            Self::Norm(norm) => accumulators.zip(row).for_each(|(a, x)| f(a, x / norm)),
            Self::PeakThenNorm(peak, norm) => accumulators
                .zip(row)
                .for_each(|(a, x)| f(a, x / peak / norm)),
        }
    }
}

/// lightly's collapse level of a std of L2-normalised outputs: `max(0, 1 − √dim·std)`.
///
/// 0 for healthy outputs (`std ≈ 1/√dim`), 1 for collapsed ones (`std = 0`). Computed in
/// `f64`, as lightly's Python does, and rounded to `f32`. A NaN `std` gives NaN (lightly's
/// `max(0., nan)` would print 0, "not collapsed"); `dim = 0` gives 1.
///
/// # Examples
/// ```
/// use simsiam::train::collapse_level;
/// assert_eq!(collapse_level(0.0, 2048), 1.0);
/// assert_eq!(collapse_level(0.5, 4), 0.0); // 1/√4: healthy
/// assert_eq!(collapse_level(0.125, 4), 0.75);
/// ```
#[must_use]
pub fn collapse_level(std: f32, dim: usize) -> f32 {
    level(f64::from(std), dim) as f32
}

/// `max(0, 1 − √dim·std)` in `f64`, NaN kept.
fn level(std: f64, dim: usize) -> f64 {
    let level = 1.0 - libm::sqrt(dim as f64) * std;
    if level.is_nan() {
        level
    } else {
        level.max(0.0)
    }
}

/// lightly's streaming collapse monitor: an exponential moving average of the batch
/// [`output_std`], `avg ← w·avg + (1 − w)·std`, with `w = 0.9` by default.
///
/// Exactly lightly's SimSiam example (`avg_output_std`): the average starts at `0.0`
/// and the first update makes it `(1 − w)·std`, so the first readings are biased towards
/// collapse (after `k` updates the zero start still weighs `w^k`: 0.35 after 10, 0.1
/// after 22, 0.01 after 44 with `w = 0.9`). The state is kept and updated in `f64`, as
/// lightly's Python floats are: given the same batch stds, the average is lightly's bit
/// for bit.
///
/// # Memory
/// 24 bytes (the weight, the average, the last `dim`); each [`update`](Self::update)
/// needs the `2·dim` floats of scratch of [`output_std`].
///
/// # Examples
/// ```
/// use simsiam::train::{CollapseMonitor, output_std_scratch_len};
/// const DIM: usize = 2;
/// let mut scratch = [0.0_f32; output_std_scratch_len(DIM)];
/// let mut monitor = CollapseMonitor::new();
/// assert_eq!(monitor.collapse_level(), 1.0); // nothing seen yet: lightly starts at 0
///
/// // Healthy batches (orthogonal rows: std = 1/√2) for a while...
/// for _ in 0..60 {
///     let std = monitor.update(&[1.0, 0.0, 0.0, 1.0], DIM, &mut scratch)?;
///     assert!((std - core::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// }
/// assert!((monitor.normalized_std() - 1.0).abs() < 0.01); // ≈ 1: healthy
/// assert!(monitor.collapse_level() < 0.01);
///
/// // ...then collapsed ones (identical rows: std = 0).
/// for _ in 0..60 {
///     assert_eq!(monitor.update(&[0.6, 0.8, 0.6, 0.8], DIM, &mut scratch)?, 0.0);
/// }
/// assert!(monitor.normalized_std() < 0.01); // ≈ 0: collapsed
/// assert!(monitor.collapse_level() > 0.99);
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollapseMonitor {
    /// `w`, the weight of the previous average.
    weight: f64,
    /// `avg`, the moving average of the batch stds.
    average: f64,
    /// The `dim` of the last update (0 before the first).
    dim: usize,
}

impl CollapseMonitor {
    /// lightly's weight, `w = 0.9`.
    pub const DEFAULT_WEIGHT: f64 = 0.9;

    /// A monitor with lightly's weight `w = 0.9` and average 0.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            weight: Self::DEFAULT_WEIGHT,
            average: 0.0,
            dim: 0,
        }
    }

    /// A monitor with weight `w` (the share of the previous average kept at each
    /// update) and average 0. `w = 0` reports the last batch only.
    ///
    /// # Errors
    /// [`SslError::InvalidParameter`] unless `0 ≤ w < 1` (`w = 1` would never move).
    ///
    /// # Examples
    /// ```
    /// use simsiam::train::CollapseMonitor;
    /// assert!(CollapseMonitor::with_weight(0.99).is_ok());
    /// assert!(CollapseMonitor::with_weight(1.0).is_err());
    /// ```
    pub fn with_weight(weight: f64) -> SslResult<Self> {
        if !(0.0..1.0).contains(&weight) {
            return Err(SslError::InvalidParameter {
                name: "weight",
                reason: "must be in [0, 1)",
            });
        }
        Ok(Self {
            weight,
            ..Self::new()
        })
    }

    /// Takes one batch: computes its [`output_std`] and folds it into the average,
    /// `avg ← w·avg + (1 − w)·std` (in `f64`). Returns the batch's std.
    ///
    /// `outputs` is `n` rows of `dim` values (lightly monitors the predictor's output
    /// `p` of one view); `scratch` needs
    /// [`output_std_scratch_len(dim)`](output_std_scratch_len) floats.
    ///
    /// # Errors
    /// Those of [`output_std`]; the monitor is then left unchanged.
    pub fn update(&mut self, outputs: &[f32], dim: usize, scratch: &mut [f32]) -> SslResult<f32> {
        let std = output_std(outputs, dim, scratch)?;
        self.average = self.weight * self.average + (1.0 - self.weight) * f64::from(std);
        self.dim = dim;
        Ok(std)
    }

    /// The moving average of the batch stds (`avg_output_std`); 0 before any update.
    #[must_use]
    pub const fn average_std(&self) -> f64 {
        self.average
    }

    /// lightly's collapse level of the average, `max(0, 1 − √dim·avg)` with the `dim` of
    /// the last update: 0 healthy, 1 collapsed (1 before any update, as lightly starts).
    #[must_use]
    pub fn collapse_level(&self) -> f64 {
        level(self.average, self.dim)
    }

    /// The average relative to the healthy value `1/√dim`: `√dim·avg`, with the `dim` of
    /// the last update. About 1 healthy, 0 collapsed (0 before any update).
    #[must_use]
    pub fn normalized_std(&self) -> f64 {
        libm::sqrt(self.dim as f64) * self.average
    }
}

impl Default for CollapseMonitor {
    /// [`CollapseMonitor::new`]: weight 0.9, average 0.
    fn default() -> Self {
        Self::new()
    }
}
