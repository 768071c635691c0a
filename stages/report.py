"""Stage report: pictures and a summary table of every GAN variant on the same held-out photos.

Writes `reports/gan/grid_<variant>.png` (photo | output | DAN points on the output vs the painter's target
points), the side-by-side `reports/gan/comparison.png` (with the first spade variant's input beside each
photo), `reports/gan/summary.csv` (plotted by `dvc plots show`) and `reports/summary.md` from
`metrics/gan/<variant>.json`. The variants are `report.variants`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from face2anime.dan.inference import FrozenDAN
from face2anime.device import resolve_device
from face2anime.errors import UserError
from face2anime.gan.painting import load_painter
from face2anime.io import write_image, write_table, write_text
from face2anime.metrics.gan_eval import dan_points, load_photos
from face2anime.runtime import seed_everything, set_threads
from face2anime.settings import load_settings
from face2anime.stage import run_stage
from face2anime.viz.report import comparison_grid, conditioning_image, summary_markdown, summary_row, variant_grid
from face2anime.viz.sheets import rgb_to_bgr

PHOTOS_NPZ = Path("data/photos/crops.npz")
PHOTOS_CSV = Path("data/photos/photos.csv")
DAN_DIR = Path("models/dan")
OUT_DIR = Path("reports/gan")
SUMMARY_MD = Path("reports/summary.md")


def _pick(n_total: int, n: int) -> np.ndarray:
    """`n` photo indices spread evenly over the held-out set (deterministic)."""
    n = max(1, min(n, n_total))
    return np.unique(np.linspace(0, n_total - 1, n).round().astype(int))


def main() -> str:
    p = load_settings("report")
    ev = load_settings("eval_gan")
    seed_everything(ev.seed)
    set_threads(ev.threads)
    device = resolve_device(ev.device, "eval_gan.device")
    variants = list(p.variants)
    metrics = {}
    for v in variants:
        path = Path("metrics/gan") / f"{v}.json"
        if not path.exists():
            raise UserError(f"{path} not found: run `dvc repro eval_gan` first")
        metrics[v] = json.loads(path.read_text())
    photos = load_photos(PHOTOS_NPZ, PHOTOS_CSV, ev.split)
    idx = _pick(len(photos.photo_ids), p.photos)
    color, targets = photos.color[idx], photos.targets[idx]
    dan = FrozenDAN.load(DAN_DIR, device=device)
    batch, scale = ev.batch_size, p.scale
    outputs, shown = {}, None
    for v in variants:
        painter = load_painter(Path("models/gan") / v, device, batch, ev.threads)
        outputs[v] = painter(color, targets)
        grid = variant_grid(color, outputs[v], dan_points(dan, outputs[v], batch, device),
                            painter.target_points(targets), scale)
        write_image(OUT_DIR / f"grid_{v}.png", rgb_to_bgr(grid))
        if shown is None:
            cond = painter.conditioning(color, targets)
            if cond is not None:
                shown = (v, np.stack([conditioning_image(c, color.shape[1]) for c in cond]))
    write_image(OUT_DIR / "comparison.png", rgb_to_bgr(comparison_grid(color, outputs, scale, shown)))
    rows = [summary_row(v, metrics[v]) for v in variants]
    write_table(OUT_DIR / "summary.csv", pd.DataFrame(rows))
    write_text(SUMMARY_MD, summary_markdown(rows, metrics))
    best = min(rows, key=lambda r: r["landmark_rmse_px"])
    flagged = [f"{r['variant']} ({r['flags']})" for r in rows if r["flags"] != "none"]
    return (f"{len(variants)} variants on {len(idx)} photos -> {OUT_DIR}/, {SUMMARY_MD}; lowest landmark RMSE: "
            f"{best['variant']} {best['landmark_rmse_px']:.2f} px; flagged: {', '.join(flagged) or 'none'}")


if __name__ == "__main__":
    run_stage("report", main, outputs=[OUT_DIR, SUMMARY_MD])
