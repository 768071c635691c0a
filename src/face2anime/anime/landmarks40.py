"""The anime 40-point table of the expand_contour stage: checked inputs -> contour expansion -> metrics, worst faces.

`build_landmarks40` runs the whole stage in memory and returns every output ready to write, so the stage
script only parses params and writes files. The expansion itself is `face2anime.landmarks.expand`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from face2anime.anime.crops import FrameStore
from face2anime.errors import UserError
from face2anime.io import read_table
from face2anime.landmarks import contour as ct
from face2anime.landmarks.corrections import check_in_frame, read_corrections, split_corrections
from face2anime.landmarks.expand import ExpandResult, expand_table, truth_errors
from face2anime.landmarks.framing import Framing, crop_image, framing_square, to_crop
from face2anime.landmarks.schema import points_from_table
from face2anime.params import ExpandContourParams
from face2anime.viz.sheets import PALETTE, contact_sheet, draw_points

SOURCE_COLOUR = {ct.DETECTED: PALETTE["detected"], ct.SEARCH: PALETTE["found"],
                 ct.FALLBACK: PALETTE["fallback"], ct.CORRECTED: PALETTE["corrected"]}


@dataclass
class Landmarks40:
    """Everything expand_contour writes: the 40-point table, the metrics and the worst-faces sheet."""

    table: pd.DataFrame        # data/anime/landmarks40.parquet
    metrics: dict[str, Any]    # metrics/contour.json
    worst_rgb: np.ndarray      # reports/contour_worst.png (RGB)

    def summary(self) -> str:
        """The stage's one-line summary."""
        m = self.metrics
        summary = (f"{len(self.table)} faces, new points: {m['found_by_search']:.1%} search, "
                   f"{m['fallback']:.1%} fallback, {m['corrections_applied']} corrected")
        if "truth" in m and m["truth"]["mean_px112"] is not None:
            t = m["truth"]
            summary += f"; error vs truth mean {t['mean_px112']:.2f} px, p95 {t['p95_px112']:.2f} px at 112"
        if m["unknown_faces"]:
            summary += f"; {len(m['unknown_faces'])} correction face(s) unknown, skipped"
        return summary


def read_faces(path: Path) -> pd.DataFrame:
    """detect_anime's faces table, checked: present, not empty, all 28 points finite (else re-run detect_anime)."""
    if not path.exists():
        raise UserError(f"{path} not found: run the detect_anime stage first")
    faces = read_table(path)
    if faces.empty:
        raise UserError(f"{path} has no faces: nothing to expand (check detect_anime's filters)")
    pcols = [f"p{i:02d}_{a}" for i in range(28) for a in "xy"]
    missing = [c for c in pcols + ["face_id", "frame_id"] if c not in faces.columns]
    if missing:
        raise UserError(f"{path} lacks columns {missing[:4]}{' ...' if len(missing) > 4 else ''}: "
                        "re-run detect_anime")
    bad = ~np.isfinite(faces[pcols].to_numpy(dtype=np.float64)).all(axis=1)
    if bad.any():
        raise UserError(f"{path}: {int(bad.sum())} face(s) with missing points (e.g. "
                        f"{faces['face_id'][bad].iloc[0]}): re-run detect_anime, which drops them")
    return faces


def load_corrections(path: Path | str, faces: pd.DataFrame, faces_path: Path, frames: FrameStore
                     ) -> tuple[dict[str, dict[int, tuple[float, float]]], list[str]]:
    """(fixed points by face, unknown face ids): corrections of faces no longer detected are skipped with a warning."""
    fixed, unknown = split_corrections(read_corrections(path), faces["face_id"])
    frame_of = dict(zip(faces["face_id"], faces["frame_id"], strict=True))
    check_in_frame(fixed, lambda fid: frames.sizes.get(frame_of[fid]), path)
    if unknown:
        print(f"expand_contour: warning: {len(unknown)} corrected face(s) not in {faces_path}, skipped: "
              f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}", file=sys.stderr)
    return fixed, unknown


def contour_metrics(res: ExpandResult, unknown: list[str], err: np.ndarray | None) -> dict[str, Any]:
    """How the 12 new points were found (search / fallback / corrected) and, with a true contour, their error."""
    table = res.table
    src = np.array([list(s) for s in table["contour_source"]])
    new = src[:, list(ct.NEW_POINTS)]
    metrics: dict[str, Any] = {
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
    if err is not None:
        metrics["truth"] = truth_metrics(err, new)
    return metrics


def truth_metrics(err: np.ndarray, new: np.ndarray) -> dict[str, Any]:
    """Error of the new points vs the true contour (px at 112): overall and per way the point was found."""
    ok = np.isfinite(err)
    e = err[ok]
    by_src = {name: err[ok & (new == letter)] for name, letter in
              (("search", ct.SEARCH), ("fallback", ct.FALLBACK), ("corrected", ct.CORRECTED))}
    return {
        "faces": int(ok.any(axis=1).sum()),
        "mean_px112": float(e.mean()) if e.size else None,
        "p95_px112": float(np.percentile(e, 95)) if e.size else None,
        "max_px112": float(e.max()) if e.size else None,
        **{f"mean_px112_{k}": float(v.mean()) for k, v in by_src.items() if v.size},
    }


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


def build_landmarks40(params: ExpandContourParams, framing: Framing, faces_path: Path, frames_dir: Path) -> Landmarks40:
    """Run expand_contour in memory: 5 detected contour points -> 17 for every face, then metrics and worst faces."""
    faces = read_faces(faces_path)
    frames = FrameStore(frames_dir)
    fixed, unknown = load_corrections(params.corrections, faces, faces_path, frames)
    res = expand_table(faces, frames.gray, params.search, fixed, params.visible_min_score)
    err = truth_errors(faces, res.table, framing)
    metrics = contour_metrics(res, unknown, err)
    sheet = worst_sheet(faces, res.table, err, frames, framing, params.worst_faces)
    return Landmarks40(res.table, metrics, sheet)
