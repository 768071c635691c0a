"""Where the demo `dvc repro` spends what was cut from it, measured as ratios in one run.

Three parts, each timed against its own baseline in the same process (this machine is shared and noisy):

1. **DVC's YAML.** DVC reads dvc.lock (and params.yaml) several times around every stage it runs. Parsing the
   committed dvc.lock with ruamel.yaml's pure-Python loader vs its C loader (`ruamel.yaml.clib`, a project
   dependency); the round-trip loader DVC uses to rewrite the lock is pure Python either way.
2. **make_demo's renderer.** The stage run on an episode of `--seconds` with `make_demo.workers: 1` (everything in
   its own process) vs with params.yaml's `workers` rendering processes; the two videos must be the same bytes.
3. **The DAN's validation.** One validation pass against one training epoch of each stage, on the demo crops
   (synthetic faces when they are absent), and what `dan.val_every` saves over params.yaml's schedule.

    .venv/bin/python benchmarks/bench_demo_time.py [--seconds 120] [--repeats 2] [--smoke]

`--smoke` (run by tests/test_benchmarks.py): a slice of dvc.lock, a 1 s episode at 160x96, 8 faces and one repeat;
its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from face2anime.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def best_time(fn, repeats: int) -> float:
    """Best-of-`repeats` seconds of fn() (the minimum is the signal on a shared machine)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def yaml_part(smoke: bool, repeats: int) -> None:
    from ruamel.yaml import YAML

    text = (ROOT / "dvc.lock").read_text()
    if smoke:
        text = "\n".join(text.splitlines()[:200]) + "\n"
    try:
        import _ruamel_yaml  # noqa: F401  (the C loader ruamel.yaml picks when it is installed)
        has_c = True
    except ImportError:
        has_c = False
    pure = best_time(lambda: YAML(typ="safe", pure=True).load(text), repeats)
    fast = best_time(lambda: YAML(typ="safe").load(text), repeats)
    rt = best_time(lambda: YAML(typ="rt").load(text), repeats)
    print(f"dvc.lock ({len(text.splitlines())} lines): pure-Python load {pure:.3f} s, default load {fast:.3f} s "
          f"(C loader {'installed' if has_c else 'MISSING'}), round-trip load {rt:.3f} s")
    print(f"speed-up of the C loader: {pure / fast:.2f}x")


def render_part(seconds: float, smoke: bool, workers: int) -> None:
    """The make_demo stage as `dvc repro` runs it (its own process, in a scratch folder), once with 1 and once with
    `workers` rendering processes; the two episodes are compared byte for byte."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    demo = {**params["make_demo"], "duration_s": seconds}
    if smoke:
        demo.update(duration_s=1.0, width=160, height=96, face_height_px=[30.0, 60.0], shot_len_s=[0.4, 0.6])
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, workers):
            folder = Path(tmp) / f"w{n}"
            folder.mkdir()
            (folder / "params.yaml").write_text(yaml.safe_dump({**params, "make_demo": {**demo, "workers": n}}))
            t = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "stages" / "make_demo.py")], cwd=folder, check=True,
                           capture_output=True, env={**os.environ, "TQDM_DISABLE": "1"})
            runs[n] = (time.perf_counter() - t, (folder / "data/demo/episode.mp4").read_bytes())
    (t1, v1), (tn, vn) = runs[1], runs[workers]
    frames = int(round(demo["duration_s"] * demo["fps"]))
    print(f"make_demo stage, {frames} frames: 1 process {t1:.1f} s, {workers} workers {tn:.1f} s, "
          f"same bytes: {v1 == vn}")
    print(f"speed-up of the worker processes: {t1 / tn:.2f}x")


def dan_part(smoke: bool, repeats: int) -> None:
    from face2anime.dan.data import AnimeData, FaceSet, load_anime_data, training_statistics
    from face2anime.dan.model import DAN, DANConfig
    from face2anime.dan.train import TrainSettings, _make_optimizer, _train_epoch, validation_nme

    p = load_settings("dan", ROOT / "params.yaml")
    s = TrainSettings.from_params(p)
    crops, split = ROOT / "data/anime/crops.npz", ROOT / "data/anime/split.csv"
    if crops.exists() and split.exists() and not smoke:
        data, what = load_anime_data(crops, split), "demo crops"
    else:
        rng = np.random.default_rng(0)
        n = 8 if smoke else 128
        mk = lambda k: FaceSet(rng.integers(0, 255, (k, 112, 112), dtype=np.uint8),  # noqa: E731
                               (rng.uniform(30, 80, (k, 40, 2))).astype(np.float32), np.arange(k).astype(str))
        data, what = AnimeData({"train": mk(n), "val": mk(max(2, n // 7)), "test": mk(2)}, {}, "synthetic"), "random faces"
    train, val = data.splits["train"], data.splits["val"]
    torch.manual_seed(0)
    model = DAN(DANConfig(width=p.width, n_stages=p.n_stages, dropout=p.dropout, mirror_average=p.mirror_average))
    model.set_statistics(*training_statistics(train, s.augment.mirror))
    gen, cpu = torch.Generator().manual_seed(0), torch.device("cpu")
    saved = 0.0
    for stage in range(1, p.n_stages + 1):
        opt = _make_optimizer(model, stage, s)
        t_train = best_time(lambda: _train_epoch(model, opt, train, s, stage, gen, cpu, "bench"), repeats)
        t_val = best_time(lambda: validation_nme(model, val, cpu, stage), repeats)
        epochs = s.max_epochs[stage - 1]
        validated = len({e for e in range(1, epochs + 1) if e % s.val_every == 0} | {epochs})
        saved += (epochs - validated) * t_val
        print(f"DAN stage {stage} ({what}: {len(train)} train / {len(val)} val): epoch {t_train:.2f} s, "
              f"validation {t_val:.2f} s; {validated} of {epochs} epochs validated at val_every {s.val_every}")
        print(f"validation / training epoch, stage {stage}: {t_val / t_train:.2f}x")
    print(f"DAN time saved by val_every {s.val_every} over params.yaml's schedule: {saved:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="length of the rendered episode (120 = the demo's)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the DAN part)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    repeats = 1 if args.smoke else args.repeats
    torch.set_num_threads(1 if args.smoke else args.threads)
    workers = load_settings("make_demo", ROOT / "params.yaml").workers
    yaml_part(args.smoke, repeats)
    render_part(args.seconds, args.smoke, max(2, workers))
    dan_part(args.smoke, repeats)


if __name__ == "__main__":
    main()
