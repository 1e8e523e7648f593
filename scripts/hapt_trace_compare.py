#!/usr/bin/env python3
"""Replays a trace of `hapt/examples/hapt_trace.rs` in PyTorch and compares it step by step
(run by hand; never in CI).

    cargo run --release -p simsiam-hapt --example hapt_trace -- --recipe hapt-conv --seed 0 \\
        --steps 100 --checkpoints 1,10,100 --out /tmp/trace
    /path/venv/bin/python scripts/hapt_trace_compare.py --recipe hapt-conv --trace /tmp/trace \\
        --steps 100 --checkpoints 1,10,100 [--lr 0.05]

From the trace's starting parameters (`start.f32`, the crate's flat layout = the
`state_dict` order of `scripts/hapt_pytorch.py`'s `SimSiamNet` without
`num_batches_tracked`) it takes the same SGD steps (lr constant, momentum 0.9, weight decay
1e-4, both views through the network separately in train() mode) on the trace's views, in
float32 and in float64, and prints per checkpoint, for each state_dict tensor, the largest
|Rust − PyTorch f32| beside |PyTorch f32 − PyTorch f64| (the rounding a float32
implementation carries at that point), then the same for the losses and for the encoder's
eval features of the test windows (`features_start.f32`, `features_end.f32`). The data file
gives the test windows (`--data`, default data/hapt.bin).
"""

import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hapt_data  # noqa: E402
import hapt_pytorch as hp  # noqa: E402


def read(path):
    return torch.from_numpy(np.fromfile(path, dtype="<f4"))


def load_flat(model, flat):
    sd = model.state_dict()
    at = 0
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        n = v.numel()
        sd[k] = flat[at:at + n].view_as(v).to(v.dtype).clone()
        at += n
    if at != flat.numel():
        raise SystemExit(f"parameter file holds {flat.numel()} floats, the network {at}")
    model.load_state_dict(sd)


def flat_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def unflatten(model, flat):
    out, at = {}, 0
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = flat[at:at + v.numel()].view_as(v)
        at += v.numel()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--trace", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--checkpoints", default="")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--data", default=os.path.join(HERE, "..", "data", "hapt.bin"))
    ap.add_argument("--f32-only", action="store_true", help="no float64 replay (long traces)")
    ap.add_argument("--protocols-seed", type=int,
                    help="at the end, the six protocols (label draws of this seed) on the "
                         "features of the PyTorch replay and of the trace's last parameters "
                         "(params_<steps>.f32)")
    ap.add_argument("--every", type=int, default=0, help="print the mean losses every N steps")
    ap.add_argument("--nudge", action="store_true",
                    help="start the PyTorch replay one ulp away (every parameter moved to the "
                         "next float towards +inf): how far rounding alone carries a run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    checkpoints = [int(c) for c in args.checkpoints.split(",") if c]

    start = read(os.path.join(args.trace, "start.f32"))
    if args.nudge:
        start = torch.nextafter(start, torch.full_like(start, float("inf")))
    models = {}
    for dtype in (torch.float32,) if args.f32_only else (torch.float32, torch.float64):
        m = hp.SimSiamNet(args.recipe)
        load_flat(m, start)
        m = m.to(dtype).train()
        opt = torch.optim.SGD(m.parameters(), lr=args.lr, momentum=hp.MOMENTUM,
                              weight_decay=hp.WEIGHT_DECAY)
        models[dtype] = (m, opt)

    rec = hapt_data.load(args.data)
    x, y, s = hp.windows_of(rec)
    train_x, _, test_x, _ = hp.split(x, y, s)
    mean, std = hp.channel_stats(train_x)
    test_std = torch.from_numpy(((test_x - mean[None, :, None]) / std[None, :, None])
                                .reshape(test_x.shape[0], -1).astype(np.float32))

    def features(dtype):
        m = models[dtype][0]
        m.eval()
        with torch.no_grad():
            f = torch.cat([m.encoder(test_std[i:i + 512].to(dtype))
                           for i in range(0, test_std.shape[0], 512)])
        m.train()
        return f.double()

    def compare_features(name, rust_file):
        rust = read(os.path.join(args.trace, rust_file)).double().view(test_std.shape[0], -1)
        f32 = features(torch.float32)
        f64 = f32 if args.f32_only else features(torch.float64)
        scale = f64.abs().max().item()
        print(f"{name}: features max |Rust - torch f32| {(rust - f32).abs().max().item():.3e}, "
              f"|torch f32 - f64| {(f32 - f64).abs().max().item():.3e}, "
              f"|Rust - f64| {(rust - f64).abs().max().item():.3e} (max |feature| {scale:.3f})")

    compare_features("start", "features_start.f32")
    lines = [line.split() for line in open(os.path.join(args.trace, "loss.txt"))]
    rust_losses = [float(line[0]) for line in lines]
    rust_lrs = [float(line[1]) for line in lines]
    torch_losses = []
    for step in range(1, args.steps + 1):
        v = read(os.path.join(args.trace, f"views_{step}.f32")).view(2, hp.BATCH, -1)
        losses = {}
        for dtype, (m, opt) in models.items():
            for group in opt.param_groups:
                group["lr"] = rust_lrs[step - 1]
            opt.zero_grad(set_to_none=True)
            z1, p1 = m(v[0].to(dtype))
            z2, p2 = m(v[1].to(dtype))
            loss = hp.simsiam_loss(p1, p2, z1, z2)
            loss.backward()
            opt.step()
            losses[dtype] = loss.item()
        r = rust_losses[step - 1]
        torch_losses.append(losses[torch.float32])
        if args.every and step % args.every == 0:
            print(f"steps {step - args.every + 1}..{step}: mean loss Rust "
                  f"{np.mean(rust_losses[step - args.every:step]):+.4f}, torch f32 "
                  f"{np.mean(torch_losses[-args.every:]):+.4f}", flush=True)
        if not args.f32_only and (step in checkpoints or step == args.steps):
            print(f"step {step}: loss Rust {r:+.7f} torch f32 {losses[torch.float32]:+.7f} "
                  f"f64 {losses[torch.float64]:+.7f}")
        if step in checkpoints and not args.f32_only:
            rust = unflatten(models[torch.float32][0],
                             read(os.path.join(args.trace, f"params_{step}.f32")).double())
            a, b = flat_of(models[torch.float32][0]), flat_of(models[torch.float64][0])
            worst = 0.0
            for k in a:
                d_rust = (rust[k] - b[k]).abs().max().item()
                d_torch = (a[k].double() - b[k]).abs().max().item()
                ratio = d_rust / max(d_torch, 1e-30)
                worst = max(worst, ratio)
                print(f"  {k:28s} |Rust - f64| {d_rust:.3e}  |torch f32 - f64| {d_torch:.3e}  "
                      f"ratio {ratio:6.2f}  max|p| {b[k].abs().max().item():.3e}")
            print(f"  worst ratio {worst:.2f}")
    compare_features(f"after {args.steps} steps", "features_end.f32")
    if args.protocols_seed is not None:
        train_y = hp.split(x, y, s)[1]
        lab = train_y >= 0
        lab_std = torch.from_numpy(((train_x[lab] - mean[None, :, None]) / std[None, :, None])
                                   .reshape(int(lab.sum()), -1).astype(np.float32))
        test_y = hp.split(x, y, s)[3]
        draws = {k: hp.few_label_draws(train_y[lab], k, args.protocols_seed) for k in (5, 20)}
        rust_model = hp.SimSiamNet(args.recipe)
        load_flat(rust_model, read(os.path.join(args.trace, f"params_{args.steps}.f32")))
        for name, m in (("PyTorch replay", models[torch.float32][0]), ("Rust trace", rust_model)):
            r = hp.protocols(hp.encode(m, lab_std), train_y[lab], hp.encode(m, test_std), test_y,
                             draws)
            print(f"{name}: " + " ".join(f"{k} {r[k]:.1f}" for k in hp.PROTOCOLS), flush=True)


if __name__ == "__main__":
    main()
