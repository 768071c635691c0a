"""GAN step time on this CPU, before and after the speed-ups, measured in one run (ratios, not seconds).

"before": float32, NCHW, backbone features of the grayscale anime recomputed at every step (the old loop).
"after":  bf16 autocast (only where the CPU has native bf16), channels_last, constant features computed once.
Both run the same AnimeGAN adversarial step (D once, G once) on the same batch, interleaved, fastest of
the repeats (other load on a shared machine only adds time). Also: the landmark loss's overhead (step with
/ without it, in the "after" setting; target <= 1.15).

bf16 needs the CPU's full instruction set, so this script runs with FACE2ANIME_CPU_MATH=native (the
pipeline's default pins AVX2 for portable bytes, which rules bf16 out; see docs/reproducibility.md).
Run: `.venv/bin/python benchmarks/bench_gan_step.py [--width 64 --blocks 8]`.
`--smoke` (run by tests/test_benchmarks.py): batch 2 at 64 px, one repeat, 1 thread; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("FACE2ANIME_CPU_MATH", "native")   # before face2anime / torch compute anything

import torch  # noqa: E402

from face2anime.dan.inference import FrozenDAN  # noqa: E402
from face2anime.dan.model import DAN, DANConfig  # noqa: E402
from face2anime.device import cpu_bf16_native  # noqa: E402
from face2anime.gan.backbone import load_backbone  # noqa: E402
from face2anime.gan.objectives import Batch, GANModel, gray3  # noqa: E402
from face2anime.gan.train import TrainConfig, build_model  # noqa: E402
from face2anime.params import AnimeGanParams, GanCommonParams, LandmarkLossParams  # noqa: E402
from face2anime.settings import load_settings  # noqa: E402


def random_dan(width: float) -> FrozenDAN:
    torch.manual_seed(0)
    dan = DAN(DANConfig(width=width))
    dan.set_statistics(torch.rand(40, 2) * 60 + 26, torch.full((112, 112), 0.5), torch.full((112, 112), 0.25))
    return FrozenDAN(dan)


def make(common: GanCommonParams, arch: AnimeGanParams, backbone, amp: bool, channels_last: bool, landmark: bool,
         dan) -> GANModel:
    cfg = TrainConfig("animegan", "landmark" if landmark else "base",
                      common.model_copy(update={"amp": amp, "channels_last": channels_last}), arch,
                      LandmarkLossParams(weight=0.5, wing_w=5.0, wing_eps=2.0, reduction="mean"))
    return build_model(cfg, backbone, dan if landmark else None, torch.device("cpu"))


def batch_for(model: GANModel, photos, anime, cached_gray: bool) -> Batch:
    with torch.no_grad(), model.autocast():
        photo_feat = model.backbone(model.prepare(photos))
        gray_feat = model.backbone(model.prepare(gray3(anime))) if cached_gray else None
    return Batch(model.prepare(photos), photo_feat, torch.rand(len(photos), 40, 2) * 60 + 26, model.prepare(anime),
                 model.prepare(anime), model.prepare(gray3(anime)), gray_feat)


def timed_step(model: GANModel, b: Batch, recompute_gray: bool) -> float:
    t = time.perf_counter()
    if recompute_gray:                  # the old loop: grayscale anime features at every step
        with torch.no_grad(), model.autocast():
            b.anime_gray_feat = model.backbone(b.anime_gray)
    model.step(b, "gan")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--width", type=int, default=None, help="generator width (default: params.yaml; paper: 64)")
    ap.add_argument("--blocks", type=int, default=None, help="generator blocks (default: params.yaml; paper: 8)")
    ap.add_argument("--smoke", action="store_true", help="batch 2 at 64 px, one repeat, 1 thread: the code works")
    args = ap.parse_args()
    if args.smoke:
        args.repeats = 1
    torch.set_num_threads(1 if args.smoke else 2)
    gan = load_settings("gan")
    common, arch = gan.common, gan.animegan
    sizes = {k: v for k, v in (("width", args.width), ("blocks", args.blocks)) if v}
    arch = arch.model_copy(update={"generator": arch.generator.model_validate({**dict(arch.generator), **sizes})})
    bs, size = (2, 64) if args.smoke else (common.batch_size, common.image_size)
    bb = common.backbone
    backbone = load_backbone(bb.name, bb.layer, bb.weights or None, activation=bb.activation)
    dan = random_dan(load_settings("dan").width)
    g = torch.Generator().manual_seed(0)
    photos, anime = torch.rand(bs, 3, size, size, generator=g) * 2 - 1, torch.rand(bs, 3, size, size, generator=g) * 2 - 1

    setups = {"before": dict(amp=False, channels_last=False, landmark=False, cached=False),
              "after": dict(amp=True, channels_last=True, landmark=False, cached=True),
              "after, fp32 (amp off)": dict(amp=False, channels_last=True, landmark=False, cached=True),
              "after, NCHW": dict(amp=True, channels_last=False, landmark=False, cached=True),
              "after + landmark loss": dict(amp=True, channels_last=True, landmark=True, cached=True)}
    runs = {}
    for name, s in setups.items():
        model = make(common, arch, backbone, s["amp"], s["channels_last"], s["landmark"], dan)
        runs[name] = (model, batch_for(model, photos, anime, s["cached"]), not s["cached"])
        timed_step(*runs[name])                      # warm-up
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):                    # interleaved: load changes hit every setup alike
        for name, run in runs.items():
            best[name] = min(best[name], timed_step(*run))
    print(f"AnimeGAN adversarial step, G {dict(arch.generator)}, batch {bs}, {size}px, backbone {bb.name}:{bb.layer} "
          f"({bb.activation}), {torch.get_num_threads()} threads, native bf16: {cpu_bf16_native()}, fastest of {args.repeats} interleaved repeats")
    for name, t in best.items():
        print(f"  {name:24s} {t * 1e3:7.0f} ms/step")
    print(f"speed-up before/after: {best['before'] / best['after']:.2f}x (target >= 1.8)")
    print(f"landmark-loss overhead: {best['after + landmark loss'] / best['after']:.3f} (target <= 1.15)")


if __name__ == "__main__":
    main()
