#!/usr/bin/env python3
"""The HAPT recipes `hapt-dense` and `hapt-conv` of issue 21 in PyTorch (run by hand; never in CI).

    /path/venv/bin/pip install -r scripts/requirements-fixtures.txt
    /path/venv/bin/python scripts/hapt_pytorch.py --recipe hapt-dense --seed 0 --epochs 30 \\
        --json benchmarks/hapt/pytorch-hapt-dense-seed0.json [--save-state OUT.safetensors] \\
        [--data data/hapt.bin]

It reads the recordings with `hapt_data.load(path)` (scripts/hapt_data.py), pretrains the
recipe's network with SimSiam on one CPU thread, evaluates the three feature sets (raw
windows, the encoder at initialisation, the encoder after SimSiam) under the six protocols,
and writes the JSON the Rust main command writes too:

    {"raw": {...}, "random": {...}, "simsiam": {...}, "s_per_epoch": s, "final_loss": l, ...}

with the protocols `linear_all`, `knn5_all`, `linear_5`, `nn1_5`, `linear_20`, `nn1_20` in
percent, plus the extras listed in `main` (per-epoch loss, collapse std, nn1_5, timings,
FLOP counts, the choices below).

The recipe, with each choice the issue leaves open resolved as stated here:

- Windows: 128 samples, stride 64, starts 0, 64, ... while start + 128 <= n, within each
  recording. Label = activity 1..6 (class label - 1) if all 128 samples carry it, else
  unlabelled (-1). Layout channel-major [6, 128] (index c*128 + t), flattened to 768.
- Split: test subjects 2 4 9 10 12 13 18 20 24, the other 21 train. SimSiam trains on every
  training window (labelled or not); probes train on the labelled training windows and are
  scored on the labelled test windows.
- Standardisation: per channel, mean and population std (ddof 0) over every sample of every
  training window (overlapping samples count twice), computed in float64, applied in float32.
- Views, from the raw window, in this order, per view (view 1 for the whole batch, then view
  2): q = 4 normals (w, x, y, z) / norm, rotation matrix of q applied to the acc triad and
  the gyro triad (rotated[c, t] = sum_j R[c, j] x[j, t]); standardise; multiply each of the 6
  channels by 1 + 0.1 N(0, 1); add 0.1 N(0, 1) to each of the 768 values. 778 normals a view.
- Network: `har-dense` / `har-conv` of issue 20 item 5 (module `SimSiamNet`, attributes
  `encoder`, `projector`, `predictor`), PyTorch's default init after torch.manual_seed(seed).
  Both take the flattened [N, 768]; har-conv's encoder starts with Unflatten(1, (6, 128)).
- Training: each epoch a torch.randperm of the training windows, floor(N/128) batches of 128
  (the remainder dropped). Both views go through the network separately in train() mode
  (BatchNorm statistics per view, running statistics updated twice per step, as in
  facebookresearch/simsiam). Loss = -(cos(p1, z2.detach()).mean() + cos(p2, z1.detach()).mean())/2
  (F.cosine_similarity, eps 1e-8). One SGD group over every parameter: lr 0.05, momentum 0.9,
  weight decay 1e-4 (also on BatchNorm and biases). Before step t (0-based, T = epochs * steps
  per epoch): lr = 0.05 * (1 + cos(pi * t / T)) / 2, the crate's `cosine_lr` (0.05 at the
  first step, 0 after the last).
- Evaluation: encoder in eval() mode (running statistics) on the standardised, un-augmented
  windows. The probe's training features are standardised with their own mean and
  population std (sklearn's StandardScaler: a zero std becomes 1), the test features with the
  same numbers. `linear_*`: sklearn LogisticRegression(C=1.0, max_iter=3000) (lbfgs, the
  multinomial loss, tol 1e-4). `knn5_all` / `nn1_*`: KNeighborsClassifier(5 / 1), Euclidean,
  uniform votes (a tied vote goes to the smallest class). Few-label draws: for k in (5, 20),
  numpy default_rng([seed, k]); 5 draws, each drawing k windows of each class 0..5 in order
  without replacement from the labelled training windows (`rng.choice(idx, k, replace=False)`);
  the same draws for the three feature sets; the reported number is the mean accuracy of the
  5 draws.
- `final_loss`: the mean loss over the last epoch's steps. `s_per_epoch`: mean wall time of
  an epoch (shuffle, augmentation and steps; not the per-epoch nn1_5 probe).
- Collapse std: lightly's std_of_l2_normalized(z1) = torch.std(F.normalize(z1), dim=0).mean()
  (unbiased std) of view 1's projector output at each step, averaged over the epoch's steps;
  reported as is (`collapse_std`, healthy ~ 1/sqrt(128) = 0.088) and times sqrt(128)
  (`collapse_std_normalised`, healthy ~ 1).
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from torch import nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hapt_data  # noqa: E402  (scripts/hapt_data.py, or the first on PYTHONPATH)

WINDOW = 128
STRIDE = 64
CHANNELS = 6
CLASSES = 6
TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
BATCH = 128
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
SCALE_STD = 0.1
JITTER_STD = 0.1
FEW_LABEL_DRAWS = 5
PROTOCOLS = ("linear_all", "knn5_all", "linear_5", "nn1_5", "linear_20", "nn1_20")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def windows_of(recordings):
    """Windows of every recording: (x [N, 6, 128] f32 raw, label [N] int64 in -1..5, subject [N])."""
    xs, ys, subjects = [], [], []
    for rec in recordings:
        signals = np.asarray(rec["signals"], dtype=np.float32)
        labels = np.asarray(rec["labels"])
        n = signals.shape[0]
        for start in range(0, n - WINDOW + 1, STRIDE):
            window_labels = labels[start:start + WINDOW]
            first = int(window_labels[0])
            label = first - 1 if 1 <= first <= 6 and np.all(window_labels == first) else -1
            xs.append(signals[start:start + WINDOW].T)  # [6, 128], channel-major
            ys.append(label)
            subjects.append(int(rec["subject"]))
    return (np.ascontiguousarray(np.stack(xs), dtype=np.float32), np.array(ys, dtype=np.int64),
            np.array(subjects, dtype=np.int64))


def split(x, y, subject):
    test = np.isin(subject, TEST_SUBJECTS)
    train_x, train_y = x[~test], y[~test]
    test_labelled = test & (y >= 0)
    return train_x, train_y, x[test_labelled], y[test_labelled]


def channel_stats(train_x):
    mean = train_x.astype(np.float64).mean(axis=(0, 2))
    std = train_x.astype(np.float64).std(axis=(0, 2))
    return mean.astype(np.float32), std.astype(np.float32)


# --------------------------------------------------------------------------------------
# Augmentation (torch, global RNG)
# --------------------------------------------------------------------------------------


def rotation_matrices(q):
    """[B, 4] unit quaternions (w, x, y, z) -> [B, 3, 3] rotation matrices."""
    w, x, y, z = q.unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=1).view(-1, 3, 3)


def augment(raw, mean, std):
    """One view of a batch of raw windows [B, 6, 128] -> [B, 768]."""
    b = raw.shape[0]
    q = torch.randn(b, 4)
    q = q / q.norm(dim=1, keepdim=True)
    r = rotation_matrices(q)
    rotated = torch.cat([torch.bmm(r, raw[:, 0:3]), torch.bmm(r, raw[:, 3:6])], dim=1)
    standardised = (rotated - mean.view(1, CHANNELS, 1)) / std.view(1, CHANNELS, 1)
    scaled = standardised * (1.0 + SCALE_STD * torch.randn(b, CHANNELS, 1))
    jittered = scaled + JITTER_STD * torch.randn(b, CHANNELS, WINDOW)
    return jittered.reshape(b, CHANNELS * WINDOW)


# --------------------------------------------------------------------------------------
# The network (issue 20, item 5)
# --------------------------------------------------------------------------------------


def har_encoder(recipe):
    if recipe == "hapt-dense":
        return nn.Sequential(
            nn.Linear(CHANNELS * WINDOW, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Linear(256, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU())
    if recipe == "hapt-conv":
        return nn.Sequential(
            nn.Unflatten(1, (CHANNELS, WINDOW)),
            nn.Conv1d(CHANNELS, 32, 8, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(32, 64, 8, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(64, 128, 8, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
            nn.AdaptiveMaxPool1d(1), nn.Flatten())
    raise ValueError(f"unknown recipe {recipe!r}")


class SimSiamNet(nn.Module):
    def __init__(self, recipe):
        super().__init__()
        self.encoder = har_encoder(recipe)
        self.projector = nn.Sequential(
            nn.Linear(128, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Linear(128, 128, bias=False), nn.BatchNorm1d(128, affine=False))
        self.predictor = nn.Sequential(
            nn.Linear(128, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Linear(32, 128))

    def forward(self, x):
        z = self.projector(self.encoder(x))
        return z, self.predictor(z)


def simsiam_loss(p1, p2, z1, z2):
    return -(F.cosine_similarity(p1, z2.detach(), dim=1).mean()
             + F.cosine_similarity(p2, z1.detach(), dim=1).mean()) * 0.5


def cosine_lr(step, total):
    return LR * (1.0 + math.cos(math.pi * step / total)) / 2.0


def std_of_l2_normalized(z):
    return torch.std(F.normalize(z.detach(), dim=1), dim=0).mean().item()


# --------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------


def analytic_macs(recipe):
    """Multiply-adds of the Linear/Conv1d layers for one sample's forward pass, per layer."""
    layers = []
    if recipe == "hapt-dense":
        layers += [("encoder.0", 768 * 256), ("encoder.3", 256 * 128)]
    else:
        t = WINDOW
        for name, c_in, c_out, pool in (("encoder.1", 6, 32, True), ("encoder.5", 32, 64, True),
                                        ("encoder.9", 64, 128, False)):
            t_out = t - 8 + 1
            layers.append((name, c_in * c_out * 8 * t_out))
            t = t_out // 2 if pool else t_out
    layers += [("projector.0", 128 * 128), ("projector.3", 128 * 128),
               ("predictor.0", 128 * 32), ("predictor.3", 32 * 128)]
    return layers


def flop_counts(recipe, steps_per_epoch):
    """FLOPs (2 per multiply-add) of one training step at 128 pairs: forward of both views,
    backward (weight gradients of every layer, input gradients of all but the first layer,
    whose input needs none), Linear and Conv1d only; and the same counted by PyTorch's
    FlopCounterMode on a real step."""
    layers = analytic_macs(recipe)
    forward = sum(m for _, m in layers)
    first = layers[0][1]
    samples = 2 * BATCH
    step_macs = samples * (3 * forward - first)
    counted = None
    try:
        from torch.utils.flop_counter import FlopCounterMode
        model = SimSiamNet(recipe).train()
        x1 = torch.randn(BATCH, CHANNELS * WINDOW)
        x2 = torch.randn(BATCH, CHANNELS * WINDOW)
        with FlopCounterMode(display=False) as counter:
            z1, p1 = model(x1)
            z2, p2 = model(x2)
            simsiam_loss(p1, p2, z1, z2).backward()
        counted = int(counter.get_total_flops())
    except Exception as err:  # the count is a cross-check only
        print(f"FlopCounterMode failed: {err}", file=sys.stderr)
    return {
        "forward_macs_per_sample": forward,
        "forward_macs_per_sample_by_layer": dict(layers),
        "flops_per_step": 2 * step_macs,
        "flops_per_step_with_first_layer_input_grad": 2 * (step_macs + samples * first),
        "flops_per_step_flopcountermode": counted,
        "flops_per_epoch": 2 * step_macs * steps_per_epoch,
        "steps_per_epoch": steps_per_epoch,
        "convention": "2 FLOPs per multiply-add of Linear/Conv1d; forward (2 views x 128) + "
                      "backward (weight grads of all layers, input grads of all but the first); "
                      "BatchNorm, ReLU, pooling, loss and the optimiser are not counted",
    }


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------


@torch.no_grad()
def encode(model, x_std, batch=1024):
    was_training = model.training
    model.eval()
    out = torch.cat([model.encoder(x_std[i:i + batch]) for i in range(0, x_std.shape[0], batch)])
    model.train(was_training)
    return out.numpy().astype(np.float32)


def standardise_features(train, test):
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0.0] = 1.0
    return (train - mean) / std, (test - mean) / std


def fit_score(kind, train_f, train_y, test_f, test_y):
    train_f, test_f = standardise_features(train_f, test_f)
    if kind == "linear":
        clf = LogisticRegression(C=1.0, max_iter=3000)
    elif kind == "knn5":
        clf = KNeighborsClassifier(n_neighbors=5)
    else:
        clf = KNeighborsClassifier(n_neighbors=1)
    clf.fit(train_f, train_y)
    return 100.0 * float((clf.predict(test_f) == test_y).mean())


def few_label_draws(train_y, k, seed):
    rng = np.random.default_rng([seed, k])
    draws = []
    for _ in range(FEW_LABEL_DRAWS):
        idx = [rng.choice(np.flatnonzero(train_y == c), k, replace=False) for c in range(CLASSES)]
        draws.append(np.concatenate(idx))
    return draws


def protocols(train_f, train_y, test_f, test_y, draws):
    result = {
        "linear_all": fit_score("linear", train_f, train_y, test_f, test_y),
        "knn5_all": fit_score("knn5", train_f, train_y, test_f, test_y),
    }
    for k in (5, 20):
        for kind in ("linear", "nn1"):
            scores = [fit_score(kind, train_f[d], train_y[d], test_f, test_y) for d in draws[k]]
            result[f"{kind}_{k}"] = float(np.mean(scores))
            result[f"{kind}_{k}_draws"] = scores
    return result


def nn1_5(model, x_lab_std, y_lab, x_test_std, y_test, draws5):
    used = np.unique(np.concatenate(draws5))
    feats = dict(zip(used.tolist(), encode(model, x_lab_std[torch.from_numpy(used)])))
    test_f = encode(model, x_test_std)
    scores = [fit_score("nn1", np.stack([feats[i] for i in d]), y_lab[d], test_f, y_test)
              for d in draws5]
    return float(np.mean(scores))


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def machine():
    name = ""
    flags = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not name:
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = sorted({fl for fl in line.split(":", 1)[1].split() if fl.startswith("avx512")})
                    break
    except OSError:
        pass
    return {"cpu": name, "avx512_flags": flags, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "sklearn": sklearn.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", choices=("hapt-dense", "hapt-conv"), required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--json", required=True)
    ap.add_argument("--save-state", help="safetensors of the trained state_dict")
    ap.add_argument("--save-init-state", help="safetensors of the state_dict at initialisation")
    ap.add_argument("--data", default=os.path.join(HERE, "..", "data", "hapt.bin"))
    ap.add_argument("--no-track", action="store_true", help="skip the per-epoch nn1_5 probe")
    args = ap.parse_args()

    torch.set_num_threads(1)
    started = time.time()
    load_before = os.getloadavg()

    recordings = hapt_data.load(args.data)
    x, y, subject = windows_of(recordings)
    train_x, train_y, test_x, test_y = split(x, y, subject)
    mean, std = channel_stats(train_x)
    lab = train_y >= 0
    lab_x, lab_y = train_x[lab], train_y[lab]
    mean_t, std_t = torch.from_numpy(mean), torch.from_numpy(std)

    def standardised_flat(a):
        return torch.from_numpy(((a - mean[None, :, None]) / std[None, :, None])
                                .reshape(a.shape[0], -1).astype(np.float32))

    lab_std, test_std = standardised_flat(lab_x), standardised_flat(test_x)
    train_raw = torch.from_numpy(train_x)
    n_train = train_raw.shape[0]
    steps_per_epoch = n_train // BATCH
    total_steps = steps_per_epoch * args.epochs
    print(f"{args.recipe} seed {args.seed}: {len(recordings)} recordings, {n_train} training windows "
          f"({int(lab.sum())} labelled), {test_x.shape[0]} labelled test windows, "
          f"{steps_per_epoch} steps/epoch; channel mean {np.round(mean, 4).tolist()} "
          f"std {np.round(std, 4).tolist()}", flush=True)

    draws = {k: few_label_draws(lab_y, k, args.seed) for k in (5, 20)}

    torch.manual_seed(args.seed)
    model = SimSiamNet(args.recipe)
    init_state = copy.deepcopy(model.state_dict())
    if args.save_init_state:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in init_state.items()}, args.save_init_state)

    flops = flop_counts(args.recipe, steps_per_epoch)

    results = {}
    t0 = time.time()
    raw_lab, raw_test = lab_std.numpy(), test_std.numpy()
    results["raw"] = protocols(raw_lab, lab_y, raw_test, test_y, draws)
    results["random"] = protocols(encode(model, lab_std), lab_y, encode(model, test_std), test_y, draws)
    eval_before = time.time() - t0
    print(f"raw    {json.dumps({k: round(results['raw'][k], 2) for k in PROTOCOLS})}")
    print(f"random {json.dumps({k: round(results['random'][k], 2) for k in PROTOCOLS})}", flush=True)

    # The global RNG again from the seed's start, after the init draws, so the probe above
    # (which draws nothing from torch) cannot shift the training stream.
    torch.manual_seed(args.seed)
    model = SimSiamNet(args.recipe)
    model.load_state_dict(init_state)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    history = {"loss": [], "collapse_std": [], "nn1_5": [], "s_epoch": [], "s_augment": [],
               "s_steps": [], "lr_last": [],
               "cpu_epoch": [], "cpu_augment": [], "cpu_steps": []}
    step = 0
    for epoch in range(args.epochs):
        e0 = time.perf_counter()
        c0 = time.process_time()
        t_aug = t_step = c_aug = c_step = 0.0
        losses, stds = [], []
        perm = torch.randperm(n_train)
        for b in range(steps_per_epoch):
            a0 = time.perf_counter()
            ca0 = time.process_time()
            raw = train_raw[perm[b * BATCH:(b + 1) * BATCH]]
            x1 = augment(raw, mean_t, std_t)
            x2 = augment(raw, mean_t, std_t)
            a1 = time.perf_counter()
            ca1 = time.process_time()
            lr = cosine_lr(step, total_steps)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            z1, p1 = model(x1)
            z2, p2 = model(x2)
            loss = simsiam_loss(p1, p2, z1, z2)
            loss.backward()
            opt.step()
            a2 = time.perf_counter()
            ca2 = time.process_time()
            t_aug += a1 - a0
            t_step += a2 - a1
            c_aug += ca1 - ca0
            c_step += ca2 - ca1
            losses.append(loss.item())
            stds.append(std_of_l2_normalized(z1))
            step += 1
        epoch_s = time.perf_counter() - e0
        epoch_cpu = time.process_time() - c0
        history["loss"].append(float(np.mean(losses)))
        history["collapse_std"].append(float(np.mean(stds)))
        history["s_epoch"].append(epoch_s)
        history["s_augment"].append(t_aug)
        history["s_steps"].append(t_step)
        history["cpu_epoch"].append(epoch_cpu)
        history["cpu_augment"].append(c_aug)
        history["cpu_steps"].append(c_step)
        history["lr_last"].append(lr)
        line = (f"epoch {epoch + 1:3d}/{args.epochs} loss {history['loss'][-1]:+.4f} "
                f"collapse std*sqrt(128) {history['collapse_std'][-1] * math.sqrt(128):.3f} "
                f"{epoch_s:.2f} s (augment {t_aug:.2f} s, steps {t_step:.2f} s; cpu {epoch_cpu:.2f} s)")
        if not args.no_track:
            history["nn1_5"].append(nn1_5(model, lab_std, lab_y, test_std, test_y, draws[5]))
            line += f" nn1_5 {history['nn1_5'][-1]:.1f} %"
        print(line, flush=True)

    t0 = time.time()
    results["simsiam"] = protocols(encode(model, lab_std), lab_y, encode(model, test_std), test_y, draws)
    eval_after = time.time() - t0
    print(f"simsiam {json.dumps({k: round(results['simsiam'][k], 2) for k in PROTOCOLS})}", flush=True)

    if args.save_state:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.save_state)

    s_epoch = history["s_epoch"]
    out = {
        "recipe": args.recipe,
        "seed": args.seed,
        "epochs": args.epochs,
        **results,
        "s_per_epoch": float(np.mean(s_epoch)),
        "final_loss": history["loss"][-1],
        "s_per_epoch_median": float(np.median(s_epoch)),
        "s_per_epoch_no_augment": float(np.mean(history["s_steps"])),
        "s_per_epoch_augment_only": float(np.mean(history["s_augment"])),
        "cpu_s_per_epoch": float(np.mean(history["cpu_epoch"])),
        "cpu_s_per_epoch_no_augment": float(np.mean(history["cpu_steps"])),
        "cpu_s_per_epoch_augment_only": float(np.mean(history["cpu_augment"])),
        "timing_note": "s_*: wall clock (time.perf_counter); cpu_s_*: this process's CPU time "
                       "(time.process_time), less sensitive to other processes on the machine",
        "gflops_per_s_steps": flops["flops_per_epoch"] / float(np.mean(history["s_steps"])) / 1e9,
        "loss_per_epoch": history["loss"],
        "collapse_std_per_epoch": history["collapse_std"],
        "collapse_std_normalised_per_epoch": [s * math.sqrt(128) for s in history["collapse_std"]],
        "collapse_std_definition": "mean over the epoch's steps of torch.std(F.normalize(z1, dim=1), "
                                   "dim=0).mean() (unbiased), z1 = view 1's projector output; "
                                   "*_normalised = that times sqrt(128)",
        "nn1_5_per_epoch": history["nn1_5"],
        "s_epoch_per_epoch": s_epoch,
        "s_augment_per_epoch": history["s_augment"],
        "s_steps_per_epoch": history["s_steps"],
        "cpu_s_epoch_per_epoch": history["cpu_epoch"],
        "s_eval_raw_random": eval_before,
        "s_eval_simsiam": eval_after,
        "s_total": time.time() - started,
        "flops": flops,
        "data": {"path": os.path.abspath(args.data), "recordings": len(recordings),
                 "train_windows": n_train, "train_labelled": int(lab.sum()),
                 "test_labelled": int(test_x.shape[0]),
                 "train_labelled_per_class": np.bincount(lab_y, minlength=CLASSES).tolist(),
                 "test_per_class": np.bincount(test_y, minlength=CLASSES).tolist(),
                 "channel_mean": mean.tolist(), "channel_std": std.tolist()},
        "machine": machine(),
        "loadavg_before_after": [list(load_before), list(os.getloadavg())],
        "threads": torch.get_num_threads(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"s/epoch {out['s_per_epoch']:.3f} (no augmentation {out['s_per_epoch_no_augment']:.3f}; "
          f"cpu {out['cpu_s_per_epoch']:.3f}, {out['cpu_s_per_epoch_no_augment']:.3f}), "
          f"final loss {out['final_loss']:.4f}, wrote {args.json}")


if __name__ == "__main__":
    main()
