"""The one canonical face-framing rule, used by the anime crops and the photo crops alike.

The crop is an axis-aligned square derived from the face's 40 points: centred on the centre of their
bounding box (shifted by `y_shift` x side, negative = up), with side = `margin` x the larger side of that
box. Because both domains frame by the same semantic points, the same point lands at the same place on
average, which is what the landmark loss needs (it compares the DAN's reading of a generated face with
the photo's points in crop coordinates).

Coordinates: pixel centres sit at integers, so pixel i covers [i - 0.5, i + 0.5). A crop of `size` px
covering the continuous image square [x0, x0 + side) maps image x to crop u = (x - x0) * size / side - 0.5
(crop pixel u's centre is image x0 + (u + 0.5) * side / size). Mirroring is then exact.
"""

from __future__ import annotations

import cv2
import numpy as np

from face2anime.params import FramingParams as Framing  # the `framing` section is the rule's whole state

def framing_square(points: np.ndarray, framing: Framing) -> np.ndarray:
    """(..., n, 2) points -> (..., 3) squares as (x0, y0, side) in image pixels."""
    pts = np.asarray(points, dtype=np.float64)
    lo, hi = pts.min(axis=-2), pts.max(axis=-2)
    side = framing.margin * (hi - lo).max(axis=-1)
    centre = (lo + hi) / 2
    centre[..., 1] += framing.y_shift * side
    x0 = centre[..., 0] - side / 2
    y0 = centre[..., 1] - side / 2
    return np.stack([x0, y0, side], axis=-1)


def square_to_crop_matrix(square: np.ndarray, size: int) -> np.ndarray:
    """2x3 affine matrix mapping image pixel coordinates into crop pixel coordinates."""
    x0, y0, side = (float(v) for v in square)
    s = size / side
    return np.array([[s, 0.0, -x0 * s - 0.5], [0.0, s, -y0 * s - 0.5]])


def to_crop(points: np.ndarray, square: np.ndarray, size: int) -> np.ndarray:
    """Image pixel coordinates -> crop pixel coordinates (works for (..., n, 2) with (..., 3) squares)."""
    pts = np.asarray(points, dtype=np.float64)
    sq = np.asarray(square, dtype=np.float64)
    s = (size / sq[..., 2])[..., None, None]
    origin = sq[..., None, :2]
    return (pts - origin) * s - 0.5


def from_crop(points: np.ndarray, square: np.ndarray, size: int) -> np.ndarray:
    """Crop pixel coordinates -> image pixel coordinates; the inverse of `to_crop`."""
    pts = np.asarray(points, dtype=np.float64)
    sq = np.asarray(square, dtype=np.float64)
    s = (sq[..., 2] / size)[..., None, None]
    origin = sq[..., None, :2]
    return (pts + 0.5) * s + origin


def crop_image(image: np.ndarray, square: np.ndarray, size: int) -> np.ndarray:
    """Resample the square region of `image` to size x size (edges replicated, anti-aliased when shrinking)."""
    side = float(square[2])
    scale = side / size
    if scale > 1.5:  # low-pass before decimating, else thin anime lines alias
        sigma = 0.5 * scale
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
    m = square_to_crop_matrix(square, size)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
