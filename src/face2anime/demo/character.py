"""A character's fixed appearance, sampled from a seeded generator.

Proportions are in face-local units (half face width at eye height = 1, eye line at y = 0). The ranges
are wide on purpose: a landmark model trained on the demo must not be able to memorise a few templates.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

HAIR_STYLES = ("short", "bob", "long", "twintails")

_SKINS = ((255, 236, 224), (252, 224, 204), (246, 214, 190), (232, 190, 160), (196, 146, 112), (255, 242, 236))
_NATURAL_HAIR = ((40, 34, 44), (92, 60, 42), (150, 96, 56), (236, 208, 140), (214, 214, 226), (30, 30, 60))

RGB = tuple[int, int, int]


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


def shade(color: RGB, f: float) -> RGB:
    """Darker (f < 1) or lighter (f > 1, towards white) version of a colour."""
    c = np.asarray(color, dtype=np.float64)
    out = c * f if f <= 1 else c + (255 - c) * (f - 1)
    return tuple(int(v) for v in np.clip(np.round(out), 0, 255))  # type: ignore[return-value]


@dataclass(frozen=True)
class Character:
    """Everything about one character that does not change from frame to frame."""

    cid: str
    # face outline: sides |x|^q + (y / chin)^p = 1 below the eye line, superellipse forehead above
    chin: float
    jaw_p: float
    jaw_q: float
    forehead: float
    # eyes (centre at (+-eye_x, 0))
    eye_x: float
    eye_w: float
    eye_h: float
    eye_tilt: float
    iris_w: float
    lash_w: float
    double_lid: bool
    # brows
    brow_gap: float
    brow_arch: float
    brow_tilt: float
    brow_w: float
    brow_len: float
    # nose and mouth (as shares of the chin depth)
    nose_f: float
    nose_style: int
    mouth_f: float
    mouth_w: float
    mouth_open_h: float
    smile: float
    # lines and colours
    line_w: float
    skin: RGB
    hair: RGB
    iris: RGB
    clothes: RGB
    blush: float
    # hair shape
    hair_style: str
    hair_volume: float
    hair_top: float
    hair_len: float
    bang_len: float
    bang_tips: tuple[float, ...]   # per lock: extra length of its tip
    bang_depth: tuple[float, ...]  # per notch between locks: how far up it cuts
    bang_sweep: float
    sidelocks: bool
    side_len: float
    side_in: float
    shoulders: float

    @property
    def eye_top(self) -> float:
        return -self.eye_h / 2

    @property
    def brow_y(self) -> float:
        return self.eye_top - self.brow_gap


def _colours(rng: np.random.Generator) -> tuple[RGB, RGB, RGB, RGB]:
    skin = _SKINS[rng.integers(len(_SKINS))]
    if rng.random() < 0.35:
        hair = _NATURAL_HAIR[rng.integers(len(_NATURAL_HAIR))]
    else:
        hair = _hsv(rng.random(), rng.uniform(0.35, 0.85), rng.uniform(0.45, 0.95))
    iris = _hsv(rng.random(), rng.uniform(0.45, 0.95), rng.uniform(0.45, 0.9))
    clothes = _hsv(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.3, 0.95))
    return skin, hair, iris, clothes


def sample_character(rng: np.random.Generator, cid: str) -> Character:
    """Draw one character's appearance; the proportions are kept inside ranges that look anime."""
    eye_h = rng.uniform(0.44, 0.74)
    eye_w = rng.uniform(0.37, 0.54)
    eye_x = rng.uniform(0.42, 0.55)
    eye_x = min(eye_x, 0.92 - eye_w / 2 - 0.06)  # outer corner and lash wing stay inside the face
    brow_gap = rng.uniform(0.07, 0.22)
    chin = rng.uniform(1.05, 1.42)
    n_locks = int(rng.integers(4, 9))
    skin, hair, iris, clothes = _colours(rng)
    style = HAIR_STYLES[rng.integers(len(HAIR_STYLES))]
    brow_y = -eye_h / 2 - brow_gap
    return Character(
        cid=cid,
        chin=chin,
        jaw_p=rng.uniform(1.4, 2.3),
        jaw_q=rng.uniform(1.0, 1.5),
        forehead=rng.uniform(0.95, 1.15),
        eye_x=eye_x,
        eye_w=eye_w,
        eye_h=eye_h,
        eye_tilt=rng.uniform(-0.05, 0.09),
        iris_w=rng.uniform(0.5, 0.72),
        lash_w=rng.uniform(0.04, 0.085),
        double_lid=bool(rng.random() < 0.5),
        brow_gap=brow_gap,
        brow_arch=rng.uniform(0.0, 0.07),
        brow_tilt=rng.uniform(-0.05, 0.06),
        brow_w=rng.uniform(0.018, 0.04),
        brow_len=rng.uniform(0.8, 1.1),
        nose_f=rng.uniform(0.42, 0.54),
        nose_style=int(rng.integers(3)),
        mouth_f=rng.uniform(0.70, 0.80),
        mouth_w=rng.uniform(0.08, 0.2),
        mouth_open_h=rng.uniform(0.1, 0.26),
        smile=rng.uniform(-0.015, 0.04),
        line_w=rng.uniform(0.018, 0.035),
        skin=skin,
        hair=hair,
        iris=iris,
        clothes=clothes,
        blush=float(rng.uniform(0.15, 0.45)) if rng.random() < 0.7 else 0.0,
        hair_style=style,
        hair_volume=rng.uniform(1.1, 1.3),
        hair_top=rng.uniform(0.3, 0.6),
        hair_len=rng.uniform(1.3, 1.7) if style == "bob" else rng.uniform(2.8, 4.5),
        # tips between 0.3 above the brows and a little below them: some brows hide under the bangs
        bang_len=brow_y + rng.uniform(-0.3, 0.12),
        bang_tips=tuple(rng.uniform(-0.08, 0.1, n_locks)),
        bang_depth=tuple(rng.uniform(0.12, 0.4, n_locks - 1)),
        bang_sweep=rng.uniform(-0.15, 0.15),
        sidelocks=bool(rng.random() < 0.4),
        side_len=rng.uniform(0.1, 1.4),
        side_in=rng.uniform(0.84, 1.04),
        shoulders=rng.uniform(1.4, 1.9),
    )
