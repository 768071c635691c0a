"""Synthetic painter inputs for `face2anime generate`: shapes sampled from the anime shape model, flat roughs.

The painter needs a rough and 40 points. To paint new faces without a source image, a shape is sampled from a
PCA model of the training crops' 40-point shapes (in crop pixels, so position and size vary as in the crops)
and a rough is drawn from it with one face's (background, hair, skin) colours: the flat regions a real rough
has once its face parts are filled.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from face2anime.paint.conditioning import DRAW_SHIFT, N_POINTS, fixed_point
from face2anime.paint.regions import background_mask, face_polygon, hair_cap, hair_mask, skin_mask

PALETTE_REGIONS = ("background", "hair", "skin")
SMOOTH = 5 / 112          # x image size: the median that rounds the drawn corners as the rough's medians do


@dataclass(frozen=True)
class ShapeModel:
    """Linear shape model: shape = mean + sum_k z_k * std_k * components_k, z ~ N(0, 1)."""

    mean: np.ndarray        # (40, 2)
    components: np.ndarray  # (k, 80), orthonormal rows
    std: np.ndarray         # (k,)

    def encode(self, shapes: np.ndarray) -> np.ndarray:
        """(n, 40, 2) -> (n, k) coefficients in units of each component's std (0 where a std is 0)."""
        x = (np.asarray(shapes, np.float64) - self.mean).reshape(len(shapes), -1)
        proj = x @ self.components.T
        return np.divide(proj, self.std, out=np.zeros_like(proj), where=self.std > 0)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """(n, k) coefficients -> (n, 40, 2) shapes."""
        return self.mean + ((np.asarray(z) * self.std) @ self.components).reshape(-1, N_POINTS, 2)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 40, 2) float64 shapes drawn from the model's Gaussian; the same rng state gives the same shapes."""
        return self.decode(rng.standard_normal((n, len(self.std))))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "std": self.std}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ShapeModel:
        return cls(mean=np.asarray(arrays["mean"], np.float64), components=np.asarray(arrays["components"], np.float64),
                   std=np.asarray(arrays["std"], np.float64))


def fit_shape_model(shapes: np.ndarray, k: int) -> ShapeModel:
    """PCA of (N, 40, 2) shapes, keeping at most k components (fewer when the N shapes span fewer)."""
    x = np.asarray(shapes, np.float64).reshape(len(shapes), -1)
    if len(x) < 2:
        raise ValueError(f"a shape model needs at least 2 shapes, got {len(x)}")
    mean = x.mean(axis=0)
    _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(k, len(sv))
    return ShapeModel(mean=mean.reshape(N_POINTS, 2), components=vt[:k], std=sv[:k] / np.sqrt(len(x) - 1))


def region_palette(rgb_rough: np.ndarray, points40: np.ndarray) -> np.ndarray:
    """(3, 3) uint8: the median colours of `PALETTE_REGIONS` in a rough; an empty region takes the image median."""
    size = rgb_rough.shape[0]
    pixels = rgb_rough.reshape(-1, 3)
    out = np.empty((3, 3), np.uint8)
    for r, mask in enumerate((background_mask(points40, size), hair_mask(points40, size),
                              skin_mask(points40, size))):
        chosen = pixels[mask.reshape(-1)] if mask.any() else pixels
        out[r] = np.median(chosen, axis=0).round().astype(np.uint8)
    return out


HAIR_SIDE_DEPTH = 0.85   # the drawn hair's sides end this far (x brow-to-chin height) below the brows


def synth_rough(points40: np.ndarray, palette: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: background, a hair blob around and above the head, the skin face polygon,
    then a small median so the corners are as round as a real rough's."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = palette[0]
    # hair hanging to the jaw beside the face, as the training crops' roughs mostly show it
    for polygon, colour in ((hair_cap(points40, 1.15, HAIR_SIDE_DEPTH), palette[1]), (face_polygon(points40), palette[2])):
        cv2.fillPoly(img, [fixed_point(polygon)], tuple(int(v) for v in colour), cv2.LINE_8, DRAW_SHIFT)
    k = max(3, int(round(SMOOTH * size)) | 1)
    return cv2.medianBlur(img, k)
