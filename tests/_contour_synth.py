"""Synthetic drawn faces with a known outline, for the contour and crop tests.

A face is a filled skin shape with a dark anti-aliased outline (drawn 4x larger, then shrunk). Its
true 17-point contour follows the study's construction on the exact outline polyline: the vertical
line through the midpoint of two neighbouring known points crosses the outline arc between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from face2anime.landmarks.schema import points_to_table


@dataclass
class SynthFace:
    outline: np.ndarray     # closed polygon (M, 2)
    lower: np.ndarray       # lower arc from image-left at eye height to image-right (n, 2)
    p28: np.ndarray         # hysts-layout points (28, 2)
    truth17: np.ndarray     # true expanded contour (17, 2)
    box: np.ndarray         # x0, y0, x1, y1


def make_face(cx: float, cy: float, half_width: float, rng: np.random.Generator, roll_deg: float = 0.0,
              n: int = 600) -> SynthFace:
    a = half_width
    b = a * rng.uniform(1.05, 1.35)          # eye height to chin
    top = b * rng.uniform(1.0, 1.3)          # eye height to hairline
    power = rng.uniform(0.6, 1.1)            # < 1: pointier chin
    th = np.linspace(-np.pi / 2, np.pi / 2, n)
    lower = np.stack([cx + a * np.sin(th), cy + b * np.abs(np.cos(th)) ** power], axis=1)
    th2 = np.linspace(np.pi / 2, 3 * np.pi / 2, n)[1:-1]
    upper = np.stack([cx + a * np.sin(th2), cy + top * np.cos(th2)], axis=1)
    r = np.radians(roll_deg)
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    c = np.array([cx, cy])

    def turn(p):
        return (p - c) @ rot.T + c

    lower, upper = turn(lower), turn(upper)
    outline = np.concatenate([lower, upper])
    idx = [0, n // 4, n // 2, 3 * n // 4, n - 1]
    p5 = lower[idx]
    inner = np.array([  # brows, eyes, nose, mouth relative to (cx, cy) in units of a (hysts order 5..27)
        (-.75, -.55), (-.5, -.65), (-.25, -.55), (.25, -.55), (.5, -.65), (.75, -.55),
        (-.7, -.2), (-.45, -.35), (-.2, -.2), (-.7, .05), (-.45, .1), (-.2, .05),
        (.2, -.2), (.45, -.35), (.7, -.2), (.2, .05), (.45, .1), (.7, .05),
        (0, .35), (-.2, .65), (0, .6), (.2, .65), (0, .72)])
    p28 = np.concatenate([p5, turn(c + inner * a)])
    return SynthFace(outline, lower, p28, true_contour(lower, p5),
                     np.array([*outline.min(axis=0), *outline.max(axis=0)]))


def true_contour(lower: np.ndarray, p5: np.ndarray) -> np.ndarray:
    pts = np.full((17, 2), np.nan)
    pts[[0, 4, 8, 12, 16]] = p5
    ts = {0: 0.0, 4: None, 8: None, 12: None, 16: float(len(lower) - 1)}
    for k, j in zip((1, 2, 3), (4, 8, 12), strict=True):
        ts[j] = float(np.argmin(np.linalg.norm(lower - p5[k], axis=1)))
    for step in (2, 1):
        for j in range(step, 17, 2 * step):
            ta, tb = ts[j - step], ts[j + step]
            mx = (pts[j - step, 0] + pts[j + step, 0]) / 2
            u = np.linspace(ta, tb, int((tb - ta) * 8) + 2)
            xy = np.stack([np.interp(u, np.arange(len(lower)), lower[:, d]) for d in (0, 1)], axis=1)
            f = xy[:, 0] - mx
            hits = np.flatnonzero(np.sign(f[:-1]) * np.sign(f[1:]) <= 0)
            k = hits[np.argmin(np.abs(xy[hits, 1] - (pts[j - step, 1] + pts[j + step, 1]) / 2))]
            w = f[k] / (f[k] - f[k + 1])
            pts[j] = (mx, xy[k, 1] + w * (xy[k + 1, 1] - xy[k, 1]))
            ts[j] = u[k] + w * (u[k + 1] - u[k])
    return pts


def render(faces: list[SynthFace], size=(360, 640), skin=(250, 225, 210), bg=(90, 110, 150),
           line=(60, 40, 40), thickness: float = 2.0, rng: np.random.Generator | None = None,
           hide: list[tuple[float, float, float, float]] | None = None, ss: int = 4) -> np.ndarray:
    """RGB frame with the faces drawn; `hide` rectangles (frame px) are painted skin-coloured (no outline)."""
    h, w = size
    img = np.zeros((h * ss, w * ss, 3), np.uint8)
    img[:] = bg
    for f in faces:
        p = np.round((f.outline + 0.5) * ss - 0.5).astype(np.int32)
        cv2.fillPoly(img, [p], skin, cv2.LINE_AA)
        cv2.polylines(img, [p], True, line, int(round(thickness * ss)), cv2.LINE_AA)
    for x0, y0, x1, y1 in hide or []:
        img[int(y0 * ss):int(y1 * ss), int(x0 * ss):int(x1 * ss)] = skin
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    if rng is not None:
        out = np.clip(out + rng.normal(0, 2.0, out.shape), 0, 255).astype(np.uint8)
    return out


def faces_table(rows: list[tuple[str, int, int, str, SynthFace]]) -> pd.DataFrame:
    """A faces table (docs/pipeline.md) for (frame_id, frame, shot, character, face) rows, with true contour."""
    recs = []
    for k, (frame_id, frame, shot, character, f) in enumerate(rows):
        rec = {"face_id": f"{frame_id}_f{k}", "frame_id": frame_id, "video": "synth.mp4", "frame": frame,
               "shot": shot, "character": character, "box_x0": f.box[0], "box_y0": f.box[1],
               "box_x1": f.box[2], "box_y1": f.box[3], "det_score": 1.0, "lmk_score": 1.0}
        for i in range(28):
            rec[f"p{i:02d}_x"], rec[f"p{i:02d}_y"], rec[f"p{i:02d}_s"] = f.p28[i, 0], f.p28[i, 1], 1.0
        rec.update({k2: v[0] for k2, v in points_to_table(f.truth17[None], "c").items()})
        recs.append(rec)
    return pd.DataFrame(recs)
