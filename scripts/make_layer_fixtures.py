#!/usr/bin/env python3
"""PyTorch fixtures of the layer kinds (src/layers/), for tests/layers.rs.

Writes tests/data/layers_{linear,batch_norm,conv1d,pool}.safetensors. Each case `NAME`
holds its inputs as float32 (`NAME.x`, `NAME.dy` — the upstream gradient — and the
parameters under their state_dict names, `NAME.weight`, `NAME.bias`, `NAME.running_mean`,
...), and for every result `R` (`y`, `dx`, `dweight`, `dbias`, the running statistics
after one training forward, `y_eval`):
- `NAME.R`: PyTorch's result in float64 on the same float32 inputs (the reference);
- `NAME.R.drift`: max |PyTorch float32 − float64| / max |float64| over the tensor, the
  rounding error of PyTorch's own float32 run. The Rust test allows 10× this (at least
  10 units of 2^-24) relative to the tensor's largest entry, as tests/train_pytorch.rs
  derives its tolerances from PyTorch's f32-vs-f64 drift.

Run with the fixtures venv (torch 2.15, safetensors):
    /work/venv/bin/python scripts/make_layer_fixtures.py
Deterministic (fixed seed); the files are a few KB each.
"""

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
torch.manual_seed(20)


def rand(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).float()


def record(tensors, name, inputs, results64, results32):
    for key, value in inputs.items():
        tensors[f"{name}.{key}"] = value.float().contiguous()
    for key, ref in results64.items():
        t32 = results32[key].double()
        scale = ref.abs().max().item()
        drift = (t32 - ref).abs().max().item() / scale if scale > 0 else 0.0
        tensors[f"{name}.{key}"] = ref.double().contiguous()
        tensors[f"{name}.{key}.drift"] = torch.tensor([drift], dtype=torch.float64)


def run(fn, inputs, dtype):
    """fn(**inputs cast to dtype, with grad where asked) -> dict of results."""
    cast = {k: v.to(dtype).clone() for k, v in inputs.items()}
    return fn(cast)


def linear_case(tensors, name, n, d_in, d_out, bias):
    inputs = {"x": rand(n, d_in), "weight": rand(d_out, d_in, scale=0.5), "dy": rand(n, d_out)}
    if bias:
        inputs["bias"] = rand(d_out, scale=0.5)

    def fn(t):
        x = t["x"].requires_grad_()
        w = t["weight"].requires_grad_()
        b = t["bias"].requires_grad_() if bias else None
        y = F.linear(x, w, b)
        y.backward(t["dy"])
        out = {"y": y.detach(), "dx": x.grad, "dweight": w.grad}
        if bias:
            out["dbias"] = b.grad
        return out

    record(tensors, name, inputs, run(fn, inputs, torch.float64), run(fn, inputs, torch.float32))


def batch_norm_case(tensors, name, shape, affine, momentum=0.1, eps=1e-5):
    c = shape[1]
    inputs = {
        "x": rand(*shape, scale=2.0) + 0.5,
        "dy": rand(*shape),
        "running_mean": rand(c, scale=0.3),
        "running_var": torch.rand(c).float() + 0.5,
    }
    if affine:
        inputs["weight"] = rand(c, scale=0.5) + 1.0
        inputs["bias"] = rand(c, scale=0.5)

    def fn(t):
        bn = torch.nn.BatchNorm1d(c, eps=eps, momentum=momentum, affine=affine).to(t["x"].dtype)
        with torch.no_grad():
            bn.running_mean.copy_(t["running_mean"])
            bn.running_var.copy_(t["running_var"])
            if affine:
                bn.weight.copy_(t["weight"])
                bn.bias.copy_(t["bias"])
        # Eval with the initial running statistics.
        bn.eval()
        y_eval = bn(t["x"]).detach()
        bn.train()
        x = t["x"].requires_grad_()
        y = bn(x)
        y.backward(t["dy"])
        out = {
            "y": y.detach(),
            "dx": x.grad,
            "y_eval": y_eval,
            "running_mean_after": bn.running_mean.detach().clone(),
            "running_var_after": bn.running_var.detach().clone(),
        }
        if affine:
            out["dweight"] = bn.weight.grad
            out["dbias"] = bn.bias.grad
        return out

    record(tensors, name, inputs, run(fn, inputs, torch.float64), run(fn, inputs, torch.float32))


def conv_case(tensors, name, n, c_in, c_out, t_len, kernel, stride, padding, bias):
    inputs = {"x": rand(n, c_in, t_len), "weight": rand(c_out, c_in, kernel, scale=0.4)}
    if bias:
        inputs["bias"] = rand(c_out, scale=0.5)
    t_out = F.conv1d(inputs["x"], inputs["weight"], stride=stride, padding=padding).shape[2]
    inputs["dy"] = rand(n, c_out, t_out)

    def fn(t):
        x = t["x"].requires_grad_()
        w = t["weight"].requires_grad_()
        b = t["bias"].requires_grad_() if bias else None
        y = F.conv1d(x, w, b, stride=stride, padding=padding)
        y.backward(t["dy"])
        out = {"y": y.detach(), "dx": x.grad, "dweight": w.grad}
        if bias:
            out["dbias"] = b.grad
        return out

    record(tensors, name, inputs, run(fn, inputs, torch.float64), run(fn, inputs, torch.float32))


def pool_case(tensors, name, x, op):
    y0 = op(x.double())
    inputs = {"x": x, "dy": rand(*y0.shape)}

    def fn(t):
        x = t["x"].requires_grad_()
        y = op(x)
        y.backward(t["dy"])
        return {"y": y.detach(), "dx": x.grad}

    record(tensors, name, inputs, run(fn, inputs, torch.float64), run(fn, inputs, torch.float32))


def main():
    linear = {}
    linear_case(linear, "bias", 5, 7, 3, True)
    linear_case(linear, "nobias", 3, 9, 4, False)
    save_file(linear, os.path.join(OUT, "layers_linear.safetensors"))

    bn = {}
    batch_norm_case(bn, "seq", (3, 4, 5), affine=True)
    batch_norm_case(bn, "vec", (6, 5), affine=True)
    batch_norm_case(bn, "plain", (2, 3, 4), affine=False, momentum=0.3, eps=1e-3)
    save_file(bn, os.path.join(OUT, "layers_batch_norm.safetensors"))

    conv = {}
    conv_case(conv, "stride2_pad2", 2, 3, 4, 11, 5, 2, 2, True)
    conv_case(conv, "same8", 2, 2, 3, 10, 8, 1, "same", False)
    conv_case(conv, "same3", 2, 3, 2, 7, 3, 1, "same", True)
    conv_case(conv, "plain8", 2, 6, 4, 16, 8, 1, 0, False)
    save_file(conv, os.path.join(OUT, "layers_conv1d.safetensors"))

    pool = {}
    # Odd T (floor mode drops the last position), ties within windows.
    x = rand(2, 3, 7)
    x[0, 0, 0:2] = 1.5  # a tie in the first window
    x[1, 2, 4:6] = -0.25  # a tie in the third window
    pool_case(pool, "max2", x, lambda v: F.max_pool1d(v, 2))
    x = rand(2, 2, 10)
    pool_case(pool, "max3", x, lambda v: F.max_pool1d(v, 3))
    nan = float("nan")
    x = torch.tensor([[[1.0, nan, 3.0, nan, nan, 2.0, 0.5, 0.5, 0.25]]])
    pool_case(pool, "max3_nan", x, lambda v: F.max_pool1d(v, 3))
    x = rand(3, 4, 6)
    x[0, 1, 1] = x[0, 1, 4] = 9.0  # a tie for the maximum
    pool_case(pool, "global", x, lambda v: torch.flatten(F.adaptive_max_pool1d(v, 1), 1))
    x = torch.tensor([[[1.0, 3.0, nan, 2.0, nan, 0.0], [2.0, 2.0, 1.0, 0.0, -1.0, 2.0]]])
    pool_case(pool, "global_nan", x, lambda v: torch.flatten(F.adaptive_max_pool1d(v, 1), 1))
    x = rand(2, 3, 4)
    x[0, 0, 0] = 0.0
    pool_case(pool, "relu", x, torch.relu)
    save_file(pool, os.path.join(OUT, "layers_pool.safetensors"))

    for f in ("linear", "batch_norm", "conv1d", "pool"):
        path = os.path.join(OUT, f"layers_{f}.safetensors")
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
