"""The synthetic episode: a seeded plan of shots, then frame-by-frame rendering with exact ground truth.

A shot has a backdrop, a camera move (static, pan, zoom, or both) and 0-3 characters, each with its own
drift, scale change, head roll, blinks and (when talking) mouth movement. Every shot is checked before it
is rendered: each face box stays inside the frame in every frame and no character covers another one's
face, so every ground-truth point is on screen and a hidden point is hidden by the character's own hair.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from face2anime.demo.background import KINDS, render_background
from face2anime.demo.character import Character, sample_character
from face2anime.demo.draw import Canvas, downscale, render
from face2anime.demo.face import FaceFrame, FaceState, build_face
from face2anime.demo.geometry import Pose, points_in_polygon
from face2anime.errors import UserError
from face2anime.landmarks.schema import HYSTS28, table_columns
from face2anime.params import MakeDemoParams

_BLINK = (0.55, 0.1, 0.0, 0.35, 0.75)  # eye openness over the frames of one blink
_CAMERAS = ("static", "pan", "zoom_in", "zoom_out", "pan_zoom")


@dataclass
class Actor:
    """A character's performance in one shot, in world pixels (the camera maps world to frame)."""

    character: Character
    x: float
    y: float
    vx: float
    vy: float
    scale: float
    grow: float
    roll: float
    roll_amp: float
    roll_freq: float
    roll_phase: float
    gaze: float
    eye_open: np.ndarray
    mouth_open: np.ndarray

    def state(self, k: int, fps: int, n: int) -> FaceState:
        t = k / fps
        u = k / max(1, n - 1)
        roll = self.roll + self.roll_amp * np.sin(2 * np.pi * self.roll_freq * t + self.roll_phase)
        bob = 0.03 * self.scale * np.sin(2 * np.pi * 0.7 * t + self.roll_phase)
        pose = Pose(self.x + self.vx * t, self.y + self.vy * t + bob, self.scale * (1 + self.grow * u), float(roll))
        return FaceState(pose, float(self.eye_open[k]), float(self.mouth_open[k]), self.gaze)


@dataclass
class Shot:
    index: int
    start: int
    length: int
    background: str
    camera: tuple[np.ndarray, np.ndarray, float, float]  # centre at start, centre at end, zoom at start, at end
    actors: list[Actor] = field(default_factory=list)
    faces: list[list[FaceFrame]] = field(default_factory=list)  # [frame][actor], back to front

    def view(self, k: int) -> tuple[np.ndarray, float]:
        u = k / max(1, self.length - 1)
        e = u * u * (3 - 2 * u)  # ease in and out
        c0, c1, z0, z1 = self.camera
        return c0 + (c1 - c0) * e, z0 + (z1 - z0) * e


def _world(cfg: MakeDemoParams) -> tuple[int, int]:
    return int(round(cfg.width * (1 + cfg.world_margin))), int(round(cfg.height * (1 + cfg.world_margin)))


def to_frame(state: FaceState, centre: np.ndarray, zoom: float, cfg: MakeDemoParams) -> FaceState:
    """World pose -> frame pose for a camera looking at `centre` with `zoom`."""
    p = state.pose
    x = (p.x - centre[0]) * zoom + cfg.width / 2
    y = (p.y - centre[1]) * zoom + cfg.height / 2
    return FaceState(Pose(x, y, p.scale * zoom, p.roll_deg), state.eye_open, state.mouth_open, state.gaze)


def _camera(rng: np.random.Generator, cfg: MakeDemoParams) -> tuple[np.ndarray, np.ndarray, float, float]:
    ww, wh = _world(cfg)
    kind = _CAMERAS[rng.integers(len(_CAMERAS))]
    zlo, zhi = 1.0, cfg.max_zoom
    z0 = z1 = rng.uniform(zlo, zlo + 0.4 * (zhi - zlo))
    if kind in ("zoom_in", "pan_zoom"):
        z0, z1 = rng.uniform(zlo, zlo + 0.3 * (zhi - zlo)), rng.uniform(zlo + 0.6 * (zhi - zlo), zhi)
    elif kind == "zoom_out":
        z0, z1 = rng.uniform(zlo + 0.6 * (zhi - zlo), zhi), rng.uniform(zlo, zlo + 0.3 * (zhi - zlo))

    def centre(z: float) -> np.ndarray:
        hx, hy = (ww - cfg.width / z) / 2, (wh - cfg.height / z) / 2
        return np.array([ww / 2 + rng.uniform(-hx, hx), wh / 2 + rng.uniform(-hy, hy)])

    c0 = centre(z0)
    c1 = c0.copy()
    if kind in ("pan", "pan_zoom"):  # a short pan, so that the characters stay in view
        hx, hy = (ww - cfg.width / z1) / 2, (wh - cfg.height / z1) / 2
        step = rng.uniform(0.08, 0.22) * cfg.width / z1 * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)),
                                                                    0.5 * np.sin(a)])
        c1 = np.clip(c0 + step, [ww / 2 - hx, wh / 2 - hy], [ww / 2 + hx, wh / 2 + hy])
    if kind in ("zoom_in", "zoom_out"):  # keep the view inside the world at both zooms
        hx, hy = (ww - cfg.width / min(z0, z1)) / 2, (wh - cfg.height / min(z0, z1)) / 2
        c0 = np.clip(c0, [ww / 2 - hx, wh / 2 - hy], [ww / 2 + hx, wh / 2 + hy])
        c1 = c0.copy()
    return c0, c1, float(z0), float(z1)


def _tracks(rng: np.random.Generator, cfg: MakeDemoParams, n: int, talking: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame eye openness (blinks) and mouth openness (syllables every few frames when talking)."""
    eyes = np.ones(n)
    k = int(rng.uniform(0.0, cfg.blink_every_s[1]) * cfg.fps)
    while k < n:
        for j, v in enumerate(_BLINK):
            if k + j < n:
                eyes[k + j] = v
        k += int(rng.uniform(*cfg.blink_every_s) * cfg.fps)
    mouth = np.zeros(n)
    if talking:
        step = max(2, int(round(cfg.fps / 8)))
        keys = rng.choice([0.0, 0.3, 0.6, 0.85, 1.0], size=n // step + 2, p=[0.3, 0.2, 0.2, 0.15, 0.15])
        mouth = np.interp(np.arange(n), np.arange(len(keys)) * step, keys)
    return eyes, mouth


def _face_heights(n_chars: int, cfg: MakeDemoParams) -> tuple[float, float]:
    lo, hi = cfg.face_height_px
    share = {1: (0.35, 0.95), 2: (0.15, 0.6), 3: (0.0, 0.35)}[n_chars]
    return lo + share[0] * (hi - lo), lo + share[1] * (hi - lo)


def _actors(rng: np.random.Generator, cfg: MakeDemoParams, shot: Shot, cast: list[Character], shrink: float) -> list[Actor]:
    c0, c1, z0, z1 = shot.camera
    zmax, zmin = max(z0, z1), min(z0, z1)
    # the world region seen at both ends of the shot
    half = np.array([cfg.width, cfg.height]) / (2 * zmax)
    lo = np.maximum(c0 - half, c1 - half)
    hi = np.minimum(c0 + half, c1 + half)
    n = len(cast)
    hlo, hhi = _face_heights(n, cfg)
    slots = rng.permutation(n)
    actors = []
    z_ref = np.sqrt(zmin * zmax)
    for j, ch in enumerate(cast):
        height_px = max(rng.uniform(hlo, hhi) * shrink, cfg.face_height_px[0] / 0.9)
        scale = height_px / z_ref / (ch.forehead + ch.chin)
        x = lo[0] + (hi[0] - lo[0]) * (slots[j] + 0.5 + rng.uniform(-0.2, 0.2)) / n
        y = lo[1] + (hi[1] - lo[1]) * rng.uniform(0.3, 0.55)
        roll = float(np.clip(rng.normal(0.0, 8.0), -0.8 * cfg.max_roll_deg, 0.8 * cfg.max_roll_deg))
        amp = min(rng.uniform(0.0, 6.0), cfg.max_roll_deg - abs(roll))
        eyes, mouth = _tracks(rng, cfg, shot.length, rng.random() < cfg.talk_share)
        actors.append(Actor(
            character=ch, x=x, y=y,
            vx=rng.uniform(-0.4, 0.4) * scale, vy=rng.uniform(-0.15, 0.15) * scale,
            scale=scale, grow=rng.uniform(-0.06, 0.06),
            roll=roll, roll_amp=amp, roll_freq=rng.uniform(0.2, 0.8), roll_phase=rng.uniform(0, 2 * np.pi),
            gaze=rng.uniform(-1, 1), eye_open=eyes, mouth_open=mouth,
        ))
    actors.sort(key=lambda a: a.scale)  # the smaller (farther) ones are drawn first
    return actors


def _frame_ok(faces: list[FaceFrame], cfg: MakeDemoParams) -> bool:
    m = cfg.frame_margin_px
    lo, hi = cfg.face_height_px
    for f in faces:
        x0, y0, x1, y1 = f.box
        if x0 < m or y0 < m or x1 > cfg.width - 1 - m or y1 > cfg.height - 1 - m:
            return False
        if not 0.93 * lo <= y1 - y0 <= 1.04 * hi:
            return False
    for i, fi in enumerate(faces):  # nothing drawn later may cover an earlier face
        probe = np.concatenate([fi.outline[::4], fi.points28, fi.contour17], axis=0)
        for fj in faces[i + 1:]:
            for poly in fj.occluders:
                px0, py0 = poly.min(axis=0) - 3
                px1, py1 = poly.max(axis=0) + 3
                near = (probe[:, 0] > px0) & (probe[:, 0] < px1) & (probe[:, 1] > py0) & (probe[:, 1] < py1)
                if near.any() and (points_in_polygon(probe[near], poly) > -3.0).any():
                    return False
    return True


def _stage_shot(shot: Shot, actors: list[Actor], cfg: MakeDemoParams) -> list[list[FaceFrame]] | None:
    """Faces of every frame in frame pixels, or None when a frame breaks the rules (checked ends first)."""
    order = [0, shot.length - 1, shot.length // 2] + list(range(1, shot.length - 1))
    faces: dict[int, list[FaceFrame]] = {}
    for k in dict.fromkeys(order):
        centre, zoom = shot.view(k)
        fk = [build_face(a.character, to_frame(a.state(k, cfg.fps, shot.length), centre, zoom, cfg)) for a in actors]
        if not _frame_ok(fk, cfg):
            return None
        faces[k] = fk
    return [faces[k] for k in range(shot.length)]


def plan_episode(cfg: MakeDemoParams) -> list[Shot]:
    """All shots, staged (holds every frame's faces in memory: for tests and short clips)."""
    return list(iter_shots(cfg))


def iter_shots(cfg: MakeDemoParams) -> Iterator[Shot]:
    """Shots one by one, each with its cast checked and staged (faces computed for every frame)."""
    rng = np.random.default_rng([cfg.seed, 0])
    lengths: list[int] = []
    lo, hi = (max(1, int(round(s * cfg.fps))) for s in cfg.shot_len_s)
    while sum(lengths) < cfg.n_frames:
        lengths.append(int(rng.integers(lo, hi + 1)))
    lengths[-1] -= sum(lengths) - cfg.n_frames
    if len(lengths) > 1 and lengths[-1] < lo:
        tail = lengths.pop()
        lengths[-1] += tail
    n_empty = int(round(cfg.empty_shot_share * len(lengths)))
    empty = set(rng.choice(np.arange(1, len(lengths)), size=min(n_empty, len(lengths) - 1), replace=False).tolist())
    # how many characters each shot with faces gets: a fixed mix (about 45 % one, 35 % two, 20 % three)
    face_shots = [i for i in range(len(lengths)) if i not in empty]
    mix = np.array([0.45, 0.35, 0.2][: cfg.max_characters])
    counts = np.floor(mix / mix.sum() * len(face_shots) + 0.5).astype(int)
    counts[0] += len(face_shots) - counts.sum()
    cast_sizes = dict(zip(face_shots, rng.permutation(np.repeat(np.arange(1, len(mix) + 1), counts)).tolist(),
                          strict=True))
    everyone: list[Character] = []
    start = 0
    for i, n_frames in enumerate(lengths):
        srng = np.random.default_rng([cfg.seed, 1, i])
        shot = Shot(i, start, n_frames, KINDS[srng.integers(len(KINDS))], _camera(srng, cfg))
        start += n_frames
        if i in empty:
            yield shot
            continue
        cast: list[Character] = []
        for _ in range(cast_sizes[i]):
            old = [c for c in everyone if c not in cast]
            if old and srng.random() < cfg.recurring_share:
                cast.append(old[srng.integers(len(old))])
            else:
                ch = sample_character(np.random.default_rng([cfg.seed, 2, len(everyone)]), f"c{len(everyone):03d}")
                everyone.append(ch)
                cast.append(ch)
        while cast:
            for attempt in range(12):
                actors = _actors(srng, cfg, shot, cast, 0.95**attempt)
                staged = _stage_shot(shot, actors, cfg)
                if staged is not None:
                    shot.actors, shot.faces = actors, staged
                    break
            if shot.actors:
                break
            cast = cast[:-1]  # too crowded for this camera: one character fewer
        yield shot


ID_COLUMNS = ["video", "frame", "shot", "character", "box_x0", "box_y0", "box_x1", "box_y1"]
TRUTH_COLUMNS = ID_COLUMNS + table_columns("p", HYSTS28.n, with_visibility=True) + table_columns("c", 17)


def truth_table(shot: Shot, video: str) -> pd.DataFrame:
    """One ground-truth row per face per frame of a staged shot (docs/pipeline.md's truth table)."""
    faces = [(k, a, f) for k, fs in enumerate(shot.faces) for a, f in zip(shot.actors, fs, strict=True)]
    if not faces:
        return pd.DataFrame(columns=TRUTH_COLUMNS)
    n = len(faces)
    pts = np.stack([f.points28 for _, _, f in faces])
    vis = np.stack([f.visible for _, _, f in faces]).astype(np.float64)
    p_vals = np.concatenate([pts, vis[..., None]], axis=2).reshape(n, -1)
    c_vals = np.stack([f.contour17 for _, _, f in faces]).reshape(n, -1)
    df = pd.DataFrame(np.concatenate([p_vals, c_vals], axis=1),
                      columns=table_columns("p", HYSTS28.n, True) + table_columns("c", 17))
    for j in range(HYSTS28.n):
        df[f"p{j:02d}_v"] = df[f"p{j:02d}_v"].astype(np.int64)
    boxes = np.stack([f.box for _, _, f in faces])
    ids = pd.DataFrame({
        "video": video, "frame": [shot.start + k for k, _, _ in faces], "shot": shot.index,
        "character": [a.character.cid for _, a, _ in faces],
        "box_x0": boxes[:, 0], "box_y0": boxes[:, 1], "box_x1": boxes[:, 2], "box_y1": boxes[:, 3],
    })
    return pd.concat([ids, df], axis=1)[TRUTH_COLUMNS]


def render_shot(shot: Shot, cfg: MakeDemoParams) -> Iterator[np.ndarray]:
    """RGB frames of one staged shot."""
    ss = cfg.supersample
    ww, wh = _world(cfg)
    bg = render_background(shot.background, np.random.default_rng([cfg.seed, 3, shot.index]), ww, wh, ss)
    canvas = np.empty((cfg.height * ss, cfg.width * ss, 3), np.uint8)
    for k in range(shot.length):
        (cx, cy), z = shot.view(k)
        # world pixel j (at ss) -> frame canvas pixel: see the module docstring of draw.py for the centres
        tx = ((0.5 / ss - 0.5 - cx) * z + cfg.width / 2 + 0.5) * ss - 0.5
        ty = ((0.5 / ss - 0.5 - cy) * z + cfg.height / 2 + 0.5) * ss - 0.5
        m = np.array([[z, 0.0, tx], [0.0, z, ty]])
        cv2.warpAffine(bg, m, (canvas.shape[1], canvas.shape[0]), dst=canvas, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)
        cv = Canvas(canvas, ss)
        if shot.faces:
            for f in shot.faces[k]:
                render(cv, f.items)
        yield downscale(canvas, ss)


def _render_frames(shot: Shot, cfg: MakeDemoParams) -> np.ndarray:
    """A worker's job: every frame of one staged shot, stacked (n, H, W, 3), drawn with one OpenCV thread."""
    cv2.setNumThreads(1)
    return np.stack(list(render_shot(shot, cfg)))


def _rendered_shots(cfg: MakeDemoParams) -> Iterator[tuple[Shot, Iterable[np.ndarray]]]:
    """(shot, its frames) in episode order. With `cfg.workers` > 1 this process plans and stages the shots
    while worker processes draw them, a few shots ahead; a frame is always drawn by one single-threaded
    process, so the bytes do not depend on the worker count."""
    if cfg.workers <= 1:
        for shot in iter_shots(cfg):
            yield shot, render_shot(shot, cfg)
        return
    ahead = 2 * cfg.workers  # shots in flight: bounds memory to a few shots' frames
    try:
        with ProcessPoolExecutor(cfg.workers, mp_context=get_context("spawn")) as pool:
            pending: deque[tuple[Shot, Future]] = deque()
            for shot in iter_shots(cfg):
                pending.append((shot, pool.submit(_render_frames, shot, cfg)))
                if len(pending) >= ahead:
                    done, job = pending.popleft()
                    yield done, job.result()
            while pending:
                done, job = pending.popleft()
                yield done, job.result()
    except BrokenProcessPool:
        raise UserError(f"a rendering worker process died (killed, or out of memory?): run again, or set "
                        f"make_demo.workers to 1 (now {cfg.workers}); nothing was written") from None


def render_episode(cfg: MakeDemoParams, sink: Callable[[Shot, int, np.ndarray], None], video: str = "episode.mp4",
                   progress: bool = True) -> tuple[list[Shot], pd.DataFrame]:
    """Plan and render every frame, handing each to `sink(shot, k_in_shot, rgb)` in order.

    Returns the shots (geometry freed) and the ground-truth table.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # same pixels whatever the machine
    shots: list[Shot] = []
    tables: list[pd.DataFrame] = []
    bar = tqdm(total=cfg.n_frames, desc="make_demo", unit="frame", disable=not progress)
    try:
        for shot, frames in _rendered_shots(cfg):
            for k, frame in enumerate(frames):
                sink(shot, k, frame)
                bar.update(1)
            if shot.actors:
                tables.append(truth_table(shot, video))
            shot.faces = []  # rendered: free the geometry
            shots.append(shot)
    finally:
        bar.close()
        cv2.setNumThreads(threads)
    truth = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TRUTH_COLUMNS)
    return shots, truth
