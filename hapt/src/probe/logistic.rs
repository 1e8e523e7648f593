//! Multinomial logistic regression as scikit-learn's `LogisticRegression(solver="lbfgs")`
//! fits it.

use wide::f64x4;

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

/// Rows the objective handles together: each weight and gradient vector is read once per
/// block.
const BLOCK: usize = 4;

/// One pass over the data: the mean objective and its gradient at `params`
/// (`[W (K × d) row-major, b (K)]`). `x` is the `n` rows in `f64x4` lanes (`dim` padded
/// with zeros to a multiple of 4), padded with zero rows to a multiple of [`BLOCK`].
///
/// Rows go by blocks of [`BLOCK`]: the block's logits are `K` dot products per row, each summed in four lanes and
/// then across them; the gradient adds `δ_rk · x_r` to class `k`'s row, lane by lane.
fn objective(
    x: &[f64x4],
    targets: &[usize],
    dim: usize,
    l2: f64,
    params: &[f64],
    grad: &mut [f64],
    scratch: &mut Scratch,
) -> f64 {
    let Scratch {
        weights: wide_w,
        grad: wide_g,
        logits,
    } = scratch;
    let classes = logits.len() / BLOCK;
    let chunks = dim.div_ceil(4);
    let (weights, intercepts) = params.split_at(classes * dim);
    let (grad_w, grad_b) = grad.split_at_mut(classes * dim);
    for (wide, w) in wide_w
        .chunks_exact_mut(chunks)
        .zip(weights.chunks_exact(dim))
    {
        pack(w, wide);
    }
    wide_g.iter_mut().for_each(|g| *g = f64x4::ZERO);
    grad_b.iter_mut().for_each(|g| *g = 0.0);
    let mut loss = 0.0;
    for (block, targets) in x.chunks_exact(BLOCK * chunks).zip(targets.chunks(BLOCK)) {
        let [r0, r1, r2, r3] = block_rows(block, chunks);
        for (k, (w, b)) in wide_w.chunks_exact(chunks).zip(intercepts).enumerate() {
            let mut acc = [f64x4::ZERO; BLOCK];
            for ((((w, a), b), c), d) in w.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
                acc[0] += *a * *w;
                acc[1] += *b * *w;
                acc[2] += *c * *w;
                acc[3] += *d * *w;
            }
            // classes ≥ 2 here (fit handles one class without L-BFGS), so step_by gets ≥ 1
            for (logit, acc) in logits.iter_mut().skip(k).step_by(classes).zip(acc) {
                *logit = acc.reduce_add() + b;
            }
        }
        for (row, &target) in logits.chunks_exact_mut(classes).zip(targets) {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &z| m.max(z));
            let sum: f64 = row.iter().map(|z| (z - max).exp()).sum();
            let log_sum = max + sum.ln();
            loss += log_sum - row.get(target).copied().unwrap_or(0.0);
            // the logits become p − onehot, the loss's derivative by them
            for ((k, z), gb) in row.iter_mut().enumerate().zip(grad_b.iter_mut()) {
                *z = (*z - log_sum).exp() - if k == target { 1.0 } else { 0.0 };
                *gb += *z;
            }
        }
        // padding rows contribute nothing
        logits
            .iter_mut()
            .skip(targets.len() * classes)
            .for_each(|z| *z = 0.0);
        for (k, g) in wide_g.chunks_exact_mut(chunks).enumerate() {
            let delta: [f64x4; BLOCK] = std::array::from_fn(|r| {
                f64x4::splat(logits.get(r * classes + k).copied().unwrap_or(0.0))
            });
            for ((((g, a), b), c), d) in g.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
                *g += *a * delta[0] + *b * delta[1] + *c * delta[2] + *d * delta[3];
            }
        }
    }
    let n = targets.len() as f64;
    for ((g, wide), w) in grad_w
        .chunks_exact_mut(dim)
        .zip(wide_g.chunks_exact(chunks))
        .zip(weights.chunks_exact(dim))
    {
        let lanes = wide.iter().flat_map(|v| v.to_array());
        for ((g, sum), w) in g.iter_mut().zip(lanes).zip(w) {
            *g = sum / n + l2 * w;
        }
    }
    grad_b.iter_mut().for_each(|g| *g /= n);
    let penalty: f64 = weights.iter().map(|w| w * w).sum();
    loss / n + 0.5 * l2 * penalty
}

/// `values` in lanes of four, the last padded with zeros.
fn pack(values: &[f64], wide: &mut [f64x4]) {
    for (wide, v) in wide.iter_mut().zip(values.chunks(4)) {
        let mut lanes = [0.0; 4];
        lanes.iter_mut().zip(v).for_each(|(l, &v)| *l = v);
        *wide = f64x4::from(lanes);
    }
}

/// The [`BLOCK`] rows of `rows` (`BLOCK × chunks`).
fn block_rows(rows: &[f64x4], chunks: usize) -> [&[f64x4]; BLOCK] {
    let (r0, rest) = rows.split_at(chunks.min(rows.len()));
    let (r1, rest) = rest.split_at(chunks.min(rest.len()));
    let (r2, r3) = rest.split_at(chunks.min(rest.len()));
    [r0, r1, r2, r3]
}

/// The objective's buffers: the weights and their gradient, in `f64x4` lanes, and a block's
/// logits.
struct Scratch {
    weights: Vec<f64x4>,
    grad: Vec<f64x4>,
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
    /// for `K` classes. Memory: a copy of `x` in `f64` (`8·n·dim` bytes, rounded up to
    /// lanes of 4 and blocks of 4 rows) and about 25 vectors of the parameters' length for
    /// L-BFGS (10 pairs and working vectors).
    ///
    /// # Errors
    /// [`ProbeError::ZeroDimension`], [`ProbeError::ShapeMismatch`] or
    /// [`ProbeError::NonFinite`] for bad features; [`ProbeError::EmptyTrainingSet`] for no
    /// rows; [`ProbeError::InvalidConfig`] for a `c` or `tol` that is not positive and
    /// finite; [`ProbeError::TooLarge`] if the `f64` copy of `x` does not fit in memory.
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
        let chunks = dim.div_ceil(4);
        // the rows in f64 lanes, each padded to a multiple of 4, then zero rows to a multiple
        // of BLOCK
        let mut lanes = Vec::new();
        lanes
            .try_reserve_exact(n.div_ceil(BLOCK) * BLOCK * chunks)
            .map_err(|_| ProbeError::TooLarge)?;
        for row in x.chunks_exact(dim) {
            for v in row.chunks(4) {
                let mut four = [0.0; 4];
                four.iter_mut().zip(v).for_each(|(l, &v)| *l = f64::from(v));
                lanes.push(f64x4::from(four));
            }
        }
        lanes.resize(n.div_ceil(BLOCK) * BLOCK * chunks, f64x4::ZERO);
        let mut scratch = Scratch {
            weights: vec![f64x4::ZERO; k * chunks],
            grad: vec![f64x4::ZERO; k * chunks],
            logits: vec![0.0; BLOCK * k],
        };
        let options = LbfgsOptions::sklearn(config.tol, config.max_iter);
        let report = lbfgs::minimise(&mut params, &options, |p, g| {
            objective(&lanes, &targets, dim, l2, p, g, &mut scratch)
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
