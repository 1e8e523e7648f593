#!/usr/bin/env python3
"""PyTorch's eval() of the official SimSiam head, timed like the crate's criterion bench.

The head is facebookresearch/simsiam's builder.py projector and predictor at
prev_dim = dim = 2048, pred_dim = 512 (BatchNorm in eval mode), the loss
-(cos(p1, z2).mean() + cos(p2, z1).mean()) / 2 under torch.no_grad(), on ONE thread
(torch.set_num_threads(1)), for one pair and batches of 8 and 64 pairs. Prints the
median of several timed runs per case, after warm-up.

Run by hand (CI has no PyTorch), in the same session as the Rust bench, e.g.:
    .venv/bin/python scripts/bench_pytorch.py
    cargo bench --bench head -- official_paper
"""

import statistics
import time

import torch
from torch import nn


def official_head(prev_dim=2048, dim=2048, pred_dim=512):
    fc = nn.Sequential(
        nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=True),
        nn.Linear(prev_dim, prev_dim, bias=False), nn.BatchNorm1d(prev_dim), nn.ReLU(inplace=True),
        nn.Linear(prev_dim, dim), nn.BatchNorm1d(dim, affine=False))
    fc[6].bias.requires_grad = False
    predictor = nn.Sequential(
        nn.Linear(dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim), nn.ReLU(inplace=True),
        nn.Linear(pred_dim, dim))
    return fc.eval(), predictor.eval()


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    fc, predictor = official_head()
    cos = nn.CosineSimilarity(dim=1)

    def loss(x1, x2):
        z1, z2 = fc(x1), fc(x2)
        p1, p2 = predictor(z1), predictor(z2)
        return -(cos(p1, z2).mean() + cos(p2, z1).mean()) * 0.5

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{torch.backends.cpu.get_cpu_capability()}")
    with torch.no_grad():
        for n, repeats in [(1, 60), (8, 20), (64, 10)]:
            x1, x2 = torch.rand(n, 2048) * 2 - 1, torch.rand(n, 2048) * 2 - 1
            for _ in range(3):
                loss(x1, x2)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                loss(x1, x2)
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            print(f"official_paper loss n={n:3d}: median {median * 1e3:8.3f} ms "
                  f"(min {min(times) * 1e3:.3f}, max {max(times) * 1e3:.3f}, {repeats} runs)")


if __name__ == "__main__":
    main()
