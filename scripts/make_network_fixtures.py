#!/usr/bin/env python3
"""Make the PyTorch fixtures of whole networks, tests/data/network_*.safetensors (run by
hand; CI never runs this).

    /path/venv/bin/python scripts/make_network_fixtures.py   # writes, re-runs, compares

Each fixture is a small network of the sensor recipe (`har-dense`, `har-conv`: an encoder
in front of the SimSiam projector and predictor, modules `encoder`, `projector`,
`predictor` as in issue 20) at odd sizes, and holds
- its initial parameters in the crate's flat layout (the `state_dict` order without
  `num_batches_tracked`: encoder, projector, predictor), the BatchNorms moved off the
  identity;
- eval outputs (`eval()` mode, running statistics) of a batch: the encoder's output,
  the projection and the prediction;
- three SGD steps in train() mode as facebookresearch/simsiam's main_simsiam.py does
  (stop-gradient, momentum, weight decay, cosine schedule on the encoder and projector,
  the predictor at a fixed lr): per step the two views, the lr, the loss, dL/dx1,
  dL/dx2 and every parameter and running statistic after the update;
- the same in float64 (`.double()` from the same start), and the f32 run again on inputs
  moved by one ulp: the two measured differences from which tests/network.rs derives
  its tolerances (10x the larger, as tests/train_pytorch.rs does). This script prints
  them.

Deterministic: default init after torch.manual_seed(seed), every other draw from a
torch.Generator seeded with the fixture's seed, one CPU thread,
use_deterministic_algorithms(True). Re-running rewrites the files bit for bit (checked).
"""

import copy
import math
import os

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "tests", "data"))


def deterministic(seed):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def head(feature, projector_hidden, projection, predictor_hidden):
    projector = nn.Sequential(
        nn.Linear(feature, projector_hidden, bias=False),
        nn.BatchNorm1d(projector_hidden),
        nn.ReLU(inplace=True),
        nn.Linear(projector_hidden, projection, bias=False),
        nn.BatchNorm1d(projection, affine=False),
    )
    predictor = nn.Sequential(
        nn.Linear(projection, predictor_hidden, bias=False),
        nn.BatchNorm1d(predictor_hidden),
        nn.ReLU(inplace=True),
        nn.Linear(predictor_hidden, projection),
    )
    return projector, predictor


class Network(nn.Module):
    def __init__(self, fx):
        super().__init__()
        c, t = fx["channels"], fx["window"]
        if fx["kind"] == "dense":
            hidden, feature = fx["hidden"], fx["feature"]
            self.encoder = nn.Sequential(
                nn.Linear(c * t, hidden, bias=False),
                nn.BatchNorm1d(hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, feature, bias=False),
                nn.BatchNorm1d(feature),
                nn.ReLU(inplace=True),
            )
        else:
            (c1, c2, c3), (k1, k2, k3), pool = fx["conv_channels"], fx["kernels"], fx["pool"]
            feature = c3
            self.encoder = nn.Sequential(
                nn.Unflatten(1, (c, t)),
                nn.Conv1d(c, c1, k1, bias=False),
                nn.BatchNorm1d(c1),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(pool),
                nn.Conv1d(c1, c2, k2, bias=False),
                nn.BatchNorm1d(c2),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(pool),
                nn.Conv1d(c2, c3, k3, bias=False),
                nn.BatchNorm1d(c3),
                nn.ReLU(inplace=True),
                nn.AdaptiveMaxPool1d(1),
                nn.Flatten(),
            )
        self.projector, self.predictor = head(
            feature, fx["projector_hidden"], fx["projection"], fx["predictor_hidden"]
        )


def flat_params(net):
    return torch.cat(
        [v.detach().reshape(-1) for k, v in net.state_dict().items()
         if not k.endswith("num_batches_tracked")]
    ).clone()


def batch_norms(net):
    return [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]


def perturb_batch_norms(net, g):
    with torch.no_grad():
        for bn in batch_norms(net):
            c = bn.num_features
            if bn.affine:
                bn.weight.copy_(1 + 0.1 * torch.randn(c, generator=g))
                bn.bias.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_mean.copy_(0.1 * torch.randn(c, generator=g))
            bn.running_var.copy_(1 + 0.2 * torch.rand(c, generator=g))


def make_inputs(g, fx):
    """Windows [N, C·T] channel-major: per-channel offsets and scales, a smooth base per
    window and two noisy views of it."""
    c, t, n = fx["channels"], fx["window"], fx["n"]
    offset = torch.randn(c, 1, generator=g)
    scale = 0.5 + 1.5 * torch.rand(c, 1, generator=g)
    out = []
    for _ in range(fx["steps"] + 1):
        phase = 6.283 * torch.rand(n, c, 1, generator=g)
        freq = 0.1 + 0.4 * torch.rand(n, c, 1, generator=g)
        base = offset + scale * torch.sin(freq * torch.arange(t) + phase)
        x1 = base + 0.3 * scale * torch.randn(n, c, t, generator=g)
        x2 = base + 0.3 * scale * torch.randn(n, c, t, generator=g)
        out.append((x1.reshape(n, c * t), x2.reshape(n, c * t)))
    return out


def lr_at(fx, step):
    return fx["lr"] * 0.5 * (1.0 + math.cos(math.pi * step / fx["steps"]))


def evaluate(net, x, dtype):
    net.eval()
    with torch.no_grad():
        f = net.encoder(x.to(dtype))
        z = net.projector(f)
        p = net.predictor(z)
    return f, z, p


def train(net, fx, inputs, dtype):
    net.train()
    optimizer = torch.optim.SGD(
        [
            {"params": list(net.encoder.parameters()) + list(net.projector.parameters()),
             "fix_lr": False},
            {"params": net.predictor.parameters(), "fix_lr": True},
        ],
        fx["lr"],
        momentum=fx["momentum"],
        weight_decay=fx["weight_decay"],
        foreach=False,
    )
    criterion = nn.CosineSimilarity(dim=1)
    records = []
    for step, (x1, x2) in enumerate(inputs):
        lr = lr_at(fx, step)
        for group in optimizer.param_groups:
            group["lr"] = fx["lr"] if group["fix_lr"] else lr
        optimizer.zero_grad()
        x1 = x1.to(dtype).clone().requires_grad_(True)
        x2 = x2.to(dtype).clone().requires_grad_(True)
        z1 = net.projector(net.encoder(x1))
        z2 = net.projector(net.encoder(x2))
        p1, p2 = net.predictor(z1), net.predictor(z2)
        loss = -(criterion(p1, z2.detach()).mean() + criterion(p2, z1.detach()).mean()) * 0.5
        loss.backward()
        optimizer.step()
        records.append(dict(lr=lr, loss=loss.detach().reshape(1),
                            grad_x1=x1.grad.detach().clone(),
                            grad_x2=x2.grad.detach().clone(), params=flat_params(net)))
    return records


def next_ulp(x):
    return torch.nextafter(x, torch.full_like(x, math.inf))


FIXTURES = [
    dict(name="network_dense", kind="dense", seed=31, channels=5, window=24, hidden=16,
         feature=12, projector_hidden=12, projection=8, predictor_hidden=4, n=6, steps=3,
         lr=0.05, momentum=0.9, weight_decay=1e-4),
    dict(name="network_conv", kind="conv", seed=37, channels=5, window=32,
         conv_channels=(7, 9, 12), kernels=(3, 5, 3), pool=2, projector_hidden=12,
         projection=8, predictor_hidden=4, n=6, steps=3, lr=0.05, momentum=0.9,
         weight_decay=1e-4),
]


def sizes(fx):
    if fx["kind"] == "dense":
        return [fx["channels"], fx["window"], fx["hidden"], fx["feature"],
                fx["projector_hidden"], fx["projection"], fx["predictor_hidden"]]
    return [fx["channels"], fx["window"], *fx["conv_channels"], *fx["kernels"], fx["pool"],
            fx["projector_hidden"], fx["projection"], fx["predictor_hidden"]]


def make_fixture(fx):
    deterministic(fx["seed"])
    net = Network(fx)
    g = torch.Generator()
    g.manual_seed(fx["seed"])
    perturb_batch_norms(net, g)
    data = make_inputs(g, fx)
    eval_x = data[0][0]
    steps = data[1:]
    net64 = copy.deepcopy(net).double()
    net_ulp = copy.deepcopy(net)
    out = {
        "sizes": torch.tensor(sizes(fx), dtype=torch.float64),
        "config": torch.tensor([fx["lr"], fx["momentum"], fx["weight_decay"], fx["n"],
                                fx["steps"]], dtype=torch.float64),
        "params.initial": flat_params(net),
        "eval.x": eval_x,
    }
    for name, v32, v64 in zip(["encoder", "projection", "prediction"],
                              evaluate(net, eval_x, torch.float32),
                              evaluate(net64, eval_x, torch.float64)):
        out[f"eval.{name}"] = v32
        out[f"eval.{name}_f64"] = v64
    rec32 = train(net, fx, steps, torch.float32)
    rec64 = train(net64, fx, steps, torch.float64)
    rec_ulp = train(net_ulp, fx, [(next_ulp(a), next_ulp(b)) for a, b in steps], torch.float32)
    for s, ((x1, x2), r, r64, ru) in enumerate(zip(steps, rec32, rec64, rec_ulp)):
        out[f"step{s}.x1"] = x1
        out[f"step{s}.x2"] = x2
        out[f"step{s}.lr"] = torch.tensor([r["lr"]], dtype=torch.float32)
        for key in ["loss", "grad_x1", "grad_x2", "params"]:
            out[f"step{s}.{key}"] = r[key]
            out[f"step{s}.{key}_f64"] = r64[key]
            out[f"step{s}.{key}_ulp"] = ru[key]
    out["num_batches_tracked"] = torch.tensor(
        [float(bn.num_batches_tracked.item()) for bn in batch_norms(net)], dtype=torch.float32)
    for k, v in out.items():
        assert bool(torch.isfinite(v).all()), k
    segments = [v.numel() for k, v in net.state_dict().items()
                if not k.endswith("num_batches_tracked")]
    return {k: v.contiguous() for k, v in out.items()}, segments


def measure(fx, out, segments):
    """The measured PyTorch differences (f32 vs f64, f32 vs f32 on 1-ulp inputs), in the
    measures tests/network.rs applies: eval outputs and input gradients relative to the
    tensor's largest entry, the loss absolute, parameters per tensor relative to how far
    training moved the tensor."""
    init = out["params.initial"].double()
    worst = dict(eval=0.0, loss=0.0, grad=0.0, param=0.0)
    for name in ["encoder", "projection", "prediction"]:
        a, b = out[f"eval.{name}"].double(), out[f"eval.{name}_f64"]
        worst["eval"] = max(worst["eval"], ((a - b).abs().max() / b.abs().max()).item())
    for s in range(fx["steps"]):
        for other in ["_f64", "_ulp"]:
            l32 = out[f"step{s}.loss"].double()
            worst["loss"] = max(worst["loss"],
                                (l32 - out[f"step{s}.loss{other}"].double()).abs().item())
            for gname in ["grad_x1", "grad_x2"]:
                a = out[f"step{s}.{gname}"].double()
                b = out[f"step{s}.{gname}{other}"].double()
                worst["grad"] = max(worst["grad"], ((a - b).abs().max() / b.abs().max()).item())
            a = out[f"step{s}.params"].double()
            b = out[f"step{s}.params{other}"].double()
            at = 0
            for length in segments:
                sl = slice(at, at + length)
                at += length
                moved = (b[sl] - init[sl]).abs().max().item()
                worst["param"] = max(worst["param"], (a[sl] - b[sl]).abs().max().item() / moved)
    return worst


def main():
    for fx in FIXTURES:
        out, segments = make_fixture(fx)
        worst = measure(fx, out, segments)
        # Only what the Rust test reads is stored.
        stored = {k: v for k, v in out.items() if not k.endswith(("_f64", "_ulp"))}
        path = os.path.join(DATA, fx["name"] + ".safetensors")
        save_file(stored, path)
        again, _ = make_fixture(fx)
        loaded = load_file(path)
        for k in stored:
            assert torch.equal(loaded[k], again[k]), f"{fx['name']}: {k} not reproducible"
        print(f"{fx['name']}: {os.path.relpath(path)} ({os.path.getsize(path)} B); measured "
              "worst PyTorch differences (f32 vs f64, f32 vs 1-ulp inputs): " +
              ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
