//! Multinomial logistic regression as scikit-learn's `LogisticRegression(solver="lbfgs")`
//! fits it.

use super::lbfgs::{self, LbfgsOptions, LbfgsStop};
use super::{ProbeError, check_features, classes_of};

/// The settings of scikit-learn's `LogisticRegression` that this fit follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticConfig {
    /// Inverse regularisation strength `C`: the penalty is `‖W‖² / (2C)` beside the summed
    /// cross-entropy.
    pub c: f64,
    /// The most L-BFGS iterations (`max_iter`).
    pub max_iter: usize,
    /// The stopping tolerance on the mean objective's gradient, largest component (`tol`).
    pub tol: f64,
}

impl LogisticConfig {
    /// `LogisticRegression(C=1, max_iter=3000)` with the default `tol=1e-4`: the recipe's
    /// probe.
    pub const RECIPE: Self = Self {
        c: 1.0,
        max_iter: 3000,
        tol: 1e-4,
    };
}

/// A fitted multinomial logistic regression: one weight row and intercept per class.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    dim: usize,
    classes: Vec<i8>,
    weights: Vec<f64>,
    intercepts: Vec<f64>,
    iterations: usize,
    converged: bool,
}

/// One pass over the data: the mean objective and its gradient at `params`
/// (`[W (K × d) row-major, b (K)]`). `x` is `n × dim`; `scratch` holds a row in `f64` and
/// its `K` logits.
fn objective(
    x: &[f32],
    targets: &[usize],
    dim: usize,
    l2: f64,
    params: &[f64],
    grad: &mut [f64],
    scratch: &mut Scratch,
) -> f64 {
    let Scratch { row, logits } = scratch;
    let classes = logits.len();
    let (weights, intercepts) = params.split_at(classes * dim);
    let (grad_w, grad_b) = grad.split_at_mut(classes * dim);
    grad_w.iter_mut().for_each(|g| *g = 0.0);
    grad_b.iter_mut().for_each(|g| *g = 0.0);
    let mut loss = 0.0;
    for (x, &target) in x.chunks_exact(dim).zip(targets) {
        row.iter_mut().zip(x).for_each(|(r, &x)| *r = f64::from(x));
        for ((z, w), b) in logits
            .iter_mut()
            .zip(weights.chunks_exact(dim))
            .zip(intercepts)
        {
            *z = dot(row, w) + b;
        }
        let max = logits.iter().fold(f64::NEG_INFINITY, |m, &z| m.max(z));
        let sum: f64 = logits.iter().map(|z| (z - max).exp()).sum();
        let log_sum = max + sum.ln();
        loss += log_sum - logits.get(target).copied().unwrap_or(0.0);
        // the logits become p − onehot, the loss's derivative by them
        for (k, z) in logits.iter_mut().enumerate() {
            *z = (*z - log_sum).exp() - if k == target { 1.0 } else { 0.0 };
        }
        for ((gw, gb), &delta) in grad_w
            .chunks_exact_mut(dim)
            .zip(grad_b.iter_mut())
            .zip(logits.iter())
        {
            gw.iter_mut()
                .zip(row.iter())
                .for_each(|(g, x)| *g += delta * x);
            *gb += delta;
        }
    }
    let n = targets.len() as f64;
    grad_w
        .iter_mut()
        .zip(weights)
        .for_each(|(g, w)| *g = *g / n + l2 * w);
    grad_b.iter_mut().for_each(|g| *g /= n);
    let penalty: f64 = weights.iter().map(|w| w * w).sum();
    loss / n + 0.5 * l2 * penalty
}

/// The objective's buffers: one row in `f64` and its logits.
struct Scratch {
    row: Vec<f64>,
    logits: Vec<f64>,
}

/// `Σ aᵢbᵢ` in eight interleaved partial sums (so it vectorises).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0_f64; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (a, b) in a8.iter().zip(b8) {
        for ((acc, a), b) in acc.iter_mut().zip(a).zip(b) {
            *acc += a * b;
        }
    }
    let tail: f64 = a_rest.iter().zip(b_rest).map(|(a, b)| a * b).sum();
    acc.iter().sum::<f64>() + tail
}

impl LogisticRegression {
    /// Fits on `n` rows of `dim` features (`x`, row-major, `n × dim`) with labels `y`, as
    /// `LogisticRegression(C, max_iter, tol).fit(x, y)` with the `lbfgs` solver and the
    /// multinomial loss (scikit-learn 1.9).
    ///
    /// The classes are the distinct labels of `y`, in increasing order. With two or more,
    /// the fit minimises, in `f64` from zero,
    /// `(1/n) Σᵢ CE(W xᵢ + b, yᵢ) + ‖W‖² / (2Cn)` — the cross-entropy summed over samples
    /// plus `‖W‖²/(2C)`, divided by `n` as scikit-learn scales it, the intercepts `b` not
    /// penalised — by L-BFGS with SciPy's L-BFGS-B rules, stopping when the gradient's
    /// largest component is at most `tol`. One class gives a model that predicts it.
    ///
    /// Each L-BFGS function evaluation is one pass over `x`: about `2·n·dim·K` multiply-adds
    /// for `K` classes. Memory: about 25 vectors of the parameters' length for L-BFGS (10 pairs and
    /// working vectors); `x` is borrowed, not copied.
    ///
    /// # Errors
    /// [`ProbeError::ZeroDimension`], [`ProbeError::ShapeMismatch`] or
    /// [`ProbeError::NonFinite`] for bad features; [`ProbeError::EmptyTrainingSet`] for no
    /// rows; [`ProbeError::InvalidConfig`] for a `c` or `tol` that is not positive and
    /// finite.
    ///
    /// # Examples
    /// ```
    /// use simsiam_hapt::probe::{LogisticConfig, LogisticRegression};
    /// // one feature; class 1 below 0, class 2 above
    /// let x = [-2.0, -1.0, 1.0, 2.0];
    /// let y = [1, 1, 2, 2];
    /// let model = LogisticRegression::fit(&x, &y, 1, &LogisticConfig::RECIPE)?;
    /// assert_eq!(model.predict(&[-0.5, 3.0])?, vec![1, 2]);
    /// # Ok::<(), simsiam_hapt::probe::ProbeError>(())
    /// ```
    pub fn fit(
        x: &[f32],
        y: &[i8],
        dim: usize,
        config: &LogisticConfig,
    ) -> Result<Self, ProbeError> {
        let n = check_features(x, dim, y.len())?;
        if n == 0 {
            return Err(ProbeError::EmptyTrainingSet);
        }
        if !(config.c > 0.0 && config.c.is_finite() && config.tol > 0.0 && config.tol.is_finite()) {
            return Err(ProbeError::InvalidConfig);
        }
        let classes = classes_of(y);
        let k = classes.len();
        if k < 2 {
            return Ok(Self {
                dim,
                classes,
                weights: vec![0.0; dim],
                intercepts: vec![0.0],
                iterations: 0,
                converged: true,
            });
        }
        let targets: Vec<usize> = y
            .iter()
            .map(|label| classes.binary_search(label).unwrap_or(0))
            .collect();
        let l2 = 1.0 / (config.c * n as f64);
        let mut params = vec![0.0; k * (dim + 1)];
        let mut scratch = Scratch {
            row: vec![0.0; dim],
            logits: vec![0.0; k],
        };
        let options = LbfgsOptions::sklearn(config.tol, config.max_iter);
        let report = lbfgs::minimise(&mut params, &options, |p, g| {
            objective(x, &targets, dim, l2, p, g, &mut scratch)
        });
        let intercepts = params.split_off(k * dim);
        Ok(Self {
            dim,
            classes,
            weights: params,
            intercepts,
            iterations: report.iterations,
            converged: matches!(report.stop, LbfgsStop::Gradient | LbfgsStop::Objective),
        })
    }

    /// The classes, in increasing order (the rows of [`Self::weights`]).
    #[must_use]
    pub fn classes(&self) -> &[i8] {
        &self.classes
    }

    /// The weights, `K × dim` row-major: class `k`'s row at `k * dim..(k + 1) * dim`
    /// (scikit-learn's `coef_`). A one-class model has one zero row.
    #[must_use]
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The intercepts, one per class (scikit-learn's `intercept_`).
    #[must_use]
    pub fn intercepts(&self) -> &[f64] {
        &self.intercepts
    }

    /// The L-BFGS iterations done (scikit-learn's `n_iter_`).
    #[must_use]
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// Whether L-BFGS stopped on its tolerance rather than on `max_iter` or a failed line
    /// search (where scikit-learn warns `ConvergenceWarning`).
    #[must_use]
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// The feature dimension.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The logits `W x + b` of each row of `x` (`m × dim`), `m × K` row-major, in `f64`.
    ///
    /// # Errors
    /// [`ProbeError::ShapeMismatch`] if `x.len()` is not a multiple of `dim`.
    pub fn decision_function(&self, x: &[f32]) -> Result<Vec<f64>, ProbeError> {
        if !x.len().is_multiple_of(self.dim.max(1)) {
            return Err(ProbeError::ShapeMismatch {
                what: "feature matrix length is not a multiple of the model's dimension",
            });
        }
        let k = self.intercepts.len();
        let mut row = vec![0.0; self.dim];
        let mut out = Vec::with_capacity(x.len() / self.dim.max(1) * k);
        for x in x.chunks_exact(self.dim.max(1)) {
            row.iter_mut().zip(x).for_each(|(r, &x)| *r = f64::from(x));
            for (w, b) in self
                .weights
                .chunks_exact(self.dim.max(1))
                .zip(&self.intercepts)
            {
                out.push(dot(&row, w) + b);
            }
        }
        Ok(out)
    }

    /// The class of largest logit for each row of `x` (`m × dim`); among equal logits, the
    /// smallest class (numpy's `argmax`).
    ///
    /// # Errors
    /// As [`Self::decision_function`].
    pub fn predict(&self, x: &[f32]) -> Result<Vec<i8>, ProbeError> {
        let logits = self.decision_function(x)?;
        let k = self.intercepts.len().max(1);
        Ok(logits
            .chunks_exact(k)
            .map(|z| {
                let best = z
                    .iter()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |(bi, bz), (i, &z)| {
                        if z > bz { (i, z) } else { (bi, bz) }
                    })
                    .0;
                self.classes.get(best).copied().unwrap_or(0)
            })
            .collect())
    }
}
