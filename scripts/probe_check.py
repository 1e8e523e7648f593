"""Writes hapt/tests/data/probe_check.*: a small labelled data set and what scikit-learn's
probes give on it, for the Rust probe tests (hapt/tests/probe.rs).

The data (numpy seed 2021): 4 classes, 14 features, 243 training and 161 test rows (neither
a multiple of the Rust fit's 4 lanes or 4-row blocks, so its padding is exercised), each class
a Gaussian cloud whose means overlap (so the logistic regression's optimum is finite and
well-conditioned), features on scales 0.01 to 100, and the last feature constant (3.0) so the
standardisation's zero-std rule is exercised. Labels are 1-4.

Files (little-endian):
  probe_check_train.f32  243 x 14 float32, row-major; probe_check_test.f32  161 x 14
  probe_check.txt        one line per record, "name v1 v2 ...":
    train_y, test_y                 labels
    coef, intercept                 LogisticRegression(C=1, max_iter=3000) on the
                                    StandardScaler'd training rows (coef 4 x 14 row-major)
    n_iter                          its L-BFGS iterations
    grad_l2                         the L2 norm of the mean objective's gradient at coef
    coef_exact, intercept_exact     the same on the values in float64 with tol=1e-12
                                    (the optimum, not rounded to float32)
    grad_l2_exact
    mu                              the mean objective's Hessian's smallest eigenvalue at the
                                    optimum, on the parameters whose class rows sum to 0 (where
                                    every fit from zero stays), the constant feature left out
    lr_pred, lr_margin              predicted test labels; top logit minus the second
    knn5_pred, nn1_pred             KNeighborsClassifier(5) and (1) predictions
  probe_check_train_std.f32, probe_check_test_std.f32: StandardScaler's transform, float32

Run: /work/venv/bin/python scripts/probe_check.py (scikit-learn 1.9.1, numpy 2.4).

`--hapt [SEED]` instead prints the six protocols of `simsiam_hapt::probe::Protocols::RECIPE`
computed by scikit-learn on the raw windows of data/hapt.bin (standardised per channel with the
training windows' statistics, flattened to 768 features), with the Rust code's few-label draws
(SplitMix64 seeded with SEED, default 0), for the numbers pinned in hapt/tests/probe.rs.
"""

import os

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

OUT = os.path.join(os.path.dirname(__file__), "..", "hapt", "tests", "data")
CLASSES, DIM, N_TRAIN, N_TEST = 4, 14, 243, 161


def make(rng, n):
    y = np.arange(n) % CLASSES + 1
    rng.shuffle(y)
    means = np.linspace(-1.0, 1.0, CLASSES)[:, None] * np.cos(np.arange(DIM) + 1.0)[None, :]
    x = means[y - 1] + rng.normal(size=(n, DIM))
    x *= np.logspace(-2, 2, DIM)[None, :]
    x[:, DIM - 1] = 3.0
    return x.astype(np.float32), y.astype(np.int8)


def gradient_and_hessian(coef, intercept, x, y, C):
    """The mean objective's gradient (flattened [W, b]) and Hessian, in float64."""
    n, d = x.shape
    k = coef.shape[0]
    xt = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    theta = np.hstack([coef, intercept[:, None]]).astype(np.float64)
    z = xt @ theta.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(k)[y - 1]
    l2 = 1.0 / (C * n)
    reg = np.ones((k, d + 1)) * l2
    reg[:, d] = 0.0
    grad = (p - onehot).T @ xt / n + reg * theta
    # Hessian over (class, feature) pairs, class-major
    hess = np.zeros((k * (d + 1), k * (d + 1)))
    for a in range(k):
        for b in range(k):
            w = p[:, a] * ((a == b) - p[:, b])
            hess[a * (d + 1):(a + 1) * (d + 1), b * (d + 1):(b + 1) * (d + 1)] = (xt * w[:, None]).T @ xt / n
    hess += np.diag(reg.ravel())
    return grad.ravel(), hess


def main():
    rng = np.random.default_rng(2021)
    xtr, ytr = make(rng, N_TRAIN)
    xte, yte = make(rng, N_TEST)
    scaler = StandardScaler().fit(xtr)
    a, b = scaler.transform(xtr), scaler.transform(xte)
    assert a.dtype == np.float32 and scaler.scale_[DIM - 1] == 1.0
    lr = LogisticRegression(C=1, max_iter=3000).fit(a, ytr)
    # on the same values in float64, so coef_ is not rounded to float32 at the end
    exact = LogisticRegression(C=1, max_iter=3000, tol=1e-12).fit(a.astype(np.float64), ytr)
    g, _ = gradient_and_hessian(lr.coef_, lr.intercept_, a, ytr, 1.0)
    ge, hess = gradient_and_hessian(exact.coef_, exact.intercept_, a, ytr, 1.0)
    # The constant feature standardises to 0: its weights stay exactly 0 in every fit (their
    # gradient is l2 * w), so the bound leaves them out. Adding one vector to every class's
    # row of [W, b] leaves the softmax unchanged: along those directions only the penalty
    # curves the objective, and every fit from zero stays where the rows sum to 0 (the
    # gradient's rows sum to l2 * the rows' sum). The bound is taken off them too.
    keep = np.array([j % (DIM + 1) != DIM - 1 for j in range(CLASSES * (DIM + 1))])
    hess = hess[np.ix_(keep, keep)]
    width = DIM  # per class after dropping the constant feature: DIM - 1 weights and the intercept
    shared = np.zeros((width, len(hess)))
    for j in range(width):
        shared[j, j::width] = 1.0 / np.sqrt(CLASSES)
    proj = np.eye(len(hess)) - shared.T @ shared
    eig = np.sort(np.linalg.eigvalsh(proj @ hess @ proj))
    assert np.all(np.abs(eig[:width]) < 1e-10 * eig[-1])  # the shared directions' 0
    mu = eig[width]
    logits = lr.decision_function(b)
    top2 = np.sort(logits, axis=1)[:, -2:]
    knn5 = KNeighborsClassifier(5).fit(a, ytr).predict(b)
    nn1 = KNeighborsClassifier(1).fit(a, ytr).predict(b)

    xtr.astype("<f4").tofile(os.path.join(OUT, "probe_check_train.f32"))
    xte.astype("<f4").tofile(os.path.join(OUT, "probe_check_test.f32"))
    a.astype("<f4").tofile(os.path.join(OUT, "probe_check_train_std.f32"))
    b.astype("<f4").tofile(os.path.join(OUT, "probe_check_test_std.f32"))

    def line(name, values):
        return name + " " + " ".join(repr(float(v)) if not isinstance(v, (int, np.integer)) else str(int(v)) for v in np.ravel(values)) + "\n"

    with open(os.path.join(OUT, "probe_check.txt"), "w") as f:
        f.write(f"# scripts/probe_check.py, scikit-learn {sklearn.__version__}, numpy {np.__version__}\n")
        f.write(line("train_y", ytr.astype(int)))
        f.write(line("test_y", yte.astype(int)))
        f.write(line("coef", lr.coef_.astype(np.float64)))
        f.write(line("intercept", lr.intercept_.astype(np.float64)))
        f.write(line("n_iter", [int(lr.n_iter_[0])]))
        f.write(line("grad_l2", [np.linalg.norm(g)]))
        f.write(line("coef_exact", exact.coef_.astype(np.float64)))
        f.write(line("intercept_exact", exact.intercept_.astype(np.float64)))
        f.write(line("grad_l2_exact", [np.linalg.norm(ge)]))
        f.write(line("mu", [mu]))
        f.write(line("lr_pred", lr.predict(b).astype(int)))
        f.write(line("lr_margin", top2[:, 1] - top2[:, 0]))
        f.write(line("knn5_pred", knn5.astype(int)))
        f.write(line("nn1_pred", nn1.astype(int)))
    print("n_iter", lr.n_iter_, "grad_l2", np.linalg.norm(g), "grad_l2_exact", np.linalg.norm(ge), "mu", mu,
          "max|coef - exact|", np.abs(lr.coef_ - exact.coef_).max(),
          "lr acc", (lr.predict(b) == yte).mean(), "knn5 acc", (knn5 == yte).mean(), "nn1 acc", (nn1 == yte).mean(),
          "min margin", (top2[:, 1] - top2[:, 0]).min())


class SplitMix64:
    """simsiam_hapt::probe's draw generator, bit for bit."""

    MASK = (1 << 64) - 1

    def __init__(self, seed):
        self.state = seed & self.MASK

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def below(self, bound):
        threshold = ((1 << 64) - bound) % bound
        while True:
            product = self.next_u64() * bound
            if product & self.MASK >= threshold:
                return product >> 64


def draw_per_class(y, per_class, rng):
    """For each class in increasing order, a partial Fisher-Yates of its row indices."""
    drawn = []
    for c in np.unique(y):
        rows = list(np.flatnonzero(y == c))
        for j in range(per_class):
            pick = j + rng.below(len(rows) - j)
            rows[j], rows[pick] = rows[pick], rows[j]
        drawn.extend(rows[:per_class])
    return np.array(drawn)


def linear_and_nn(xtr, ytr, xte, yte, k):
    scaler = StandardScaler().fit(xtr)
    a, b = scaler.transform(xtr), scaler.transform(xte)
    lr = LogisticRegression(C=1, max_iter=3000).fit(a, ytr)
    nn = KNeighborsClassifier(k).fit(a, ytr)
    return 100 * (lr.predict(b) == yte).mean(), 100 * (nn.predict(b) == yte).mean()


def protocols(xtr, ytr, xte, yte, seed):
    linear_all, knn5_all = linear_and_nn(xtr, ytr, xte, yte, 5)
    rng = SplitMix64(seed)
    out = {"linear_all": linear_all, "knn5_all": knn5_all}
    for per_class in (5, 20):
        scores = [linear_and_nn(xtr[p], ytr[p], xte, yte, 1) for p in
                  (draw_per_class(ytr, per_class, rng) for _ in range(5))]
        out[f"linear_{per_class}"] = float(np.mean([s[0] for s in scores]))
        out[f"nn1_{per_class}"] = float(np.mean([s[1] for s in scores]))
    return out


def hapt(seed):
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    import hapt_data

    recordings = hapt_data.load()
    xtr, ytr = hapt_data.windows(recordings)
    xte, yte = hapt_data.windows(recordings, test=True)
    mean, std = hapt_data.channel_stats(xtr)
    xtr, xte = hapt_data.standardise(xtr, mean, std), hapt_data.standardise(xte, mean, std)
    ltr, lte = ytr > 0, yte > 0
    scores = protocols(xtr[ltr].reshape(ltr.sum(), -1), ytr[ltr], xte[lte].reshape(lte.sum(), -1), yte[lte], seed)
    print({k: round(v, 4) for k, v in scores.items()})
    print("correct test windows of", lte.sum(), {k: round(v * lte.sum() / 100, 2) for k, v in scores.items()})


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "--hapt":
        hapt(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    else:
        main()
