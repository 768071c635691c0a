"""DAN inference throughput on CPU against this machine's matmul peak, measured in the same run.

Prints images/s at batch 64 for the paper-size network (width 1.0, both stages), the model's FLOPs per
image (counted by torch's FlopCounterMode over one forward pass: convolutions and linear layers; the
heatmap's elementwise distances and the warp are not counted), the achieved GFLOP/s, the GFLOP/s of a
large float32 matmul, and their ratio.

    .venv/bin/python benchmarks/bench_dan.py [--width 1.0] [--batch 64] [--threads 2] [--repeats 3] [--smoke]

`--smoke` (run by tests/test_benchmarks.py): width 0.25, batch 2, one repeat, a 256 matmul, 1 thread; its
numbers mean nothing.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from face2anime.dan.model import DAN, DANConfig


def count_flops(model: DAN, x: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def time_forward(model: DAN, x: torch.Tensor, repeats: int) -> float:
    """Best-of-`repeats` seconds per forward pass (best: the machine is shared, the minimum is the signal)."""
    best = float("inf")
    with torch.no_grad():
        model(x)  # warm-up
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t)
    return best


def matmul_peak(n: int, repeats: int) -> float:
    """GFLOP/s of an n x n float32 matmul (2 n^3 FLOPs), best of `repeats`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--matmul-n", type=int, default=2048)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: the code works")
    args = ap.parse_args()
    if args.smoke:
        args.width, args.batch, args.repeats, args.matmul_n, args.threads = 0.25, 2, 1, 256, 1
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = DAN(DANConfig(width=args.width)).eval()
    model.set_statistics(torch.rand(40, 2) * 60 + 25, torch.full((112, 112), 0.5), torch.full((112, 112), 0.25))
    x = torch.rand(args.batch, 1, 112, 112)

    flops = count_flops(model, x)
    seconds = time_forward(model, x, args.repeats)
    peak = matmul_peak(args.matmul_n, args.repeats + 2)
    achieved = flops / seconds / 1e9
    print(f"DAN width {args.width}, 2 stages, batch {args.batch}, CPU threads {torch.get_num_threads()}")
    print(f"  forward: {seconds * 1000:.0f} ms per batch = {args.batch / seconds:.1f} images/s")
    print(f"  FLOPs: {flops / args.batch / 1e9:.2f} GFLOP per image (torch FlopCounterMode)")
    print(f"  achieved: {achieved:.1f} GFLOP/s")
    print(f"  matmul peak ({args.matmul_n}^2 float32): {peak:.1f} GFLOP/s")
    print(f"  ratio achieved / peak: {achieved / peak:.2f}")


if __name__ == "__main__":
    main()
