"""Stage prepare_spade: the SPADE painter's training pairs, made from the anime crops alone.

`prepare_spade.train_split` anime crops -> `data/spade/pairs.npz` (face_id, color = the anime crop, points =
its 40 points in the 112 px crop, cond = (N, 8, S, S) float16 conditioning: the part-filled rough and the
landmark channels, `paint/conditioning.py`); `test_split` crops -> `data/spade/test.npz`, same keys, for the
evaluation; `data/spade/layouts.npz`: the PCA shape model of the train points (mean, components, std, in
112 px crop pixels) and each train rough's (background, hair, skin) palette, for `face2anime generate`.
The conditioning is stored as float16: half the bytes, and its 256 colour levels survive exactly.
Faces whose points leave the crop (or are not finite) are skipped and listed in the summary.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from face2anime.anime.split import read_split_crops, split_rows
from face2anime.errors import UserError
from face2anime.io import write_arrays, write_image
from face2anime.paint.conditioning import conditioning_batch, points_problem, scale_points
from face2anime.paint.layouts import fit_shape_model, region_palette
from face2anime.settings import load_settings
from face2anime.stage import run_stage
from face2anime.viz.sheets import contact_sheet, rgb_to_bgr

CROPS = Path("data/anime/crops.npz")
SPLIT = Path("data/anime/split.csv")
PAIRS = Path("data/spade/pairs.npz")
TEST = Path("data/spade/test.npz")
LAYOUTS = Path("data/spade/layouts.npz")
PREVIEW = Path("reports/spade_pairs.png")


def _usable(rows: np.ndarray, points: np.ndarray, size: tuple[int, int], skipped: dict[str, str],
            ids: np.ndarray) -> np.ndarray:
    """The rows whose points make a conditioning; the others go to `skipped` (face_id -> why)."""
    keep = []
    for i in rows:
        problem = points_problem(points[i], size[1], size[0])
        if problem:
            skipped[str(ids[i])] = problem
        else:
            keep.append(i)
    return np.asarray(keep, dtype=int)


def _to_rgb(cond: np.ndarray) -> np.ndarray:
    """(8, S, S) conditioning -> its rough as (S, S, 3) uint8 RGB."""
    return ((cond[:3].astype(np.float32).transpose(1, 2, 0) + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)


def _marks(cond: np.ndarray) -> np.ndarray:
    """The landmark channels summed into one (S, S) uint8 gray picture."""
    return (np.clip((cond[3:].astype(np.float32) + 1.0).sum(axis=0) / 2.0, 0, 1) * 255).astype(np.uint8)


def main() -> str:
    p = load_settings("prepare_spade")
    c = load_settings("gan").spade.conditioning
    crops, ids, split = read_split_crops(CROPS, SPLIT, ("color112", "points112"))
    color, points = crops["color112"], crops["points112"].astype(np.float32)
    train = split_rows(ids, split, p.train_split)
    if p.max_faces:
        train = train[:p.max_faces]
    test = split_rows(ids, split, p.test_split)
    skipped: dict[str, str] = {}
    train = _usable(train, points, color.shape[1:3], skipped, ids)
    test = _usable(test, points, color.shape[1:3], skipped, ids)
    if len(train) < 2:
        raise UserError(f"{len(train)} usable anime faces with split == {p.train_split!r} in {SPLIT}: "
                        "the pairs and the shape model need at least 2")

    start = time.perf_counter()
    with tqdm(total=len(train) + len(test), desc="prepare_spade roughs", unit="face", leave=False) as bar:
        cond = conditioning_batch(color[train], points[train], c, p.threads, progress=bar.update)
        cond_test = conditioning_batch(color[test], points[test], c, p.threads, progress=bar.update)
    per_face = (time.perf_counter() - start) / (len(train) + len(test))
    write_arrays(PAIRS, face_id=ids[train], color=color[train], points=points[train], cond=cond.astype(np.float16))
    write_arrays(TEST, face_id=ids[test], color=color[test], points=points[test],
                 cond=cond_test.astype(np.float16))

    model = fit_shape_model(points[train], p.shape_components)
    h, w = color.shape[1:3]
    palettes = np.stack([region_palette(_to_rgb(cd), scale_points(pt, w, h, c.size))
                         for cd, pt in zip(cond, points[train], strict=True)])
    write_arrays(LAYOUTS, **model.to_arrays(), palettes=palettes)
    explained = float((model.std ** 2).sum() / points[train].reshape(len(train), -1).var(axis=0, ddof=1).sum())

    n = min(p.preview_faces, len(train))
    pick = np.linspace(0, len(train) - 1, n).round().astype(int)
    tiles = [color[train[i]] for i in pick] + [_to_rgb(cond[i]) for i in pick] + [_marks(cond[i]) for i in pick]
    labels = ["anime"] * n + ["rough, parts filled"] * n + ["landmark channels"] * n
    write_image(PREVIEW, rgb_to_bgr(contact_sheet(tiles, ncols=n, labels=labels)))

    threads = p.threads or "all"
    summary = (f"{len(train)} train pairs, {len(test)} held-out, {c.size} px conditioning, rough {per_face:.3f} "
               f"s/face ({threads} threads), shape model {len(model.std)} components ({explained:.0%} of the "
               f"point variance)")
    if skipped:
        listed = ", ".join(f"{k} ({v})" for k, v in list(skipped.items())[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        summary += f"; skipped {len(skipped)} faces with unusable points: {listed}{more}"
    return summary


if __name__ == "__main__":
    run_stage("prepare_spade", main, outputs=[PAIRS, TEST, LAYOUTS, PREVIEW])
