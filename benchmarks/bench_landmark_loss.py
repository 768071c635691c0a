"""What the landmark loss costs, measured in one run on this machine.

1. Generator step time WITH the landmark loss divided by WITHOUT it (same generator, batch, backbone,
   discriminator; CartoonGAN demo sizes from params.yaml). Target: <= 1.15.
2. Cost per image of the study's way (per image, unbatched, through numpy: detach -> numpy -> grayscale ->
   DAN forward on one image -> numpy Wing; no gradient ever reaches G) against this project's batched
   in-graph loss, as ratios: forward against forward (the batching/numpy difference), and against our
   forward + backward (what the gradient the study never had costs). The study also rebuilt a TensorFlow
   Estimator for every image, which this emulation leaves out: its real cost per image was higher.
Timings are the fastest of interleaved repeats (other load on a shared machine only adds time).

Uses `models/dan` when it exists, else a randomly initialised DAN of the `dan.width` in params.yaml
(the cost does not depend on the weights). Run: `.venv/bin/python benchmarks/bench_landmark_loss.py`.
`--smoke` (run by tests/test_benchmarks.py): batch 2, one repeat, 1 thread; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from face2anime.dan.inference import FrozenDAN
from face2anime.dan.model import DAN, DANConfig
from face2anime.gan import losses as L
from face2anime.gan.backbone import load_backbone
from face2anime.gan.models import build_discriminator, build_generator
from face2anime.settings import load_params, load_settings


def numpy_wing(pred: np.ndarray, target: np.ndarray, w: float = 5.0, eps: float = 2.0) -> float:
    """The study's numpy Wing (sum over points and x/y, mean over the batch, halved)."""
    c = w * (1.0 - math.log(1.0 + w / eps))
    ax = np.abs(pred - target)
    losses = np.where(ax < w, w * np.log(1.0 + ax / eps), ax - c)
    return float(np.mean(losses.sum(axis=(1, 2))) / 2)


def load_dan() -> tuple[FrozenDAN, str]:
    if Path("models/dan/dan.safetensors").exists():
        return FrozenDAN.load("models/dan"), "models/dan"
    width = float(load_params("dan").get("width", 0.25))
    torch.manual_seed(0)
    dan = DAN(DANConfig(width=width))
    for stage in dan.stages:     # untrained stages start at zero offsets; make the output depend on the image
        torch.nn.init.normal_(stage.out.weight, std=0.01)
    dan.set_statistics(torch.rand(40, 2) * 60 + 26, torch.full((112, 112), 0.5), torch.full((112, 112), 0.25))
    return FrozenDAN(dan), f"random DAN width {width}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="cartoongan", choices=["cartoongan", "animegan"])
    ap.add_argument("--width", type=int, default=None, help="generator width (default: params.yaml; paper: 64)")
    ap.add_argument("--blocks", type=int, default=None, help="generator blocks (default: params.yaml; paper: 8)")
    ap.add_argument("--smoke", action="store_true", help="batch 2, one repeat, 1 thread: the code works")
    args = ap.parse_args()
    if args.smoke:
        args.repeats = 1
    torch.set_num_threads(1 if args.smoke else 2)
    gan = load_settings("gan")
    c, arch, lm = gan.common, getattr(gan, args.model), gan.landmark
    sizes = {k: v for k, v in (("width", args.width), ("blocks", args.blocks)) if v}
    arch = arch.model_copy(update={"generator": arch.generator.model_validate({**dict(arch.generator), **sizes})})
    bs, size = 2 if args.smoke else c.batch_size, c.image_size
    torch.manual_seed(0)
    G = build_generator(arch.generator, 112)
    D = build_discriminator(arch.discriminator)
    for p in D.parameters():
        p.requires_grad_(False)
    bb = c.backbone
    backbone = load_backbone(bb.name, bb.layer, bb.weights or None, activation=bb.activation)
    dan, dan_name = load_dan()
    land = L.LandmarkLoss(dan, lm.wing_w, lm.wing_eps, lm.reduction)
    opt = torch.optim.Adam(G.parameters(), lr=1e-5)
    x = torch.rand(bs, 3, size, size) * 2 - 1
    target = torch.rand(bs, 40, 2) * 60 + 26
    with torch.no_grad():
        feat_x = backbone(x)

    def g_step(with_landmark: bool) -> tuple[float, float]:
        t, cpu = time.perf_counter(), time.process_time()
        fake = G(x)
        loss = L.bce_g_loss(D(fake)) + 1.5 * L.content_loss(backbone(fake), feat_x)
        if with_landmark:
            loss = loss + lm.weight * land(fake, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t, time.process_time() - cpu

    def ours_per_image() -> tuple[float, float]:
        fake = G(x).detach().requires_grad_(True)      # the generator's output, as inside a step
        t, cpu = time.perf_counter(), time.process_time()
        land(fake, target).backward()
        return (time.perf_counter() - t) / bs, (time.process_time() - cpu) / bs

    def ours_forward_per_image() -> tuple[float, float]:
        fake = G(x).detach()
        t, cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            land(fake, target)
        return (time.perf_counter() - t) / bs, (time.process_time() - cpu) / bs

    def study_per_image() -> tuple[float, float]:
        fake = G(x)
        t, cpu = time.perf_counter(), time.process_time()
        preds = np.zeros((bs, 40, 2), np.float32)
        for i in range(bs):                             # one image at a time, through numpy
            img = (fake[i].detach().cpu().numpy().transpose(1, 2, 0) + 1) / 2 * 255
            gray = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_RGB2GRAY) / 255.0
            with torch.no_grad():
                preds[i] = dan(torch.from_numpy(gray)[None, None].float()).numpy()[0]
        numpy_wing(preds, target.numpy())
        return (time.perf_counter() - t) / bs, (time.process_time() - cpu) / bs

    for f in (lambda: g_step(False), lambda: g_step(True), ours_per_image, ours_forward_per_image, study_per_image):
        f()                                             # warm-up
    without, with_, ours, ours_fwd, study = [], [], [], [], []
    for _ in range(args.repeats):                       # interleaved, so load changes hit both sides alike
        without.append(g_step(False))
        with_.append(g_step(True))
        ours.append(ours_per_image())
        ours_fwd.append(ours_forward_per_image())
        study.append(study_per_image())
    def best(runs: list[tuple[float, float]], k: int) -> float:
        """The fastest repeat: other load on a shared machine only ever adds time (as `timeit` reasons)."""
        return min(r[k] for r in runs)

    print(f"setup: {args.model} G {dict(arch.generator)}, batch {bs}, {size}px, backbone {bb.name}:"
          f"{bb.layer}, DAN: {dan_name}, torch threads {torch.get_num_threads()}, {args.repeats} interleaved repeats, fastest of each; "
          f"wall time and process CPU time (the latter is less disturbed by other load on the machine)")
    for k, clock in enumerate(("wall", "cpu")):
        print(f"[{clock}] generator step: without landmark loss {best(without, k) * 1e3:.0f} ms, "
              f"with {best(with_, k) * 1e3:.0f} ms -> ratio {best(with_, k) / best(without, k):.3f} (target <= 1.15)")
        print(f"[{clock}] landmark loss per image: study's way (unbatched, through numpy, forward only, no gradient) "
              f"{best(study, k) * 1e3:.1f} ms; ours batched forward only {best(ours_fwd, k) * 1e3:.1f} ms "
              f"-> study / ours = {best(study, k) / best(ours_fwd, k):.2f}x; ours batched forward + backward "
              f"(the gradient the study never had) {best(ours, k) * 1e3:.1f} ms "
              f"-> study / ours = {best(study, k) / best(ours, k):.2f}x")


if __name__ == "__main__":
    main()
