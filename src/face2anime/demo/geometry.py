"""2-D helpers for the demo renderer: the face's pose transform, smooth curves and tapered strokes.

Everything a character is made of is built as polylines in face-local units and mapped to frame pixels
by one similarity (`Pose`); the landmarks are read off the very same polylines, so they are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Similarity from face-local units (x right, y down, eye line at y = 0, half face width = 1) to pixels."""

    x: float
    y: float
    scale: float
    roll_deg: float

    def __post_init__(self) -> None:
        a = np.deg2rad(self.roll_deg)
        c, s = np.cos(a), np.sin(a)
        object.__setattr__(self, "_m", np.array([[c, s], [-s, c]]) * self.scale)  # row-vector form of R * scale
        object.__setattr__(self, "_t", np.array([self.x, self.y]))

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts, dtype=np.float64) @ self._m + self._t


def quad_through(p0, pm, p1, n: int = 21) -> np.ndarray:
    """Quadratic Bezier from p0 to p1 that passes through pm at its middle sample (n odd, index n // 2)."""
    if n % 2 == 0:
        raise ValueError("n must be odd so that the middle sample is exact")
    p0, pm, p1 = (np.asarray(p, dtype=np.float64) for p in (p0, pm, p1))
    ctrl = 2.0 * pm - (p0 + p1) / 2.0
    t = np.linspace(0.0, 1.0, n)[:, None]
    out = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * ctrl + t**2 * p1
    out[n // 2] = pm  # exact, not just up to rounding
    return out


def ribbon(centre: np.ndarray, widths: np.ndarray | float) -> np.ndarray:
    """Closed polygon of a stroke along `centre` whose full width at each sample is `widths`."""
    c = np.asarray(centre, dtype=np.float64)
    w = np.broadcast_to(np.asarray(widths, dtype=np.float64), (len(c),))
    tang = np.gradient(c, axis=0)
    norm = np.linalg.norm(tang, axis=1, keepdims=True)
    tang = tang / np.maximum(norm, 1e-12)
    nrm = np.stack([-tang[:, 1], tang[:, 0]], axis=1)
    left = c + nrm * (w[:, None] / 2)
    right = c - nrm * (w[:, None] / 2)
    return np.concatenate([left, right[::-1]], axis=0)


def taper(n: int, start: float = 0.15, end: float = 0.15, floor: float = 0.2) -> np.ndarray:
    """Width profile in [floor, 1] that eases in over the first `start` and out over the last `end` share."""
    t = np.linspace(0.0, 1.0, n)
    prof = np.ones(n)
    if start > 0:
        prof = np.minimum(prof, floor + (1 - floor) * np.clip(t / start, 0, 1) ** 0.7)
    if end > 0:
        prof = np.minimum(prof, floor + (1 - floor) * np.clip((1 - t) / end, 0, 1) ** 0.7)
    return prof


def ellipse_arc(centre, rx: float, ry: float, a0: float, a1: float, n: int = 41) -> np.ndarray:
    """Points on an axis-aligned ellipse from angle a0 to a1 (radians, y down: pi/2 points down)."""
    a = np.linspace(a0, a1, n)
    return np.stack([centre[0] + rx * np.cos(a), centre[1] + ry * np.sin(a)], axis=1)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Signed distance of each point to a closed polygon: > 0 inside, < 0 outside (pixels)."""
    import cv2

    poly = np.asarray(polygon, dtype=np.float32).reshape(-1, 1, 2)
    return np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), True) for x, y in points])
