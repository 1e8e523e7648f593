//! The recipes' evaluation protocols on frozen features: a linear probe (multinomial
//! logistic regression as scikit-learn fits it) and nearest neighbours, on all labelled
//! training windows or on a few per class.
//!
//! Features are `n × dim` matrices of `f32`, row-major; labels are `i8`, the activities
//! 1–6 for the recipes (any values work: the classes are the distinct training labels).
//! Every protocol first standardises the features with its own training rows
//! ([`Standardiser`], scikit-learn's `StandardScaler`), then fits and scores on the test rows.
//! Accuracies are in percent of the test rows.
//!
//! # Examples
//! ```
//! use simsiam_hapt::probe::Protocols;
//! // two classes on one feature, 30 windows each; the test rows sit on either side
//! let train_x: Vec<f32> = (0..60).map(|i| if i < 30 { -1.0 - i as f32 } else { i as f32 }).collect();
//! let train_y: Vec<i8> = (0..60).map(|i| if i < 30 { 1 } else { 2 }).collect();
//! let scores = Protocols::RECIPE.evaluate(&train_x, &train_y, &[-3.0, 40.0], &[1, 2], 1, 7)?;
//! assert_eq!((scores.linear_all, scores.knn5_all, scores.nn1_5), (100.0, 100.0, 100.0));
//! assert!(scores.to_json().starts_with("{\"linear_all\": 100"));
//! # Ok::<(), simsiam_hapt::probe::ProbeError>(())
//! ```

mod knn;
mod lbfgs;
mod logistic;

use std::fmt;

pub use knn::knn_predict;
pub use logistic::{LogisticConfig, LogisticRegression};

/// Why a protocol could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeError {
    /// A feature dimension of 0.
    ZeroDimension,
    /// Matrix and label lengths disagree.
    ShapeMismatch {
        /// Which lengths.
        what: &'static str,
    },
    /// A feature is NaN or infinite.
    NonFinite,
    /// No training rows.
    EmptyTrainingSet,
    /// No test rows.
    EmptyTestSet,
    /// A logistic regression setting that is not positive and finite.
    InvalidConfig,
    /// The logistic regression's `f64` copy of the features does not fit in memory.
    TooLarge,
    /// Fewer training rows than neighbours asked for.
    TooFewNeighbours {
        /// Neighbours asked for.
        k: usize,
        /// Training rows.
        available: usize,
    },
    /// A class has fewer training rows than a few-label draw takes.
    TooFewPerClass {
        /// The class.
        class: i8,
        /// Its training rows.
        available: usize,
        /// Rows per class the draw takes.
        needed: usize,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroDimension => f.write_str("feature dimension 0"),
            Self::ShapeMismatch { what } => write!(f, "shape mismatch: {what}"),
            Self::NonFinite => f.write_str("a feature is NaN or infinite"),
            Self::EmptyTrainingSet => f.write_str("no training rows"),
            Self::EmptyTestSet => f.write_str("no test rows"),
            Self::InvalidConfig => f.write_str("C and tol must be positive and finite"),
            Self::TooLarge => f.write_str("the features' f64 copy does not fit in memory"),
            Self::TooFewNeighbours { k, available } => {
                write!(f, "{k} neighbours asked for, {available} training rows")
            }
            Self::TooFewPerClass {
                class,
                available,
                needed,
            } => write!(
                f,
                "class {class} has {available} training rows, the draw takes {needed}"
            ),
        }
    }
}

impl std::error::Error for ProbeError {}

/// Checks that `x` is `rows × dim` and finite; returns `rows`.
fn check_features(x: &[f32], dim: usize, rows: usize) -> Result<usize, ProbeError> {
    if dim == 0 {
        return Err(ProbeError::ZeroDimension);
    }
    if rows.checked_mul(dim) != Some(x.len()) {
        return Err(ProbeError::ShapeMismatch {
            what: "feature matrix length is not rows × dim",
        });
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(ProbeError::NonFinite);
    }
    Ok(rows)
}

/// The distinct labels, in increasing order.
fn classes_of(y: &[i8]) -> Vec<i8> {
    let mut classes = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    classes
}

/// Per-feature standardisation fitted on training rows, as scikit-learn's `StandardScaler`.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardiser {
    mean: Vec<f32>,
    scale: Vec<f32>,
}

impl Standardiser {
    /// The mean and standard deviation of each feature over the rows of `x` (`n × dim`).
    ///
    /// As `StandardScaler().fit(x)` for `f32` data: mean and (population) variance in
    /// `f64`, sequential sums, two passes; a feature whose variance is at most
    /// `n·ε·var + (n·mean·ε)²` (`ε` = `f64::EPSILON`, scikit-learn's test for a constant
    /// feature) gets scale 1; mean and scale are then rounded to `f32`, as `transform`
    /// casts them.
    ///
    /// # Errors
    /// [`ProbeError::ZeroDimension`], [`ProbeError::ShapeMismatch`] (length not a multiple
    /// of `dim`), [`ProbeError::NonFinite`], or [`ProbeError::EmptyTrainingSet`] for no rows.
    ///
    /// # Examples
    /// ```
    /// use simsiam_hapt::probe::Standardiser;
    /// // feature 0 is 1, 3; feature 1 is constant
    /// let s = Standardiser::fit(&[1.0, 5.0, 3.0, 5.0], 2)?;
    /// assert_eq!(s.mean(), &[2.0, 5.0]);
    /// assert_eq!(s.scale(), &[1.0, 1.0]);
    /// assert_eq!(s.transform(&[4.0, 6.0])?, vec![2.0, 1.0]);
    /// # Ok::<(), simsiam_hapt::probe::ProbeError>(())
    /// ```
    pub fn fit(x: &[f32], dim: usize) -> Result<Self, ProbeError> {
        let n = check_features(x, dim, x.len() / dim.max(1))?;
        if n == 0 {
            return Err(ProbeError::EmptyTrainingSet);
        }
        let count = n as f64;
        let mut mean = vec![0.0_f64; dim];
        for row in x.chunks_exact(dim) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().for_each(|m| *m /= count);
        let mut var = vec![0.0_f64; dim];
        for row in x.chunks_exact(dim) {
            var.iter_mut()
                .zip(row)
                .zip(&mean)
                .for_each(|((s, &v), m)| *s += (f64::from(v) - m).powi(2));
        }
        var.iter_mut().for_each(|s| *s /= count);
        let eps = f64::EPSILON;
        let scale = var
            .iter()
            .zip(&mean)
            .map(|(&v, &m)| {
                let constant = v <= count * eps * v + (count * m * eps).powi(2);
                if constant { 1.0 } else { v.sqrt() as f32 }
            })
            .collect();
        Ok(Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            scale,
        })
    }

    /// `(x − mean) / scale` per feature, in `f32`, for rows of the fitted dimension.
    ///
    /// # Errors
    /// [`ProbeError::ShapeMismatch`] if `x.len()` is not a multiple of the dimension.
    pub fn transform(&self, x: &[f32]) -> Result<Vec<f32>, ProbeError> {
        let dim = self.mean.len();
        if dim == 0 || !x.len().is_multiple_of(dim) {
            return Err(ProbeError::ShapeMismatch {
                what: "feature matrix length is not a multiple of the standardiser's dimension",
            });
        }
        let mut out = x.to_vec();
        for row in out.chunks_exact_mut(dim) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
        Ok(out)
    }

    /// Each feature's mean (as `f32`).
    #[must_use]
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Each feature's scale: its standard deviation, or 1 for a constant feature.
    #[must_use]
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }
}

/// The percentage of `predicted` equal to `truth`, position by position.
///
/// # Errors
/// [`ProbeError::EmptyTestSet`] for no rows, [`ProbeError::ShapeMismatch`] for different
/// lengths.
pub fn accuracy(predicted: &[i8], truth: &[i8]) -> Result<f64, ProbeError> {
    if predicted.len() != truth.len() {
        return Err(ProbeError::ShapeMismatch {
            what: "predictions and labels differ in length",
        });
    }
    if truth.is_empty() {
        return Err(ProbeError::EmptyTestSet);
    }
    let correct = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    Ok(100.0 * correct as f64 / truth.len() as f64)
}

/// SplitMix64 (Steele, Lea and Flood 2014): the few-label draws' generator.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound ≥ 1`), by Lemire's multiply-and-reject.
    fn below(&mut self, bound: u64) -> u64 {
        let bound = bound.max(1);
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}

/// Draws `per_class` training rows of each class without replacement: for each class in
/// increasing order, a partial Fisher–Yates shuffle of that class's row indices (in
/// increasing order) whose first `per_class` entries are taken, in drawn order.
fn draw_per_class(
    y: &[i8],
    classes: &[i8],
    per_class: usize,
    rng: &mut SplitMix64,
) -> Result<Vec<usize>, ProbeError> {
    let mut drawn = Vec::with_capacity(classes.len() * per_class);
    for &class in classes {
        let mut rows: Vec<usize> = (0..y.len()).filter(|&i| y.get(i) == Some(&class)).collect();
        if rows.len() < per_class {
            return Err(ProbeError::TooFewPerClass {
                class,
                available: rows.len(),
                needed: per_class,
            });
        }
        for j in 0..per_class {
            // j < per_class ≤ rows.len(), so the span j..len is not empty
            let pick = j + rng.below((rows.len() - j) as u64) as usize;
            rows.swap(j, pick);
        }
        drawn.extend_from_slice(rows.get(..per_class).unwrap_or(&[]));
    }
    Ok(drawn)
}

/// The rows `picks` of `x` (`dim` wide) and their labels.
fn gather(x: &[f32], y: &[i8], dim: usize, picks: &[usize]) -> (Vec<f32>, Vec<i8>) {
    let mut out_x = Vec::with_capacity(picks.len() * dim);
    let mut out_y = Vec::with_capacity(picks.len());
    for &i in picks {
        if let (Some(row), Some(&label)) = (x.get(i * dim..(i + 1) * dim), y.get(i)) {
            out_x.extend_from_slice(row);
            out_y.push(label);
        }
    }
    (out_x, out_y)
}

/// The six protocols' settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Protocols {
    /// The linear probe's settings.
    pub logistic: LogisticConfig,
    /// Neighbours for `knn5_all`.
    pub knn_k: usize,
    /// Rows per class of the two few-label protocols (`_5`, `_20`).
    pub few: [usize; 2],
    /// Draws per few-label protocol; their accuracies are averaged.
    pub draws: usize,
}

/// The six accuracies, in percent of the test rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProtocolScores {
    /// Logistic regression on all training rows.
    pub linear_all: f64,
    /// 5-nearest-neighbour vote over all training rows.
    pub knn5_all: f64,
    /// Logistic regression on 5 rows per class, mean over the draws.
    pub linear_5: f64,
    /// 1-nearest-neighbour on 5 rows per class, mean over the draws.
    pub nn1_5: f64,
    /// Logistic regression on 20 rows per class, mean over the draws.
    pub linear_20: f64,
    /// 1-nearest-neighbour on 20 rows per class, mean over the draws.
    pub nn1_20: f64,
}

impl ProtocolScores {
    /// The six scores as a JSON object, keys in the order of the fields, numbers in Rust's
    /// shortest round-trip form.
    #[must_use]
    pub fn to_json(&self) -> String {
        format!(
            "{{\"linear_all\": {}, \"knn5_all\": {}, \"linear_5\": {}, \"nn1_5\": {}, \"linear_20\": {}, \"nn1_20\": {}}}",
            self.linear_all, self.knn5_all, self.linear_5, self.nn1_5, self.linear_20, self.nn1_20
        )
    }
}

/// One protocol on one training set: standardise with it, fit, score on the test rows.
fn linear_and_nn(
    train_x: &[f32],
    train_y: &[i8],
    test_x: &[f32],
    test_y: &[i8],
    dim: usize,
    logistic: &LogisticConfig,
    k: usize,
) -> Result<(f64, f64), ProbeError> {
    let scaler = Standardiser::fit(train_x, dim)?;
    let train = scaler.transform(train_x)?;
    let test = scaler.transform(test_x)?;
    let model = LogisticRegression::fit(&train, train_y, dim, logistic)?;
    let linear = accuracy(&model.predict(&test)?, test_y)?;
    let nn = accuracy(&knn_predict(&train, train_y, &test, dim, k)?, test_y)?;
    Ok((linear, nn))
}

impl Protocols {
    /// The recipes' protocols: `LogisticRegression(C=1, max_iter=3000)`, 5 neighbours,
    /// 5 and 20 rows per class, 5 draws.
    pub const RECIPE: Self = Self {
        logistic: LogisticConfig::RECIPE,
        knn_k: 5,
        few: [5, 20],
        draws: 5,
    };

    /// Runs the six protocols on training rows `train_x` (`n × dim`, labels `train_y`) and
    /// test rows `test_x` (`m × dim`, labels `test_y`); pass labelled rows only.
    ///
    /// `linear_all` and `knn5_all` use every training row. The few-label protocols draw
    /// from one SplitMix64 stream seeded with `seed`: first `draws` sets of `few[0]` rows
    /// per class, then `draws` sets of `few[1]`. A set takes, for each class in increasing
    /// order, the first rows of a partial Fisher–Yates shuffle of that class's training row
    /// indices (listed in increasing order; position `j` swaps with `j + r`, `r` uniform
    /// below the rows left, by Lemire's multiply-and-reject), so without replacement. On
    /// each set the logistic regression and 1-nearest-neighbour are fitted after
    /// standardising with that set; the accuracies are averaged over the draws.
    /// `scripts/probe_check.py` repeats the draw in Python.
    ///
    /// # Errors
    /// [`ProbeError`] for bad shapes or values, empty sets, a class with fewer than `few`
    /// rows, or fewer training rows than `knn_k`.
    pub fn evaluate(
        &self,
        train_x: &[f32],
        train_y: &[i8],
        test_x: &[f32],
        test_y: &[i8],
        dim: usize,
        seed: u64,
    ) -> Result<ProtocolScores, ProbeError> {
        check_features(train_x, dim, train_y.len())?;
        check_features(test_x, dim, test_y.len())?;
        let (linear_all, knn5_all) = linear_and_nn(
            train_x,
            train_y,
            test_x,
            test_y,
            dim,
            &self.logistic,
            self.knn_k,
        )?;
        let classes = classes_of(train_y);
        let mut rng = SplitMix64(seed);
        let mut few = [(0.0, 0.0); 2];
        for (&per_class, scores) in self.few.iter().zip(&mut few) {
            let mut sum = (0.0, 0.0);
            for _ in 0..self.draws {
                let picks = draw_per_class(train_y, &classes, per_class, &mut rng)?;
                let (x, y) = gather(train_x, train_y, dim, &picks);
                let (linear, nn) = linear_and_nn(&x, &y, test_x, test_y, dim, &self.logistic, 1)?;
                sum = (sum.0 + linear, sum.1 + nn);
            }
            let draws = self.draws.max(1) as f64;
            *scores = (sum.0 / draws, sum.1 / draws);
        }
        let [(linear_5, nn1_5), (linear_20, nn1_20)] = few;
        Ok(ProtocolScores {
            linear_all,
            knn5_all,
            linear_5,
            nn1_5,
            linear_20,
            nn1_20,
        })
    }
}
