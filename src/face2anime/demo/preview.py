"""Contact sheet of demo frames with their ground truth drawn on: boxes, 28 points, true contour."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from face2anime.landmarks.schema import HYSTS28, points_from_table


def annotate(frame_rgb: np.ndarray, truth: pd.DataFrame) -> np.ndarray:
    """A copy of the frame with each face's box (yellow), contour (cyan), visible (green) / hidden (red) points."""
    img = frame_rgb.copy()
    if truth.empty:
        return img
    pts = points_from_table(truth, "p", HYSTS28.n)
    vis = truth[[f"p{j:02d}_v" for j in range(HYSTS28.n)]].to_numpy()
    con = points_from_table(truth, "c", 17)
    boxes = truth[["box_x0", "box_y0", "box_x1", "box_y1"]].to_numpy()
    sh = 4  # fixed-point bits: sub-pixel placement of the marks

    def fx(p):
        return np.round(np.asarray(p) * (1 << sh)).astype(np.int32)

    for b, p, v, c in zip(boxes, pts, vis, con, strict=True):
        cv2.rectangle(img, tuple(fx(b[:2])), tuple(fx(b[2:])), (255, 220, 0), 1, cv2.LINE_AA, sh)
        cv2.polylines(img, [fx(c)], False, (0, 220, 255), 1, cv2.LINE_AA, sh)
        for q in c:
            cv2.circle(img, tuple(fx(q)), 1 << sh, (0, 140, 255), -1, cv2.LINE_AA, sh)
        for q, ok in zip(p, v, strict=True):
            cv2.circle(img, tuple(fx(q)), 2 << sh, (40, 230, 40) if ok else (255, 40, 40), -1, cv2.LINE_AA, sh)
    return img


def contact_sheet(tiles: list[np.ndarray], labels: list[str], cols: int = 3) -> np.ndarray:
    """Tiles (same size, RGB) in a grid, each with a caption in its corner."""
    if not tiles:
        raise ValueError("no frames for the contact sheet")
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for i, (t, text) in enumerate(zip(tiles, labels, strict=True)):
        r, c = divmod(i, cols)
        tile = t.copy()
        cv2.putText(tile, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    return sheet
