#!/usr/bin/env python3
"""PyTorch's training step on the heads of benches/train.rs, timed like criterion does.

A step is what the crate's `Sgd::step` does: zero_grad, the forward pass of both views
in train() mode (BatchNorm batch statistics), the loss
-(cos(p1, z2.detach()).mean() + cos(p2, z1.detach()).mean()) / 2, backward (with the
input gradients, as the crate computes them too), and torch.optim.SGD(lr 0.05, momentum
0.9, weight_decay 1e-4). ONE thread. Heads: the reference's default 64/128/64/32 (L2
after projector and predictor) at 8 and 64 pairs, and the official head at the paper's
size (2048/2048/512) at 64 pairs; the sensor recipe's whole networks `har-dense` and
`har-conv` (issue 20; the modules of scripts/hapt_pytorch.py) at 128 pairs, without the
input gradients (the crate's `Sgd::step` with empty input-gradient slices, the
`train_har_*` groups of benches/train.rs) and, for har-dense, with them. Prints the
median of several timed steps after warm-up, wall clock and this thread's CPU time
(`time.thread_time`; the Rust groups `train_har_*` are timed by CPU time).

Run by hand (CI has no PyTorch), in the same session as the Rust bench (an optional
argument keeps only the cases whose name contains it, e.g. `train_har`):
    /path/venv/bin/python scripts/bench_pytorch_train.py [FILTER]
    RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --bench train
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Reference(nn.Module):
    def __init__(self, d_encoder=64, d_projector=128, d_predictor=64, d_out=32):
        super().__init__()
        self.projector = nn.Sequential(nn.Linear(d_encoder, d_projector), nn.ReLU(),
                                       nn.Linear(d_projector, d_out))
        self.predictor = nn.Sequential(nn.Linear(d_out, d_predictor), nn.ReLU(),
                                       nn.Linear(d_predictor, d_out))

    def forward(self, x1, x2):
        z1 = F.normalize(self.projector(x1), dim=1)
        z2 = F.normalize(self.projector(x2), dim=1)
        p1 = F.normalize(self.predictor(z1), dim=1)
        p2 = F.normalize(self.predictor(z2), dim=1)
        return p1, p2, z1.detach(), z2.detach()


class Official(nn.Module):
    def __init__(self, prev_dim=2048, dim=2048, pred_dim=512):
        super().__init__()
        self.projector = nn.Sequential(
            nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=True),
            nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=True),
            nn.Linear(prev_dim, dim), nn.BatchNorm1d(dim, affine=False))
        self.projector[6].bias.requires_grad = False
        self.predictor = nn.Sequential(
            nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
            nn.Linear(pred_dim, dim))

    def forward(self, x1, x2):
        z1, z2 = self.projector(x1), self.projector(x2)
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return p1, p2, z1.detach(), z2.detach()


def har_encoder(kind, channels=6, window=128):
    if kind == "dense":
        return nn.Sequential(
            nn.Linear(channels * window, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Linear(256, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU())
    return nn.Sequential(
        nn.Unflatten(1, (channels, window)),
        nn.Conv1d(channels, 32, 8, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(32, 64, 8, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.MaxPool1d(2),
        nn.Conv1d(64, 128, 8, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
        nn.AdaptiveMaxPool1d(1), nn.Flatten())


class Har(nn.Module):
    """`har-dense` / `har-conv` of scripts/hapt_pytorch.py (SimSiamNet), two views."""

    def __init__(self, kind):
        super().__init__()
        self.encoder = har_encoder(kind)
        self.projector = nn.Sequential(
            nn.Linear(128, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Linear(128, 128, bias=False), nn.BatchNorm1d(128, affine=False))
        self.predictor = nn.Sequential(
            nn.Linear(128, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Linear(32, 128))

    def forward(self, x1, x2):
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return p1, p2, z1.detach(), z2.detach()


def time_steps(model, d, n, repeats, input_grads=True):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    cos = nn.CosineSimilarity(dim=1)
    x1 = torch.randn(n, d, requires_grad=input_grads)
    x2 = (x1.detach() + 0.3 * torch.randn(n, d)).requires_grad_(input_grads)

    def step():
        opt.zero_grad()
        x1.grad = None
        x2.grad = None
        p1, p2, z1, z2 = model(x1, x2)
        loss = -(cos(p1, z2).mean() + cos(p2, z1).mean()) * 0.5
        loss.backward()
        opt.step()
        return loss

    for _ in range(5):
        step()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return statistics.median(times), min(times), max(times), statistics.median(cpu)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{torch.backends.cpu.get_cpu_capability()}")
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    for name, model, d, n, repeats, input_grads in [
        ("train_default", Reference(), 64, 8, 300, True),
        ("train_default", Reference(), 64, 64, 200, True),
        ("train_official_paper", Official(), 2048, 64, 10, True),
        ("train_har_dense/sgd_step", Har("dense"), 768, 128, 200, False),
        ("train_har_dense/trainer_step_input_grads", Har("dense"), 768, 128, 200, True),
        ("train_har_conv/sgd_step", Har("conv"), 768, 128, 30, False),
    ]:
        if only not in name:
            continue
        median, lo, hi, cpu = time_steps(model, d, n, repeats, input_grads)
        print(f"{name} n={n:3d}: median {median * 1e3:9.3f} ms "
              f"(min {lo * 1e3:.3f}, max {hi * 1e3:.3f}, {repeats} steps), "
              f"thread CPU median {cpu * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
