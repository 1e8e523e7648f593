#!/usr/bin/env python3
"""Make the converter's PyTorch fixtures of whole networks,
tests/data/convert_*.{pth,safetensors} (run by hand; CI never runs this).

    /path/venv/bin/python scripts/make_convert_fixtures.py   # writes, re-runs, compares

Each fixture is a network of the sensor recipe (`har-dense` or `har-conv`, the modules of
scripts/make_network_fixtures.py: `encoder`, `projector`, `predictor`) at small widths,
over the recipe's input (6 channels × 128) or odd ones (channels 5/7/9, kernels 3/5,
window 64), and is two files:
- `convert_NAME.pth` (torch.save of the state_dict) or `convert_NAME.safetensors`: the
  checkpoint `simsiam-convert import --preset har-dense|har-conv` reads, the BatchNorms
  moved off the identity and their `num_batches_tracked` set to 3, 4, 5, ...;
- `convert_NAME_io.safetensors`: an input batch `x` (`[N, C·T]` or `[N, C, T]`, the two
  forms `simsiam-convert run` accepts) and PyTorch's eval() outputs `encoder`,
  `projection`, `prediction`.

It also runs the same network in float64 and the f32 network on inputs moved by one ulp,
and prints the worst relative difference (max |a − b| / max |b| over the three outputs):
convert/tests/presets.rs takes 10× the larger, rounded up, as its tolerance (as
tests/network.rs and tests/train_pytorch.rs do).

Deterministic: default init after torch.manual_seed(seed), every other draw from a
torch.Generator with the fixture's seed, one CPU thread, use_deterministic_algorithms.
"""

import copy
import math
import os
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_network_fixtures import Network, batch_norms, deterministic, perturb_batch_norms  # noqa: E402

DATA = os.path.normpath(os.path.join(HERE, "..", "tests", "data"))

HEAD = dict(projector_hidden=12, projection=8, predictor_hidden=4)
FIXTURES = [
    dict(name="har_dense", kind="dense", seed=41, channels=6, window=128, hidden=16,
         feature=12, n=5, checkpoint="pth", x3d=False, **HEAD),
    dict(name="har_conv", kind="conv", seed=42, channels=6, window=128,
         conv_channels=(8, 12, 16), kernels=(8, 8, 8), pool=2, n=5,
         checkpoint="safetensors", x3d=True, **HEAD),
    dict(name="dense_c5", kind="dense", seed=43, channels=5, window=64, hidden=10,
         feature=7, projector_hidden=9, projection=6, predictor_hidden=3, n=4,
         checkpoint="safetensors", x3d=True),
    dict(name="conv_c7", kind="conv", seed=44, channels=7, window=64,
         conv_channels=(5, 9, 11), kernels=(3, 5, 3), pool=2, n=4, checkpoint="pth",
         x3d=False, **HEAD),
    dict(name="conv_c9", kind="conv", seed=45, channels=9, window=64,
         conv_channels=(6, 8, 10), kernels=(5, 3, 5), pool=2, n=3,
         checkpoint="safetensors", x3d=True, **HEAD),
]


def outputs(net, x):
    net.eval()
    with torch.no_grad():
        f = net.encoder(x)
        z = net.projector(f)
        p = net.predictor(z)
    return [f, z, p]


def make(fx):
    deterministic(fx["seed"])
    net = Network(fx)
    g = torch.Generator()
    g.manual_seed(fx["seed"])
    perturb_batch_norms(net, g)
    for i, bn in enumerate(batch_norms(net)):
        bn.num_batches_tracked.fill_(3 + i)
    c, t, n = fx["channels"], fx["window"], fx["n"]
    offset = torch.randn(c, 1, generator=g)
    scale = 0.5 + 1.5 * torch.rand(c, 1, generator=g)
    x = (offset + scale * torch.randn(n, c, t, generator=g)).reshape(n, c * t).contiguous()
    ours = outputs(net, x)
    f64 = outputs(copy.deepcopy(net).double(), x.double())
    ulp = outputs(net, torch.nextafter(x, torch.full_like(x, math.inf)))
    worst = 0.0
    for a, b64, bu in zip(ours, f64, ulp):
        a = a.double()
        for b in (b64, bu.double()):
            worst = max(worst, ((a - b).abs().max() / b.abs().max()).item())
    io = {"x": x.reshape(n, c, t) if fx["x3d"] else x}
    for name, v in zip(["encoder", "projection", "prediction"], ours):
        assert bool(torch.isfinite(v).all()), name
        io[name] = v
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    return state, {k: v.contiguous() for k, v in io.items()}, worst


def main():
    for fx in FIXTURES:
        state, io, worst = make(fx)
        checkpoint = os.path.join(DATA, f"convert_{fx['name']}.{fx['checkpoint']}")
        if fx["checkpoint"] == "pth":
            torch.save(state, checkpoint)
        else:
            save_file(state, checkpoint)
        io_path = os.path.join(DATA, f"convert_{fx['name']}_io.safetensors")
        save_file(io, io_path)
        state2, io2, _ = make(fx)
        loaded = (torch.load(checkpoint) if fx["checkpoint"] == "pth"
                  else load_file(checkpoint))
        for k in state:
            assert torch.equal(loaded[k], state2[k]), f"{fx['name']}: {k} not reproducible"
        for k, v in load_file(io_path).items():
            assert torch.equal(v, io2[k]), f"{fx['name']}: {k} not reproducible"
        sizes = os.path.getsize(checkpoint) + os.path.getsize(io_path)
        print(f"{fx['name']}: {os.path.relpath(checkpoint)}, {os.path.relpath(io_path)} "
              f"({sizes} B); worst relative difference of PyTorch's eval outputs "
              f"(f32 vs f64, f32 vs 1-ulp inputs): {worst:.2e}")


if __name__ == "__main__":
    main()
