//! Two augmented views of a sensor window (issue 21's recipe), seeded and without heap,
//! so the host and the firmware make the same views from the same seed.
//!
//! A window is `channels × len` `f32`, channel-major (element `c·len + t`). For the
//! HAPT recipe, `channels = 6`: acc x, y, z (g), then gyro x, y, z (rad/s), and
//! `len = 128`. Each view of a raw window is built in this order:
//! 1. **rotation** ([`Rotation::random`], [`rotate_triads_into`]): one uniformly random
//!    rotation applied to every triad of channels (`3k, 3k+1, 3k+2`) — for HAPT the acc
//!    and the gyro triad with the same matrix — each sample's `(x, y, z)` rotated;
//! 2. **standardisation** ([`standardize`]): `(v − mean_c) / std_c` per channel;
//! 3. **scale** ([`scale_channels`]): channel `c` times `s_c = 1 + σ_scale·n_c`,
//!    `n_c ~ N(0, 1)`, one draw per channel per view;
//! 4. **jitter** ([`add_jitter`]): `v + σ_jitter·n` with `n ~ N(0, 1)` per element.
//!
//! [`Augmenter`] validates the shape, the statistics and the [`ViewRecipe`] once and
//! runs the four steps for one view, two views, or a batch of windows.
//!
//! # The random stream (the firmware and the host replay it bit for bit)
//! One [`Xoshiro128PlusPlus`]; every normal is one [`Xoshiro128PlusPlus::next_normal`]
//! (a ziggurat: one `next_u32` 97.2 % of the time, more on its slow path, exactly as
//! documented there). Per view, in this order:
//! 1. if [`ViewRecipe::rotate`]: 4 normals `w, x, y, z` (the quaternion; all four drawn
//!    again in the rare case `|q|² < 10⁻⁶`);
//! 2. `channels` normals `n_0 … n_{C−1}`, the scales;
//! 3. `channels·len` normals, the jitter, in element order (`c·len + t`: channel 0's
//!    samples first).
//!
//! [`Augmenter::two_views`] makes view 1, then view 2; [`Augmenter::two_views_batch`]
//! makes window 0's two views, then window 1's, and so on. The number of draws depends
//! on `rotate`, `channels` and `len` only, not on the sigmas or the data.
//!
//! Every operation is one `f32` operation rounded to nearest, none fused (Rust never
//! contracts `a·b + c`), so the bits do not depend on the target or its features:
//! element `(c, t)` of a view, with `k = ⌊c/3⌋`, `r = c mod 3`, `M` the rotation, is
//! ```text
//! v = (M[r][0]·raw[3k][t] + M[r][1]·raw[3k+1][t]) + M[r][2]·raw[3k+2][t]   (rotate)
//! v = (v − mean[c]) / std[c]
//! v = v · (1 + σ_scale·n_c)
//! v = v + σ_jitter·n_{c,t}
//! ```
//!
//! # Memory
//! No heap; the caller's buffers only, plus a few words of stack.
//!
//! # Examples
//! ```
//! use simsiam::augment::{Augmenter, ViewRecipe, Xoshiro128PlusPlus};
//! let (channels, len) = (6, 128);
//! let raw: Vec<f32> = (0..channels * len).map(|i| (i as f32 * 0.1).sin()).collect();
//! let (mean, std) = ([0.0; 6], [0.5; 6]);
//! let augmenter = Augmenter::new(ViewRecipe::HAPT, channels, len, &mean, &std)?;
//! let mut rng = Xoshiro128PlusPlus::from_seed(42);
//! let (mut view1, mut view2) = (vec![0.0; channels * len], vec![0.0; channels * len]);
//! augmenter.two_views(&raw, &mut rng, &mut view1, &mut view2)?;
//! assert_ne!(view1, view2);
//! // The same seed gives the same views.
//! let mut again = vec![0.0; channels * len];
//! augmenter.view_into(&raw, &mut Xoshiro128PlusPlus::from_seed(42), &mut again)?;
//! assert_eq!(again, view1);
//! # Ok::<(), simsiam::SslError>(())
//! ```

mod rng;
mod rotation;
mod ziggurat;

pub use rng::Xoshiro128PlusPlus;
pub use rotation::Rotation;

use crate::error::{check_finite, check_len};
use crate::kernels::{pieces, pieces_mut};
use crate::{SslError, SslResult};

/// The augmentations' settings (issue 21's `hapt-dense` recipe: [`ViewRecipe::HAPT`]).
///
/// # Examples
/// ```
/// use simsiam::augment::ViewRecipe;
/// assert_eq!(ViewRecipe::default(), ViewRecipe::HAPT);
/// let no_rotation = ViewRecipe { rotate: false, ..ViewRecipe::HAPT };
/// assert!(no_rotation.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewRecipe {
    /// Rotate the triads by a random rotation (step 1); `false` skips the step and its
    /// four draws.
    pub rotate: bool,
    /// Standard deviation of the per-channel scale around 1 (step 3).
    pub scale_sigma: f32,
    /// Standard deviation of the per-element additive jitter (step 4).
    pub jitter_sigma: f32,
}

impl ViewRecipe {
    /// The recipe of issue 21: rotation, scale N(1, 0.1²), jitter N(0, 0.1²).
    pub const HAPT: Self = Self {
        rotate: true,
        scale_sigma: 0.1,
        jitter_sigma: 0.1,
    };

    /// Checks the sigmas.
    ///
    /// # Errors
    /// `InvalidParameter` (`"scale_sigma"` or `"jitter_sigma"`) for a negative or
    /// non-finite sigma.
    pub fn validate(&self) -> SslResult<()> {
        check_sigma("scale_sigma", self.scale_sigma)?;
        check_sigma("jitter_sigma", self.jitter_sigma)
    }
}

impl Default for ViewRecipe {
    fn default() -> Self {
        Self::HAPT
    }
}

/// A [`ViewRecipe`] bound to a window shape and the per-channel statistics, validated
/// once; makes views of raw windows into caller buffers.
///
/// # Examples
/// ```
/// use simsiam::augment::{Augmenter, ViewRecipe, Xoshiro128PlusPlus};
/// let (mean, std) = ([0.1_f32; 6], [2.0_f32; 6]);
/// let augmenter = Augmenter::new(ViewRecipe::HAPT, 6, 4, &mean, &std)?;
/// let raws = [0.5_f32; 3 * 6 * 4]; // three windows, one after another
/// let (mut views1, mut views2) = ([0.0; 3 * 24], [0.0; 3 * 24]);
/// let mut rng = Xoshiro128PlusPlus::from_seed(1);
/// augmenter.two_views_batch(&raws, 3, &mut rng, &mut views1, &mut views2)?;
/// assert!(views1.iter().chain(&views2).all(|v| v.is_finite()));
/// # Ok::<(), simsiam::SslError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmenter<'a> {
    recipe: ViewRecipe,
    channels: usize,
    len: usize,
    window_len: usize,
    mean: &'a [f32],
    std: &'a [f32],
}

impl<'a> Augmenter<'a> {
    /// Binds `recipe` to windows of `channels × len` with per-channel `mean` and `std`.
    ///
    /// # Errors
    /// In this order: `InvalidParameter` for a bad sigma ([`ViewRecipe::validate`]), a
    /// zero `channels` or `len`, `channels` not a multiple of 3 when the recipe rotates,
    /// or `channels·len` overflowing `usize`; `DimensionMismatch` when `mean` or `std`
    /// (in that order) does not have `channels` elements; `NonFinite` (`"mean"`) for a
    /// non-finite mean; `InvalidParameter` (`"std"`) for a std that is not finite and
    /// positive.
    pub fn new(
        recipe: ViewRecipe,
        channels: usize,
        len: usize,
        mean: &'a [f32],
        std: &'a [f32],
    ) -> SslResult<Self> {
        recipe.validate()?;
        let window_len = window_len(channels, len)?;
        if recipe.rotate {
            check_triads(channels)?;
        }
        check_statistics(channels, mean, std)?;
        Ok(Self {
            recipe,
            channels,
            len,
            window_len,
            mean,
            std,
        })
    }

    /// The recipe.
    #[must_use]
    pub const fn recipe(&self) -> ViewRecipe {
        self.recipe
    }

    /// Channels per window.
    #[must_use]
    pub const fn channels(&self) -> usize {
        self.channels
    }

    /// Samples per channel (`len`).
    #[must_use]
    pub const fn samples(&self) -> usize {
        self.len
    }

    /// `channels·len`, the length of a window and of a view.
    #[must_use]
    pub const fn window_len(&self) -> usize {
        self.window_len
    }

    /// One view of `raw` into `out` (the four steps, drawing as the module documents).
    ///
    /// # Errors
    /// `DimensionMismatch` when `raw`, then `out`, is not `channels·len` long;
    /// `NonFinite` (`"window"`) for a non-finite raw value (no draw is made then);
    /// `NonFinite` (`"view"`) when the view overflows (its draws are made, `out` holds
    /// the partial result).
    pub fn view_into(
        &self,
        raw: &[f32],
        rng: &mut Xoshiro128PlusPlus,
        out: &mut [f32],
    ) -> SslResult<()> {
        check_len(self.window_len, raw.len())?;
        check_len(self.window_len, out.len())?;
        check_finite(raw, "window")?;
        self.view_unchecked(raw, rng, out)
    }

    /// Two views of `raw`: view 1, then view 2, from the same stream.
    ///
    /// # Errors
    /// `DimensionMismatch` when `raw`, `view1` or `view2` (in that order) is not
    /// `channels·len` long; `NonFinite` (`"window"`) for a non-finite raw value (no
    /// draw is made then); `NonFinite` (`"view"`) when a view overflows.
    pub fn two_views(
        &self,
        raw: &[f32],
        rng: &mut Xoshiro128PlusPlus,
        view1: &mut [f32],
        view2: &mut [f32],
    ) -> SslResult<()> {
        check_len(self.window_len, raw.len())?;
        check_len(self.window_len, view1.len())?;
        check_len(self.window_len, view2.len())?;
        check_finite(raw, "window")?;
        self.view_unchecked(raw, rng, view1)?;
        self.view_unchecked(raw, rng, view2)
    }

    /// Two views of each of `n` windows laid one after another in `raws`
    /// (`n·channels·len` floats); window `i`'s views go to the same place in `views1`
    /// and `views2`. The same as [`two_views`](Self::two_views) on each window in turn.
    ///
    /// # Errors
    /// `InvalidParameter` (`"n"`) when `n·channels·len` overflows; `DimensionMismatch`
    /// when `raws`, `views1` or `views2` (in that order) is not that long;
    /// `NonFinite` (`"window"`) for a non-finite raw value anywhere (no draw is made
    /// then); `NonFinite` (`"view"`) when a view overflows (the windows before it are
    /// done).
    pub fn two_views_batch(
        &self,
        raws: &[f32],
        n: usize,
        rng: &mut Xoshiro128PlusPlus,
        views1: &mut [f32],
        views2: &mut [f32],
    ) -> SslResult<()> {
        let total = n
            .checked_mul(self.window_len)
            .ok_or(SslError::InvalidParameter {
                name: "n",
                reason: "n × channels × len overflows usize",
            })?;
        check_len(total, raws.len())?;
        check_len(total, views1.len())?;
        check_len(total, views2.len())?;
        check_finite(raws, "window")?;
        let windows = pieces(raws, self.window_len)
            .zip(pieces_mut(views1, self.window_len))
            .zip(pieces_mut(views2, self.window_len));
        for ((raw, view1), view2) in windows {
            self.view_unchecked(raw, rng, view1)?;
            self.view_unchecked(raw, rng, view2)?;
        }
        Ok(())
    }

    /// One view; the lengths are `window_len` and `raw` is finite.
    fn view_unchecked(
        &self,
        raw: &[f32],
        rng: &mut Xoshiro128PlusPlus,
        out: &mut [f32],
    ) -> SslResult<()> {
        if self.recipe.rotate {
            let rotation = Rotation::random(rng);
            rotate_unchecked(raw, self.len, &rotation, out);
        } else {
            for (o, &r) in out.iter_mut().zip(raw) {
                *o = r;
            }
        }
        standardize_unchecked(out, self.len, self.mean, self.std);
        scale_unchecked(out, self.len, self.recipe.scale_sigma, rng);
        jitter_unchecked(out, self.recipe.jitter_sigma, rng);
        check_finite(out, "view")
    }
}

/// Step 1: every triad of channels of `raw` rotated by `rotation` into `out`.
///
/// Channels `3k, 3k+1, 3k+2` are one triad; each sample `t` gives
/// `out[3k+r][t] = (M[r][0]·raw[3k][t] + M[r][1]·raw[3k+1][t]) + M[r][2]·raw[3k+2][t]`.
/// Each sample's norm is kept within [`Rotation::NORM_BOUND`] (relative) for a
/// [`Rotation`] from a quaternion, while no product underflows: it is [`Rotation::apply`]
/// on every sample.
///
/// # Errors
/// `InvalidParameter` for a zero `channels` or `len`, `channels` not a multiple of 3,
/// or `channels·len` overflowing; `DimensionMismatch` when `raw`, then `out`, is not
/// `channels·len` long; `NonFinite` for a non-finite `raw` value (`"window"`) or matrix
/// entry (`"rotation"`), or an overflowing result (`"view"`).
///
/// # Examples
/// ```
/// use simsiam::augment::{Rotation, rotate_triads_into};
/// let swap_xy = Rotation { matrix: [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]] };
/// let raw = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 channels × 2 samples
/// let mut out = [0.0; 6];
/// rotate_triads_into(&raw, 3, 2, &swap_xy, &mut out)?;
/// assert_eq!(out, [3.0, 4.0, 1.0, 2.0, 5.0, 6.0]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn rotate_triads_into(
    raw: &[f32],
    channels: usize,
    len: usize,
    rotation: &Rotation,
    out: &mut [f32],
) -> SslResult<()> {
    let window_len = window_len(channels, len)?;
    check_triads(channels)?;
    check_len(window_len, raw.len())?;
    check_len(window_len, out.len())?;
    check_finite(raw, "window")?;
    check_finite(rotation.matrix.as_flattened(), "rotation")?;
    rotate_unchecked(raw, len, rotation, out);
    check_finite(out, "view")
}

/// Step 2: `v = (v − mean[c]) / std[c]` for every sample of channel `c`, in place.
///
/// # Errors
/// `InvalidParameter` for a zero `channels` or `len`, or `channels·len` overflowing;
/// `DimensionMismatch` when `window` (`channels·len`), `mean` or `std` (`channels`) has
/// another length, in that order; `NonFinite` for a non-finite `mean` (`"mean"`) or
/// `window` value (`"window"`), or an overflowing result (`"view"`); `InvalidParameter`
/// (`"std"`) for a std that is not finite and positive.
///
/// # Examples
/// ```
/// use simsiam::augment::standardize;
/// let mut window = [1.0, 3.0, 10.0, 20.0]; // 2 channels × 2 samples
/// standardize(&mut window, 2, 2, &[2.0, 15.0], &[1.0, 5.0])?;
/// assert_eq!(window, [-1.0, 1.0, -1.0, 1.0]);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn standardize(
    window: &mut [f32],
    channels: usize,
    len: usize,
    mean: &[f32],
    std: &[f32],
) -> SslResult<()> {
    let window_len = window_len(channels, len)?;
    check_len(window_len, window.len())?;
    check_statistics(channels, mean, std)?;
    check_finite(window, "window")?;
    standardize_unchecked(window, len, mean, std);
    check_finite(window, "view")
}

/// Step 3: channel `c` times `1 + sigma·n_c`, with `channels` normals drawn in channel
/// order, in place.
///
/// # Errors
/// `InvalidParameter` for a zero `channels` or `len`, `channels·len` overflowing, or a
/// negative or non-finite `sigma` (`"scale_sigma"`); `DimensionMismatch` when `window`
/// is not `channels·len` long; `NonFinite` for a non-finite `window` value
/// (`"window"`; no draw is made then) or an overflowing result (`"view"`).
///
/// # Examples
/// ```
/// use simsiam::augment::{Xoshiro128PlusPlus, scale_channels};
/// let mut window = [1.0; 6]; // 2 channels × 3 samples
/// scale_channels(&mut window, 2, 3, 0.1, &mut Xoshiro128PlusPlus::from_seed(5))?;
/// assert!(window[..3].iter().all(|&v| v == window[0]));
/// assert!(window[3..].iter().all(|&v| v == window[3]));
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn scale_channels(
    window: &mut [f32],
    channels: usize,
    len: usize,
    sigma: f32,
    rng: &mut Xoshiro128PlusPlus,
) -> SslResult<()> {
    let window_len = window_len(channels, len)?;
    check_sigma("scale_sigma", sigma)?;
    check_len(window_len, window.len())?;
    check_finite(window, "window")?;
    scale_unchecked(window, len, sigma, rng);
    check_finite(window, "view")
}

/// Step 4: `v = v + sigma·n` for every element, with one normal per element drawn in
/// element order, in place.
///
/// # Errors
/// `InvalidParameter` (`"jitter_sigma"`) for a negative or non-finite `sigma`;
/// `NonFinite` for a non-finite `window` value (`"window"`; no draw is made then) or an
/// overflowing result (`"view"`).
///
/// # Examples
/// ```
/// use simsiam::augment::{Xoshiro128PlusPlus, add_jitter};
/// let mut window = [0.0; 1000];
/// add_jitter(&mut window, 0.1, &mut Xoshiro128PlusPlus::from_seed(9))?;
/// let rms = (window.iter().map(|v| v * v).sum::<f32>() / 1000.0).sqrt();
/// assert!((rms - 0.1).abs() < 0.01);
/// # Ok::<(), simsiam::SslError>(())
/// ```
pub fn add_jitter(window: &mut [f32], sigma: f32, rng: &mut Xoshiro128PlusPlus) -> SslResult<()> {
    check_sigma("jitter_sigma", sigma)?;
    check_finite(window, "window")?;
    jitter_unchecked(window, sigma, rng);
    check_finite(window, "view")
}

/// `channels·len`, both positive.
fn window_len(channels: usize, len: usize) -> SslResult<usize> {
    if channels == 0 {
        return Err(SslError::InvalidParameter {
            name: "channels",
            reason: "must be positive",
        });
    }
    if len == 0 {
        return Err(SslError::InvalidParameter {
            name: "len",
            reason: "must be positive",
        });
    }
    channels.checked_mul(len).ok_or(SslError::InvalidParameter {
        name: "channels",
        reason: "channels × len overflows usize",
    })
}

/// Rotation needs whole `(x, y, z)` triads.
fn check_triads(channels: usize) -> SslResult<()> {
    if channels.is_multiple_of(3) {
        Ok(())
    } else {
        Err(SslError::InvalidParameter {
            name: "channels",
            reason: "rotation needs whole (x, y, z) triads: a multiple of 3",
        })
    }
}

/// `mean` and `std` have `channels` elements, the means are finite, the stds finite and
/// positive.
fn check_statistics(channels: usize, mean: &[f32], std: &[f32]) -> SslResult<()> {
    check_len(channels, mean.len())?;
    check_len(channels, std.len())?;
    check_finite(mean, "mean")?;
    if std.iter().all(|s| s.is_finite() && *s > 0.0) {
        Ok(())
    } else {
        Err(SslError::InvalidParameter {
            name: "std",
            reason: "every channel's std must be finite and positive",
        })
    }
}

/// A sigma is finite and not negative.
fn check_sigma(name: &'static str, sigma: f32) -> SslResult<()> {
    if sigma.is_finite() && sigma >= 0.0 {
        Ok(())
    } else {
        Err(SslError::InvalidParameter {
            name,
            reason: "must be finite and not negative",
        })
    }
}

/// Step 1 on validated lengths (`raw` and `out` hold whole triads of `len`).
fn rotate_unchecked(raw: &[f32], len: usize, rotation: &Rotation, out: &mut [f32]) {
    // `3·len ≤ channels·len`, checked by the caller: never saturates (and no overflow
    // check is compiled in).
    let triad_len = len.saturating_mul(3);
    for (source, target) in pieces(raw, triad_len).zip(pieces_mut(out, triad_len)) {
        let (x, rest) = source.split_at_checked(len).unwrap_or_default();
        let (y, z) = rest.split_at_checked(len).unwrap_or_default();
        for (row, target_row) in rotation.matrix.iter().zip(pieces_mut(target, len)) {
            let [m0, m1, m2] = *row;
            for (((o, &a), &b), &c) in target_row.iter_mut().zip(x).zip(y).zip(z) {
                *o = m0 * a + m1 * b + m2 * c;
            }
        }
    }
}

/// Step 2 on validated lengths.
fn standardize_unchecked(window: &mut [f32], len: usize, mean: &[f32], std: &[f32]) {
    for ((channel, &m), &s) in pieces_mut(window, len).zip(mean).zip(std) {
        for v in channel {
            *v = (*v - m) / s;
        }
    }
}

/// Step 3 on a validated length: one draw per channel, in channel order.
fn scale_unchecked(window: &mut [f32], len: usize, sigma: f32, rng: &mut Xoshiro128PlusPlus) {
    for channel in pieces_mut(window, len) {
        let scale = 1.0 + sigma * rng.next_normal();
        for v in channel {
            *v *= scale;
        }
    }
}

/// Step 4: one draw per element, in element order.
fn jitter_unchecked(window: &mut [f32], sigma: f32, rng: &mut Xoshiro128PlusPlus) {
    // A local copy: its state stays in registers through the loop.
    let mut local = rng.clone();
    for v in window {
        *v += sigma * local.next_normal();
    }
    *rng = local;
}
