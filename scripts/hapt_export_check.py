#!/usr/bin/env python3
"""Check by hand (not in CI) that a network trained here continues in PyTorch: an exported
`hapt-dense` (or `hapt-conv`) network loads into scripts/hapt_pytorch.py's module with a
strict `load_state_dict` and gives the same encoder outputs (issue 21, "An exported
network").

    cargo run --release --example hapt -- --recipe hapt-dense --seed 0 --epochs 30 \\
        --json /tmp/h.json --save /tmp/hapt.simsiam
    /work/venv/bin/python scripts/hapt_export_check.py /tmp/hapt.simsiam

Steps:
1. `simsiam-convert export --preset har-dense MODEL -o exported.safetensors`;
2. `SimSiamNet(recipe).load_state_dict(exported, strict=True)`, eval mode;
3. the labelled test windows of HAPT (9 test subjects), standardised with the training
   windows' statistics as the recipe does, written as `x` `[N, 768]`;
4. `simsiam-convert run MODEL --input x.safetensors -o out.safetensors`;
5. PyTorch's encoder, projection and prediction of the same windows (f32, and f64 from
   the same weights for scale): prints max |Rust − PyTorch| per output, beside PyTorch's
   own f32-vs-f64 difference.

`--from-params-f32 FILE`: a network's raw parameters (little-endian f32 in the flat
layout, which is the state_dict order without num_batches_tracked; what the example's
`--save` wrote beside a head-only image before images held encoders) are made into a
state_dict, imported with `simsiam-convert import --preset har-dense|har-conv` into MODEL,
then checked as above.

`--pytorch-state FILE` (the other way round): a state_dict PyTorch trained
(`hapt_pytorch.py --save-state FILE`) is imported into MODEL first, then checked as above.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import hapt_data  # noqa: E402
import hapt_pytorch as recipe  # noqa: E402

PRESET = {"hapt-dense": "har-dense", "hapt-conv": "har-conv"}


def convert(*args):
    cmd = ["cargo", "run", "--release", "-q", "-p", "simsiam-convert", "--", *args]
    subprocess.run(cmd, check=True, cwd=ROOT)


def test_windows(data):
    recordings = hapt_data.load(data)
    x, y, subject = recipe.windows_of(recordings)
    train_x, _, test_x, _ = recipe.split(x, y, subject)
    mean, std = recipe.channel_stats(train_x)
    flat = ((test_x - mean[None, :, None]) / std[None, :, None]).reshape(test_x.shape[0], -1)
    return torch.from_numpy(flat.astype(np.float32))


def state_from_params(net, path):
    flat = np.fromfile(path, dtype="<f4")
    state = {}
    at = 0
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.int64)
            continue
        n = value.numel()
        state[key] = torch.from_numpy(flat[at:at + n].copy()).reshape(value.shape)
        at += n
    assert at == flat.size, f"{path}: {flat.size} floats, the network has {at}"
    return state


def outputs(net, x):
    with torch.no_grad():
        f = net.encoder(x)
        z = net.projector(f)
        return {"encoder": f, "projection": z, "prediction": net.predictor(z)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="the network's image (MODEL.simsiam)")
    ap.add_argument("--recipe", choices=sorted(PRESET), default="hapt-dense")
    ap.add_argument("--from-params-f32", help="build MODEL from the example's raw parameters")
    ap.add_argument("--pytorch-state", help="build MODEL from a state_dict PyTorch trained")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "hapt.bin"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    preset = PRESET[args.recipe]
    work = tempfile.mkdtemp(prefix="hapt-export-")
    net = recipe.SimSiamNet(args.recipe)

    source = args.from_params_f32 or args.pytorch_state
    if source:
        state = (state_from_params(net, args.from_params_f32) if args.from_params_f32
                 else load_file(args.pytorch_state))
        checkpoint = os.path.join(work, "source.safetensors")
        save_file({k: v.contiguous() for k, v in state.items()}, checkpoint)
        convert("import", "--preset", preset, checkpoint, "-o", os.path.abspath(args.model))

    exported = os.path.join(work, "exported.safetensors")
    convert("export", "--preset", preset, os.path.abspath(args.model), "-o", exported)
    result = net.load_state_dict(load_file(exported), strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    net.eval()

    x = test_windows(args.data)
    x_path, out_path = os.path.join(work, "x.safetensors"), os.path.join(work, "out.safetensors")
    save_file({"x": x.contiguous()}, x_path)
    convert("run", os.path.abspath(args.model), "--input", x_path, "-o", out_path)
    ours = load_file(out_path)
    torch32 = outputs(net, x)
    net64 = recipe.copy.deepcopy(net).double()
    torch64 = outputs(net64, x.double())
    print(f"{args.recipe}: {os.path.abspath(args.model)} exported, loaded strictly into "
          f"hapt_pytorch.SimSiamNet ({len(net.state_dict())} tensors); "
          f"{x.shape[0]} standardised test windows")
    for name in ["encoder", "projection", "prediction"]:
        a, b, b64 = ours[name].double(), torch32[name].double(), torch64[name]
        print(f"  {name:10s} {tuple(a.shape)}: max |Rust − PyTorch| {(a - b).abs().max():.3e}, "
              f"max |PyTorch| {b.abs().max():.3e}; PyTorch f32 vs f64 {(b - b64).abs().max():.3e}, "
              f"Rust vs f64 {(a - b64).abs().max():.3e}")


if __name__ == "__main__":
    main()
