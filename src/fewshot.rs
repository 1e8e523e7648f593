//! A few-shot classifier for any device: the nearest class mean on standardised features,
//! learned one labelled feature vector at a time, in the caller's storage.
//!
//! Each labelled feature `x` (an encoder output, `dim` floats) updates, by Welford's
//! recurrences in `f32`,
//! - the mean `μ` and the sum of squared deviations `M2` of every feature over all the
//!   labelled windows (the standardisation: `σ² = M2 / n`, population, as
//!   `sklearn.preprocessing.StandardScaler` computes it);
//! - the mean `m_c` of its class `c`.
//!
//! A query `q` goes to the class with windows whose mean is nearest in the standardised
//! space, `argmin_c Σ_j (q_j − m_cj)² / σ_j²` (the same as the squared distance between
//! `(q − μ)/σ` and `(m_c − μ)/σ`), with `σ_j² = 1` for a feature of zero variance
//! (StandardScaler's rule); ties go to the lowest class index.
//!
//! # Memory
//! The caller's storage, [`NearestClassMean::storage_len`]`(dim, classes)` =
//! `(classes + 2)·dim + classes + 1` floats (the statistics, the class means, the counts);
//! no heap, a few words of stack.
//!
//! # Examples
//! ```
//! use simsiam::fewshot::NearestClassMean;
//! let (dim, classes) = (2, 3);
//! let mut storage = [0.0_f32; 14];
//! assert_eq!(NearestClassMean::<&mut [f32]>::storage_len(dim, classes)?, storage.len());
//! let mut classifier = NearestClassMean::new(dim, classes, &mut storage[..])?;
//! classifier.add(&[0.0, 0.0], 0)?;
//! classifier.add(&[0.2, 0.0], 0)?;
//! classifier.add(&[5.0, 1.0], 1)?;
//! classifier.add(&[5.0, 1.2], 1)?;
//! classifier.add(&[0.0, 9.0], 2)?;
//! assert_eq!(classifier.predict(&[4.0, 1.0])?, 1);
//! assert_eq!(classifier.predict(&[0.1, 8.0])?, 2);
//! # Ok::<(), simsiam::SslError>(())
//! ```

use crate::error::{SslError, SslResult, check_finite, check_len};
use crate::kernels::pieces;

/// The largest count of windows, overall or in one class, an `f32` counter holds exactly.
pub const MAX_WINDOWS: usize = 1 << 24;

/// The nearest-class-mean classifier on standardised features over storage `S` (anything
/// with [`storage_len`](Self::storage_len) floats: `[f32; N]`, `&mut [f32]`, `Vec<f32>`).
/// See [the module](self) for the rule.
#[derive(Debug, Clone)]
pub struct NearestClassMean<S> {
    dim: usize,
    classes: usize,
    storage: S,
}

const OVERFLOW: SslError = SslError::InvalidParameter {
    name: "classes",
    reason: "storage length overflows usize",
};

impl<S: AsRef<[f32]> + AsMut<[f32]>> NearestClassMean<S> {
    /// Floats of storage for `classes` classes of `dim`-float features:
    /// `(classes + 2)·dim + classes + 1`.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero `dim` or `classes`, or a length overflowing `usize`.
    pub fn storage_len(dim: usize, classes: usize) -> SslResult<usize> {
        if dim == 0 {
            return Err(SslError::InvalidParameter {
                name: "dim",
                reason: "must be at least 1",
            });
        }
        if classes == 0 {
            return Err(SslError::InvalidParameter {
                name: "classes",
                reason: "must be at least 1",
            });
        }
        classes
            .checked_add(2)
            .and_then(|rows| rows.checked_mul(dim))
            .and_then(|floats| floats.checked_add(classes))
            .and_then(|floats| floats.checked_add(1))
            .ok_or(OVERFLOW)
    }

    /// An empty classifier (no window yet) over `storage`, which it zeroes.
    ///
    /// # Errors
    /// [`storage_len`](Self::storage_len)'s errors; `DimensionMismatch` when `storage`
    /// is not that long.
    pub fn new(dim: usize, classes: usize, storage: S) -> SslResult<Self> {
        let needed = Self::storage_len(dim, classes)?;
        let mut storage = storage;
        check_len(needed, storage.as_ref().len())?;
        storage.as_mut().fill(0.0);
        Ok(Self {
            dim,
            classes,
            storage,
        })
    }

    /// A classifier over `storage` as an earlier one left it (its windows kept): for
    /// callers that keep only the storage between calls (the C API).
    ///
    /// # Errors
    /// As [`new`](Self::new); `InvalidParameter` (`"storage"`) when a count in it is
    /// not a whole number from 0 to [`MAX_WINDOWS`], or the classes' counts do not add up
    /// to the total.
    pub fn from_storage(dim: usize, classes: usize, storage: S) -> SslResult<Self> {
        let needed = Self::storage_len(dim, classes)?;
        check_len(needed, storage.as_ref().len())?;
        let classifier = Self {
            dim,
            classes,
            storage,
        };
        let (_, _, _, counts, total) = classifier.parts();
        let whole = |c: f32| (0.0..=MAX_WINDOWS as f32).contains(&c) && (c as u32) as f32 == c;
        let sum = counts.iter().fold(0.0_f32, |sum, &c| sum + c);
        if !counts.iter().all(|&c| whole(c)) || !whole(total) || sum != total {
            return Err(SslError::InvalidParameter {
                name: "storage",
                reason: "not a classifier's storage (bad counts)",
            });
        }
        Ok(classifier)
    }

    /// Feature width.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of classes (labels `0..classes`).
    #[must_use]
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Forgets every window (zeroes the storage).
    pub fn clear(&mut self) {
        self.storage.as_mut().fill(0.0);
    }

    /// The storage, cut: `μ`, `M2`, the class means (`classes × dim`), the class counts,
    /// the total count.
    fn parts(&self) -> (&[f32], &[f32], &[f32], &[f32], f32) {
        let (mean, rest) = split(self.storage.as_ref(), self.dim);
        let (m2, rest) = split(rest, self.dim);
        let (class_means, rest) = split(rest, self.classes.saturating_mul(self.dim));
        let (counts, rest) = split(rest, self.classes);
        (
            mean,
            m2,
            class_means,
            counts,
            rest.first().copied().unwrap_or(0.0),
        )
    }

    /// Windows added to `class` so far (0 for a class out of range).
    #[must_use]
    pub fn class_count(&self, class: usize) -> usize {
        let (_, _, _, counts, _) = self.parts();
        counts.get(class).map_or(0, |&c| c as usize)
    }

    /// Windows added so far, over all classes.
    #[must_use]
    pub fn count(&self) -> usize {
        let (_, _, _, _, total) = self.parts();
        total as usize
    }

    /// The mean of `class`'s features (`dim` floats; zeros for a class without windows),
    /// or `None` for a class out of range.
    #[must_use]
    pub fn class_mean(&self, class: usize) -> Option<&[f32]> {
        let (_, _, class_means, _, _) = self.parts();
        let start = class.checked_mul(self.dim)?;
        class_means.get(start..start.checked_add(self.dim)?)
    }

    /// Adds one labelled feature vector: updates the standardisation and `class`'s mean.
    ///
    /// # Errors
    /// `DimensionMismatch` when `feature` is not `dim` long; `InvalidParameter`
    /// (`"class"`) for a class out of range; `NonFinite` (`"feature"`) for a non-finite
    /// value; `InvalidParameter` (`"count"`) past [`MAX_WINDOWS`] windows. On any error
    /// the classifier is unchanged.
    pub fn add(&mut self, feature: &[f32], class: usize) -> SslResult<()> {
        check_len(self.dim, feature.len())?;
        if class >= self.classes {
            return Err(SslError::InvalidParameter {
                name: "class",
                reason: "not below the number of classes",
            });
        }
        check_finite(feature, "feature")?;
        let (dim, classes) = (self.dim, self.classes);
        let (mean, rest) = split_mut(self.storage.as_mut(), dim);
        let (m2, rest) = split_mut(rest, dim);
        let (class_means, rest) = split_mut(rest, classes.saturating_mul(dim));
        let (counts, rest) = split_mut(rest, classes);
        let (Some(total), Some(class_count)) = (rest.first_mut(), counts.get_mut(class)) else {
            return Err(OVERFLOW);
        };
        if *total >= MAX_WINDOWS as f32 {
            return Err(SslError::InvalidParameter {
                name: "count",
                reason: "more than 2^24 windows",
            });
        }
        let start = class.checked_mul(dim).ok_or(OVERFLOW)?;
        let end = start.checked_add(dim).ok_or(OVERFLOW)?;
        let class_mean = class_means.get_mut(start..end).ok_or(OVERFLOW)?;
        *total += 1.0;
        *class_count += 1.0;
        let (n, n_class) = (*total, *class_count);
        for (((&x, mu), m2), m_c) in feature.iter().zip(mean).zip(m2).zip(class_mean) {
            let delta = x - *mu;
            *mu += delta / n;
            *m2 += delta * (x - *mu);
            *m_c += (x - *m_c) / n_class;
        }
        Ok(())
    }

    /// The squared standardised distance from `feature` to each class mean into `out`
    /// (`classes` floats; `+∞` for a class without windows).
    ///
    /// # Errors
    /// `DimensionMismatch` when `feature` is not `dim` long, then when `out` is not
    /// `classes` long; `NonFinite` (`"feature"`) for a non-finite value;
    /// `InvalidParameter` (`"classifier"`) when no window was added.
    pub fn distances_into(&self, feature: &[f32], out: &mut [f32]) -> SslResult<()> {
        check_len(self.dim, feature.len())?;
        check_len(self.classes, out.len())?;
        check_finite(feature, "feature")?;
        let (_, m2, class_means, counts, total) = self.parts();
        if total < 1.0 {
            return Err(SslError::InvalidParameter {
                name: "classifier",
                reason: "no labelled window added yet",
            });
        }
        for ((distance, m_c), &count) in out
            .iter_mut()
            .zip(pieces(class_means, self.dim))
            .zip(counts)
        {
            *distance = if count < 1.0 {
                f32::INFINITY
            } else {
                standardised_distance(feature, m_c, m2, total)
            };
        }
        Ok(())
    }

    /// The class of `feature`: the nearest class mean in the standardised space (the
    /// lowest index among equals; classes without windows never win).
    ///
    /// # Errors
    /// As [`distances_into`](Self::distances_into) (without `out`).
    pub fn predict(&self, feature: &[f32]) -> SslResult<usize> {
        check_len(self.dim, feature.len())?;
        check_finite(feature, "feature")?;
        let (_, m2, class_means, counts, total) = self.parts();
        if total < 1.0 {
            return Err(SslError::InvalidParameter {
                name: "classifier",
                reason: "no labelled window added yet",
            });
        }
        let mut best = (0, f32::INFINITY, false);
        for ((m_c, &count), class) in pieces(class_means, self.dim)
            .zip(counts)
            .zip(0..self.classes)
        {
            if count < 1.0 {
                continue;
            }
            let distance = standardised_distance(feature, m_c, m2, total);
            // The first class with windows wins even at +∞ (an overflowing distance).
            if !best.2 || distance < best.1 {
                best = (class, distance, true);
            }
        }
        Ok(best.0)
    }
}

/// `Σ_j (q_j − m_j)² / σ_j²` with `σ_j² = M2_j / n`, 1 where that is not positive; summed
/// in feature order, each term `(d·d) / σ²` rounded as written.
fn standardised_distance(q: &[f32], m: &[f32], m2: &[f32], n: f32) -> f32 {
    q.iter()
        .zip(m)
        .zip(m2)
        .fold(0.0_f32, |sum, ((&q, &m), &m2)| {
            let var = m2 / n;
            let var = if var > 0.0 { var } else { 1.0 };
            let diff = q - m;
            sum + diff * diff / var
        })
}

/// `values` cut after `at` (all of it and nothing when shorter).
fn split(values: &[f32], at: usize) -> (&[f32], &[f32]) {
    values.split_at(at.min(values.len()))
}

/// `values` cut after `at` (all of it and nothing when shorter).
fn split_mut(values: &mut [f32], at: usize) -> (&mut [f32], &mut [f32]) {
    let at = at.min(values.len());
    values.split_at_mut(at)
}
