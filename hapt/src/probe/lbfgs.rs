//! A small L-BFGS in `f64` with the rules of SciPy's L-BFGS-B on an unbounded problem, the
//! solver behind scikit-learn's `LogisticRegression(solver="lbfgs")`.
//!
//! Without bounds L-BFGS-B is the two-loop L-BFGS: `m` = 10 correction pairs, initial
//! inverse Hessian `sᵀy / yᵀy`, a pair skipped when `sᵀy ≤ ε·(−gᵀd·step)`; the first
//! step is `1/‖d‖₂`, later ones start at 1; the line search is MINPACK-2's `dcsrch`
//! (Moré–Thuente) with `ftol` 1e-3, `gtol` 0.9, `xtol` 0.1 and at most `max_line_search`
//! evaluations. It stops when `‖g‖∞ ≤ gtol` (checked at the start and after each
//! iteration), when `(f_old − f) ≤ ftol · max(|f_old|, |f|, 1)`, or after `max_iter`
//! iterations.

/// Stopping rules, as `scipy.optimize.minimize(method="L-BFGS-B", options=...)` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LbfgsOptions {
    /// Stop when the gradient's largest absolute component is at most this.
    pub gtol: f64,
    /// Stop when an iteration lowers `f` by at most `ftol · max(|f_old|, |f|, 1)`.
    pub ftol: f64,
    /// The most iterations (line searches).
    pub max_iter: usize,
    /// The most function evaluations in one line search.
    pub max_line_search: usize,
    /// Correction pairs kept.
    pub memory: usize,
}

impl LbfgsOptions {
    /// scikit-learn's settings for `LogisticRegression(tol, max_iter)`.
    pub(crate) fn sklearn(tol: f64, max_iter: usize) -> Self {
        Self {
            gtol: tol,
            ftol: 64.0 * f64::EPSILON,
            max_iter,
            max_line_search: 50,
            memory: 10,
        }
    }
}

/// Why the solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LbfgsStop {
    /// `‖g‖∞ ≤ gtol`.
    Gradient,
    /// The relative decrease of `f` fell to `ftol`.
    Objective,
    /// `max_iter` iterations.
    MaxIter,
    /// The line search could not make progress even from a steepest-descent step.
    LineSearch,
}

/// What the solver returns besides the minimiser (left in `x`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LbfgsReport {
    /// The objective at `x`.
    pub f: f64,
    /// `‖g‖∞` at `x`.
    pub gradient_max: f64,
    /// Iterations done.
    pub iterations: usize,
    /// Function evaluations done.
    pub evaluations: usize,
    /// Why it stopped.
    pub stop: LbfgsStop,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimises `objective` from `x`, leaving the minimiser in `x`. `objective(x, g)` returns
/// `f(x)` and writes `∇f(x)` into `g` (of `x`'s length).
pub(crate) fn minimise(
    x: &mut [f64],
    options: &LbfgsOptions,
    mut objective: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> LbfgsReport {
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut f = objective(x, &mut g);
    let mut evaluations = 1;
    let report = |f: f64, g: &[f64], iterations, evaluations, stop| LbfgsReport {
        f,
        gradient_max: max_abs(g),
        iterations,
        evaluations,
        stop,
    };
    if max_abs(&g) <= options.gtol {
        return report(f, &g, 0, evaluations, LbfgsStop::Gradient);
    }
    let memory = options.memory.max(1);
    // Correction pairs, oldest first: (s, y, 1 / sᵀy).
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::with_capacity(memory);
    let mut alpha = vec![0.0; memory];
    let mut d = vec![0.0; n];
    let mut x0 = vec![0.0; n];
    let mut g0 = vec![0.0; n];
    let mut iterations = 0;
    while iterations < options.max_iter {
        // d = −H g by the two-loop recursion.
        d.iter_mut().zip(&g).for_each(|(d, g)| *d = -g);
        for ((s, y, rho), a) in pairs.iter().zip(alpha.iter_mut()).rev() {
            *a = rho * dot(s, &d);
            d.iter_mut().zip(y).for_each(|(d, y)| *d -= *a * y);
        }
        if let Some((s, y, _)) = pairs.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|d| *d *= gamma);
        }
        for ((s, y, rho), a) in pairs.iter().zip(&alpha) {
            let b = rho * dot(y, &d);
            d.iter_mut().zip(s).for_each(|(d, s)| *d += (a - b) * s);
        }
        let mut gd = dot(&g, &d);
        if gd >= 0.0 || !gd.is_finite() {
            if pairs.is_empty() {
                return report(f, &g, iterations, evaluations, LbfgsStop::LineSearch);
            }
            // Not a descent direction (rounding): forget the pairs, as L-BFGS-B restarts.
            pairs.clear();
            continue;
        }
        let first = pairs.is_empty();
        let step0 = if first {
            (1.0 / dot(&d, &d).sqrt()).min(1e10)
        } else {
            1.0
        };
        x0.copy_from_slice(x);
        g0.copy_from_slice(&g);
        let f0 = f;
        let mut search = LineSearch::new(f0, gd, step0, 1e10);
        let mut step = step0;
        let mut accepted = false;
        for _ in 0..options.max_line_search {
            x.iter_mut()
                .zip(&x0)
                .zip(&d)
                .for_each(|((x, x0), d)| *x = x0 + step * d);
            f = objective(x, &mut g);
            evaluations += 1;
            gd = dot(&g, &d);
            match search.next(f, gd, step) {
                Search::Converged | Search::Warning => {
                    accepted = true;
                    break;
                }
                Search::Evaluate(next) => step = next,
            }
        }
        if !accepted || !f.is_finite() {
            x.copy_from_slice(&x0);
            g.copy_from_slice(&g0);
            f = f0;
            if pairs.is_empty() {
                return report(f, &g, iterations, evaluations, LbfgsStop::LineSearch);
            }
            pairs.clear();
            continue;
        }
        iterations += 1;
        if max_abs(&g) <= options.gtol {
            return report(f, &g, iterations, evaluations, LbfgsStop::Gradient);
        }
        if f0 - f <= options.ftol * f0.abs().max(f.abs()).max(1.0) {
            return report(f, &g, iterations, evaluations, LbfgsStop::Objective);
        }
        // The new pair, kept when the curvature sᵀy is positive beyond rounding.
        let (mut s, mut y) = if pairs.len() == memory {
            let (s, y, _) = pairs.pop_front().unwrap_or_default();
            (s, y)
        } else {
            (vec![0.0; n], vec![0.0; n])
        };
        s.resize(n, 0.0);
        y.resize(n, 0.0);
        s.iter_mut()
            .zip(x.iter().zip(&x0))
            .for_each(|(s, (x, x0))| *s = x - x0);
        y.iter_mut()
            .zip(g.iter().zip(&g0))
            .for_each(|(y, (g, g0))| *y = g - g0);
        let sy = dot(&s, &y);
        let g0d = dot(&g0, &d);
        if sy > f64::EPSILON * (-g0d * step) {
            pairs.push_back((s, y, 1.0 / sy));
        }
    }
    report(f, &g, iterations, evaluations, LbfgsStop::MaxIter)
}

/// What the line search asks for next.
enum Search {
    /// The strong Wolfe conditions hold at the last step.
    Converged,
    /// The search cannot improve (rounding, `xtol`, or a step bound): take the last step.
    Warning,
    /// Evaluate at this step.
    Evaluate(f64),
}

/// MINPACK-2's `dcsrch` (Moré and Thuente, 1994) with L-BFGS-B's constants.
struct LineSearch {
    gtol: f64,
    xtol: f64,
    stpmin: f64,
    stpmax: f64,
    brackt: bool,
    stage: u8,
    ginit: f64,
    gtest: f64,
    finit: f64,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
}

const XTRAPL: f64 = 1.1;
const XTRAPU: f64 = 4.0;

impl LineSearch {
    fn new(finit: f64, ginit: f64, stp: f64, stpmax: f64) -> Self {
        let ftol = 1e-3;
        let stpmin = 0.0;
        Self {
            gtol: 0.9,
            xtol: 0.1,
            stpmin,
            stpmax,
            brackt: false,
            stage: 1,
            ginit,
            gtest: ftol * ginit,
            finit,
            width: stpmax - stpmin,
            width1: 2.0 * (stpmax - stpmin),
            stx: 0.0,
            fx: finit,
            gx: ginit,
            sty: 0.0,
            fy: finit,
            gy: ginit,
            stmin: 0.0,
            stmax: stp + XTRAPU * stp,
        }
    }

    /// Takes `f` and its directional derivative `g` at step `stp`.
    fn next(&mut self, f: f64, g: f64, stp: f64) -> Search {
        let ftest = self.finit + stp * self.gtest;
        if self.stage == 1 && f <= ftest && g >= 0.0 {
            self.stage = 2;
        }
        if f <= ftest && g.abs() <= self.gtol * (-self.ginit) {
            return Search::Converged;
        }
        if (self.brackt
            && (stp <= self.stmin
                || stp >= self.stmax
                || self.stmax - self.stmin <= self.xtol * self.stmax))
            || (stp == self.stpmax && f <= ftest && g <= self.gtest)
            || (stp == self.stpmin && (f > ftest || g >= self.gtest))
            || !f.is_finite()
        {
            return Search::Warning;
        }
        let mut stp = stp;
        if self.stage == 1 && f <= self.fx && f > ftest {
            // The modified function ψ(α) = f(α) − f(0) − ftol·α·f'(0) while in stage 1.
            let gtest = self.gtest;
            let mut fxm = self.fx - self.stx * gtest;
            let mut fym = self.fy - self.sty * gtest;
            let mut gxm = self.gx - gtest;
            let mut gym = self.gy - gtest;
            let fm = f - stp * gtest;
            let gm = g - gtest;
            dcstep(
                (&mut self.stx, &mut fxm, &mut gxm),
                (&mut self.sty, &mut fym, &mut gym),
                (&mut stp, fm, gm),
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
            self.fx = fxm + self.stx * gtest;
            self.fy = fym + self.sty * gtest;
            self.gx = gxm + gtest;
            self.gy = gym + gtest;
        } else {
            dcstep(
                (&mut self.stx, &mut self.fx, &mut self.gx),
                (&mut self.sty, &mut self.fy, &mut self.gy),
                (&mut stp, f, g),
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
        }
        if self.brackt {
            if (self.sty - self.stx).abs() >= 0.66 * self.width1 {
                stp = self.stx + 0.5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = stp + XTRAPL * (stp - self.stx);
            self.stmax = stp + XTRAPU * (stp - self.stx);
        }
        stp = stp.max(self.stpmin).min(self.stpmax);
        if self.brackt
            && (stp <= self.stmin
                || stp >= self.stmax
                || self.stmax - self.stmin <= self.xtol * self.stmax)
        {
            stp = self.stx;
        }
        Search::Evaluate(stp)
    }
}

/// MINPACK-2's `dcstep`: a safeguarded step from the best step `x`, the other end `y` of
/// the interval and the trial `p`, each as (step, f, f').
fn dcstep(
    (stx, fx, dx): (&mut f64, &mut f64, &mut f64),
    (sty, fy, dy): (&mut f64, &mut f64, &mut f64),
    (stp, fp, dp): (&mut f64, f64, f64),
    brackt: &mut bool,
    stpmin: f64,
    stpmax: f64,
) {
    let sgnd = dp * (*dx / dx.abs());
    let stpf;
    if fp > *fx {
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).sqrt();
        if *stp < *stx {
            gamma = -gamma;
        }
        let p = (gamma - *dx) + theta;
        let q = ((gamma - *dx) + gamma) + dp;
        let r = p / q;
        let stpc = *stx + r * (*stp - *stx);
        let stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        stpf = if (stpc - *stx).abs() < (stpq - *stx).abs() {
            stpc
        } else {
            stpc + (stpq - stpc) / 2.0
        };
        *brackt = true;
    } else if sgnd < 0.0 {
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + *dx;
        let r = p / q;
        let stpc = *stp + r * (*stx - *stp);
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = if (stpc - *stp).abs() > (stpq - *stp).abs() {
            stpc
        } else {
            stpq
        };
        *brackt = true;
    } else if dp.abs() < dx.abs() {
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (*dx - dp)) + gamma;
        let r = p / q;
        let stpc = if r < 0.0 && gamma != 0.0 {
            *stp + r * (*stx - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if *brackt {
            let f = if (stpc - *stp).abs() < (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            stpf = if *stp > *stx {
                f.min(*stp + 0.66 * (*sty - *stp))
            } else {
                f.max(*stp + 0.66 * (*sty - *stp))
            };
        } else {
            let f = if (stpc - *stp).abs() > (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            stpf = f.min(stpmax).max(stpmin);
        }
    } else if *brackt {
        let theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
        let s = theta.abs().max(dy.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dy / s) * (dp / s)).sqrt();
        if *stp > *sty {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + *dy;
        let r = p / q;
        stpf = *stp + r * (*sty - *stp);
    } else if *stp > *stx {
        stpf = stpmax;
    } else {
        stpf = stpmin;
    }
    if fp > *fx {
        *sty = *stp;
        *fy = fp;
        *dy = dp;
    } else {
        if sgnd < 0.0 {
            *sty = *stx;
            *fy = *fx;
            *dy = *dx;
        }
        *stx = *stp;
        *fx = fp;
        *dx = dp;
    }
    *stp = stpf;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock function from (−1.2, 1): L-BFGS reaches (1, 1).
    #[test]
    fn minimises_rosenbrock() {
        let mut x = [-1.2, 1.0];
        let options = LbfgsOptions::sklearn(1e-10, 1000);
        let report = minimise(&mut x, &options, |x, g| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        });
        assert!(
            (x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6,
            "{x:?} {report:?}"
        );
        assert!(report.iterations < 100, "{report:?}");
    }

    /// ½ xᵀ diag(1..=50) x − 1ᵀx, whose minimiser is x_i = 1/i.
    fn quadratic(x: &[f64], g: &mut [f64]) -> f64 {
        let mut f = 0.0;
        for (i, (x, g)) in x.iter().zip(g.iter_mut()).enumerate() {
            let h = (i + 1) as f64;
            *g = h * x - 1.0;
            f += 0.5 * h * x * x - x;
        }
        f
    }

    /// Stopped on the gradient, each component is within g_i / h_i of the minimiser.
    #[test]
    fn minimises_an_ill_conditioned_quadratic() {
        let mut x = vec![0.0; 50];
        let options = LbfgsOptions::sklearn(1e-6, 1000);
        let report = minimise(&mut x, &options, quadratic);
        assert_eq!(report.stop, LbfgsStop::Gradient, "{report:?}");
        for (i, x) in x.iter().enumerate() {
            let h = (i + 1) as f64;
            assert!((x - 1.0 / h).abs() <= 1e-6 / h, "{i} {x}");
        }
    }

    /// With no gradient test, the objective's relative decrease (64 ε) stops it, long
    /// before `max_iter`.
    #[test]
    fn stops_when_the_objective_stalls() {
        let mut x = vec![0.0; 50];
        let options = LbfgsOptions::sklearn(0.0, 1000);
        let report = minimise(&mut x, &options, quadratic);
        assert_eq!(report.stop, LbfgsStop::Objective, "{report:?}");
        assert!(
            report.iterations < 200 && report.gradient_max < 1e-5,
            "{report:?}"
        );
    }
}
