#!/usr/bin/env python3
"""Make the PyTorch test fixtures in tests/data/ (run by hand; CI never runs this).

    python3 -m venv /path/venv
    /path/venv/bin/pip install -r scripts/requirements-fixtures.txt
    /path/venv/bin/python scripts/make_fixtures.py    # writes tests/data/*, self-checks

Everything is deterministic: every random draw comes from a `torch.Generator` seeded
with a fixed number (and `torch.manual_seed` is set too), PyTorch runs on one CPU thread,
so re-running on the same torch version rewrites the committed files bit for bit.
See tests/data/README.md for what each file holds.
"""

import argparse
import copy
import hashlib
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "tests", "data"))

# Training recipe for the "trained" fixtures (official SimSiam SGD settings).
LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 1e-4
TRAIN_STEPS, TRAIN_BATCH = 5, 8
EVAL_BATCH = 5


def deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def simsiam_loss(p1, p2, z1, z2):
    """The official loss: -(cos(p1, z2).mean() + cos(p2, z1).mean()) * 0.5, as shape [1]."""
    criterion = nn.CosineSimilarity(dim=1)
    loss = -(criterion(p1, z2.detach()).mean() + criterion(p2, z1.detach()).mean()) * 0.5
    return loss.reshape(1)


# --------------------------------------------------------------------------------------
# 1-2. Official facebookresearch/simsiam model with a tiny ResNet-like backbone.
# --------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class TinyResNet(nn.Module):
    """torchvision-ResNet-shaped backbone: conv1/bn1/layer1.0.*/avgpool/fc.

    12 channels pooled to 2x2 and flattened give the fc input width 48 (= prev_dim)."""

    def __init__(self, num_classes=1000, zero_init_residual=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(12)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(12))
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(48, num_classes)
        if zero_init_residual:
            # As torchvision; the training steps below move it off zero.
            nn.init.constant_(self.layer1[0].bn2.weight, 0)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class SimSiam(nn.Module):
    """facebookresearch/simsiam simsiam/builder.py, same module layout and forward."""

    def __init__(self, base_encoder, dim=2048, pred_dim=512):
        super().__init__()
        self.encoder = base_encoder(num_classes=dim, zero_init_residual=True)
        prev_dim = self.encoder.fc.weight.shape[1]
        self.encoder.fc.bias.requires_grad = False  # not use bias as followed by BN
        self.encoder.fc = nn.Sequential(
            nn.Linear(prev_dim, prev_dim, bias=False),
            nn.BatchNorm1d(prev_dim),
            nn.ReLU(inplace=True),
            nn.Linear(prev_dim, prev_dim, bias=False),
            nn.BatchNorm1d(prev_dim),
            nn.ReLU(inplace=True),
            self.encoder.fc,
            nn.BatchNorm1d(dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False),
            nn.BatchNorm1d(pred_dim),
            nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim),
        )

    def forward(self, x1, x2):
        z1 = self.encoder(x1)
        z2 = self.encoder(x2)
        p1 = self.predictor(z1)
        p2 = self.predictor(z2)
        return p1, p2, z1.detach(), z2.detach()


class DDPStandIn(nn.Module):
    """Stands in for DistributedDataParallel: the model under attribute `module`, so the
    state_dict keys get the same `module.` prefix as main_simsiam.py's checkpoints."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def official_eval_tensors(head_fc, predictor, x1, x2):
    """Eval-mode outputs of the official head from fc inputs (backbone outputs)."""
    with torch.no_grad():
        z1, z2 = head_fc(x1), head_fc(x2)
        p1, p2 = predictor(z1), predictor(z2)
        loss = simsiam_loss(p1, p2, z1, z2)
    return dict(z1=z1, z2=z2, p1=p1, p2=p2, loss=loss)


def eval_f32_f64(fn, modules, x1, x2):
    """Run `fn(*modules, x1, x2)` in float32 and on float64 copies; merge with _f64 keys."""
    for m in modules:
        m.eval()
    out = {"x1": x1.clone(), "x2": x2.clone()}
    out.update(fn(*modules, x1, x2))
    doubles = [copy.deepcopy(m).double().eval() for m in modules]
    out64 = fn(*doubles, x1.double(), x2.double())
    for k, v in out64.items():
        out[k + "_f64"] = v
    return {k: v.contiguous() for k, v in out.items()}


def make_official():
    deterministic()
    g = gen(1)
    model = SimSiam(TinyResNet, dim=32, pred_dim=16)
    ddp = DDPStandIn(model)
    optim_params = [
        {"params": ddp.module.encoder.parameters(), "fix_lr": False},
        {"params": ddp.module.predictor.parameters(), "fix_lr": True},
    ]
    optimizer = torch.optim.SGD(optim_params, LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    criterion = nn.CosineSimilarity(dim=1)
    ddp.train()
    for _ in range(TRAIN_STEPS):
        base = torch.randn(TRAIN_BATCH, 3, 8, 8, generator=g)
        v1 = base + 0.3 * torch.randn(base.shape, generator=g)
        v2 = base + 0.3 * torch.randn(base.shape, generator=g)
        p1, p2, z1, z2 = ddp(x1=v1, x2=v2)
        loss = -(criterion(p1, z2).mean() + criterion(p2, z1).mean()) * 0.5
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ckpt = {
        "epoch": 1,
        "arch": "tinyresnet",
        "state_dict": ddp.state_dict(),
        "optimizer": optimizer.state_dict(),
    }
    torch.save(ckpt, os.path.join(DATA, "official_head.pth.tar"))

    prev_dim = model.encoder.fc[0].weight.shape[1]
    x1 = torch.randn(EVAL_BATCH, prev_dim, generator=g)
    x2 = torch.randn(EVAL_BATCH, prev_dim, generator=g)
    out = eval_f32_f64(official_eval_tensors, [model.encoder.fc, model.predictor], x1, x2)
    save_file(out, os.path.join(DATA, "official_eval.safetensors"))
    return model, out


# --------------------------------------------------------------------------------------
# 3. lightly heads.
# --------------------------------------------------------------------------------------


def lightly_heads():
    """lightly's SimSiamProjectionHead / SimSiamPredictionHead classes, or identical
    stand-ins (same `layers` Sequential, same indices) if lightly is not importable."""
    try:
        from lightly.models.modules.heads import SimSiamPredictionHead, SimSiamProjectionHead

        return SimSiamProjectionHead, SimSiamPredictionHead, "lightly"
    except Exception as e:  # pragma: no cover - depends on the venv
        print(f"lightly not importable ({e!r}); using stand-in modules", file=sys.stderr)

    class ProjectionHead(nn.Module):
        def __init__(self, blocks):
            super().__init__()
            layers = []
            for in_dim, out_dim, bn, act in blocks:
                layers.append(nn.Linear(in_dim, out_dim, bias=not bool(bn)))
                if bn:
                    layers.append(bn)
                if act:
                    layers.append(act)
            self.layers = nn.Sequential(*layers)

        def forward(self, x):
            return self.layers(x)

    class SimSiamProjectionHead(ProjectionHead):
        def __init__(self, input_dim=2048, hidden_dim=2048, output_dim=2048):
            super().__init__(
                [
                    (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                    (hidden_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                    (hidden_dim, output_dim, nn.BatchNorm1d(output_dim, affine=False), None),
                ]
            )

    class SimSiamPredictionHead(ProjectionHead):
        def __init__(self, input_dim=2048, hidden_dim=512, output_dim=2048):
            super().__init__(
                [
                    (input_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU()),
                    (hidden_dim, output_dim, None, None),
                ]
            )

    return SimSiamProjectionHead, SimSiamPredictionHead, "stand-in"


class LightlySimSiam(nn.Module):
    def __init__(self, proj_cls, pred_cls):
        super().__init__()
        self.projection_head = proj_cls(40, 24, 16)
        self.prediction_head = pred_cls(16, 8, 16)

    def forward(self, x):
        z = self.projection_head(x)
        p = self.prediction_head(z)
        return z, p


def lightly_eval_tensors(proj, pred, x1, x2):
    with torch.no_grad():
        z1, z2 = proj(x1), proj(x2)
        p1, p2 = pred(z1), pred(z2)
        loss = simsiam_loss(p1, p2, z1, z2)
    return dict(z1=z1, z2=z2, p1=p1, p2=p2, loss=loss)


def make_lightly():
    deterministic()
    g = gen(2)
    proj_cls, pred_cls, source = lightly_heads()
    model = LightlySimSiam(proj_cls, pred_cls)
    optimizer = torch.optim.SGD(
        model.parameters(), LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    model.train()
    for _ in range(TRAIN_STEPS):
        base = torch.randn(TRAIN_BATCH, 40, generator=g)
        v1 = base + 0.3 * torch.randn(base.shape, generator=g)
        v2 = base + 0.3 * torch.randn(base.shape, generator=g)
        z1, p1 = model(v1)
        z2, p2 = model(v2)
        loss = simsiam_loss(p1, p2, z1, z2).squeeze(0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    save_file(model.state_dict(), os.path.join(DATA, "lightly_head.safetensors"))

    x1 = torch.randn(EVAL_BATCH, 40, generator=g)
    x2 = torch.randn(EVAL_BATCH, 40, generator=g)
    out = eval_f32_f64(lightly_eval_tensors, [model.projection_head, model.prediction_head], x1, x2)
    save_file(out, os.path.join(DATA, "lightly_eval.safetensors"))
    return model, out, source


# --------------------------------------------------------------------------------------
# 4. The crate's own reference 2-layer head (no BN, L2-normalised outputs).
# --------------------------------------------------------------------------------------


class SeedHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.projector = nn.Sequential(nn.Linear(12, 20), nn.ReLU(), nn.Linear(20, 6))
        self.predictor = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 6))


def seed_eval_tensors(projector, predictor, x1, x2):
    with torch.no_grad():
        z1 = F.normalize(projector(x1), dim=1)  # L2, eps 1e-12
        z2 = F.normalize(projector(x2), dim=1)
        p1 = F.normalize(predictor(z1), dim=1)
        p2 = F.normalize(predictor(z2), dim=1)
        loss = -((p1 * z2).sum(1).mean() + (p2 * z1).sum(1).mean()) / 2
    return dict(z1=z1, z2=z2, p1=p1, p2=p2, loss=loss.reshape(1))


def make_seed():
    deterministic()
    g = gen(3)
    model = SeedHead()
    # Re-draw every parameter (biases too) from the generator, PyTorch's default
    # Linear init range U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so no bias is zero.
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p.shape[-1] if p.dim() == 2 else model.get_submodule(
                name.rsplit(".", 1)[0]
            ).in_features
            bound = 1.0 / fan_in**0.5
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            assert bool((p != 0).all())
    torch.save(model.state_dict(), os.path.join(DATA, "seed_head.pth"))

    x1 = torch.randn(EVAL_BATCH, 12, generator=g)
    x2 = torch.randn(EVAL_BATCH, 12, generator=g)
    out = eval_f32_f64(seed_eval_tensors, [model.projector, model.predictor], x1, x2)
    save_file(out, os.path.join(DATA, "seed_eval.safetensors"))
    return model, out


# --------------------------------------------------------------------------------------
# 5. Paper-size official head whose parameters follow an integer formula (not committed).
# --------------------------------------------------------------------------------------

PAPER_PREV_DIM, PAPER_DIM, PAPER_PRED_DIM, PAPER_BATCH = 2048, 2048, 512, 2

# (name, shape, offset, k): value = offset + v * 2^-k, v = (hash(t, i) >> 20) - 2048.
# t is the row number in this list (0-based), i the row-major flat index in the tensor.
# Names are the official state_dict keys without the `module.` prefix.
PAPER_TENSORS = [
    ("encoder.fc.0.weight", (2048, 2048), 0.0, 15),
    ("encoder.fc.1.weight", (2048,), 1.0, 13),
    ("encoder.fc.1.bias", (2048,), 0.0, 13),
    ("encoder.fc.1.running_mean", (2048,), 0.0, 14),
    ("encoder.fc.1.running_var", (2048,), 1.0, 13),
    ("encoder.fc.3.weight", (2048, 2048), 0.0, 15),
    ("encoder.fc.4.weight", (2048,), 1.0, 13),
    ("encoder.fc.4.bias", (2048,), 0.0, 13),
    ("encoder.fc.4.running_mean", (2048,), 0.0, 14),
    ("encoder.fc.4.running_var", (2048,), 1.0, 13),
    ("encoder.fc.6.weight", (2048, 2048), 0.0, 15),
    ("encoder.fc.6.bias", (2048,), 0.0, 13),
    ("encoder.fc.7.running_mean", (2048,), 0.0, 14),
    ("encoder.fc.7.running_var", (2048,), 1.0, 13),
    ("predictor.0.weight", (512, 2048), 0.0, 16),
    ("predictor.1.weight", (512,), 1.0, 13),
    ("predictor.1.bias", (512,), 0.0, 13),
    ("predictor.1.running_mean", (512,), 0.0, 14),
    ("predictor.1.running_var", (512,), 1.0, 13),
    ("predictor.3.weight", (2048, 512), 0.0, 14),
    ("predictor.3.bias", (2048,), 0.0, 13),
    ("x1", (2, 2048), 0.0, 11),
    ("x2", (2, 2048), 0.0, 11),
]

M32 = 0xFFFFFFFF


def paper_hash_scalar(t, i):
    """Reference (pure Python ints, u32 wrapping) -- what the Rust port does."""
    h = (i * 0x9E3779B1 + t * 0x85EBCA77 + 0x2545F491) & M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h


def paper_value_scalar(t, i):
    _, _, offset, k = PAPER_TENSORS[t]
    v = (paper_hash_scalar(t, i) >> 20) - 2048
    return offset + v * 2.0**-k


def paper_tensor(t):
    """Vectorised version (numpy uint64, every product < 2^64, masked back to 32 bits)."""
    _, shape, offset, k = PAPER_TENSORS[t]
    n = int(np.prod(shape))
    m = np.uint64(M32)
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(0x9E3779B1) + np.uint64(t * 0x85EBCA77 + 0x2545F491)) & m
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & m
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & m
    h ^= h >> np.uint64(16)
    v = (h >> np.uint64(20)).astype(np.int64) - 2048
    vals = offset + v.astype(np.float64) * 2.0**-k
    f32 = vals.astype(np.float32)
    assert np.array_equal(f32.astype(np.float64), vals), "not exact in f32"
    return torch.from_numpy(f32.reshape(shape))


def paper_model():
    """The official fc head + predictor at paper size, parameters from the formula."""
    fc = nn.Sequential(
        nn.Linear(PAPER_PREV_DIM, PAPER_PREV_DIM, bias=False),
        nn.BatchNorm1d(PAPER_PREV_DIM),
        nn.ReLU(inplace=True),
        nn.Linear(PAPER_PREV_DIM, PAPER_PREV_DIM, bias=False),
        nn.BatchNorm1d(PAPER_PREV_DIM),
        nn.ReLU(inplace=True),
        nn.Linear(PAPER_PREV_DIM, PAPER_DIM),
        nn.BatchNorm1d(PAPER_DIM, affine=False),
    )
    predictor = nn.Sequential(
        nn.Linear(PAPER_DIM, PAPER_PRED_DIM, bias=False),
        nn.BatchNorm1d(PAPER_PRED_DIM),
        nn.ReLU(inplace=True),
        nn.Linear(PAPER_PRED_DIM, PAPER_DIM),
    )
    holder = nn.Module()
    holder.encoder = nn.Module()
    holder.encoder.fc = fc
    holder.predictor = predictor
    sd = holder.state_dict()
    inputs = {}
    with torch.no_grad():
        for t, (name, shape, _, _) in enumerate(PAPER_TENSORS):
            value = paper_tensor(t)
            if name in ("x1", "x2"):
                inputs[name] = value
            else:
                assert tuple(sd[name].shape) == shape, name
                sd[name].copy_(value)
    # Every float tensor of the head is set by the formula; only num_batches_tracked is not.
    covered = {n for n, _, _, _ in PAPER_TENSORS} - {"x1", "x2"}
    assert {k for k in sd if not k.endswith("num_batches_tracked")} == covered
    return fc, predictor, inputs


def make_paper():
    deterministic()
    fc, predictor, inputs = paper_model()
    out = eval_f32_f64(official_eval_tensors, [fc, predictor], inputs["x1"], inputs["x2"])
    save_file(out, os.path.join(DATA, "paper_eval.safetensors"))
    return out


def check_paper():
    """Self-check: the scalar formula (what Rust ports) agrees with the vectorised one,
    and re-deriving the model from the formula reproduces the stored file exactly."""
    for t, (name, shape, _, _) in enumerate(PAPER_TENSORS):
        flat = paper_tensor(t).reshape(-1)
        n = flat.numel()
        idx = sorted(set(list(range(min(n, 64))) + list(range(max(0, n - 64), n))
                         + [(j * 7919) % n for j in range(256)]))
        for i in idx:
            assert float(flat[i]) == paper_value_scalar(t, i), (name, i)
    stored = load_file(os.path.join(DATA, "paper_eval.safetensors"))
    fc, predictor, inputs = paper_model()
    again = eval_f32_f64(official_eval_tensors, [fc, predictor], inputs["x1"], inputs["x2"])
    assert stored.keys() == again.keys()
    for k in stored:
        assert stored[k].dtype == again[k].dtype and torch.equal(stored[k], again[k]), k
    print("paper self-check: formula scalar == vectorised, stored == regenerated")


# --------------------------------------------------------------------------------------


def stats_table(label, out):
    rows = []
    for k in ("z1", "z2", "p1", "p2", "loss"):
        a, b = out[k].double(), out[k + "_f64"]
        rows.append(
            f"| {label} | {k} | {list(out[k].shape)} | {a.abs().max().item():.6g} "
            f"| {(a - b).abs().max().item():.3g} |"
        )
    return rows


def sha256s():
    res = {}
    for name in sorted(os.listdir(DATA)):
        path = os.path.join(DATA, name)
        if name.endswith((".safetensors", ".pth", ".tar")):
            with open(path, "rb") as f:
                res[name] = (hashlib.sha256(f.read()).hexdigest(), os.path.getsize(path))
    return res


def main():
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    os.makedirs(DATA, exist_ok=True)

    _, official = make_official()
    _, lightly_out, source = make_lightly()
    _, seed = make_seed()
    paper = make_paper()
    check_paper()

    import safetensors

    print(f"torch {torch.__version__}, safetensors {safetensors.__version__}, "
          f"numpy {np.__version__}, lightly heads: {source}", end="")
    if source == "lightly":
        from lightly import __version__ as lightly_version

        print(f" {lightly_version}", end="")
    print()
    print("| file | output | shape | max abs (f32) | max abs(f32 - f64) |")
    print("| --- | --- | --- | --- | --- |")
    for label, out in (("official", official), ("lightly", lightly_out), ("seed", seed),
                       ("paper", paper)):
        print("\n".join(stats_table(label, out)))
    for name in os.listdir(DATA):
        os.chmod(os.path.join(DATA, name), 0o644)
    for name, (digest, size) in sha256s().items():
        print(f"{digest}  {size:>8}  {name}")


if __name__ == "__main__":
    main()
