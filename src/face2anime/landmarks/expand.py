"""Run the contour expansion over a faces table and build the 40-point table.

Two passes: the first expands every face with the search and the geometric checks only; the faces whose
12 new points were all found give the mean contour shape (Procrustes mean); the second pass expands
every face again with that shape as a prior (rejecting hits far from it and shaping the fallback curve).
With fewer than `min_confident` confident faces the first pass's result stands (fallback = spline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from face2anime.landmarks import contour as ct
from face2anime.landmarks.framing import Framing, framing_square
from face2anime.landmarks.schema import FACE40, HYSTS28_CONTOUR, anime_to_face40, points_from_table, points_to_table

IDENTITY = ["face_id", "frame_id", "video", "frame", "shot", "character"]
BOX = ["box_x0", "box_y0", "box_x1", "box_y1"]
SCORES = ["det_score", "lmk_score"]


@dataclass
class ExpandResult:
    table: pd.DataFrame
    contours: list[ct.FaceContour]
    mean_shape: np.ndarray | None
    confident_faces: int
    failures: dict[str, int] = field(default_factory=dict)


def _face_inputs(faces: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p28 = points_from_table(faces, "p", 28)
    contour5 = p28[:, list(HYSTS28_CONTOUR)]
    centre = p28[:, 5:28].mean(axis=1)
    return p28, contour5, centre


def _run_pass(faces: pd.DataFrame, load_gray: Callable[[str], np.ndarray], params: ct.ContourParams,
              prior: np.ndarray | None, fixed: dict[str, dict[int, tuple[float, float]]], desc: str
              ) -> list[ct.FaceContour]:
    _, contour5, centre = _face_inputs(faces)
    boxes = faces[BOX].to_numpy(dtype=np.float64)
    out: list[ct.FaceContour | None] = [None] * len(faces)
    order = faces.reset_index(drop=True).groupby("frame_id", sort=True).indices
    with tqdm(total=len(faces), desc=desc, unit="face", leave=False) as bar:
        for frame_id, rows in order.items():
            gray = load_gray(frame_id)
            for r in rows:
                width = float(np.linalg.norm(contour5[r, 4] - contour5[r, 0]))
                x0, y0, x1, y1 = ct.face_region(contour5[r], boxes[r], gray.shape[:2], width)
                omap = ct.OutlineMap(gray[y0:y1, x0:x1], x0, y0, width, params)
                out[r] = ct.expand_face(omap, contour5[r], centre[r], params, prior,
                                        fixed.get(faces["face_id"].iat[r]))
                bar.update(1)
    return out  # type: ignore[return-value]


def expand_table(faces: pd.DataFrame, load_gray: Callable[[str], np.ndarray], params: ct.ContourParams,
                 fixed: dict[str, dict[int, tuple[float, float]]], vis_min_score: float) -> ExpandResult:
    """The 40-point table (contract: docs/pipeline.md) for every row of `faces`, in the same order."""
    faces = faces.reset_index(drop=True)
    first = _run_pass(faces, load_gray, params, None, fixed, "contour pass 1")
    confident = [c for c in first if ct.FALLBACK not in c.source]
    mean_shape = None
    contours = first
    if len(confident) >= params.min_confident:
        mean_shape = ct.mean_contour_shape(np.stack([c.points for c in confident]))
        contours = _run_pass(faces, load_gray, params, mean_shape, fixed, "contour pass 2")
    failures: dict[str, int] = {}
    for c in contours:
        for why in c.failures.values():
            failures[why] = failures.get(why, 0) + 1
    table = build_table(faces, contours, vis_min_score)
    return ExpandResult(table, contours, mean_shape, len(confident), dict(sorted(failures.items())))


def build_table(faces: pd.DataFrame, contours: list[ct.FaceContour], vis_min_score: float) -> pd.DataFrame:
    p28, _, _ = _face_inputs(faces)
    c17 = np.stack([c.points for c in contours]) if contours else np.zeros((0, 17, 2))
    q40 = anime_to_face40(p28, c17)
    score_cols = [f"p{i:02d}_s" for i in range(28)]
    scores = faces[score_cols].to_numpy(dtype=np.float64) if all(c in faces for c in score_cols) \
        else np.ones((len(faces), 28))
    vis28 = scores >= vis_min_score
    vis40 = np.zeros((len(faces), FACE40.n), dtype=np.uint8)
    vis40[:, 17:] = vis28[:, 5:28]
    for r, c in enumerate(contours):
        for j in range(17):
            s = c.source[j]
            if s == ct.DETECTED:
                vis40[r, j] = vis28[r, j // 4]
            elif s in (ct.SEARCH, ct.CORRECTED):
                vis40[r, j] = 1
        for j in range(17):  # fallback points: visible when the points they hang between are
            if c.source[j] == ct.FALLBACK:
                lo = max(k for k in range(j) if c.source[k] != ct.FALLBACK)
                hi = min(k for k in range(j + 1, 17) if c.source[k] != ct.FALLBACK)
                vis40[r, j] = vis40[r, lo] & vis40[r, hi]
    keep = [c for c in IDENTITY + BOX + SCORES if c in faces.columns]
    cols = dict(points_to_table(q40, "q"))
    cols.update({f"v{j:02d}": vis40[:, j] for j in range(FACE40.n)})
    cols["contour_source"] = np.array([c.source_str for c in contours], dtype=object)
    return pd.concat([faces[keep].reset_index(drop=True), pd.DataFrame(cols)], axis=1)


def truth_errors(faces: pd.DataFrame, table: pd.DataFrame, framing: Framing) -> np.ndarray | None:
    """(N, 12) error of the new contour points against the true contour, in px at 112 (NaN where no truth)."""
    cols = [f"c{i:02d}_{a}" for i in range(17) for a in "xy"]
    if not all(c in faces.columns for c in cols):
        return None
    truth = points_from_table(faces.reset_index(drop=True), "c", 17)
    q40 = points_from_table(table, "q", 40)
    side = framing_square(q40, framing)[:, 2]
    new = list(ct.NEW_POINTS)
    err = np.linalg.norm(q40[:, new] - truth[:, new], axis=-1)
    return err * (112.0 / side)[:, None]
