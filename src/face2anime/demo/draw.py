"""Anti-aliased rendering of drawing primitives onto a supersampled RGB canvas.

Frame coordinates (pixel centres at integers) map to the supersampled canvas by
X = (x + 0.5) * ss - 0.5, which is exactly undone by an INTER_AREA downscale by ss; OpenCV draws with
4 fractional bits and LINE_AA, so edges are smooth and sub-pixel accurate.
"""

from __future__ import annotations

import cv2
import numpy as np

from face2anime.demo.face import Clip, Fill, Line, Soft

SHIFT = 4  # fractional bits for OpenCV's fixed-point drawing


class Canvas:
    """An RGB uint8 image drawn at `ss` times the frame resolution; callers use frame pixels."""

    def __init__(self, image: np.ndarray, ss: int, origin: tuple[int, int] = (0, 0)):
        self.image = image
        self.ss = ss
        self.origin = np.asarray(origin, dtype=np.float64)  # canvas pixel of image[0, 0]

    def fixed(self, pts: np.ndarray) -> np.ndarray:
        q = (np.asarray(pts, dtype=np.float64) + 0.5) * self.ss - 0.5 - self.origin
        return np.round(q * (1 << SHIFT)).astype(np.int32)

    def fill(self, poly: np.ndarray, color) -> None:
        cv2.fillPoly(self.image, [self.fixed(poly)], _c(color), cv2.LINE_AA, SHIFT)

    def line(self, pts: np.ndarray, color, width: float, closed: bool = False) -> None:
        thick = max(1, int(round(width * self.ss)))
        cv2.polylines(self.image, [self.fixed(pts)], closed, _c(color), thick, cv2.LINE_AA, SHIFT)

    def _roi(self, poly: np.ndarray, pad: int) -> tuple[int, int, int, int] | None:
        f = self.fixed(poly) >> SHIFT
        h, w = self.image.shape[:2]
        x0, y0 = np.maximum(f.min(axis=0) - pad, 0)
        x1, y1 = np.minimum(f.max(axis=0) + pad + 1, (w, h))
        if x1 <= x0 or y1 <= y0:
            return None
        return int(x0), int(y0), int(x1), int(y1)

    def soft(self, poly: np.ndarray, color, alpha: float, blur: float) -> None:
        sigma = max(0.5, blur * self.ss)
        roi_box = self._roi(poly, int(3 * sigma) + 2)
        if roi_box is None:
            return
        x0, y0, x1, y1 = roi_box
        roi = self.image[y0:y1, x0:x1]
        mask = np.zeros(roi.shape[:2], np.float32)
        cv2.fillPoly(mask, [self.fixed(poly) - (np.array([x0, y0]) << SHIFT)], 1.0, cv2.LINE_AA, SHIFT)
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)[..., None] * alpha
        col = np.asarray(color, dtype=np.float32)
        roi[:] = np.round(roi * (1 - mask) + col * mask).astype(np.uint8)

    def clip(self, poly: np.ndarray, items: list) -> None:
        roi_box = self._roi(poly, 2)
        if roi_box is None:
            return
        x0, y0, x1, y1 = roi_box
        roi = self.image[y0:y1, x0:x1]
        layer = roi.copy()
        render(Canvas(layer, self.ss, tuple(self.origin + (x0, y0))), items)
        mask = np.zeros(roi.shape[:2], np.uint8)
        cv2.fillPoly(mask, [self.fixed(poly) - (np.array([x0, y0]) << SHIFT)], 255, cv2.LINE_AA, SHIFT)
        w = mask.astype(np.float32)
        roi[:] = cv2.blendLinear(layer, roi, w, 255.0 - w)


def _c(color) -> tuple[int, ...]:
    return tuple(int(v) for v in color)


def render(canvas: Canvas, items: list) -> None:
    """Draw primitives in order (back to front)."""
    for it in items:
        if isinstance(it, Fill):
            canvas.fill(it.poly, it.color)
        elif isinstance(it, Line):
            canvas.line(it.pts, it.color, it.width, it.closed)
        elif isinstance(it, Soft):
            canvas.soft(it.poly, it.color, it.alpha, it.blur)
        elif isinstance(it, Clip):
            canvas.clip(it.poly, it.items)
        else:
            raise TypeError(f"unknown drawing primitive {type(it).__name__}")


def downscale(image: np.ndarray, ss: int) -> np.ndarray:
    """Supersampled canvas -> frame resolution (box filter, which is what makes the edges anti-aliased)."""
    if ss == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (w // ss, h // ss), interpolation=cv2.INTER_AREA)
