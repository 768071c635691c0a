"""The SPADE painter's input, one function for both domains: the rough with the face parts filled + landmark channels.

SPADE-AnimeFace paints anime from a "rough": the image's colours flattened by mean shift (its seed recipe).
In a photo's rough the eyes, brows and mouth vanish into the skin, while in an anime crop's rough they stay as
dark blobs: a painter trained on anime roughs would then expect those blobs and get none from photos. So both
domains' roughs get the face-part regions filled from their surroundings, and the parts come back, the same
for both domains, as landmark channels drawn from the 40 points.
All drawing is without anti-aliasing (LINE_8) so that the channels are exact 0/1 and deterministic.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from face2anime.errors import UserError
from face2anime.landmarks.contour import similarity_fit
from face2anime.landmarks.schema import (FACE40_BROWS, FACE40_CONTOUR, FACE40_LEFT_EYE, FACE40_MOUTH, FACE40_NOSE,
                                         FACE40_RIGHT_EYE)
from face2anime.params import ConditioningParams, RoughParams

CHANNELS = ("rough_r", "rough_g", "rough_b", "contour", "brows", "eyes", "nose", "mouth")
N_POINTS = 40
DRAW_SHIFT = 4  # sub-pixel bits of cv2 drawing: points are floats with pixel centres at integers

# Outlines in drawing order: each eye upper outer->top->inner, then back along the lower lid; the mouth's diamond.
LEFT_EYE_RING = (23, 24, 25, 28, 27, 26)
RIGHT_EYE_RING = (29, 30, 31, 34, 33, 32)
MOUTH_RING = (36, 37, 38, 39)
LEFT_BROW, RIGHT_BROW = FACE40_BROWS[:3], FACE40_BROWS[3:]
assert set(LEFT_EYE_RING) == set(FACE40_LEFT_EYE) and set(RIGHT_EYE_RING) == set(FACE40_RIGHT_EYE)
assert set(MOUTH_RING) == set(FACE40_MOUTH)


def rough(rgb: np.ndarray, r: RoughParams) -> np.ndarray:
    """The seed's rough (HSV, median, mean shift, median), RGB in and out: the seed's HSV2BGR output reversed."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    hsv = cv2.medianBlur(hsv, r.median_before)
    hsv = cv2.pyrMeanShiftFiltering(hsv, r.spatial_radius, r.color_radius)
    hsv = cv2.medianBlur(hsv, r.median_after)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def fixed_point(points: np.ndarray) -> np.ndarray:
    """cv2's fixed-point form of (n, 2) float points, one polygon for fillPoly/polylines."""
    return np.round(np.asarray(points, np.float64) * (1 << DRAW_SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _fill(canvas: np.ndarray, points: np.ndarray) -> None:
    """A filled polygon and its outline, so that a closed eye or mouth (a flat polygon) still marks its line."""
    cv2.fillPoly(canvas, [fixed_point(points)], 1, cv2.LINE_8, DRAW_SHIFT)
    cv2.polylines(canvas, [fixed_point(points)], True, 1, 1, cv2.LINE_8, DRAW_SHIFT)


def _line(canvas: np.ndarray, points: np.ndarray, width: int) -> None:
    cv2.polylines(canvas, [fixed_point(points)], False, 1, width, cv2.LINE_8, DRAW_SHIFT)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def part_mask(points40: np.ndarray, size: int, dilate: int) -> np.ndarray:
    """(size, size) bool: the eyes, brows and mouth (polygons, brow lines), grown by `dilate` px.

    The grown margin takes in what the points do not outline (lashes, a photo's thick brows, lip edges).
    """
    p = np.asarray(points40, np.float64)
    mask = np.zeros((size, size), np.uint8)
    for ring in (LEFT_EYE_RING, RIGHT_EYE_RING, MOUTH_RING):
        _fill(mask, p[list(ring)])
    for brow in (LEFT_BROW, RIGHT_BROW):
        _line(mask, p[list(brow)], 1)
    if dilate > 0:
        mask = cv2.dilate(mask, _disk(dilate))
    return mask > 0


def face_polygon(points40: np.ndarray) -> np.ndarray:
    """(23, 2): the contour (left temple, chin, right temple) closed over the brows (right outer to left outer)."""
    p = np.asarray(points40, np.float64)
    return np.concatenate([p[list(FACE40_CONTOUR)], p[list(FACE40_BROWS)][::-1]])


def polygon_mask(polygon: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 in {0, 1}: the filled polygon."""
    m = np.zeros((size, size), np.uint8)
    cv2.fillPoly(m, [fixed_point(polygon)], 1, cv2.LINE_8, DRAW_SHIFT)
    return m


def flatten_face(rgb: np.ndarray, points40: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """`rgb` with the face (`face_polygon`) set to the median colour of its skin (the face less `parts`).

    A photo's rough keeps shading, beards, wrinkles and glasses as dark regions inside the face, which an anime
    rough (cel-shaded, nearly flat skin) never has; flat in both domains, the painter learns to paint the face's
    own anime shading from the outline and the parts alone, and a photo brings only its skin colour.
    """
    face = polygon_mask(face_polygon(points40), rgb.shape[0]) > 0
    skin = face & ~parts
    if not skin.any():
        return rgb
    out = rgb.copy()
    out[face] = np.round(np.median(rgb[skin], axis=0)).astype(np.uint8)
    return out


def fill_parts(rgb: np.ndarray, mask: np.ndarray, radius: float) -> np.ndarray:
    """`rgb` with the masked pixels filled from their surroundings (Telea inpainting), uint8 RGB."""
    return cv2.inpaint(np.ascontiguousarray(rgb), mask.astype(np.uint8) * np.uint8(255), radius, cv2.INPAINT_TELEA)


def landmark_channels(points40: np.ndarray, size: int, line_width: int) -> np.ndarray:
    """(5, size, size) float32 in {0, 1}: contour and brow lines, filled eyes, a nose dot, the filled mouth."""
    p = np.asarray(points40, np.float64)
    out = np.zeros((5, size, size), np.uint8)
    _line(out[0], p[list(FACE40_CONTOUR)], line_width)
    for brow in (LEFT_BROW, RIGHT_BROW):
        _line(out[1], p[list(brow)], line_width)
    for ring in (LEFT_EYE_RING, RIGHT_EYE_RING):
        _fill(out[2], p[list(ring)])
    nose = fixed_point(p[list(FACE40_NOSE)])[0, 0]
    cv2.circle(out[3], (int(nose[0]), int(nose[1])), line_width << DRAW_SHIFT, 1, -1, cv2.LINE_8, DRAW_SHIFT)
    _fill(out[4], p[list(MOUTH_RING)])
    return out.astype(np.float32)


# How far outside the crop a photo's points may lie (share of the crop side): a real photo's chin often sits a
# little below the framing square, and drawing clips it; anime training pairs are held to the frame itself.
PHOTO_MARGIN = 0.25


def points_problem(points40: np.ndarray, width: int, height: int, margin: float = 0.0) -> str | None:
    """Why these points cannot make a conditioning (one line), or None. The frame is the pixel area, centres at
    integers: [-0.5, width - 0.5] x [-0.5, height - 0.5], grown by `margin` x its side on every edge."""
    p = np.asarray(points40, np.float64)
    if p.shape != (N_POINTS, 2):
        return f"points of shape {p.shape}, expected ({N_POINTS}, 2)"
    bad = ~np.isfinite(p).all(axis=1)
    if bad.any():
        return f"non-finite points {np.flatnonzero(bad).tolist()}"
    mx, my = margin * width, margin * height
    out = ((p[:, 0] < -0.5 - mx) | (p[:, 0] > width - 0.5 + mx) | (p[:, 1] < -0.5 - my)
           | (p[:, 1] > height - 0.5 + my))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        beyond = f" (more than {margin:.0%} of its side beyond)" if margin else ""
        return (f"{int(out.sum())} points out of the {width}x{height} frame{beyond} (point {i} at "
                f"({p[i, 0]:.1f}, {p[i, 1]:.1f}))")
    return None


def scale_points(points: np.ndarray, width: int, height: int, size: int) -> np.ndarray:
    """Points of a width x height image in a size x size resize of it (pixel centres at integers in both)."""
    return (np.asarray(points, np.float64) + 0.5) * (size / width, size / height) - 0.5


def conditioning(rgb: np.ndarray, points40: np.ndarray, c: ConditioningParams, margin: float = 0.0) -> np.ndarray:
    """(8, S, S) float32 in [-1, 1] (`CHANNELS`): the part-filled rough of `rgb` resized to S = c.size (its face
    flattened to the skin colour with `c.flat_skin`), and the landmark channels of the points scaled from the
    image's size to S. UserError if the points are unusable (`points_problem` with `margin`)."""
    h, w = rgb.shape[:2]
    problem = points_problem(points40, w, h, margin)
    if problem:
        raise UserError(problem)
    s = c.size
    if (h, w) != (s, s):
        shrink = s < min(h, w)
        rgb = cv2.resize(rgb, (s, s), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    pts = scale_points(points40, w, h, s)
    parts = part_mask(pts, s, c.fill_dilate)
    filled = fill_parts(rough(rgb, c.rough), parts, c.fill_radius)
    if c.flat_skin:
        filled = flatten_face(filled, pts, parts)
    colour = filled.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
    marks = landmark_channels(pts, s, c.line_width) * 2.0 - 1.0
    return np.concatenate([colour, marks])


def conditioning_batch(images: np.ndarray, points: np.ndarray, c: ConditioningParams, threads: int,
                       progress: Callable[[int], object] | None = None, margin: float = 0.0) -> np.ndarray:
    """(N, 8, S, S) float32, in input order, on `threads` threads (0 = one per CPU): OpenCV's mean shift and
    inpainting release the GIL. Each face is computed alone, so the result does not depend on `threads`.
    `progress(1)` is called once per finished face (a tqdm bar's `update`)."""
    if len(images) != len(points):
        raise ValueError(f"{len(images)} images for {len(points)} point sets")
    if len(images) == 0:
        return np.zeros((0, len(CHANNELS), c.size, c.size), np.float32)

    def one(i: int) -> np.ndarray:
        return conditioning(images[i], points[i], c, margin)

    out = np.empty((len(images), len(CHANNELS), c.size, c.size), np.float32)
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        for i, cond in enumerate(pool.map(one, range(len(images)))):
            out[i] = cond
            if progress is not None:
                progress(1)
    return out


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (rotation, uniform scale, shift; no mirror) with dst ~ M @ [src, 1]."""
    scale, rot, shift = similarity_fit(np.asarray(src, np.float64), np.asarray(dst, np.float64))
    return np.hstack([scale * rot, shift[:, None]])


def move_shape(points: np.ndarray, mean_shape: np.ndarray, amount: float) -> np.ndarray:
    """(..., 40, 2) points moved toward the mean shape by `amount` (0 = unchanged, 1 = the mean).

    The mean is first fitted onto each point set by a similarity, so the face keeps its position, size and roll
    and only its proportions move (a photo's eyes toward anime's big, low-set ones).
    """
    p = np.asarray(points, np.float64)
    flat = p.reshape(-1, *p.shape[-2:])
    mean = np.asarray(mean_shape, np.float64)
    fitted = np.stack([mean @ m[:, :2].T + m[:, 2] for m in (fit_similarity(mean, q) for q in flat)])
    return ((1.0 - amount) * flat + amount * fitted).reshape(p.shape)
