"""Flat, anime-like backgrounds (sky, room, city at dusk, abstract shapes), one per shot.

A background is drawn once per shot on a "world" larger than the frame; the camera then pans and zooms
over it (`episode.py`), so a shot's backdrop moves consistently with its characters.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from face2anime.demo.draw import Canvas
from face2anime.demo.geometry import ellipse_arc

KINDS = ("sky", "room", "city", "shapes")


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return int(r * 255), int(g * 255), int(b * 255)


def _vertical_gradient(h: int, w: int, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    return np.ascontiguousarray(np.broadcast_to(np.round(img), (h, w, 3)).astype(np.uint8))


def _rect(x0, y0, x1, y1) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)


def _sky(cv: Canvas, rng: np.random.Generator, w: float, h: float) -> None:
    hue = rng.uniform(0.53, 0.63)
    cv.image[:] = _vertical_gradient(cv.image.shape[0], cv.image.shape[1],
                                     _hsv(hue, rng.uniform(0.45, 0.75), 0.92), _hsv(hue, 0.15, 1.0))
    for _ in range(int(rng.integers(3, 7))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0.05 * h, 0.6 * h), rng.uniform(0.04, 0.1) * w
        for _ in range(int(rng.integers(4, 8))):
            dx, dy = rng.uniform(-1.6, 1.6) * r, rng.uniform(-0.3, 0.3) * r
            rr = r * rng.uniform(0.5, 1.0)
            cv.fill(ellipse_arc((cx + dx, cy + dy + 0.15 * rr), rr, rr * 0.7, 0, 2 * np.pi, 40), (214, 224, 240))
            cv.fill(ellipse_arc((cx + dx, cy + dy), rr, rr * 0.7, 0, 2 * np.pi, 40), (252, 252, 255))
    if rng.random() < 0.6:  # hills
        xs = np.linspace(-10, w + 10, 40)
        ys = h * (0.8 + 0.06 * np.sin(xs / w * rng.uniform(4, 9) + rng.uniform(0, 6)))
        cv.fill(np.concatenate([np.stack([xs, ys], 1), [(w + 10, h + 10), (-10, h + 10)]]),
                _hsv(rng.uniform(0.22, 0.4), 0.55, 0.7))


def _room(cv: Canvas, rng: np.random.Generator, w: float, h: float) -> None:
    wall = _hsv(rng.random(), rng.uniform(0.08, 0.3), rng.uniform(0.8, 0.97))
    cv.image[:] = _vertical_gradient(cv.image.shape[0], cv.image.shape[1], wall,
                                     tuple(int(c * 0.85) for c in wall))
    floor_y = h * rng.uniform(0.7, 0.82)
    wood = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.6), rng.uniform(0.5, 0.75))
    cv.fill(_rect(-5, floor_y, w + 5, h + 5), wood)
    for k in range(1, 6):
        yy = floor_y + (h - floor_y) * (k / 6) ** 1.5
        cv.line(np.array([(-5, yy), (w + 5, yy)]), tuple(int(c * 0.8) for c in wood), 1.0)
    cv.line(np.array([(-5, floor_y), (w + 5, floor_y)]), tuple(int(c * 0.6) for c in wood), 2.0)
    wx, wy = rng.uniform(0.05, 0.6) * w, rng.uniform(0.08, 0.2) * h
    ww, wh = rng.uniform(0.18, 0.3) * w, rng.uniform(0.3, 0.45) * h
    cv.fill(_rect(wx - 6, wy - 6, wx + ww + 6, wy + wh + 6), (250, 248, 240))
    cv.fill(_rect(wx, wy, wx + ww, wy + wh), _hsv(0.57, 0.35, 0.98))
    cv.fill(_rect(wx + ww / 2 - 3, wy, wx + ww / 2 + 3, wy + wh), (250, 248, 240))
    cv.fill(_rect(wx, wy + wh / 2 - 3, wx + ww, wy + wh / 2 + 3), (250, 248, 240))
    for _ in range(int(rng.integers(1, 4))):  # cupboards standing on the floor, pictures on the wall
        col = _hsv(rng.random(), rng.uniform(0.2, 0.6), rng.uniform(0.4, 0.9))
        x0 = rng.uniform(0, w)
        if rng.random() < 0.5:
            x1, y1 = x0 + rng.uniform(0.08, 0.2) * w, floor_y + 0.02 * h
            y0 = y1 - rng.uniform(0.25, 0.5) * h
            cv.fill(_rect(x0, y0, x1, y1), col)
            cv.line(np.array([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)]), tuple(int(c * 0.6) for c in col), 1.5)
        else:
            y0 = rng.uniform(0.1, 0.4) * h
            x1, y1 = x0 + rng.uniform(0.05, 0.12) * w, y0 + rng.uniform(0.08, 0.16) * h
            cv.fill(_rect(x0 - 4, y0 - 4, x1 + 4, y1 + 4), (120, 86, 60))
            cv.fill(_rect(x0, y0, x1, y1), col)
        cv.line(_rect(x0, y0, x1, y1), tuple(int(c * 0.6) for c in col), 1.5, closed=True)


def _city(cv: Canvas, rng: np.random.Generator, w: float, h: float) -> None:
    cv.image[:] = _vertical_gradient(cv.image.shape[0], cv.image.shape[1],
                                     _hsv(rng.uniform(0.7, 0.8), 0.5, 0.55), _hsv(rng.uniform(0.02, 0.1), 0.6, 1.0))
    sun = (rng.uniform(0.1, 0.9) * w, h * rng.uniform(0.45, 0.6))
    cv.fill(ellipse_arc(sun, 0.06 * w, 0.06 * w, 0, 2 * np.pi, 60), (255, 236, 200))
    x = -10.0
    dark = _hsv(rng.uniform(0.65, 0.8), 0.4, 0.25)
    while x < w + 10:
        bw, bh = rng.uniform(0.04, 0.1) * w, rng.uniform(0.15, 0.5) * h
        cv.fill(_rect(x, h - bh, x + bw, h + 5), dark)
        for yy in np.arange(h - bh + 8, h - 8, 14):
            for xx in np.arange(x + 5, x + bw - 6, 11):
                if rng.random() < 0.35:
                    cv.fill(_rect(xx, yy, xx + 5, yy + 6), (255, 220, 140))
        x += bw + rng.uniform(0, 0.02) * w


def _shapes(cv: Canvas, rng: np.random.Generator, w: float, h: float) -> None:
    hue = rng.random()
    cv.image[:] = _vertical_gradient(cv.image.shape[0], cv.image.shape[1], _hsv(hue, 0.35, 0.95),
                                     _hsv(hue + rng.uniform(0.1, 0.3), 0.45, 0.8))
    if rng.random() < 0.5:
        step = rng.uniform(30, 60)
        col = _hsv(hue, 0.25, 1.0)
        for x0 in np.arange(-h, w + h, 2 * step):
            cv.fill(np.array([(x0, -5), (x0 + step, -5), (x0 + step + h, h + 5), (x0 + h, h + 5)]), col)
    layer = cv.image.copy()
    over = Canvas(layer, cv.ss)
    for _ in range(int(rng.integers(8, 20))):
        c, r = (rng.uniform(0, w), rng.uniform(0, h)), rng.uniform(0.02, 0.09) * w
        over.fill(ellipse_arc(c, r, r, 0, 2 * np.pi, 48), _hsv(hue + rng.uniform(-0.15, 0.15), 0.3, 1.0))
    cv2.addWeighted(layer, 0.55, cv.image, 0.45, 0, dst=cv.image)


def render_background(kind: str, rng: np.random.Generator, width: int, height: int, ss: int) -> np.ndarray:
    """(height*ss, width*ss, 3) RGB backdrop of the given kind; coordinates are world pixels."""
    cv = Canvas(np.zeros((height * ss, width * ss, 3), np.uint8), ss)
    {"sky": _sky, "room": _room, "city": _city, "shapes": _shapes}[kind](cv, rng, float(width), float(height))
    return cv.image
