"""Does the painted face keep the photo's face? Points, pose and colours of output vs photo.

A painter that ignores its photo can still look anime and keep the landmark loss low, so three
numbers check what the issue asks to survive:
- point error: the frozen DAN's points on the output vs the points the output is meant to have (the
  painter's target points: the photo's own for the study generators, the shape-moved ones for spade),
  mean over the 40 points per image (px at 112);
- pose: the eye-line angle, the direction of the line from the left eye's centre to the right eye's
  (6 points each; image coordinates, y down, so a positive angle is a clockwise tilt on screen), of
  the output's DAN points against the photo's points;
- colours: CIELAB delta E 1976 between the per-channel medians of the output's and the photo's skin
  region and hair region (`paint.regions`); the photo's region from the photo's points, the output's
  from its target points. Medians, so a few stray pixels (an eye left in the mask) do not decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from face2anime.landmarks import schema
from face2anime.paint.regions import hair_mask, skin_mask

REGIONS = ("skin", "hair")


# ---------------------------------------------------------------- pose
def eye_line_angle(points40: np.ndarray) -> np.ndarray | float:
    """Angle in degrees of the line from the left eye centre to the right eye centre, in (-180, 180].

    `points40` (..., 40, 2); 0 for a level face, positive when the right eye (the one on the image's
    right) sits lower than the left in the image (y down).
    """
    p = np.asarray(points40, dtype=np.float64)
    left = p[..., list(schema.FACE40_LEFT_EYE), :].mean(axis=-2)
    right = p[..., list(schema.FACE40_RIGHT_EYE), :].mean(axis=-2)
    d = right - left
    angle = np.degrees(np.arctan2(d[..., 1], d[..., 0]))
    return float(angle) if np.ndim(angle) == 0 else angle


def angle_difference(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    """a - b in degrees, wrapped into [-180, 180) (179 - (-179) = -2, not 358)."""
    d = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64) + 180.0) % 360.0 - 180.0
    return float(d) if np.ndim(d) == 0 else d


# ---------------------------------------------------------------- colour
def median_lab(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel median CIELAB (D65; L 0..100) of the pixels of an (H, W, 3) uint8 RGB image under `mask`.

    NaN (3,) when the mask is empty.
    """
    mask = np.asarray(mask, dtype=bool)
    if rgb.shape[:2] != mask.shape:
        raise ValueError(f"image {rgb.shape[:2]} and mask {mask.shape} differ in size")
    if not mask.any():
        return np.full(3, np.nan)
    lab = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return np.median(lab[mask].astype(np.float64), axis=0)


def delta_e76(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray | float:
    """CIE 1976 colour difference: Euclidean distance in CIELAB over the last axis."""
    d = np.linalg.norm(np.asarray(lab1, dtype=np.float64) - np.asarray(lab2, dtype=np.float64), axis=-1)
    return float(d) if np.ndim(d) == 0 else d


def region_colour_difference(out_rgb: np.ndarray, photo_rgb: np.ndarray, out_points: np.ndarray,
                             photo_points: np.ndarray, size: int) -> dict[str, float]:
    """{"skin": dE, "hair": dE} between the output's and the photo's region medians (NaN: a region is empty).

    The output's regions come from `out_points` (where its face is meant to be), the photo's from
    `photo_points`; both images are (size, size, 3) uint8 RGB, points in their pixels.
    """
    for name, img in (("output", out_rgb), ("photo", photo_rgb)):
        if img.shape[:2] != (size, size):
            raise ValueError(f"{name} image is {img.shape[:2]}, expected ({size}, {size})")
    masks = {"skin": skin_mask, "hair": hair_mask}
    return {region: delta_e76(median_lab(out_rgb, masks[region](out_points, size)),
                              median_lab(photo_rgb, masks[region](photo_points, size)))
            for region in REGIONS}


# ---------------------------------------------------------------- one set of outputs
def mean_point_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per image mean Euclidean point error (N,) of (N, P, 2) point sets."""
    return np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(true, np.float64), axis=-1).mean(axis=-1)


def _stats(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Median and mean over the finite values (None when there are none: JSON has no NaN)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"median": None, "mean": None, "images": 0}
    return {"median": float(np.median(v)), "mean": float(v.mean()), "images": int(len(v))}


def faithfulness_report(outputs: np.ndarray, photos: np.ndarray, out_dan_points: np.ndarray,
                        target_points: np.ndarray, photo_points: np.ndarray,
                        photo_dan_points: np.ndarray | None = None) -> dict[str, Any]:
    """The numbers of the module docstring for (N, S, S, 3) uint8 outputs of (N, S, S, 3) photos, JSON-ready.

    `out_dan_points`: the DAN on the outputs; `target_points`: the points each output is meant to have;
    `photo_points`: the photos' own points. Each entry: median and mean over images (+ how many counted).
    With `photo_dan_points` (the DAN on the photos) the eye-angle difference of the raw photos is added as
    `eye_angle_diff_deg_photo_baseline`: what the anime DAN's own reading of a photo's pose costs.
    """
    size = int(photos.shape[1])
    colours = [region_colour_difference(o, p, t, q, size)
               for o, p, t, q in zip(outputs, photos, target_points, photo_points, strict=True)]
    eye = np.abs(angle_difference(eye_line_angle(out_dan_points), eye_line_angle(photo_points)))
    baseline = {}
    if photo_dan_points is not None:
        photo_eye = np.abs(angle_difference(eye_line_angle(photo_dan_points), eye_line_angle(photo_points)))
        baseline = {"eye_angle_diff_deg_photo_baseline": _stats(np.atleast_1d(photo_eye))}
    return {
        "point_error_to_target_px": _stats(mean_point_error(out_dan_points, target_points)),
        "eye_angle_diff_deg": _stats(np.atleast_1d(eye)),
        **baseline,
        "skin_delta_e": _stats([c["skin"] for c in colours]),
        "hair_delta_e": _stats([c["hair"] for c in colours]),
        "note": ("point error: DAN on the output vs the painter's target points (mean over 40 points, px at "
                 f"{size}); eye angle: |eye-line angle of the output's DAN points - the photo's points'| in "
                 "degrees; delta E: CIELAB 1976 between median colours of the output's region (from its target "
                 "points) and the photo's (from its points); skin/hair regions from paint.regions"),
    }
