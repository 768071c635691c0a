"""What the portable CPU math costs: training steps with the math pinned to AVX2 vs the CPU's own, one run.

The pipeline pins oneDNN, ATen and MKL to AVX2 by default so that CPU runs give the same bytes on any
x86-64 machine (src/face2anime/__init__.py, docs/reproducibility.md). The pin is read when the libraries
first compute, so each setting runs in its own child process; the children alternate (portable, native,
portable, ...) and each setting keeps its fastest step, so load on a shared machine hits both alike.

Settings: `portable` (the default: AVX2, float32), `native` float32 (AVX-512 where the CPU has it; what
the pin costs) and, for reference, `native` with bf16 autocast for the GAN (only on CPUs with native bf16;
a different number format, so different results anyway). Steps: a DAN stage-1 training step at the
params' width and batch size, and an AnimeGAN adversarial step (D then G) at the params' sizes.
Run: `.venv/bin/python benchmarks/bench_cpu_math.py [--rounds 3]`.
`--smoke` (run by tests/test_benchmarks.py): one round, one step, batch 2 (GAN at 64 px), 1 thread; its numbers
mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS = {"portable": {"math": "portable", "amp": False}, "native": {"math": "native", "amp": False},
            "native + bf16 (GAN)": {"math": "native", "amp": True}}


def child(amp: bool, steps: int, smoke: bool = False) -> dict:
    """Fastest DAN and GAN step in this process (its CPU math comes from the environment)."""
    import torch

    sys.path.insert(0, str(HERE))
    from bench_gan_step import batch_for, make, random_dan

    from face2anime.dan.model import DAN, DANConfig
    from face2anime.dan.train import normalised_error
    from face2anime.device import cpu_bf16_native
    from face2anime.gan.backbone import load_backbone
    from face2anime.settings import load_params, load_settings

    torch.set_num_threads(1 if smoke else 2)
    dan_p, gan = load_params("dan"), load_settings("gan")
    torch.manual_seed(0)
    dan = DAN(DANConfig(width=float(dan_p["width"]), n_stages=2, dropout=float(dan_p["dropout"])))
    dan.set_statistics(torch.rand(40, 2) * 60 + 26, torch.full((112, 112), 0.5), torch.full((112, 112), 0.25))
    opt = torch.optim.Adam(dan.stage_parameters(1), lr=1e-3)
    dan_bs = 2 if smoke else int(dan_p["batch_size"])
    x, y = torch.rand(dan_bs, 1, 112, 112), torch.rand(dan_bs, 40, 2) * 60 + 26

    def dan_step() -> float:
        t = time.perf_counter()
        loss = normalised_error(dan(x, n_stages=1)[-1], y).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    common, arch = gan.common, gan.animegan
    bb = common.backbone
    backbone = load_backbone(bb.name, bb.layer, bb.weights or None, activation=bb.activation)
    bf16 = amp and cpu_bf16_native()
    model = make(common, arch, backbone, bf16, bf16, False, random_dan(float(dan_p["width"])))
    bs, size = (2, 64) if smoke else (common.batch_size, common.image_size)
    g = torch.Generator().manual_seed(0)
    photos, anime = torch.rand(bs, 3, size, size, generator=g) * 2 - 1, torch.rand(bs, 3, size, size, generator=g) * 2 - 1
    batch = batch_for(model, photos, anime, True)

    def gan_step() -> float:
        t = time.perf_counter()
        model.step(batch, "gan")
        return time.perf_counter() - t

    dan_step(), gan_step()   # warm-up (oneDNN builds its kernels)
    return {"dan": min(dan_step() for _ in range(steps)), "gan": min(gan_step() for _ in range(steps)),
            "bf16": bool(bf16), "isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="child processes per setting, alternating")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per child")
    ap.add_argument("--smoke", action="store_true", help="one round, one step, batch 2, 1 thread: the code works")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.steps = 1, 1
    if args.child is not None:
        print(json.dumps(child(args.child == "amp", args.steps, args.smoke)))
        return
    keep = {k: v for k, v in os.environ.items()
            if k not in ("FACE2ANIME_CPU_MATH", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, s in SETTINGS.items():
            env = {**keep, "FACE2ANIME_CPU_MATH": s["math"]}
            cmd = [sys.executable, __file__, "--child", "amp" if s["amp"] else "fp32", "--steps", str(args.steps)]
            out = subprocess.run(cmd + (["--smoke"] if args.smoke else []), env=env, capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"child {name} failed:\n{out.stderr}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            b = best.setdefault(name, {"dan": float("inf"), "gan": float("inf"), "bf16": r["bf16"]})
            b["dan"], b["gan"] = min(b["dan"], r["dan"]), min(b["gan"], r["gan"])
    print(f"fastest step of {args.rounds} alternating child processes x {args.steps} steps, "
          f"{1 if args.smoke else 2} threads{' (smoke: batch 2, GAN at 64 px)' if args.smoke else ''}")
    for name, b in best.items():
        print(f"  {name:22s} DAN step {b['dan'] * 1e3:6.0f} ms   GAN step {b['gan'] * 1e3:6.0f} ms"
              + ("" if name != "native + bf16 (GAN)" or b["bf16"] else "   (no native bf16 here: float32)"))
    p, n, nb = best["portable"], best["native"], best["native + bf16 (GAN)"]
    print(f"cost of the portable math (portable / native, both float32): DAN {p['dan'] / n['dan']:.2f}x, "
          f"GAN {p['gan'] / n['gan']:.2f}x (issue 12: adopt as default if <= 1.3x)")
    print(f"portable / native bf16 GAN step: {p['gan'] / nb['gan']:.2f}x (bf16 changes the results, not only the bytes)")


if __name__ == "__main__":
    main()
