"""Stage expand_contour: 5 detected contour points -> 17, and the 40-point table.

Reads `data/anime/faces.parquet`, `data/frames/` and `data/corrections/contour.csv`; writes
`data/anime/landmarks40.parquet`, `metrics/contour.json` and `reports/contour_worst.png` (docs/pipeline.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from face2anime.cli import run_stage
from face2anime.data.crops import FrameStore
from face2anime.errors import UserError
from face2anime.io import read_table, write_image, write_json, write_table
from face2anime.landmarks import contour as ct
from face2anime.landmarks.corrections import read_corrections, split_corrections
from face2anime.landmarks.expand import expand_table, truth_errors
from face2anime.landmarks.framing import Framing, crop_image, framing_square, to_crop
from face2anime.landmarks.schema import points_from_table
from face2anime.params import load_params
from face2anime.viz.sheets import PALETTE, contact_sheet, draw_points, rgb_to_bgr

FACES_IN = Path("data/anime/faces.parquet")
FRAMES_DIR = Path("data/frames")
TABLE_OUT = Path("data/anime/landmarks40.parquet")
METRICS_OUT = Path("metrics/contour.json")
PICTURE_OUT = Path("reports/contour_worst.png")
SOURCE_COLOUR = {ct.DETECTED: PALETTE["detected"], ct.SEARCH: PALETTE["found"],
                 ct.FALLBACK: PALETTE["fallback"], ct.CORRECTED: PALETTE["corrected"]}


def main() -> str:
    params = load_params("expand_contour")
    framing = Framing.from_params(load_params("framing"))
    try:
        cparams = ct.ContourParams.from_params(params.get("search", {}))
    except (KeyError, ValueError) as err:
        raise UserError(f"params.yaml expand_contour.search: {err}") from None
    if not FACES_IN.exists():
        raise UserError(f"{FACES_IN} not found: run the detect_anime stage first")
    faces = read_table(FACES_IN)
    if faces.empty:
        raise UserError(f"{FACES_IN} has no faces: nothing to expand (check detect_anime's filters)")
    pcols = [f"p{i:02d}_{a}" for i in range(28) for a in "xy"]
    missing = [c for c in pcols + ["face_id", "frame_id"] if c not in faces.columns]
    if missing:
        raise UserError(f"{FACES_IN} lacks columns {missing[:4]}{' ...' if len(missing) > 4 else ''}: "
                        "re-run detect_anime")
    bad = ~np.isfinite(faces[pcols].to_numpy(dtype=np.float64)).all(axis=1)
    if bad.any():
        raise UserError(f"{FACES_IN}: {int(bad.sum())} face(s) with missing points (e.g. "
                        f"{faces['face_id'][bad].iloc[0]}): re-run detect_anime, which drops them")
    frames = FrameStore(FRAMES_DIR)
    corr = read_corrections(params.get("corrections", "data/corrections/contour.csv"))
    fixed, unknown = split_corrections(corr, faces["face_id"])
    if unknown:
        print(f"expand_contour: warning: {len(unknown)} corrected face(s) not in {FACES_IN}, skipped: "
              f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}", file=sys.stderr)

    res = expand_table(faces, frames.gray, cparams, fixed, float(params.get("visible_min_score", 0.5)))
    table = res.table
    src = np.array([list(s) for s in table["contour_source"]])
    new = src[:, list(ct.NEW_POINTS)]
    metrics: dict = {
        "faces": len(table),
        "new_points": int(new.size),
        "found_by_search": float((new == ct.SEARCH).mean()),
        "fallback": float((new == ct.FALLBACK).mean()),
        "corrected": float((new == ct.CORRECTED).mean()),
        "faces_with_fallback": int((new == ct.FALLBACK).any(axis=1).sum()),
        "corrections_applied": int((src == ct.CORRECTED).sum()),
        "corrections_unknown_faces": len(unknown),
        "unknown_faces": unknown,
        "confident_faces": res.confident_faces,
        "mean_shape": res.mean_shape is not None,
        "search_failures": res.failures,
    }
    err = truth_errors(faces, table, framing)
    if err is not None:
        ok = np.isfinite(err)
        e = err[ok]
        by_src = {name: err[ok & (new == letter)] for name, letter in
                  (("search", ct.SEARCH), ("fallback", ct.FALLBACK), ("corrected", ct.CORRECTED))}
        metrics["truth"] = {
            "faces": int(ok.any(axis=1).sum()),
            "mean_px112": float(e.mean()) if e.size else None,
            "p95_px112": float(np.percentile(e, 95)) if e.size else None,
            "max_px112": float(e.max()) if e.size else None,
            **{f"mean_px112_{k}": float(v.mean()) for k, v in by_src.items() if v.size},
        }
    write_table(TABLE_OUT, table)
    write_json(METRICS_OUT, metrics)
    write_image(PICTURE_OUT, rgb_to_bgr(worst_sheet(faces, table, err, frames, framing,
                                                    int(params.get("worst_faces", 24)))))
    summary = (f"{len(table)} faces, new points: {metrics['found_by_search']:.1%} search, "
               f"{metrics['fallback']:.1%} fallback, {metrics['corrections_applied']} corrected")
    if "truth" in metrics and metrics["truth"]["mean_px112"] is not None:
        t = metrics["truth"]
        summary += f"; error vs truth mean {t['mean_px112']:.2f} px, p95 {t['p95_px112']:.2f} px at 112"
    if unknown:
        summary += f"; {len(unknown)} correction face(s) unknown, skipped"
    return summary


def worst_sheet(faces: pd.DataFrame, table: pd.DataFrame, err: np.ndarray | None, frames: FrameStore,
                framing: Framing, n: int, size: int = 192) -> np.ndarray:
    """The n worst faces (largest mean error vs truth, else most fallback points), points coloured by source."""
    src = table["contour_source"].to_numpy()
    if err is not None and np.isfinite(err).any():
        score = np.nanmean(np.where(np.isfinite(err), err, np.nan), axis=1)
        score = np.nan_to_num(score, nan=-1.0)
    else:
        score = np.array([s.count(ct.FALLBACK) for s in src], dtype=float)
    order = np.argsort(-score, kind="stable")[:n]
    q40 = points_from_table(table, "q", 40)
    truth = points_from_table(faces.reset_index(drop=True), "c", 17) if err is not None else None
    tiles, labels = [], []
    for r in order:
        square = framing_square(q40[r], framing)
        img = crop_image(frames.rgb(table["frame_id"].iat[r]), square, size)
        if truth is not None:
            img = draw_points(img, to_crop(truth[r], square, size), PALETTE["truth"], radius=3.0, thickness=1)
        pts = to_crop(q40[r, :17], square, size)
        img = draw_points(img, pts, [SOURCE_COLOUR[s] for s in src[r]], radius=2.0)
        tiles.append(img)
        label = str(table["face_id"].iat[r])
        labels.append(f"{score[r]:.1f}px {label}" if err is not None else f"{int(score[r])}F {label}")
    return contact_sheet(tiles, ncols=6, labels=labels)


if __name__ == "__main__":
    run_stage("expand_contour", main)
