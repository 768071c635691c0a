"""The paint room: the seed's rough, one conditioning for both domains, part fill, shape moves, the shape model,
face regions, and the prepare_spade stage."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pandas as pd
import pytest

from _params import gan_settings
from face2anime.demo.character import sample_character
from face2anime.demo.draw import Canvas, downscale, render
from face2anime.demo.face import FaceState, build_face
from face2anime.demo.geometry import Pose
from face2anime.errors import UserError
from face2anime.io import read_arrays, write_arrays
from face2anime.landmarks.schema import FACE40_BROWS, FACE40_LEFT_EYE, FACE40_MOUTH, FACE40_RIGHT_EYE, anime_to_face40
from face2anime.paint.conditioning import (CHANNELS, conditioning, conditioning_batch, face_polygon, fill_parts,
                                           fit_similarity, landmark_channels, move_shape, part_mask, polygon_mask,
                                           rough, scale_points)
from face2anime.paint.layouts import ShapeModel, fit_shape_model, region_palette, synth_rough
from face2anime.paint.regions import hair_mask, skin_mask
from face2anime.params import ConditioningParams, RoughParams

SIZE = 112


def _demo_face(seed: int, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A demo-renderer anime face in a 112 px crop (RGB uint8) and its exact 40 points."""
    ch = sample_character(np.random.default_rng(seed), f"c{seed}")
    face = build_face(ch, FaceState(pose=Pose(x=56, y=50, scale=40, roll_deg=roll)))
    canvas = np.full((2 * SIZE, 2 * SIZE, 3), (90, 140, 200), np.uint8)
    render(Canvas(canvas, 2), face.items)
    return downscale(canvas, 2), anime_to_face40(face.points28, face.contour17)


def _similarity(points: np.ndarray, deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ rot.T + np.asarray(shift)


@pytest.fixture(scope="module")
def demo():
    return _demo_face(3)


@pytest.fixture(scope="module")
def cfg() -> ConditioningParams:
    return gan_settings("spade").conditioning


# ---------------------------------------------------------------- (a) the seed's rough
def test_rough_is_the_seed_recipe(demo):
    img, _ = demo
    noisy = np.clip(img.astype(int) + np.random.default_rng(0).integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
    got = rough(noisy, RoughParams(median_before=9, spatial_radius=52, color_radius=52, median_after=15))
    # the seed, verbatim (an RGB image in, BGR out)
    seed = cv2.cvtColor(noisy, cv2.COLOR_RGB2HSV)
    seed = cv2.medianBlur(seed, 9)
    seed = cv2.pyrMeanShiftFiltering(seed, 52, 52)
    seed = cv2.medianBlur(seed, 15)
    seed = cv2.cvtColor(seed, cv2.COLOR_HSV2BGR)
    assert got.dtype == np.uint8 and got.shape == img.shape
    assert np.array_equal(got, seed[..., ::-1])
    assert not np.array_equal(got, seed)                    # the channel order matters on this image
    colours = lambda x: len(np.unique(x.reshape(-1, 3), axis=0))  # noqa: E731
    assert colours(got) < colours(noisy) / 20               # the rough flattens the colours


# ---------------------------------------------------------------- (b) one conditioning for both domains
def _photo_like(seed: int = 1) -> np.ndarray:
    """Smooth skin-toned gradients with noise: none of the anime crop's flat regions or dark lines."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    base = np.stack([170 + 60 * x, 120 + 50 * y, 100 + 40 * x * y], axis=-1)
    noise = np.random.default_rng(seed).normal(0, 8, base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def test_photo_and_anime_conditioning_match_in_form(demo, cfg):
    anime, points = demo
    a, p = conditioning(anime, points, cfg), conditioning(_photo_like(), points, cfg)
    for cond in (a, p):
        assert cond.shape == (len(CHANNELS), cfg.size, cfg.size) == (8, cfg.size, cfg.size)
        assert cond.dtype == np.float32 and cond.min() >= -1 and cond.max() <= 1
        assert set(np.unique(cond[3:])) == {-1.0, 1.0}       # every landmark channel has marks, exact 0/1
    assert np.array_equal(a[3:], p[3:])                      # same points, same landmark channels
    assert np.abs(a[:3] - p[:3]).mean() > 0.05               # the roughs are the images'
    marks = landmark_channels(points, SIZE, cfg.line_width)
    assert np.array_equal(a[3:], marks * 2 - 1)
    for k, eye in ((2, FACE40_LEFT_EYE), (2, FACE40_RIGHT_EYE)):  # the eye channel is on the eyes
        cx, cy = np.round(points[list(eye)].mean(axis=0)).astype(int)
        assert marks[k, cy, cx] == 1


def test_conditioning_resizes_and_refuses_bad_points(demo, cfg):
    img, points = demo
    small = cfg.model_copy(update={"size": 64})
    cond = conditioning(img, points, small)
    assert cond.shape == (8, 64, 64)
    assert np.array_equal(cond[3:], landmark_channels(scale_points(points, SIZE, SIZE, 64), 64, cfg.line_width) * 2 - 1)
    out = points.copy()
    out[8, 1] = SIZE + 3
    with pytest.raises(UserError, match="out of the 112x112 frame .point 8"):
        conditioning(img, out, cfg)
    nan = points.copy()
    nan[30] = np.nan
    with pytest.raises(UserError, match="non-finite points \\[30\\]"):
        conditioning(img, nan, cfg)


def test_batch_is_in_order_and_thread_independent(cfg):
    faces = [_demo_face(s) for s in (0, 1, 2)]
    images = np.stack([f[0] for f in faces])
    points = np.stack([f[1] for f in faces]).astype(np.float32)
    done = []
    two = conditioning_batch(images, points, cfg, threads=2, progress=done.append)
    assert two.shape == (3, 8, cfg.size, cfg.size) and two.dtype == np.float32 and len(done) == 3
    assert np.array_equal(two, conditioning_batch(images, points, cfg, threads=1))
    for i in range(3):
        assert np.array_equal(two[i], conditioning(images[i], points[i], cfg))


# ---------------------------------------------------------------- (c) part fill removes the dark eyes
def test_part_fill_removes_dark_eyes(demo, cfg):
    _, points = demo
    skin = np.array([232, 196, 170])
    img = np.clip(skin + np.random.default_rng(2).normal(0, 4, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    eyes = np.zeros((SIZE, SIZE), np.uint8)
    for ring in ((23, 24, 25, 28, 27, 26), (29, 30, 31, 34, 33, 32)):
        cv2.fillPoly(eyes, [np.round(points[list(ring)]).astype(np.int32)], 1)
    img[eyes > 0] = (30, 25, 60)
    eye = eyes > 0
    assert eye.sum() > 100
    r = rough(img, cfg.rough)
    mask = part_mask(points, SIZE, cfg.fill_dilate)
    assert mask[eye].all()                                   # the part regions cover the eyes
    bare = part_mask(points, SIZE, 0)                        # they grow by fill_dilate px, no more
    away = cv2.distanceTransform((~bare).astype(np.uint8), cv2.DIST_L2, 5)
    assert mask[away <= cfg.fill_dilate - 0.5].all() and not mask[away > cfg.fill_dilate + 1].any()
    filled = fill_parts(r, mask, cfg.fill_radius)
    distance = lambda x: float(np.linalg.norm(x[eye].mean(axis=0) - skin))  # noqa: E731
    assert distance(r) > 100                                 # the rough keeps the dark eye blobs ...
    assert distance(filled) < 10                             # ... the fill turns them into skin
    assert np.array_equal(filled[~mask], r[~mask])           # and touches nothing else
    cond = conditioning(img, points, cfg.model_copy(update={"flat_skin": False}))  # the colour is this fill
    assert np.array_equal(cond[:3], filled.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)


def test_flat_skin_removes_a_beard_and_shading(demo, cfg):
    _, points = demo
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE                   # skin lit from the left: a 60-level ramp
    img = np.clip(np.stack([200 + 60 * (0.5 - x), 160 + 60 * (0.5 - x), 140 + 60 * (0.5 - x)], -1), 0, 255)
    img = img.astype(np.uint8)
    face = polygon_mask(face_polygon(points), SIZE) > 0
    below_mouth = np.mgrid[0:SIZE, 0:SIZE][0] > points[list(FACE40_MOUTH)][:, 1].max() + 3
    beard = face & below_mouth                               # a dark beard under the mouth, inside the outline
    assert beard.sum() > 100
    img[beard] = (60, 45, 40)
    keep, flat = cfg.model_copy(update={"flat_skin": False}), cfg.model_copy(update={"flat_skin": True})
    a, b = conditioning(img, points, keep), conditioning(img, points, flat)
    assert np.array_equal(a[3:], b[3:])                      # the landmark channels do not change
    assert np.array_equal(a[:3, ~face], b[:3, ~face])        # nor does anything outside the face
    rgb_keep = np.round((a[:3] + 1) * 127.5).transpose(1, 2, 0)
    rgb_flat = np.round((b[:3] + 1) * 127.5).transpose(1, 2, 0)
    assert len(np.unique(rgb_flat[face], axis=0)) == 1       # the face is one colour ...
    parts = part_mask(points, SIZE, cfg.fill_dilate)
    expected = np.round(np.median(rgb_keep[face & ~parts], axis=0))
    assert np.array_equal(rgb_flat[face][0], expected)       # ... the median of its skin in the part-filled rough
    assert np.abs(rgb_keep[beard].mean(axis=0) - expected).max() > 60   # the plain rough keeps the beard
    assert np.ptp(rgb_keep[face & ~beard & ~parts][:, 0]) > 20           # and the shading


# ---------------------------------------------------------------- (d) shape moves
def test_fit_similarity_recovers_a_known_one(demo):
    _, mean = demo
    moved = _similarity(mean, 17.0, 0.8, (6.0, -4.0))
    m = fit_similarity(mean, moved)
    a = np.deg2rad(17.0)
    assert np.allclose(m[:, :2], 0.8 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]), atol=1e-9)
    assert np.allclose(mean @ m[:, :2].T + m[:, 2], moved, atol=1e-9)


def test_move_shape(demo):
    _, mean = demo
    other = _demo_face(7, roll=10.0)[1]
    assert np.array_equal(move_shape(other, mean, 0.0), other)
    m = fit_similarity(mean, other)
    fitted = mean @ m[:, :2].T + m[:, 2]
    assert np.allclose(move_shape(other, mean, 1.0), fitted, atol=1e-9)
    assert np.allclose(move_shape(other, mean, 0.25), 0.75 * other + 0.25 * fitted, atol=1e-9)
    assert np.abs(fitted - other).max() > 1                  # the two shapes differ: the test can fail
    copy = _similarity(mean, -12.0, 1.3, (-5.0, 8.0))        # a posed mean maps to itself at any amount
    for amount in (0.0, 0.5, 1.0):
        assert np.allclose(move_shape(copy, mean, amount), copy, atol=1e-9)
    batch = move_shape(np.stack([other, copy]), mean, 1.0)   # (N, 40, 2) works per face
    assert batch.shape == (2, 40, 2) and np.allclose(batch[0], fitted) and np.allclose(batch[1], copy)


# ---------------------------------------------------------------- (e) the shape model
@pytest.fixture(scope="module")
def shapes() -> np.ndarray:
    return np.stack([_demo_face(s, roll=4.0 * (s % 5 - 2))[1] for s in range(12)])


def test_shape_model(shapes):
    model = fit_shape_model(shapes, 3)
    assert model.mean.shape == (40, 2) and model.components.shape == (3, 80) and model.std.shape == (3,)
    assert np.allclose(model.components @ model.components.T, np.eye(3), atol=1e-9)
    assert np.all(np.diff(model.std) <= 0) and model.std[-1] > 0
    a = model.sample(5, np.random.default_rng(4))
    assert a.shape == (5, 40, 2)
    assert np.array_equal(a, model.sample(5, np.random.default_rng(4)))
    assert not np.allclose(a, model.sample(5, np.random.default_rng(5)))
    full = fit_shape_model(shapes, 80)                       # all the components 12 shapes span
    assert len(full.std) == 12
    assert np.allclose(full.decode(full.encode(shapes)), shapes, atol=1e-9)
    assert not np.allclose(model.decode(model.encode(shapes)), shapes, atol=1e-3)
    again = ShapeModel.from_arrays(model.to_arrays())
    assert np.array_equal(again.sample(2, np.random.default_rng(1)), model.sample(2, np.random.default_rng(1)))


# ---------------------------------------------------------------- (f) regions, palettes, synthetic roughs
def test_regions_and_palette(shapes):
    mean = shapes.mean(axis=0)
    skin, hair = skin_mask(mean, SIZE), hair_mask(mean, SIZE)
    assert skin.sum() > 1000 and hair.sum() > 300
    assert not (skin & hair).any()
    for eye in (FACE40_LEFT_EYE, FACE40_RIGHT_EYE):        # eyes are not skin
        cx, cy = np.round(mean[list(eye)].mean(axis=0)).astype(int)
        assert not skin[cy, cx]
    brow_y = mean[list(FACE40_BROWS), 1].mean()
    ys = np.nonzero(hair)[0]
    assert np.mean(ys < brow_y) > 0.6                        # hair is mostly above the brows
    palette = np.array([[40, 90, 160], [200, 60, 120], [240, 210, 190]], np.uint8)
    synth = synth_rough(mean, palette, SIZE)
    assert synth.shape == (SIZE, SIZE, 3) and synth.dtype == np.uint8
    assert np.array_equal(region_palette(synth, mean), palette)


# ---------------------------------------------------------------- (g) the stage
def test_prepare_spade_stage(tiny_project, load_stage, monkeypatch):
    root = tiny_project.root
    faces = [_demo_face(s) for s in range(6)]
    ids = np.array([f"f{i}" for i in range(6)])
    color = np.stack([f[0] for f in faces])
    points = np.stack([f[1] for f in faces]).astype(np.float32)
    points[4, 8, 1] = 120.0                                  # f4's chin is out of the crop
    write_arrays(root / "data/anime/crops.npz", face_id=ids, color112=color, points112=points)
    pd.DataFrame({"face_id": ids, "split": ["train", "train", "test", "train", "train", "val"]}).to_csv(
        root / "data/anime/split.csv", index=False)
    tiny_project.set("prepare_spade", shape_components=2, threads=2, preview_faces=3)
    stage = load_stage("prepare_spade")
    monkeypatch.chdir(root)
    summary = stage.main()
    assert "3 train pairs, 1 held-out" in summary and "skipped 1 faces" in summary and "f4 (" in summary
    pairs = read_arrays("data/spade/pairs.npz")
    assert pairs["face_id"].tolist() == ["f0", "f1", "f3"]
    assert np.array_equal(pairs["color"], color[[0, 1, 3]]) and np.array_equal(pairs["points"], points[[0, 1, 3]])
    assert pairs["cond"].dtype == np.float16 and pairs["cond"].shape == (3, 8, 112, 112)
    c = gan_settings("spade").conditioning
    assert np.array_equal(pairs["cond"][1], conditioning(color[1], points[1], c).astype(np.float16))
    test = read_arrays("data/spade/test.npz")
    assert test["face_id"].tolist() == ["f2"] and test["cond"].shape == (1, 8, 112, 112)
    layouts = read_arrays("data/spade/layouts.npz")
    assert layouts["mean"].shape == (40, 2) and layouts["components"].shape == (2, 80)
    assert layouts["std"].shape == (2,) and layouts["palettes"].shape == (3, 3, 3)
    assert layouts["palettes"].dtype == np.uint8
    assert np.allclose(layouts["mean"], points[[0, 1, 3]].mean(axis=0), atol=1e-4)
    assert os.path.getsize("reports/spade_pairs.png") > 1000
