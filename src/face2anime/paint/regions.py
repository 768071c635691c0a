"""Skin, hair and background regions of a face from its 40 points, for colour medians and synthetic roughs.

The colour metric and `face2anime generate` need "the skin colour" and "the hair colour" of a face without a
segmenter: the regions are drawn from the points alone. Skin is inside the face outline (the contour closed
over the brows) less the eyes, brows and mouth; hair is a cap above the brows and beside the upper face,
outside the face. The cap is laid out in the face's own frame (brow centre, chin direction, contour width), so
it follows the face's roll and size. Both are coarse on purpose: medians over them are what is used.
"""

from __future__ import annotations

import cv2
import numpy as np

from face2anime.landmarks.schema import FACE40_BROWS, inter_ocular
from face2anime.paint.conditioning import face_polygon, part_mask, polygon_mask

# The hair cap in face units (width = contour end to end, height = brow centre to chin): half-ellipse above
# the brow line, as wide as the face plus a side band, down the sides to about the eyes' lower lids.
CAP_HALF_WIDTH = 0.7      # x face width
CAP_TOP = 0.45            # x face height above the brow line
CAP_SIDE_DEPTH = 0.35     # x face height below the brow line
PART_MARGIN = 0.12        # x inter-ocular distance: the eye/brow/mouth regions grow by this before leaving skin
GAP = 0.05                # x inter-ocular distance: a gap between face and hair (the drawn outline, soft edges)


def _grow(mask: np.ndarray, px: float) -> np.ndarray:
    r = int(round(px))
    if r <= 0:
        return mask
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))


def hair_cap(points40: np.ndarray, scale: float = 1.0, side_depth: float | None = None) -> np.ndarray:
    """(n, 2) polygon of the head's hair cap (face included), `scale` times the standard cap around the brows;
    `side_depth` (x the brow-to-chin height) lets the sides hang lower than the standard cap's (drawn hair)."""
    p = np.asarray(points40, np.float64)
    brow = p[list(FACE40_BROWS)].mean(axis=0)
    down = p[8] - brow
    height = float(np.linalg.norm(down)) or 1.0
    down /= height
    right = np.array([-down[1], down[0]])   # image right for an upright face (y down)
    width = float(np.linalg.norm(p[16] - p[0])) or height
    rx, top = scale * CAP_HALF_WIDTH * width, scale * CAP_TOP * height
    side = (scale * CAP_SIDE_DEPTH if side_depth is None else side_depth) * height
    t = np.linspace(np.pi, 0.0, 25)
    arch = [brow + rx * np.cos(a) * right - top * np.sin(a) * down for a in t]
    sides = [brow + rx * right + side * down, brow - rx * right + side * down]
    return np.array(arch + sides)


def skin_mask(points40: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: inside the face outline, minus the eyes, brows and mouth grown by a margin."""
    margin = PART_MARGIN * float(inter_ocular(np.asarray(points40, np.float64)))
    face = polygon_mask(face_polygon(points40), size) > 0
    return face & ~part_mask(points40, size, int(round(margin)))


def hair_mask(points40: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: the cap above the brows and beside the upper face, outside the (slightly grown) face."""
    gap = GAP * float(inter_ocular(np.asarray(points40, np.float64)))
    face = _grow(polygon_mask(face_polygon(points40), size), max(1.0, gap))
    return (polygon_mask(hair_cap(points40), size) > 0) & ~(face > 0)


def background_mask(points40: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: well away from the head (outside a cap grown by half, and below it outside the face)."""
    head = polygon_mask(hair_cap(points40, 1.5), size) | _grow(polygon_mask(face_polygon(points40), size), 2)
    return head == 0
