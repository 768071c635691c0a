"""Style-set preparation: CartoonGAN's edge-smoothed anime copies and AnimeGAN's grayscale copies.

The edge-smoothed set teaches the CartoonGAN discriminator that an anime face with blurred outlines is
fake, which pushes the generator towards crisp edges. Only the pixels on (dilated) edges are blurred;
every other pixel stays byte-identical to the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from face2anime.imaging.images import to_gray
from face2anime.params import PrepareStyleParams


@dataclass(frozen=True)
class EdgeSmoothing:
    """Canny(low, high) -> dilate (dilate x dilate) -> Gaussian (blur x blur) on the dilated edge pixels only."""

    low: int
    high: int
    dilate: int
    blur: int

    @classmethod
    def from_params(cls, p: PrepareStyleParams) -> EdgeSmoothing:
        return cls(low=p.canny_low, high=p.canny_high, dilate=p.dilate, blur=p.blur)


def edge_mask(rgb: np.ndarray, cfg: EdgeSmoothing) -> np.ndarray:
    """(H, W) bool: Canny edges of the luma image, dilated with a square kernel."""
    gray = to_gray(rgb)
    edges = cv2.Canny(gray, cfg.low, cfg.high)
    kernel = np.ones((cfg.dilate, cfg.dilate), np.uint8)
    return cv2.dilate(edges, kernel) > 0


def smooth_edges(rgb: np.ndarray, cfg: EdgeSmoothing) -> np.ndarray:
    """(H, W, 3) uint8 RGB with the dilated-edge pixels replaced by their Gaussian-blurred values."""
    mask = edge_mask(rgb, cfg)
    blurred = cv2.GaussianBlur(rgb, (cfg.blur, cfg.blur), 0, borderType=cv2.BORDER_REFLECT_101)
    out = rgb.copy()
    out[mask] = blurred[mask]
    return out


def build_style_set(color: np.ndarray, cfg: EdgeSmoothing) -> dict[str, np.ndarray]:
    """color (N, H, W, 3) uint8 RGB -> {'color', 'smoothed', 'gray'} arrays for the GAN's style side."""
    smoothed = np.stack([smooth_edges(img, cfg) for img in color]) if len(color) else color.copy()
    return {"color": color, "smoothed": smoothed, "gray": to_gray(color)}
