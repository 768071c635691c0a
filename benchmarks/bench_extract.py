"""Extraction throughput against a plain cv2 decode of the same file, measured in one run.

    .venv/bin/python benchmarks/bench_extract.py [video] [--repeats N] [--offload auto|on|off] [--smoke]

Uses the demo episode (data/demo/episode.mp4) when present, else a generated 30 s clip, and the
`extract_frames` params (library defaults outside the project root). Runs alternate so that machine
load hits both alike; the best run of each is compared. Prints frames/s of both and their ratio
(target >= 0.8), for the params as set and with `keep_scene_starts` flipped, plus the CPU-time ratio
(process CPU seconds of raw decoding / of extraction): wall time can overlap work on several cores,
CPU time cannot, so on a busy machine the CPU ratio is the steadier number.
`--smoke` (run by tests/test_benchmarks.py): a generated 4 s clip, one repeat; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from face2anime.anime.frames import extract_frames
from face2anime.params import ExtractFramesParams
from face2anime.settings import load_settings

DEMO = Path("data/demo/episode.mp4")


def make_clip(path: Path, seconds: float = 30.0, fps: float = 24.0, size: tuple[int, int] = (640, 360)) -> Path:
    """A clip with slow motion, held shots and hard cuts, so sampling, dedupe and cuts all do work."""
    rng = np.random.default_rng(0)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    colours = rng.integers(0, 256, (6, 3))
    n = int(seconds * fps)
    for i in range(n):
        shot = i * len(colours) // n
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = colours[shot]
        t = i if shot % 2 == 0 else (i // 12) * 12  # odd shots hold still for half a second at a time
        cv2.circle(frame, (w // 4 + (t * 3) % (w // 2), h // 2), h // 5, (40, 180, 250), -1)
        writer.write(frame)
    writer.release()
    return path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raw_decode(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def measure(video: Path, cfg: ExtractFramesParams, repeats: int, tmp: Path, offload: bool | None) -> None:
    raw_wall = raw_cpu = ext_wall = ext_cpu = float("inf")
    frames = kept = 0
    for r in range(repeats):
        wall, cpu = time.perf_counter(), cpu_seconds()
        frames = raw_decode(video)
        raw_wall, raw_cpu = min(raw_wall, time.perf_counter() - wall), min(raw_cpu, cpu_seconds() - cpu)
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = extract_frames([video], tmp / f"out{r}", cfg, show_progress=False, offload=offload)
        ext_wall, ext_cpu = min(ext_wall, time.perf_counter() - wall), min(ext_cpu, cpu_seconds() - cpu)
        kept = result.metrics["frames_kept"]
    print(f"keep_scene_starts={cfg.keep_scene_starts}, step_s={cfg.step_s}: {frames} frames, {kept} kept")
    print(f"  raw cv2 decode : {frames / raw_wall:8.1f} frames/s  ({raw_cpu:.3f} CPU s)")
    print(f"  extract_frames : {frames / ext_wall:8.1f} frames/s  ({ext_cpu:.3f} CPU s)")
    print(f"  ratio          : {raw_wall / ext_wall:.3f} (target >= 0.8); CPU-time ratio {raw_cpu / ext_cpu:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--offload", choices=["auto", "on", "off"], default="auto",
                    help="thumbnails and hashes in the worker pool (auto: on with 4+ cores)")
    ap.add_argument("--smoke", action="store_true", help="tiny run (generated 4 s clip, 1 repeat): the code works")
    args = ap.parse_args()
    if args.smoke:
        args.repeats = 1
    cfg = load_settings("extract_frames", Path(__file__).resolve().parents[1] / "params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            video = args.video or make_clip(Path(tmp) / "clip.mp4", seconds=4.0)
        else:
            video = args.video or (DEMO if DEMO.exists() else make_clip(Path(tmp) / "clip.mp4"))
        print(f"video: {video}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; offload {args.offload}")
        offload = {"auto": None, "on": True, "off": False}[args.offload]
        measure(video, cfg, args.repeats, Path(tmp), offload)
        flipped = cfg.model_copy(update={"keep_scene_starts": not cfg.keep_scene_starts})
        measure(video, flipped, args.repeats, Path(tmp), offload)


if __name__ == "__main__":
    main()
