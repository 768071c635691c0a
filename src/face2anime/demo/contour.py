"""The true 17-point face contour of a drawn face, built exactly like a perfect contour search would.

Definition (the study's 5 -> 9 -> 17 expansion, run on the exact outline instead of an edge image):
start from the 5 known lower-contour points (hysts' 0..4, which lie on the outline polyline); for every
pair of neighbouring known points a, b the new point is where the vertical image line
x = (xa + xb) / 2 crosses the outline arc between a and b. Doing this once gives 9 points, twice 17;
the 5 starting points land on c00, c04, c08, c12, c16. The outline is convex, so for xa != xb the arc is
crossed exactly once; should there ever be several crossings, the one nearest to the chord's midpoint is
taken (that is what a search starting at the midpoint finds first), and for a vertical chord (xa == xb,
no crossing strictly inside) the arc's midpoint by length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def point_at(arc: np.ndarray, t: float) -> np.ndarray:
    """Point at fractional vertex index t along the polyline `arc` (N, 2)."""
    i = min(int(np.floor(t)), len(arc) - 2)
    f = t - i
    return arc[i] * (1 - f) + arc[i + 1] * f


def _sub_polyline(arc: np.ndarray, ta: float, tb: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (and their fractional indices) of the arc from parameter ta to tb (ta < tb)."""
    i0, i1 = int(np.floor(ta)) + 1, int(np.ceil(tb))
    inner = np.arange(i0, i1, dtype=np.float64)
    params = np.concatenate([[ta], inner, [tb]])
    pts = np.concatenate([point_at(arc, ta)[None], arc[i0:i1], point_at(arc, tb)[None]], axis=0)
    return pts, params


def vertical_hit(arc: np.ndarray, ta: float, tb: float) -> float:
    """Fractional index where x = (xa + xb) / 2 crosses the arc between parameters ta and tb."""
    pts, params = _sub_polyline(arc, ta, tb)
    a, b = pts[0], pts[-1]
    xm, ym = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    dp, dq = pts[:-1, 0] - xm, pts[1:, 0] - xm
    crossing = (dp * dq <= 0) & (dp != dq)
    s = np.where(crossing, dp / np.where(dp == dq, 1.0, dp - dq), 0.0)
    t = params[:-1] + s * np.diff(params)
    y = pts[:-1, 1] + s * (pts[1:, 1] - pts[:-1, 1])
    ok = crossing & (t > ta) & (t < tb)  # an end point is not a new point
    if ok.any():
        dist = np.where(ok, np.abs(y - ym), np.inf)
        return float(t[int(np.argmin(dist))])
    # vertical chord: fall back to the arc's midpoint by length
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    return float(np.interp(cum[-1] / 2, cum, params))


def expand_params(arc: np.ndarray, anchors: Sequence[float], rounds: int = 2) -> list[float]:
    """Fractional indices of the expanded contour: each round inserts one point between neighbours."""
    params = [float(t) for t in anchors]
    for _ in range(rounds):
        new = [params[0]]
        for ta, tb in zip(params[:-1], params[1:], strict=True):
            new += [vertical_hit(arc, ta, tb), tb]
        params = new
    return params


def true_contour17(arc: np.ndarray, anchors: Sequence[float]) -> np.ndarray:
    """(17, 2) true contour from the outline polyline `arc` and the 5 anchor indices of hysts' points 0..4."""
    if len(anchors) != 5:
        raise ValueError("need the 5 anchor positions of hysts' contour points 0..4")
    return np.stack([point_at(arc, t) for t in expand_params(arc, anchors)])
