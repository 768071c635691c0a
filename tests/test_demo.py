"""The synthetic demo episode: deterministic, exact ground truth, the true contour's definition."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from face2anime.demo.character import sample_character
from face2anime.demo.contour import true_contour17, vertical_hit
from face2anime.demo.draw import Canvas, downscale, render
from face2anime.demo.episode import TRUTH_COLUMNS, plan_episode, render_episode
from face2anime.demo.face import FaceState, build_face
from face2anime.demo.geometry import Pose
from face2anime.errors import UserError
from face2anime.landmarks.schema import points_from_table
from face2anime.params import MakeDemoParams
from face2anime.settings import validate

ROOT = Path(__file__).resolve().parents[1]
# The renderer settings these tests were written against; SMALL shrinks them.
TEST_DEMO = dict(seed=0, width=640, height=360, fps=24, duration_s=30.0, shot_len_s=(0.7, 1.9), max_characters=3,
                 empty_shot_share=0.12, recurring_share=0.2, face_height_px=(70.0, 200.0), max_roll_deg=20.0,
                 max_zoom=1.25, world_margin=0.3, blink_every_s=(1.2, 3.5), talk_share=0.6, supersample=2,
                 frame_margin_px=2.0, preview_frames=9, workers=1)


def demo_config(**kw) -> MakeDemoParams:
    return MakeDemoParams(**{**TEST_DEMO, **kw})


SMALL = dict(width=320, height=180, fps=12, duration_s=2.5, shot_len_s=(0.6, 1.0), face_height_px=(40.0, 100.0),
             empty_shot_share=0.0, max_zoom=1.2)


def _render(seed: int, workers: int = 1, **kw) -> tuple[list[np.ndarray], pd.DataFrame]:
    frames: list[np.ndarray] = []
    _, truth = render_episode(demo_config(seed=seed, workers=workers, **{**SMALL, **kw}),
                              lambda s, k, f: frames.append(f), progress=False)
    return frames, truth


@pytest.fixture(scope="module")
def clip():
    return _render(11)


@pytest.fixture(scope="module")
def shots():
    return plan_episode(demo_config(seed=11, **SMALL))


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n", float_format="%.4f").encode()


def test_same_seed_same_frames_and_truth(clip):
    frames, truth = clip
    frames2, truth2 = _render(11)
    assert len(frames) == len(frames2) == 30
    assert all(np.array_equal(a, b) for a, b in zip(frames, frames2, strict=True))
    assert _csv_bytes(truth) == _csv_bytes(truth2)


def test_worker_processes_give_the_same_frames_in_order():
    """Shots drawn by 2 worker processes (more shots than the look-ahead window) come back in episode order,
    pixel for pixel as drawn here."""
    assert len(plan_episode(demo_config(seed=11, **{**SMALL, "duration_s": 8.0}))) > 2 * 2  # the window is 2 x workers
    frames, truth = _render(11, duration_s=8.0)
    frames2, truth2 = _render(11, workers=2, duration_s=8.0)
    assert len(frames2) == len(frames) == 96
    assert all(np.array_equal(a, b) for a, b in zip(frames, frames2, strict=True))
    assert _csv_bytes(truth) == _csv_bytes(truth2)


def test_a_dead_rendering_worker_is_one_line(monkeypatch):
    """A worker killed mid-episode (the OOM killer) breaks the pool: the stage says so in one line, no traceback."""
    import face2anime.demo.episode as episode
    from concurrent.futures.process import BrokenProcessPool

    class DeadPool:   # what ProcessPoolExecutor does once a worker has died: submit raises BrokenProcessPool
        def __init__(self, *args, **kwargs): pass
        def __enter__(self): return self
        def __exit__(self, *exc): return False
        def submit(self, *args): raise BrokenProcessPool("A child process terminated abruptly")

    monkeypatch.setattr(episode, "ProcessPoolExecutor", DeadPool)
    with pytest.raises(UserError, match="rendering worker process died .* make_demo.workers to 1 \\(now 2\\)"):
        _render(11, workers=2)


def test_different_seed_differs(clip):
    frames, truth = clip
    frames2, truth2 = _render(12)
    assert not np.array_equal(frames[0], frames2[0])
    assert _csv_bytes(truth) != _csv_bytes(truth2)


def test_truth_table_layout(clip):
    frames, truth = clip
    assert list(truth.columns) == TRUTH_COLUMNS
    assert len(truth) > 0
    assert truth["frame"].between(0, len(frames) - 1).all()
    assert truth.groupby(["frame", "character"]).size().max() == 1
    vis = truth[[f"p{j:02d}_v" for j in range(28)]].to_numpy()
    assert set(np.unique(vis)) <= {0, 1}
    assert vis.sum() > 0.8 * vis.size  # mostly visible, and the flags are real per-point values


def test_points_inside_frame_and_box(clip):
    frames, truth = clip
    h, w = frames[0].shape[:2]
    pts = np.concatenate([points_from_table(truth, "p", 28), points_from_table(truth, "c", 17)], axis=1)
    box = truth[["box_x0", "box_y0", "box_x1", "box_y1"]].to_numpy()
    assert (pts[..., 0] >= 0).all() and (pts[..., 0] <= w - 1).all()
    assert (pts[..., 1] >= 0).all() and (pts[..., 1] <= h - 1).all()
    tol = 0.01  # the csv rounds to 4 decimals
    assert (pts[..., 0] >= box[:, None, 0] - tol).all() and (pts[..., 0] <= box[:, None, 2] + tol).all()
    assert (pts[..., 1] >= box[:, None, 1] - tol).all() and (pts[..., 1] <= box[:, None, 3] + tol).all()
    # the box is a face box, not a point box: chin at the bottom, the forehead well above the brows
    assert np.allclose(box[:, 3], pts[:, 2, 1], atol=0.5 + 0.2 * (box[:, 3] - box[:, 1]).max())
    assert (pts[:, 5:11, 1].min(axis=1) > box[:, 1]).all()


def _dist_to_polyline(p: np.ndarray, line: np.ndarray) -> float:
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    return float(np.linalg.norm(a + t[:, None] * ab - p, axis=1).min())


def test_true_contour_follows_its_definition(shots):
    checked = 0
    for shot in shots:
        for faces in shot.faces[:: max(1, len(shot.faces) // 3)]:
            for f in faces:
                c, p = f.contour17, f.points28
                assert np.allclose(c[[0, 4, 8, 12, 16]], p[:5])
                for step in (2, 1):  # 5 -> 9 (every 4th, midpoints at step 2), then 9 -> 17
                    for k in range(step, 17, 2 * step):
                        assert c[k, 0] == pytest.approx((c[k - step, 0] + c[k + step, 0]) / 2, abs=1e-9)
                for q in c:
                    assert _dist_to_polyline(q, f.arc) < 1e-9
                checked += 1
    assert checked > 10


def test_vertical_hit_on_a_circle():
    a = np.linspace(np.pi, 0, 2001)  # lower half circle (y down), image-left to image-right
    arc = np.stack([10 * np.cos(a), 10 * np.sin(a)], axis=1)
    anchors = [0, 500, 1000, 1500, 2000]
    c = true_contour17(arc, anchors)
    assert np.allclose(c[:, 1], np.sqrt(100 - c[:, 0] ** 2), atol=1e-3)  # on the circle
    t = vertical_hit(arc, 0, 500)
    assert 0 < t < 500


def _one_face(ch, scale=80.0, **state):
    ss = 2
    canvas = np.full((300 * ss, 300 * ss, 3), 128, np.uint8)
    f = build_face(ch, FaceState(Pose(150, 130, scale, 0.0), **state))
    render(Canvas(canvas, ss), f.items)
    return downscale(canvas, ss), f


def test_points_sit_on_the_drawn_features():
    ch = sample_character(np.random.default_rng(3), "c")
    img, f = _one_face(ch)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(int)
    skin = int(cv2.cvtColor(np.uint8([[ch.skin]]), cv2.COLOR_RGB2GRAY)[0, 0])

    def at(i):
        x, y = np.round(f.points28[i]).astype(int)
        return gray[y, x]

    for i in (11, 12, 19, 18):  # upper lash line: dark
        if f.visible[i]:
            assert at(i) < skin - 60, i
    for i in (24, 26):  # mouth corners: on the mouth line
        assert at(i) < skin - 25, i
    x, y = np.round(f.points28[2]).astype(int)  # the chin is on the outline: skin above, neck below
    assert abs(gray[y - 3, x] - skin) < 12
    assert gray[y, x] < min(gray[y - 3, x], gray[y + 3, x]) - 15


def test_visibility_follows_the_bangs():
    ch = sample_character(np.random.default_rng(5), "c")
    ch = dataclasses.replace(ch, sidelocks=False)
    short = build_face(dataclasses.replace(ch, bang_len=ch.brow_y - 0.6), FaceState(Pose(150, 130, 80, 0)))
    long = build_face(dataclasses.replace(ch, bang_len=ch.brow_y + 0.25, bang_depth=(0.05,) * len(ch.bang_depth)),
                      FaceState(Pose(150, 130, 80, 0)))
    assert short.visible[5:11].all()
    assert not long.visible[5:11].all()
    assert long.visible[23:28].all()  # the bangs never reach the nose or mouth


def test_blink_and_talk_move_the_points():
    ch = sample_character(np.random.default_rng(8), "c")
    pose = Pose(150, 130, 80, 0)
    open_, shut = build_face(ch, FaceState(pose, eye_open=1.0)), build_face(ch, FaceState(pose, eye_open=0.0))
    assert shut.points28[12, 1] > open_.points28[12, 1] + 10  # the upper lid comes down
    assert np.allclose(shut.points28[14:17], open_.points28[14:17])  # the lower lid stays
    quiet, talk = build_face(ch, FaceState(pose, mouth_open=0.0)), build_face(ch, FaceState(pose, mouth_open=1.0))
    assert talk.points28[27, 1] - talk.points28[25, 1] > quiet.points28[27, 1] - quiet.points28[25, 1] + 5


def test_params_section_is_valid_and_strict():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["make_demo"]
    validate(MakeDemoParams, params, "params.yaml", "make_demo")
    cfg = validate(MakeDemoParams, {**params, "width": 320, "height": 200}, "params.yaml", "make_demo")
    assert (cfg.width, cfg.height) == (320, 200)       # the section's values, whatever the committed ones
    with pytest.raises(UserError, match="width"):
        validate(MakeDemoParams, {**params, "width": 32}, "params.yaml", "make_demo")   # below 64 px
    with pytest.raises(UserError):
        validate(MakeDemoParams, {**params, "no_such_knob": 1}, "params.yaml", "make_demo")


@pytest.mark.slow
def test_stage_writes_identical_outputs(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["make_demo"].update(duration_s=1.5, shot_len_s=[0.5, 0.8])
    outs = []
    for run in ("a", "b"):
        d = tmp_path / run
        d.mkdir()
        (d / "params.yaml").write_text(yaml.safe_dump(params))
        res = subprocess.run([sys.executable, str(ROOT / "stages" / "make_demo.py")], cwd=d, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.stdout.startswith("make_demo: 36 frames")
        outs.append({n: (d / "data/demo" / n).read_bytes() for n in ("episode.mp4", "truth.csv", "preview.png")})
    assert outs[0] == outs[1]
    cap = cv2.VideoCapture(str(tmp_path / "a/data/demo/episode.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640 and int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == 360
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 36
    truth = pd.read_csv(tmp_path / "a/data/demo/truth.csv")
    assert list(truth.columns) == TRUTH_COLUMNS and len(truth) > 0
