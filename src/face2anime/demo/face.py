"""One character in one frame: the drawing (ordered primitives) and its exact ground truth.

The geometry is built in face-local units (`geometry.Pose` explains them) and mapped to frame pixels;
hysts' 28 points are taken from the same polylines the drawing fills and strokes, the true contour from
the drawn outline (see `contour.py`), and a point is marked hidden when the character's front hair
covers it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from face2anime.demo.character import Character, shade
from face2anime.demo.contour import point_at, true_contour17
from face2anime.demo.geometry import Pose, ellipse_arc, points_in_polygon, quad_through, ribbon, taper

RGB = tuple[int, int, int]


# ---------------------------------------------------------------- drawing primitives (frame pixels)
@dataclass(frozen=True)
class Fill:
    poly: np.ndarray
    color: RGB


@dataclass(frozen=True)
class Line:
    pts: np.ndarray
    color: RGB
    width: float
    closed: bool = False


@dataclass(frozen=True)
class Soft:
    """A blurred, semi-transparent blob (blush, shading)."""

    poly: np.ndarray
    color: RGB
    alpha: float
    blur: float


@dataclass(frozen=True)
class Clip:
    """Primitives drawn only inside `poly` (the iris inside the eye white)."""

    poly: np.ndarray
    items: list = field(default_factory=list)


@dataclass(frozen=True)
class FaceState:
    """What changes from frame to frame: where the head is, blinking, talking, gaze."""

    pose: Pose
    eye_open: float = 1.0
    mouth_open: float = 0.0
    gaze: float = 0.0


@dataclass
class FaceFrame:
    """A character in one frame: drawing primitives and ground truth, all in frame pixels."""

    items: list
    points28: np.ndarray
    visible: np.ndarray
    contour17: np.ndarray
    outline: np.ndarray
    arc: np.ndarray
    anchors: list[float]
    box: np.ndarray
    occluders: list[np.ndarray]
    front_hair: list[np.ndarray]


# ---------------------------------------------------------------- face-local geometry
def lower_arc(ch: Character, n_half: int = 121) -> tuple[np.ndarray, list[float]]:
    """Lower face outline from hysts' point 0 (image-left, eye height) via the chin to point 4.

    Returns the polyline and the vertex indices of points 0..4 (cheek points at mouth height).
    """
    v = np.linspace(0.0, 1.0, n_half)
    u = 1.0 - (1.0 - v) ** 2  # denser near the chin, where the side turns fastest
    u_cheek = ch.mouth_f
    u = np.unique(np.append(u, u_cheek))
    x = -((1.0 - u**ch.jaw_p) ** (1.0 / ch.jaw_q))
    x[-1] = 0.0
    left = np.stack([x, ch.chin * u], axis=1)
    right = left[::-1][1:] * np.array([-1.0, 1.0])
    arc = np.concatenate([left, right], axis=0)
    i_cheek = int(np.flatnonzero(u == u_cheek)[0])
    i_chin = len(left) - 1
    anchors = [0.0, float(i_cheek), float(i_chin), float(len(arc) - 1 - i_cheek), float(len(arc) - 1)]
    return arc, anchors


def upper_outline(ch: Character, n: int = 61) -> np.ndarray:
    """Forehead and temples from image-right (1, 0) over the top to (-1, 0), both ends excluded."""
    a = np.linspace(0.0, np.pi, n)[1:-1]
    m = 2.3
    c, s = np.cos(a), np.sin(a)
    x = np.sign(c) * np.abs(c) ** (2 / m)
    y = -ch.forehead * np.abs(s) ** (2 / m)
    return np.stack([x, y], axis=1)


def _eye(ch: Character, side: int, openness: float, gaze: float) -> dict[str, np.ndarray]:
    """One eye in face-local units; side -1 = image-left. Curves run outer -> inner."""
    ew, eh = ch.eye_w, ch.eye_h
    o = float(np.clip(openness, 0.0, 1.0))

    def to_face(uv):
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([side * (ch.eye_x + uv[..., 0]), uv[..., 1]], axis=-1)

    outer = (ew / 2, -ch.eye_tilt - 0.08 * eh)
    inner = (-ew / 2, 0.06 * eh + 0.3 * ch.eye_tilt)
    top_open, top_closed = np.array([0.08 * ew, -eh / 2]), np.array([0.0, 0.3 * eh])
    top = top_closed + o * (top_open - top_closed)
    upper = to_face(quad_through(outer, top, inner))
    low_o, low_m, low_i = (0.33 * ew, 0.45 * eh), (0.0, eh / 2), (-0.3 * ew, 0.42 * eh)
    lower = to_face(quad_through(low_o, low_m, low_i))
    white = np.concatenate([upper, lower[::-1]], axis=0)
    wing = to_face([(ew / 2 - 0.02, -ch.eye_tilt - 0.08 * eh - ch.lash_w * 0.5),
                    (ew / 2 + 0.1, -ch.eye_tilt - 0.16 * eh),
                    (ew / 2 - 0.01, -ch.eye_tilt - 0.08 * eh + ch.lash_w * 0.6)])
    iris_c = np.array([0.08 * gaze * ew, 0.06 * eh])
    irx, iry = ch.iris_w * ew / 2, 0.56 * eh
    parts = {
        "upper": upper,
        "lower": lower,
        "white": white,
        "wing": wing,
        "iris": to_face(ellipse_arc(iris_c, irx, iry, 0, 2 * np.pi, 48)),
        "iris_low": to_face(ellipse_arc(iris_c + (0, 0.18 * iry), 0.8 * irx, 0.7 * iry, 0, 2 * np.pi, 40)),
        "pupil": to_face(ellipse_arc(iris_c + (0, 0.02 * iry), 0.42 * irx, 0.5 * iry, 0, 2 * np.pi, 32)),
        "shine": to_face(ellipse_arc(iris_c + (0.35 * irx, -0.4 * iry), 0.3 * irx, 0.24 * iry, 0, 2 * np.pi, 24)),
        "shine2": to_face(ellipse_arc(iris_c + (-0.35 * irx, 0.45 * iry), 0.13 * irx, 0.1 * iry, 0, 2 * np.pi, 16)),
        "lid_shadow": upper,
        "crease": to_face(quad_through((ew / 2 - 0.04, -ch.eye_tilt - 0.2 * eh),
                                       (0.06 * ew, -eh / 2 - 0.07),
                                       (-ew / 2 + 0.08, -0.25 * eh))),
    }
    return parts


def _brow(ch: Character, side: int) -> np.ndarray:
    ew = ch.eye_w
    outer = (ew / 2 * ch.brow_len + 0.04, ch.brow_y + ch.brow_tilt)
    mid = (0.05 * ew, ch.brow_y - ch.brow_arch)
    inner = (-ew / 2 * ch.brow_len, ch.brow_y - ch.brow_tilt)
    uv = quad_through(outer, mid, inner)
    return np.stack([side * (ch.eye_x + uv[:, 0]), uv[:, 1]], axis=1)


def _mouth(ch: Character, openness: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lip curves, both left corner -> right corner."""
    my = ch.mouth_f * ch.chin
    a = float(np.clip(openness, 0.0, 1.0))
    left, right = (-ch.mouth_w, my), (ch.mouth_w, my)
    up = (0.0, my + ch.smile * (1 - a) - 0.03 * a)
    low = (0.0, my + ch.smile * (1 - a) + a * ch.mouth_open_h)
    return quad_through(left, up, right), quad_through(left, low, right)


def _front_hair(ch: Character) -> list[np.ndarray]:
    """Cap with bangs, plus side locks: the hair drawn over the face."""
    rx = ch.hair_volume
    c0 = -0.1
    ry = ch.forehead + ch.hair_top + c0
    y_t = -0.12
    s_t = (y_t - c0) / ry
    a_left, a_right = np.pi - np.arcsin(s_t), 2 * np.pi + np.arcsin(s_t)
    cap = ellipse_arc((0.0, c0), rx, ry, a_left, a_right, 61)  # left temple over the top to right temple
    n = len(ch.bang_tips)
    xs = np.linspace(0.9 * rx, -0.9 * rx, n)
    tips_y = ch.bang_len + np.asarray(ch.bang_tips) + 0.3 * (np.abs(xs) / rx) ** 4
    tips = np.stack([xs + ch.bang_sweep * 0.4, tips_y], axis=1)
    edge = [cap[-1]]
    for k in range(n):
        edge.append(tips[k])
        if k < n - 1:
            xn = (xs[k] + xs[k + 1]) / 2
            cap_y = c0 - ry * np.sqrt(max(0.0, 1 - (xn / rx) ** 2))
            yn = max(min(tips_y[k], tips_y[k + 1]) - ch.bang_depth[k], cap_y + 0.2)
            edge.append(np.array([xn, yn]))
    edge.append(cap[0])
    curve = [edge[0][None]]
    for p, q in zip(edge[:-1], edge[1:], strict=True):
        bend = np.array([ch.bang_sweep * 0.5 * abs(q[1] - p[1]) + 0.03 * np.sign(q[0] - p[0]), 0.0])
        curve.append(quad_through(p, (p + q) / 2 + bend, q, 9)[1:])
    hair = [np.concatenate([cap] + curve[1:-1] + [curve[-1][:-1]], axis=0)]
    if ch.sidelocks:
        for side in (-1, 1):
            root_o, root_i = np.array([max(rx, ch.side_in + 0.2), -0.25]), np.array([ch.side_in, -0.32])
            tip = np.array([ch.side_in + 0.16, ch.side_len])
            outer = quad_through(root_o, (root_o + tip) / 2 + (0.07, 0), tip, 15)
            inner = quad_through(tip, (tip + root_i) / 2 + (0.03, 0), root_i, 15)[1:]
            lock = np.concatenate([outer, inner], axis=0)
            hair.append(lock * np.array([side, 1.0]))
    return hair


def _back_hair(ch: Character) -> list[np.ndarray]:
    rx = ch.hair_volume * 1.03
    c0 = -0.1
    ry = (ch.forehead + ch.hair_top + c0) * 1.02
    top = ellipse_arc((0.0, c0), rx, ry, np.pi, 2 * np.pi, 41)  # left over the top to right
    if ch.hair_style in ("short", "twintails"):
        right = [(rx * 1.0, 0.3), (rx * 0.92, 0.62), (0.5, 0.75)]
    elif ch.hair_style == "bob":
        L = ch.hair_len
        right = [(rx * 1.06, 0.5), (rx * 1.04, L - 0.1), (rx * 0.98, L), (rx * 0.8, L - 0.14),
                 (rx * 0.66, L - 0.02), (0.45, L - 0.25)]
    else:  # long
        L = ch.hair_len
        right = [(rx * 1.12, 0.5), (rx * 1.3, L * 0.6), (rx * 1.38, L), (rx * 1.1, L - 0.2),
                 (rx * 0.9, L + 0.05), (rx * 0.6, L - 0.15), (0.3, L)]
    right = np.asarray(right, dtype=np.float64)
    left = (right * np.array([-1.0, 1.0]))[::-1]
    polys = [np.concatenate([left, top, right], axis=0)]
    if ch.hair_style == "twintails":
        for side in (-1, 1):
            root_o = np.array([rx * 0.8, -ch.forehead * 0.85])
            root_i = np.array([rx * 0.98, -ch.forehead * 0.35])
            tip = np.array([rx + 0.55, ch.hair_len])
            outer = quad_through(root_o, (root_o + tip) / 2 + (0.75, -0.2), tip, 21)
            inner = quad_through(tip, (tip + root_i) / 2 + (0.35, 0.0), root_i, 21)[1:]
            polys.append(np.concatenate([outer, inner], axis=0) * np.array([side, 1.0]))
    return polys


def _body(ch: Character) -> dict[str, np.ndarray]:
    nw, c, sw = 0.34, ch.chin, ch.shoulders
    neck = np.array([(-nw, 0.3 * c), (nw, 0.3 * c), (nw, c + 0.6), (-nw, c + 0.6)])
    right = quad_through((nw, c + 0.32), (sw * 0.6, c + 0.5), (sw, c + 0.95), 15)
    torso = np.concatenate([right, [(sw + 0.3, c + 12.0), (-sw - 0.3, c + 12.0)],
                            (right * np.array([-1.0, 1.0]))[::-1]], axis=0)
    v_neck = np.array([(-nw - 0.02, c + 0.32), (nw + 0.02, c + 0.32), (0.0, c + 0.8)])
    collar_r = np.array([(nw + 0.02, c + 0.32), (0.0, c + 0.8), (0.1, c + 1.05), (sw * 0.55, c + 0.55)])
    return {"neck": neck, "torso": torso, "v_neck": v_neck, "collar_r": collar_r,
            "collar_l": collar_r * np.array([-1.0, 1.0])}


# ---------------------------------------------------------------- the frame
@functools.lru_cache(maxsize=64)
def _static(ch: Character) -> dict:
    """The parts of a character that do not move relative to its head (face-local units)."""
    arc, anchors = lower_arc(ch)
    return {
        "arc": arc,
        "anchors": anchors,
        "outline": np.concatenate([arc, upper_outline(ch)], axis=0),
        "brows": {side: _brow(ch, side) for side in (-1, 1)},
        "front": _front_hair(ch),
        "back": _back_hair(ch),
        "body": _body(ch),
    }


LASH: RGB = (40, 28, 36)


@dataclass(frozen=True)
class PlacedFace:
    """A character's parts for one frame, mapped to frame pixels (what `build_face` draws and measures)."""

    arc: np.ndarray
    anchors: list[float]
    outline: np.ndarray
    eyes: dict[int, dict[str, np.ndarray]]
    brows: dict[int, np.ndarray]
    upper_lip: np.ndarray
    lower_lip: np.ndarray
    nose_tip: np.ndarray
    front: list[np.ndarray]
    back: list[np.ndarray]
    body: dict[str, np.ndarray]


def _body_transform(pose: Pose, chin: float) -> Callable[[np.ndarray], np.ndarray]:
    """The body turns less than the head: it pivots at the neck's base (face-local -> frame pixels)."""
    nb = chin + 0.45
    base = pose.apply(np.array([[0.0, nb]]))[0]
    body_roll = 0.3 * pose.roll_deg
    turn = Pose(0.0, 0.0, pose.scale, body_roll).apply(np.array([[0.0, nb]]))[0]
    return Pose(base[0] - turn[0], base[1] - turn[1], pose.scale, body_roll).apply


def _place(ch: Character, state: FaceState) -> PlacedFace:
    """Every part of `ch` in the pose and expression `state`, in frame pixels."""
    P = state.pose.apply
    st = _static(ch)
    eyes = {side: {k: P(v) for k, v in _eye(ch, side, state.eye_open, state.gaze).items()} for side in (-1, 1)}
    upper_lip, lower_lip = (P(c) for c in _mouth(ch, state.mouth_open))
    Pb = _body_transform(state.pose, ch.chin)
    body = {k: Pb(v) for k, v in st["body"].items()}
    neck_l = st["body"]["neck"]
    body["neck"] = np.concatenate([P(neck_l[:2]), Pb(neck_l[2:])], axis=0)  # the neck joins head and body
    return PlacedFace(
        arc=P(st["arc"]), anchors=st["anchors"], outline=P(st["outline"]), eyes=eyes,
        brows={side: P(st["brows"][side]) for side in (-1, 1)}, upper_lip=upper_lip, lower_lip=lower_lip,
        nose_tip=P(np.array([[0.0, ch.nose_f * ch.chin]]))[0], front=[P(h) for h in st["front"]],
        back=[P(h) for h in st["back"]], body=body,
    )


def _draw_back(ch: Character, f: PlacedFace, state: FaceState) -> list:
    """Back hair, neck and clothes, the face with its outline, blush."""
    P, s, skin = state.pose.apply, state.pose.scale, ch.skin
    skin_line = shade(skin, 0.5)
    hair_line = shade(ch.hair, 0.45)
    body = f.body
    items: list = []
    for h in f.back:
        items += [Fill(h, shade(ch.hair, 0.78)), Line(h, hair_line, max(0.8, ch.line_w * s), True)]
    items += [Fill(body["neck"], shade(skin, 0.86)), Fill(body["torso"], ch.clothes),
              Fill(body["v_neck"], shade(skin, 0.86)),
              Fill(body["collar_r"], shade(ch.clothes, 1.6)), Fill(body["collar_l"], shade(ch.clothes, 1.6)),
              Line(body["torso"], shade(ch.clothes, 0.45), max(0.8, ch.line_w * s), True),
              Line(body["collar_r"], shade(ch.clothes, 0.45), max(0.6, 0.6 * ch.line_w * s), True),
              Line(body["collar_l"], shade(ch.clothes, 0.45), max(0.6, 0.6 * ch.line_w * s), True),
              Line(body["neck"][1:3], skin_line, max(0.6, 0.6 * ch.line_w * s)),
              Line(body["neck"][[0, 3]], skin_line, max(0.6, 0.6 * ch.line_w * s))]
    items += [Fill(f.outline, skin), Line(f.outline, skin_line, max(0.7, ch.line_w * s), True)]
    if ch.blush > 0:
        for side in (-1, 1):
            c = (side * (ch.eye_x + 0.04), ch.eye_h / 2 + 0.2)
            blob = P(ellipse_arc(c, 0.2, 0.075, 0, 2 * np.pi, 32))
            items.append(Soft(blob, (255, 110, 130), ch.blush, 0.05 * s))
    return items


def _draw_eye(ch: Character, state: FaceState, e: dict[str, np.ndarray], brow: np.ndarray) -> list:
    """One eye (white, iris, lashes, crease) and its brow."""
    s = state.pose.scale
    n = len(e["upper"])
    items: list = []
    if state.eye_open > 0.15:
        iris_dark, iris_light = shade(ch.iris, 0.45), shade(ch.iris, 1.45)
        items.append(Clip(e["white"], [
            Fill(e["white"], (252, 252, 255)),
            Fill(e["iris"], iris_dark),
            Fill(e["iris_low"], ch.iris),
            Fill(e["pupil"], shade(ch.iris, 0.22)),
            Line(e["lid_shadow"], (150, 150, 185), 0.22 * ch.eye_h * s),
            Fill(e["shine"], (255, 255, 255)),
            Fill(e["shine2"], iris_light),
            Line(e["iris"], shade(ch.iris, 0.3), max(0.5, 0.25 * ch.line_w * s), True),
        ]))
    items.append(Fill(ribbon(e["lower"], 0.35 * ch.lash_w * s * taper(n, 0.2, 0.6, 0.15)), LASH))
    items.append(Fill(ribbon(e["upper"], ch.lash_w * s * (1 - 0.55 * np.linspace(0, 1, n))
                             * taper(n, 0.04, 0.15, 0.5)), LASH))
    items.append(Fill(e["wing"], LASH))
    if ch.double_lid and state.eye_open > 0.5:
        items.append(Fill(ribbon(e["crease"], 0.22 * ch.lash_w * s * taper(len(e["crease"]), 0.3, 0.3, 0.1)),
                          shade(ch.skin, 0.55)))
    items.append(Fill(ribbon(brow, ch.brow_w * s * taper(len(brow), 0.3, 0.5, 0.3)), shade(ch.hair, 0.5)))
    return items


def _draw_nose_mouth(ch: Character, f: PlacedFace, state: FaceState) -> list:
    """The nose line and the mouth (a line when closed; lips, inside and tongue when open)."""
    P, s = state.pose.apply, state.pose.scale
    my, ny = ch.mouth_f * ch.chin, ch.nose_f * ch.chin
    nose_line = {0: [(-0.035, ny - 0.1), (0.0, ny)], 1: [(-0.05, ny - 0.02), (0.0, ny)],
                 2: [(0.03, ny - 0.06), (0.0, ny)]}[ch.nose_style]
    items: list = [Line(P(np.array(nose_line)), shade(ch.skin, 0.45), max(0.7, 0.6 * ch.line_w * s))]
    if state.mouth_open > 0.05:
        mouth = np.concatenate([f.upper_lip, f.lower_lip[::-1]], axis=0)
        tongue = P(ellipse_arc((0.0, my + state.mouth_open * ch.mouth_open_h * 0.85), ch.mouth_w * 0.6,
                               state.mouth_open * ch.mouth_open_h * 0.45, 0, 2 * np.pi, 24))
        items += [Clip(mouth, [Fill(mouth, (130, 40, 55)), Fill(tongue, (230, 120, 125))]),
                  Line(mouth, (90, 30, 40), max(0.7, 0.7 * ch.line_w * s), True)]
    else:
        items.append(Line(f.upper_lip, (90, 30, 40), max(0.8, 0.8 * ch.line_w * s)))
    return items


def _draw_front_hair(ch: Character, f: PlacedFace, state: FaceState) -> list:
    """The hair over the face: fills, the "angel ring" highlight, outlines."""
    P, s = state.pose.apply, state.pose.scale
    items: list = [Fill(h, ch.hair) for h in f.front]
    rx, ry = ch.hair_volume * 0.8, (ch.forehead + ch.hair_top - 0.1) * 0.86
    band = np.concatenate([ellipse_arc((0, -0.1), rx, ry, 1.2 * np.pi, 1.8 * np.pi, 25),
                           ellipse_arc((0, -0.1), rx * 0.9, ry * 0.82, 1.75 * np.pi, 1.25 * np.pi, 25)])
    items.append(Clip(f.front[0], [Fill(P(band), shade(ch.hair, 1.35))]))
    items += [Line(h, shade(ch.hair, 0.45), max(0.8, ch.line_w * s), True) for h in f.front]
    return items


def _points28(f: PlacedFace) -> tuple[np.ndarray, np.ndarray]:
    """hysts' 28 points, taken from the drawn curves, and which of them the front hair leaves visible."""
    n = len(f.eyes[-1]["upper"]) // 2
    L, R, bl, br = f.eyes[-1], f.eyes[1], f.brows[-1], f.brows[1]
    pts = np.stack(
        [point_at(f.arc, t) for t in f.anchors]
        + [bl[0], bl[n], bl[-1], br[-1], br[n], br[0]]
        + [L["upper"][0], L["upper"][n], L["upper"][-1], L["lower"][0], L["lower"][n], L["lower"][-1]]
        + [R["upper"][-1], R["upper"][n], R["upper"][0], R["lower"][-1], R["lower"][n], R["lower"][0]]
        + [f.nose_tip, f.upper_lip[0], f.upper_lip[n], f.upper_lip[-1], f.lower_lip[n]]
    )
    hidden = np.zeros(len(pts), dtype=bool)
    for h in f.front:
        hidden |= points_in_polygon(pts, h) >= -0.5
    return pts, ~hidden


def build_face(ch: Character, state: FaceState) -> FaceFrame:
    """Drawing primitives (back to front) and ground truth for `ch` in the pose and expression `state`."""
    f = _place(ch, state)
    items = _draw_back(ch, f, state)
    for side in (-1, 1):
        items += _draw_eye(ch, state, f.eyes[side], f.brows[side])
    items += _draw_nose_mouth(ch, f, state) + _draw_front_hair(ch, f, state)
    pts, visible = _points28(f)
    box = np.concatenate([f.outline.min(axis=0), f.outline.max(axis=0)])
    return FaceFrame(
        items=items, points28=pts, visible=visible, contour17=true_contour17(f.arc, f.anchors), outline=f.outline,
        arc=f.arc, anchors=f.anchors, box=box, occluders=f.back + f.front + [f.body["torso"], f.body["neck"]],
        front_hair=f.front,
    )
