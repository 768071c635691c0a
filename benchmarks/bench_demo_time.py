"""Where the demo `dvc repro` spends what was cut from it, measured as ratios in one run.

Three parts, each timed against its own baseline in the same process (this machine is shared and noisy):

1. **DVC's YAML.** DVC reads dvc.lock (and params.yaml) several times around every stage it runs. Parsing the
   committed dvc.lock with ruamel.yaml's pure-Python loader vs its C loader (`ruamel.yaml.clib`, a project
   dependency); the round-trip loader DVC uses to rewrite the lock is pure Python either way.
2. **make_demo's renderer.** A short episode rendered in this process (`make_demo.workers: 1`) vs by worker
   processes (`workers` from params.yaml), with the frames checked to be the same bytes.
3. **The DAN's validation.** One validation pass against one training epoch of each stage, on the demo crops
   (synthetic faces when they are absent), and what `dan.val_every` saves over params.yaml's schedule.

    .venv/bin/python benchmarks/bench_demo_time.py [--seconds 12] [--repeats 2] [--smoke]

`--smoke` (run by tests/test_benchmarks.py): a slice of dvc.lock, a 1 s episode at 160x96, 8 faces and one repeat;
its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

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
    from face2anime.demo.episode import render_episode

    cfg = load_settings("make_demo", ROOT / "params.yaml")
    update = {"duration_s": seconds}
    if smoke:
        update.update(duration_s=1.0, width=160, height=96, face_height_px=(30.0, 60.0), shot_len_s=(0.4, 0.6))
    runs = {}
    for n in (1, workers):
        frames: list[np.ndarray] = []
        c = cfg.model_copy(update={**update, "workers": n})
        t = time.perf_counter()
        render_episode(c, lambda s, k, f: frames.append(f), progress=False)
        runs[n] = (time.perf_counter() - t, frames)
    (t1, f1), (tn, fn) = runs[1], runs[workers]
    same = len(f1) == len(fn) and all(np.array_equal(a, b) for a, b in zip(f1, fn, strict=True))
    print(f"make_demo, {len(f1)} frames: 1 process {t1:.1f} s, {workers} workers {tn:.1f} s, same bytes: {same}")
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
    ap.add_argument("--seconds", type=float, default=12.0, help="length of the rendered episode")
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
