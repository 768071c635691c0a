"""Convert throughput on this CPU (faces/s, images/s) and its cost over the bare generator, in one run.

The demo photos (each `--copies` times, plus one picture with both faces side by side) go through
`face2anime.convert.convert_paths` in paste mode: read, dlib detection + 68 points, the framing rule's crops,
the generator, feathered paste-back, PNG writing. Then the bare generator runs on the very crops convert made,
at the same batch size and with the same (warm) module. The ratio (convert time / bare generator time per
face) is what reading, finding, aligning, pasting back and writing cost on top of the network; convert's
time is the sum of its phases (its one-off setup, loading dlib's models, is printed beside it).
Fastest of `--repeats` interleaved runs for both (other load on a shared machine only adds time).

Generator: `--model` (a generator folder or variant name; default models/gan/animegan-landmark when present),
else random weights at params.yaml's gan.animegan.generator size (`--width/--blocks` change it, paper: 64/8).
A folder written before config.json recorded its framing gets params.yaml's `framing` / `photo_landmarks` in a
temporary copy (the benchmark measures speed, not looks).
Run: `OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_convert.py [--copies 8 --width 64 --blocks 8]`.
`--smoke` (run by tests/test_benchmarks.py): 1 copy, 1 repeat, 1 thread, random weights at params.yaml's size
unless `--model` is given; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from face2anime.convert.faces import FaceFinder
from face2anime.convert.model import read_model, resolve_model_dir
from face2anime.convert.run import convert_paths
from face2anime.convert.settings import load_settings
from face2anime.gan.painting import Painter
from face2anime.errors import UserError
from face2anime.gan.models import build_generator, generator_settings, load_generator, save_generator
from face2anime.photos.files import demo_photos, load_photo
from face2anime.settings import load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def framing_record() -> dict:
    f, p = load_params("framing", PARAMS), load_params("photo_landmarks", PARAMS)
    return {"framing": {"margin": f["margin"], "y_shift": f["y_shift"]},
            "photo_landmarks": {k: p[k] for k in ("mapping", "detector", "upsample", "det_threshold", "max_side")}}


def prepare_model(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """(generator folder with a framing record, description)."""
    trained = not args.smoke and (ROOT / "models/gan/animegan-landmark").is_dir()
    name = args.model or ("animegan-landmark" if trained else None)
    if name and args.width is None and args.blocks is None:
        src = resolve_model_dir(name)
        cfg = json.loads((src / "config.json").read_text())
        if "framing" in cfg:
            return src, f"{src} (trained)"
        dst = work / "model"
        shutil.copytree(src, dst)
        (dst / "config.json").write_text(json.dumps({**cfg, **framing_record()}, indent=2))
        return dst, f"{src} (trained; framing from params.yaml)"
    arch = {"model": "animegan", **load_params("gan", PARAMS)["animegan"]["generator"]}
    arch.update({k: v for k, v in (("width", args.width), ("blocks", args.blocks)) if v is not None})
    torch.manual_seed(0)
    dst = work / "model"
    generator = build_generator(generator_settings(arch, "bench_convert"), 112)
    save_generator(dst, generator, {"generator": arch, "variant": "random", "image_size": 112,
                                    "input_range": [-1, 1], "channels": "RGB", **framing_record()})
    return dst, f"random weights, {arch}"


def make_pictures(folder: Path, copies: int) -> int:
    """Demo photos x copies + one picture holding both faces; returns the number of pictures."""
    folder.mkdir(parents=True)
    photos = {p.photo_id: load_photo(p.path, 0) for p in demo_photos()}
    for k in range(copies):
        for pid, rgb in photos.items():
            cv2.imwrite(str(folder / f"{pid}_{k:02d}.png"), rgb[..., ::-1].copy())
    rgbs = list(photos.values())
    h = min(r.shape[0] for r in rgbs)
    both = np.hstack([cv2.resize(r, (round(r.shape[1] * h / r.shape[0]), h), interpolation=cv2.INTER_AREA) for r in rgbs])
    cv2.imwrite(str(folder / "both.png"), both[..., ::-1].copy())
    return copies * len(photos) + 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="generator folder or variant name")
    ap.add_argument("--width", type=int, default=None, help="random generator width (default: params.yaml; paper 64)")
    ap.add_argument("--blocks", type=int, default=None, help="random generator blocks (default: params.yaml; paper 8)")
    ap.add_argument("--copies", type=int, default=8, help="copies of each demo photo")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="1 copy, 1 repeat, random weights: the code works")
    args = ap.parse_args()
    if args.smoke:
        args.copies, args.repeats, args.threads = 1, 1, 1
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        work = Path(tmp)
        model_dir, described = prepare_model(args, work)
        n_pictures = make_pictures(work / "in", args.copies)
        opts = dict(params=PARAMS, progress=False, device="cpu", threads=args.threads, mode="paste")
        settings = load_settings(PARAMS, {k: v for k, v in opts.items() if k in ("device", "threads", "mode")})

        model = read_model(model_dir)
        generator = load_generator(model_dir)              # one module for both sides, warmed once
        opts["generator"] = generator
        convert_paths([work / "in" / "both.png"], work / "warm", model_dir, **opts)   # warm-up: dlib, torch
        finder = FaceFinder(model, settings)
        crops = np.concatenate([finder.crops(rgb, finder.find(rgb)) for rgb in
                                (load_photo(p, 0) for p in sorted((work / "in").glob("*.png")))])
        stylizer = Painter(generator, None, model.image_size, torch.device("cpu"), settings.batch_size, threads=1)
        stylizer(crops)                                    # warm-up at the timed shapes
        best = bare = float("inf")
        report = None
        for r in range(args.repeats):                      # interleaved: load changes hit both alike
            t = time.perf_counter()
            rep = convert_paths([work / "in"], work / f"out{r}", model_dir, **opts)
            wall = time.perf_counter() - t
            work_s = sum(rep.timings.values())
            if work_s < best:
                best, best_wall, report = work_s, wall, rep
            t = time.perf_counter()
            stylizer(crops)
            bare = min(bare, time.perf_counter() - t)
        if report is None or report.exit_code != 0:
            raise UserError("the benchmark converted nothing")
        faces = report.faces

    phases = ", ".join(f"{k} {v:.2f}" for k, v in report.timings.items())
    print(f"face2anime convert on CPU, {args.threads} threads, generator {described}, {model.image_size} px, "
          f"batch {settings.batch_size}, fastest of {args.repeats} interleaved repeats")
    print(f"  {n_pictures} pictures ({args.copies} x 2 demo photos + 1 with both faces), {faces} faces "
          f"({len(crops)} crops for the bare generator)")
    print(f"  convert:        {best:6.2f} s  {n_pictures / best:6.1f} images/s  {faces / best:6.1f} faces/s  "
          f"[s per phase: {phases}]; with its setup (loading dlib) {best_wall:.2f} s")
    print(f"  bare generator: {bare:6.2f} s  {'':15s}  {len(crops) / bare:6.1f} faces/s")
    print(f"ratio convert / bare generator (time per face): {(best / faces) / (bare / len(crops)):.1f}x")


if __name__ == "__main__":
    main()
