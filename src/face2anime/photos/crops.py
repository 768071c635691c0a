"""Photo crops for the landmark loss: dlib's face -> 40 points -> canonical framing -> crop views.

The photo's target points are dlib's 68 points mapped into the 40-point model, in crop pixels, with the
lower eyelids moved down (the study: "to match the anime set's average eye size"). The shift is applied at
the end, in crop coordinates at 112 px, so it can be a fixed number or derived from both domains' mean eye
opening ('auto') once every photo has been read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face2anime.landmarks.dlib68 import FaceResult
from face2anime.landmarks.framing import Framing, framing_square
from face2anime.landmarks.schema import FACE40, FACE40_REGIONS, IBUG68, dlib_to_face40
from face2anime.photos.views import Jitter, View, make_views, render_view, view_matrix, view_points

SIZE = 112  # the DAN's input size: points112 and the lower-lid shift are in crop pixels at this size


@dataclass
class CropView:
    """One crop of one photo: pixels at 112 and at the large size, and dlib's 68 points in 112 crop pixels."""

    view_index: int
    view: View
    color112: np.ndarray
    color_large: np.ndarray
    points68_112: np.ndarray  # (68, 2), relabelled when mirrored
    to_crop112: np.ndarray    # (2, 3) image -> crop112 (mirror included)


def face_square(points68: np.ndarray, framing: Framing, mapping: str) -> np.ndarray:
    """The canonical framing square of a photo face: the same rule as the anime crops, on its 40 points."""
    return framing_square(dlib_to_face40(points68, mapping, 0.0), framing)


def crop_views(image: np.ndarray, face: FaceResult, framing: Framing, mapping: str, large_size: int,
               variants: int, jitter: Jitter | None, rng: np.random.Generator) -> list[CropView]:
    """The canonical view plus `variants` jittered views of the chosen face."""
    square = face_square(face.points68, framing, mapping)
    out = []
    for k, view in enumerate(make_views(square, variants, jitter, rng)):
        out.append(CropView(
            view_index=k,
            view=view,
            color112=render_view(image, view, SIZE),
            color_large=render_view(image, view, large_size),
            points68_112=view_points(face.points68, view, SIZE, IBUG68),
            to_crop112=view_matrix(view, SIZE),
        ))
    return out


# ---------------------------------------------------------------- eye opening and the lower-lid shift
_EYE_PAIRS = tuple((FACE40.names.index(f"{side}_eye_upper_top"), FACE40.names.index(f"{side}_eye_lower_mid"))
                   for side in ("left", "right"))


def eye_opening(points40: np.ndarray, visible: np.ndarray | None = None) -> float:
    """Mean over faces and both eyes of (lower-lid middle y - upper-lid top y), in the points' pixels.

    With `visible` (N, 40), an eye counts only where both its points are visible.
    """
    pts = np.asarray(points40, dtype=np.float64)
    values = []
    for top, low in _EYE_PAIRS:
        d = pts[:, low, 1] - pts[:, top, 1]
        if visible is not None:
            d = d[np.asarray(visible)[:, top] & np.asarray(visible)[:, low]]
        values.append(d)
    allv = np.concatenate(values)
    if allv.size == 0:
        raise ValueError("no visible eye to measure")
    return float(allv.mean())


def auto_lid_shift(anime_points112: np.ndarray, anime_visible: np.ndarray | None,
                   photo_points112_raw: np.ndarray) -> tuple[float, float, float]:
    """(shift, anime opening, photo opening): the shift that makes the photos' mean eye opening the anime one."""
    anime = eye_opening(anime_points112, anime_visible)
    photo = eye_opening(photo_points112_raw)
    return anime - photo, anime, photo


# ---------------------------------------------------------------- domain comparison
def mean_shape(points: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """(40, 2) mean over faces; with `visible`, each point averages only the faces where it is visible."""
    pts = np.asarray(points, dtype=np.float64)
    if visible is None:
        return pts.mean(axis=0)
    w = np.asarray(visible, dtype=np.float64)[..., None]
    count = w.sum(axis=0)
    return np.where(count > 0, (pts * w).sum(axis=0) / np.maximum(count, 1), pts.mean(axis=0))


def shape_offset(a: np.ndarray, b: np.ndarray) -> dict:
    """Mean per-point distance (px) between two (40, 2) mean shapes, overall and per region."""
    d = np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)
    return {"mean": round(float(d.mean()), 3),
            "regions": {name: round(float(d[list(idx)].mean()), 3) for name, idx in FACE40_REGIONS.items()}}
