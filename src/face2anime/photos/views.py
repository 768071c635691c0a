"""Augmented crop views of a photo: similarity transforms (scale, rotation, shift) of the canonical framing
square, optionally mirrored, with mild colour jitter; points go through exactly the same transform as the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from face2anime.imaging.images import LUMA
from face2anime.landmarks.framing import crop_image, square_to_crop_matrix
from face2anime.landmarks.schema import Layout, flip_points
from face2anime.params import PhotoJitterParams as Jitter  # the `photo_landmarks.jitter` section


@dataclass(frozen=True)
class View:
    """One crop of a photo: the (jittered) framing square, a rotation about the crop centre (degrees,
    counter-clockwise on screen), a mirror flag and colour factors (brightness in 0..255 units)."""

    square: tuple[float, float, float]
    angle: float = 0.0
    mirror: bool = False
    brightness: float = 0.0
    contrast: float = 1.0
    saturation: float = 1.0

    @property
    def is_identity(self) -> bool:
        return (self.angle == 0.0 and not self.mirror and self.brightness == 0.0
                and self.contrast == 1.0 and self.saturation == 1.0)


def make_views(square: np.ndarray, n_variants: int, jitter: Jitter | None, rng: np.random.Generator) -> list[View]:
    """The canonical view first, then `n_variants` jittered ones drawn from `rng` (jitter may be None when 0)."""
    x0, y0, side = (float(v) for v in square)
    views = [View((x0, y0, side))]
    cx, cy = x0 + side / 2, y0 + side / 2
    for _ in range(n_variants):
        u = rng.uniform(-1.0, 1.0, size=7)
        s = side * (1.0 + jitter.scale * u[0])
        ncx, ncy = cx + jitter.shift * side * u[1], cy + jitter.shift * side * u[2]
        views.append(View(
            square=(ncx - s / 2, ncy - s / 2, s),
            angle=jitter.angle * u[3],
            mirror=bool(rng.random() < jitter.mirror_prob),
            brightness=255.0 * jitter.brightness * u[4],
            contrast=1.0 + jitter.contrast * u[5],
            saturation=1.0 + jitter.saturation * u[6],
        ))
    return views


def view_matrix(view: View, size: int, with_mirror: bool = True) -> np.ndarray:
    """2x3 affine: image pixels -> crop pixels of this view at `size` (rotation, then mirror if set)."""
    m = np.vstack([square_to_crop_matrix(np.asarray(view.square), size), [0.0, 0.0, 1.0]])
    c = (size - 1) / 2.0
    if view.angle:
        a = math.radians(view.angle)
        cos, sin = math.cos(a), math.sin(a)
        # rotate about the crop centre; with y pointing down, (cos, sin; -sin, cos) turns content counter-clockwise
        r = np.array([[cos, sin, c - cos * c - sin * c], [-sin, cos, c + sin * c - cos * c], [0, 0, 1.0]])
        m = r @ m
    if with_mirror and view.mirror:
        m = np.array([[-1.0, 0, size - 1.0], [0, 1.0, 0], [0, 0, 1.0]]) @ m
    return m[:2]


def view_points(points: np.ndarray, view: View, size: int, layout: Layout) -> np.ndarray:
    """Image points (n, 2) -> crop points of `view`, relabelled by `layout`'s flip pairs when mirrored."""
    m = view_matrix(view, size, with_mirror=False)
    pts = np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]
    return flip_points(pts, layout, size) if view.mirror else pts


def render_view(image: np.ndarray, view: View, size: int) -> np.ndarray:
    """The crop of `view` at `size` (RGB uint8): the canonical `crop_image`; rotated views use the same
    low-pass + bilinear rule on a padded window around the crop (no blur of the whole photo per view)."""
    if view.angle == 0.0:  # the canonical crop, literally
        crop = crop_image(image, np.asarray(view.square, dtype=np.float64), size)
    else:
        crop = _rotated_crop(image, view, size)
    if view.mirror:
        crop = crop[:, ::-1]
    return colour_jitter(np.ascontiguousarray(crop), view)


def _rotated_crop(image: np.ndarray, view: View, size: int) -> np.ndarray:
    """crop_image's rule (Gaussian low-pass when shrinking > 1.5x, bilinear, edges replicated) for a rotated square."""
    side = float(view.square[2])
    sigma = 0.5 * side / size if side / size > 1.5 else 0.0
    pad = int(math.ceil(4 * sigma)) + 2  # beyond the blur kernel's reach (3 sigma for uint8)
    m = view_matrix(view, size, with_mirror=False)
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    src = corners @ inv[:, :2].T + inv[:, 2]
    h, w = image.shape[:2]
    wx0 = int(np.clip(math.floor(src[:, 0].min()) - pad, 0, w - 1))
    wy0 = int(np.clip(math.floor(src[:, 1].min()) - pad, 0, h - 1))
    wx1 = int(np.clip(math.ceil(src[:, 0].max()) + pad + 1, wx0 + 1, w))
    wy1 = int(np.clip(math.ceil(src[:, 1].max()) + pad + 1, wy0 + 1, h))
    window = np.ascontiguousarray(image[wy0:wy1, wx0:wx1])
    if sigma:
        window = cv2.GaussianBlur(window, (0, 0), sigmaX=sigma, sigmaY=sigma)
    mw = m.copy()
    mw[:, 2] += m[:, :2] @ np.array([wx0, wy0], dtype=np.float64)
    return cv2.warpAffine(window, mw, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def colour_jitter(rgb: np.ndarray, view: View) -> np.ndarray:
    """Saturation (blend with luma), contrast about mid-grey, then brightness; identity leaves bytes as they are."""
    if view.brightness == 0.0 and view.contrast == 1.0 and view.saturation == 1.0:
        return rgb
    f = rgb.astype(np.float32)
    luma = f @ np.array(LUMA, dtype=np.float32)   # float luma for the blend (the uint8 gray image: to_gray)
    f = luma[..., None] + (f - luma[..., None]) * view.saturation
    f = (f - 127.5) * view.contrast + 127.5 + view.brightness
    return np.clip(f, 0, 255).round().astype(np.uint8)
