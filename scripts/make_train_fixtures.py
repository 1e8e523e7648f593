#!/usr/bin/env python3
"""Make the PyTorch training fixtures tests/data/train_*.safetensors (run by hand; CI never runs this).

    python3 -m venv /path/venv
    /path/venv/bin/pip install -r scripts/requirements-fixtures.txt
    /path/venv/bin/python scripts/make_train_fixtures.py             # writes, self-checks
    /path/venv/bin/python scripts/make_train_fixtures.py --mutants   # also: how far common
                                                                     # training bugs land

Each fixture trains a SimSiam head (projector + predictor, on given encoder outputs) for a
few SGD steps exactly as facebookresearch/simsiam's main_simsiam.py does (train() mode,
two param groups, fix_lr, cosine schedule, stop-gradient), in float32 and, from the same
initial weights and inputs, in float64 (`.double()`), and stores every step's inputs,
learning rate, loss, input gradients and parameters; tests/train_pytorch.rs checks the
crate's trainer against them step for step. See tests/data/README.md.

Everything is deterministic: the initial weights are PyTorch's default init after
`torch.manual_seed(seed)`, every other random draw comes from a `torch.Generator` seeded
with the fixture's seed, PyTorch runs on one CPU thread with
`torch.use_deterministic_algorithms(True)`, so re-running on the same torch version
rewrites the files bit for bit (the script reloads them, retrains and compares).
"""

import argparse
import copy
import hashlib
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.optim.optimizer import _default_to_fused_or_foreach

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "tests", "data"))

BN_MOMENTUM = 0.1  # PyTorch's BatchNorm1d default, as in builder.py and lightly


def deterministic(seed):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# --------------------------------------------------------------------------------------
# The heads. Each is a module with `projector`, `predictor`, `project(x)`, `predict(z)`
# and `layers()`: [(Linear, BatchNorm1d or None)] in the crate's layout order.
# --------------------------------------------------------------------------------------


class OfficialHead(nn.Module):
    """facebookresearch/simsiam simsiam/builder.py's head: `encoder.fc` (the projector,
    built the same way: the backbone's fc Linear(prev_dim, dim) first, its bias frozen,
    then wrapped) and `predictor`. prev_dim is the encoder output width."""

    def __init__(self, prev_dim, dim, pred_dim):
        super().__init__()
        fc = nn.Linear(prev_dim, dim)  # the backbone's fc (num_classes=dim)
        fc.bias.requires_grad = False  # builder.py: not use bias as followed by BN
        self.projector = nn.Sequential(
            nn.Linear(prev_dim, prev_dim, bias=False),
            nn.BatchNorm1d(prev_dim),
            nn.ReLU(inplace=True),
            nn.Linear(prev_dim, prev_dim, bias=False),
            nn.BatchNorm1d(prev_dim),
            nn.ReLU(inplace=True),
            fc,
            nn.BatchNorm1d(dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False),
            nn.BatchNorm1d(pred_dim),
            nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim),
        )

    def project(self, x):
        return self.projector(x)

    def predict(self, z):
        return self.predictor(z)

    def layers(self):
        j, r = self.projector, self.predictor
        return [(j[0], j[1]), (j[3], j[4]), (j[6], j[7]), (r[0], r[1]), (r[3], None)]


class LightlyHead(nn.Module):
    """lightly's SimSiamProjectionHead(input, hidden, output) and
    SimSiamPredictionHead(output, pred_hidden, output), the real modules."""

    def __init__(self, input_dim, hidden_dim, output_dim, pred_hidden_dim):
        super().__init__()
        from lightly.models.modules.heads import SimSiamPredictionHead, SimSiamProjectionHead

        self.projector = SimSiamProjectionHead(input_dim, hidden_dim, output_dim)
        self.predictor = SimSiamPredictionHead(output_dim, pred_hidden_dim, output_dim)

    def project(self, x):
        return self.projector(x)

    def predict(self, z):
        return self.predictor(z)

    def layers(self):
        j, r = self.projector.layers, self.predictor.layers
        return [(j[0], j[1]), (j[3], j[4]), (j[6], j[7]), (r[0], r[1]), (r[3], None)]


class ReferenceHead(nn.Module):
    """oxicuda-ssl's 2-layer head: Linear + ReLU + Linear, L2-normalised outputs; the
    predictor runs on the normalised projection."""

    def __init__(self, d_encoder, d_projector, d_predictor, d_out):
        super().__init__()
        self.projector = nn.Sequential(
            nn.Linear(d_encoder, d_projector), nn.ReLU(), nn.Linear(d_projector, d_out)
        )
        self.predictor = nn.Sequential(
            nn.Linear(d_out, d_predictor), nn.ReLU(), nn.Linear(d_predictor, d_out)
        )

    def project(self, x):
        return F.normalize(self.projector(x), dim=1)  # eps 1e-12

    def predict(self, z):
        return F.normalize(self.predictor(z), dim=1)

    def layers(self):
        j, r = self.projector, self.predictor
        return [(j[0], None), (j[2], None), (r[0], None), (r[2], None)]


def flat_params(head):
    """The crate's flat layout: per layer W (row-major [out, in]), bias, gamma, beta,
    running_mean, running_var, as present; projector first."""
    parts = []
    for linear, bn in head.layers():
        parts.append(linear.weight.detach().reshape(-1))
        if linear.bias is not None:
            parts.append(linear.bias.detach())
        if bn is not None:
            if bn.affine:
                parts += [bn.weight.detach(), bn.bias.detach()]
            parts += [bn.running_mean, bn.running_var]
    return torch.cat(parts).clone()


def segments(head):
    """(label, start, length) of every tensor in the flat layout, as the Rust test
    cuts it (the parameter measure is per tensor)."""
    out, at = [], 0
    for i, (linear, bn) in enumerate(head.layers()):
        names = [("W", linear.weight.numel())]
        if linear.bias is not None:
            frozen = not linear.bias.requires_grad
            names.append(("b(frozen)" if frozen else "b", linear.out_features))
        if bn is not None:
            if bn.affine:
                names += [("gamma", bn.num_features), ("beta", bn.num_features)]
            names += [("running_mean", bn.num_features), ("running_var", bn.num_features)]
        for name, length in names:
            out.append((f"L{i}.{name}", at, length))
            at += length
    return out


def batch_norms(head):
    return [bn for _, bn in head.layers() if bn is not None]


def perturb_batch_norms(head, g):
    """Move every BatchNorm off the identity so that wrong handling shows."""
    with torch.no_grad():
        for bn in batch_norms(head):
            c = bn.num_features
            if bn.affine:
                bn.weight.copy_(1 + 0.1 * torch.randn(c, generator=g))
                bn.bias.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_mean.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_var.copy_(1 + 0.2 * torch.rand(c, generator=g))


def make_inputs(g, steps, n, d):
    """Per step a pair of views: encoder outputs with per-channel offsets (N(0, 1)) and
    scales (U[0.5, 2)), the two views sharing a base plus 0.3·scale noise each."""
    offset = torch.randn(d, generator=g)
    scale = 0.5 + 1.5 * torch.rand(d, generator=g)
    out = []
    for _ in range(steps):
        base = offset + scale * torch.randn(n, d, generator=g)
        x1 = base + 0.3 * scale * torch.randn(n, d, generator=g)
        x2 = base + 0.3 * scale * torch.randn(n, d, generator=g)
        out.append((x1, x2))
    return out


# --------------------------------------------------------------------------------------
# Training, as main_simsiam.py.
# --------------------------------------------------------------------------------------


def lr_at(fx, step):
    lr0 = fx["lr"]
    if fx["schedule"] == "cosine":  # main_simsiam.adjust_learning_rate, epoch -> step
        return lr0 * 0.5 * (1.0 + math.cos(math.pi * step / fx["steps"]))
    return lr0


def std_of_l2_normalized(z):
    """lightly's collapse measure (the paper's): the mean over dimensions of the
    unbiased std over the batch of the L2-normalised outputs."""
    from lightly.utils.debug import std_of_l2_normalized as lightly_std

    return lightly_std(z)


class Probe:
    """Forward pre-hooks on the ReLUs and BatchNorms: the smallest |ReLU input| and the
    smallest per-channel batch variance seen (how close a run is to a kink)."""

    def __init__(self, head):
        self.relu_min = math.inf
        self.var_min = math.inf
        self.handles = []
        for m in head.modules():
            if isinstance(m, nn.ReLU):
                self.handles.append(m.register_forward_pre_hook(self.relu))
            elif isinstance(m, nn.BatchNorm1d):
                self.handles.append(m.register_forward_pre_hook(self.bn))

    def relu(self, _m, inputs):
        self.relu_min = min(self.relu_min, inputs[0].detach().abs().min().item())

    def bn(self, _m, inputs):
        var = inputs[0].detach().var(dim=0, unbiased=False).min().item()
        self.var_min = min(self.var_min, var)

    def remove(self):
        for h in self.handles:
            h.remove()


def train(head, fx, inputs, dtype, overrides=None):
    """Trains `head` in place (train() mode) on `inputs`; returns the per-step records.

    `overrides` (mutant runs only) changes one setting: see MUTANTS."""
    o = dict(overrides or {})
    momentum = o.get("momentum", fx["momentum"])
    weight_decay = o.get("weight_decay", fx["weight_decay"])
    stop_gradient = o.get("stop_gradient", fx["stop_gradient"])
    fix_lr = o.get("fix_predictor_lr", fx["fix_predictor_lr"])
    head.train()
    if o.get("eval_bn"):
        for bn in batch_norms(head):
            bn.eval()
    # main_simsiam.py's param groups (projector = encoder.fc here; a frozen parameter is
    # still listed, as model.module.encoder.parameters() lists fc.bias).
    optimizer = torch.optim.SGD(
        [
            {"params": head.projector.parameters(), "fix_lr": False},
            {"params": head.predictor.parameters(), "fix_lr": True},
        ],
        fx["lr"],
        momentum=momentum,
        weight_decay=weight_decay,
    )
    # On CPU, SGD runs its per-tensor loop (_single_tensor_sgd): g = grad + wd·p; the
    # momentum buffer starts as g, then buf = momentum·buf + g; p -= lr·buf. Parameters
    # without a grad (the frozen bias) are skipped: no decay, no buffer.
    assert _default_to_fused_or_foreach(list(head.parameters()), False, False) == (False, False)
    criterion = nn.CosineSimilarity(dim=1)  # eps 1e-8
    records = []
    for step, (x1, x2) in enumerate(inputs):
        lr = lr_at(fx, step)
        for group in optimizer.param_groups:
            group["lr"] = fx["lr"] if (fix_lr and group["fix_lr"]) else lr
        optimizer.zero_grad()
        x1 = x1.to(dtype).clone().requires_grad_(True)
        x2 = x2.to(dtype).clone().requires_grad_(True)
        z1 = head.project(x1)
        z2 = head.project(x2)
        p1 = head.predict(z1)
        p2 = head.predict(z2)
        t1, t2 = (z1.detach(), z2.detach()) if stop_gradient else (z1, z2)
        loss = -(criterion(p1, t2).mean() + criterion(p2, t1).mean()) * 0.5
        loss.backward()
        with torch.no_grad():
            std_z1 = std_of_l2_normalized(z1)
        optimizer.step()
        records.append(
            dict(
                lr=lr,
                loss=loss.detach().reshape(1),
                grad_x1=x1.grad.detach().clone(),
                grad_x2=x2.grad.detach().clone(),
                std_z1=std_z1.reshape(1),
                params=flat_params(head),
            )
        )
    return records


FIXTURES = [
    dict(name="official", head="official", dims=(24, 16, 8), seed=18, n=8, steps=6,
         lr=0.05, schedule="cosine", momentum=0.9, weight_decay=1e-4,
         fix_predictor_lr=True, stop_gradient=True),
    dict(name="official_nosg", head="official", dims=(24, 16, 8), seed=6, n=2, steps=4,
         lr=0.05, schedule="constant", momentum=0.9, weight_decay=1e-4,
         fix_predictor_lr=False, stop_gradient=False),
    dict(name="official_nosg_n8", head="official", dims=(24, 16, 8), seed=9, n=8, steps=4,
         lr=0.05, schedule="constant", momentum=0.9, weight_decay=1e-4,
         fix_predictor_lr=False, stop_gradient=False),
    dict(name="lightly", head="lightly", dims=(20, 24, 16, 8), seed=27, n=6, steps=4,
         lr=0.1, schedule="constant", momentum=0.9, weight_decay=5e-4,
         fix_predictor_lr=False, stop_gradient=True),
    # reference dims: d_encoder, d_projector, d_predictor, d_out (SimSiamConfig order)
    dict(name="reference", head="reference", dims=(20, 32, 12, 16), seed=8, n=8, steps=5,
         lr=0.05, schedule="constant", momentum=0.9, weight_decay=1e-4,
         fix_predictor_lr=False, stop_gradient=True),
    dict(name="reference_nosg", head="reference", dims=(20, 32, 12, 16), seed=13, n=8,
         steps=5, lr=0.05, schedule="constant", momentum=0.9, weight_decay=1e-4,
         fix_predictor_lr=False, stop_gradient=False),
]


def build_head(fx):
    kind = fx["head"]
    if kind == "official":
        return OfficialHead(*fx["dims"])
    if kind == "lightly":
        return LightlyHead(*fx["dims"])
    d_encoder, d_projector, d_predictor, d_out = fx["dims"]
    return ReferenceHead(d_encoder, d_projector, d_predictor, d_out)


def d_encoder(fx):
    return fx["dims"][0]


def setup(fx):
    """The initial head (default init after manual_seed, BatchNorms perturbed) and the
    inputs, both from the fixture's seed."""
    deterministic(fx["seed"])
    head = build_head(fx)
    g = gen(fx["seed"])
    perturb_batch_norms(head, g)
    inputs = make_inputs(g, fx["steps"], fx["n"], d_encoder(fx))
    return head, inputs


def make_fixture(fx):
    head, inputs = setup(fx)
    head64 = copy.deepcopy(head).double()
    initial = flat_params(head)
    rec32 = train(head, fx, inputs, torch.float32)
    probe = Probe(head64)
    rec64 = train(head64, fx, inputs, torch.float64)
    probe.remove()
    out = {
        "params.initial": initial,
        "params.final": flat_params(head),
        "params.final_f64": flat_params(head64),
        "num_batches_tracked": torch.tensor(
            [float(bn.num_batches_tracked.item()) for bn in batch_norms(head)],
            dtype=torch.float32,
        ),
        "config": torch.tensor(
            [fx["lr"], fx["momentum"], fx["weight_decay"], float(fx["fix_predictor_lr"]),
             float(fx["stop_gradient"]), fx["n"], fx["steps"], BN_MOMENTUM],
            dtype=torch.float64,
        ),
    }
    for bn, bn64 in zip(batch_norms(head), batch_norms(head64)):
        assert bn.num_batches_tracked.item() == bn64.num_batches_tracked.item() == 2 * fx["steps"]
    for s, ((x1, x2), r, r64) in enumerate(zip(inputs, rec32, rec64)):
        out[f"params.{s}"] = r["params"]
        out[f"step{s}.x1"] = x1
        out[f"step{s}.x2"] = x2
        out[f"step{s}.lr"] = torch.tensor([r["lr"]], dtype=torch.float32)
        out[f"step{s}.loss"] = r["loss"]
        out[f"step{s}.loss_f64"] = r64["loss"]
        out[f"step{s}.grad_x1"] = r["grad_x1"]
        out[f"step{s}.grad_x2"] = r["grad_x2"]
        out[f"step{s}.grad_x1_f64"] = r64["grad_x1"]
        out[f"step{s}.grad_x2_f64"] = r64["grad_x2"]
        out[f"step{s}.std_z1"] = r["std_z1"]
    for k, v in out.items():
        want = torch.float64 if k.endswith("_f64") or k == "config" else torch.float32
        assert v.dtype == want, (k, v.dtype)
        assert bool(torch.isfinite(v).all()), k
    out = {k: v.contiguous() for k, v in out.items()}
    assert torch.equal(out["params.final"], out[f"params.{fx['steps'] - 1}"])
    for label, start, length in segments(head):
        if "frozen" in label:  # SGD skipped it: no grad, so no decay and no buffer
            sl = slice(start, start + length)
            assert torch.equal(out["params.final"][sl], initial[sl])
            assert torch.equal(out["params.final_f64"][sl], initial[sl].double())
    std_f64 = max(abs(r["std_z1"].item() - r64["std_z1"].item()) for r, r64 in zip(rec32, rec64))
    diag = dict(relu_min=probe.relu_min, var_min=probe.var_min, segments=segments(head),
                std_f64=std_f64)
    return out, rec32, diag


# --------------------------------------------------------------------------------------
# The measures tests/train_pytorch.rs applies, and their tolerances (mirrored there).
# --------------------------------------------------------------------------------------

# Rounding allowance of a parameter: this many f32 ulps of its value.
PARAM_ULPS = 4

# Per fixture: (loss, input grads, params, std_z1). Each is 10x the larger of the two measured
# PyTorch f32 differences printed by this script (f32 vs f64, and f32 vs f32 on inputs
# moved by 1 ulp), rounded up to 1/2/3/5·10^k; main() asserts both stay below tol/5 and,
# with --mutants, that every mutant lands above tol.
TOLERANCES = {
    "official": (2e-6, 1e-4, 2e-5, 5e-7),
    "official_nosg": (2e-6, 1e-2, 5e-3, 5e-7),
    "official_nosg_n8": (1e-6, 3e-5, 2e-5, 5e-7),
    "lightly": (2e-6, 5e-5, 3e-5, 5e-7),
    "reference": (2e-6, 1e-5, 2e-6, 5e-7),
    "reference_nosg": (1e-6, 5e-6, 2e-6, 5e-7),
}


def loss_error(a, t):
    """|a - t| (the loss is O(1))."""
    return abs(float(a) - float(t))


def grad_error(a, t):
    """max |a - t| / max |t| over the tensor (an input gradient's scale is its largest
    entry; entries near 0 have no meaningful relative error)."""
    a, t = a.double(), t.double()
    return ((a - t).abs().max() / t.abs().max()).item()


def f32_ulp(t):
    """The f32 spacing at |t| (t rounded to f32 first)."""
    return torch.from_numpy(np.spacing(np.abs(t.float().numpy()))).double()


def param_error(a, t, initial, segs, only=None):
    """Worst over the layout's tensors (segments) of
    max_i max(0, |a_i - t_i| - PARAM_ULPS·ulp(t_i)) / max_i |t_i - initial_i|:
    the error beyond rounding, relative to how far training has moved that tensor. A
    tensor training leaves unchanged (the frozen bias) must be equal (else inf).
    Returns (error, segment label)."""
    ulp = f32_ulp(t)
    a, t, initial = a.double(), t.double(), initial.double()
    worst, where = 0.0, ""
    for label, start, length in segs:
        if only is not None and only not in label:
            continue
        sl = slice(start, start + length)
        moved = (t[sl] - initial[sl]).abs().max().item()
        excess = ((a[sl] - t[sl]).abs() - PARAM_ULPS * ulp[sl]).clamp_min(0.0).max().item()
        if moved == 0.0:
            err = 0.0 if torch.equal(a[sl], t[sl]) else math.inf
        else:
            err = excess / moved
        if err > worst or not where:
            worst, where = err, label
    return worst, where


def run_error(out, rec, segs):
    """The Rust test's measures for a run `rec` against the stored f32 results: worst
    over steps of the loss, input-gradient, after-step parameter and std_z1 errors."""
    loss, grad, params, where, std = 0.0, 0.0, 0.0, "", 0.0
    for s, r in enumerate(rec):
        loss = max(loss, loss_error(r["loss"], out[f"step{s}.loss"]))
        std = max(std, loss_error(r["std_z1"], out[f"step{s}.std_z1"]))
        for v in (1, 2):
            grad = max(grad, grad_error(r[f"grad_x{v}"], out[f"step{s}.grad_x{v}"]))
        err, label = param_error(r["params"], out[f"params.{s}"], out["params.initial"], segs)
        if err > params or not where:
            params, where = err, f"step {s} {label}"
    return loss, grad, params, where, std


def f32_vs_f64(out, fx, segs):
    steps = range(fx["steps"])
    final, final64, initial = out["params.final"], out["params.final_f64"], out["params.initial"]
    return dict(
        loss=max(loss_error(out[f"step{s}.loss"], out[f"step{s}.loss_f64"]) for s in steps),
        grad=max(grad_error(out[f"step{s}.grad_x{v}"], out[f"step{s}.grad_x{v}_f64"])
                 for s in steps for v in (1, 2)),
        params=param_error(final, final64, initial, segs),
        stats=param_error(final, final64, initial, segs, only="running"),
    )


def perturbed(fx, out, segs, trials=6):
    """PyTorch f32 against itself: the same training on inputs with every element moved
    by one ulp (random sign), worst over `trials` draws. Models another correct f32
    implementation whose roundings differ, with its errors compounding over the steps."""
    worst = [0.0, 0.0, 0.0, "", 0.0]
    for trial in range(trials):
        head, inputs = setup(fx)
        g = gen(1000 + trial)
        moved = [
            tuple(x * (1 + 2.0**-23 * (2 * torch.randint(0, 2, x.shape, generator=g) - 1))
                  for x in pair)
            for pair in inputs
        ]
        loss, grad, params, where, std = run_error(
            out, train(head, fx, moved, torch.float32), segs)
        worst[0], worst[1], worst[4] = max(worst[0], loss), max(worst[1], grad), max(worst[4], std)
        if params >= worst[2]:
            worst[2], worst[3] = params, where
    return worst


# Plausible trainer bugs; `--mutants` trains each in f32 and checks that it lands
# outside the tolerances (the Rust test can fail on it).
MUTANTS = [
    ("no weight decay", {"weight_decay": 0.0}),
    ("no momentum", {"momentum": 0.0}),
    ("momentum 0.8", {"momentum": 0.8}),
    ("stop-gradient flipped", {"stop_gradient_flip": True}),
    ("fix_predictor_lr flipped", {"fix_lr_flip": True}),
    ("BatchNorm in eval mode", {"eval_bn": True}),
    ("frozen bias trained", {"unfreeze": True}),
    ("running_var biased", {"biased_var": True}),
    ("BN momentum 0.09", {"bn_momentum": 0.09}),
]


def run_mutant(fx, overrides):
    """The f32 training with one bug, or None where it does not apply to the fixture."""
    head, inputs = setup(fx)
    o = dict(overrides)
    bns = batch_norms(head)
    if o.pop("stop_gradient_flip", False):
        o["stop_gradient"] = not fx["stop_gradient"]
    if o.pop("fix_lr_flip", False):
        if fx["schedule"] == "constant":
            return None  # every group has lr0 anyway
        o["fix_predictor_lr"] = not fx["fix_predictor_lr"]
    if o.pop("unfreeze", False):
        if fx["head"] != "official":
            return None
        head.projector[6].bias.requires_grad = True
    if "bn_momentum" in o:
        if not bns:
            return None
        bn_momentum = o.pop("bn_momentum")
        for bn in bns:
            bn.momentum = bn_momentum
    if o.pop("biased_var", False):
        if not bns:
            return None
        for bn in bns:  # same normalisation; running_var from the biased batch variance
            bn.register_forward_pre_hook(biased_var_pre)
            bn.register_forward_hook(biased_var_post)
    if o.get("eval_bn") and not bns:
        return None
    return train(head, fx, inputs, torch.float32, o)


def biased_var_pre(m, _inputs):
    m.saved_var = m.running_var.clone()


def biased_var_post(m, inputs, _output):
    if m.training:
        with torch.no_grad():
            var = inputs[0].var(dim=0, unbiased=False)
            # A new tensor: autograd saved the old one (an in-place write would break it).
            m.running_var = (1 - m.momentum) * m.saved_var + m.momentum * var


def sha256s():
    res = {}
    for name in sorted(os.listdir(DATA)):
        if name.startswith("train_") and name.endswith(".safetensors"):
            path = os.path.join(DATA, name)
            with open(path, "rb") as f:
                res[name] = (hashlib.sha256(f.read()).hexdigest(), os.path.getsize(path))
    return res


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", action="store_true",
                        help="also train common trainer bugs; check they exceed the tolerances")
    args = parser.parse_args()
    os.makedirs(DATA, exist_ok=True)

    results = []
    for fx in FIXTURES:
        out, rec, diag = make_fixture(fx)
        path = os.path.join(DATA, f"train_{fx['name']}.safetensors")
        save_file(out, path)
        os.chmod(path, 0o644)
        results.append((fx, out, rec, diag))

    # Self-check: reload every file, retrain from scratch, compare bit for bit.
    for fx, _, _, _ in results:
        stored = load_file(os.path.join(DATA, f"train_{fx['name']}.safetensors"))
        again, _, _ = make_fixture(fx)
        assert stored.keys() == again.keys(), fx["name"]
        for k in stored:
            assert stored[k].dtype == again[k].dtype and torch.equal(stored[k], again[k]), k
    print("self-check: reloaded files == retrained, bit for bit")

    import lightly
    import safetensors

    print(f"torch {torch.__version__}, safetensors {safetensors.__version__}, "
          f"numpy {np.__version__}, lightly {lightly.__version__}")
    print()
    print("PyTorch f32 vs f64 (`f64`) and vs f32 on 1-ulp-moved inputs (`1ulp`, worst of 6);")
    print(f"params: error beyond {PARAM_ULPS} ulps relative to the tensor's move "
          "(f64: final params; 1ulp: after every step)")
    print()
    print("| fixture | seed | params | max abs loss | loss f64 | loss 1ulp | max abs grad_x "
          "| grad_x f64 | grad_x 1ulp | params f64 | params 1ulp | running stats f64 "
          "| std_z1 f64 | std_z1 1ulp | min ReLU input | min BN batch var |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: | ---: | ---: | ---: |")
    for fx, out, _, diag in results:
        segs = diag["segments"]
        m = f32_vs_f64(out, fx, segs)
        p = perturbed(fx, out, segs)
        steps = range(fx["steps"])
        loss_abs = max(abs(float(out[f"step{s}.loss"])) for s in steps)
        grad_abs = max(out[f"step{s}.grad_x{v}"].abs().max().item() for s in steps for v in (1, 2))
        var_min = "—" if diag["var_min"] == math.inf else f"{diag['var_min']:.2g}"
        stats = f"{m['stats'][0]:.1e}" if m["stats"][1] else "—"
        print(f"| {fx['name']} | {fx['seed']} | {out['params.initial'].numel()} "
              f"| {loss_abs:.3g} | {m['loss']:.1e} | {p[0]:.1e} | {grad_abs:.3g} "
              f"| {m['grad']:.1e} | {p[1]:.1e} | {m['params'][0]:.1e} ({m['params'][1]}) "
              f"| {p[2]:.1e} ({p[3]}) | {stats} | {diag['std_f64']:.1e} "
              f"| {p[4]:.1e} | {diag['relu_min']:.1e} "
              f"| {var_min} |")
        tol = TOLERANCES[fx["name"]]
        for what, measured, limit in (("loss", max(m["loss"], p[0]), tol[0]),
                                      ("grad", max(m["grad"], p[1]), tol[1]),
                                      ("params", max(m["params"][0], p[2]), tol[2]),
                                      ("std_z1", max(diag["std_f64"], p[4]), tol[3])):
            assert measured <= limit / 5, (fx["name"], what, measured, limit)
    print()
    print("per step: loss (f32), std_z1")
    for fx, out, _, _ in results:
        row = " ".join(f"{float(out[f'step{s}.loss']):+.4f}/{float(out[f'step{s}.std_z1']):.4f}"
                       for s in range(fx["steps"]))
        print(f"  {fx['name']}: {row}")

    if args.mutants:
        print()
        print("| fixture | mutant | loss | grad_x | params | where | worst / tolerance |")
        print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
        for fx, out, _, diag in results:
            tol = TOLERANCES[fx["name"]]
            for label, overrides in MUTANTS:
                rec = run_mutant(fx, overrides)
                if rec is None:
                    continue
                loss, grad, params, where, _ = run_error(out, rec, diag["segments"])
                ratio = max(loss / tol[0], grad / tol[1], params / tol[2])
                print(f"| {fx['name']} | {label} | {loss:.1e} | {grad:.1e} | {params:.1e} "
                      f"| {where} | {ratio:.3g} |")
                assert ratio > 1, (fx["name"], label)

    print()
    for name, (digest, size) in sha256s().items():
        print(f"{digest}  {size:>8}  {name}")


if __name__ == "__main__":
    main()
