"""Edge smoothing blurs only the dilated-edge pixels; the stage writes the style sets."""

import os

import cv2
import numpy as np
import pandas as pd

from face2anime.anime.style import EdgeSmoothing, build_style_set, edge_mask, smooth_edges
from face2anime.io import read_arrays, write_arrays


def _anime_like(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((64, 64, 3), (230, 200, 180), np.uint8)
    cv2.circle(img, (32, 30), 18, (250, 225, 210), -1)
    cv2.circle(img, (32, 30), 18, (20, 20, 20), 2)           # a dark outline, like an anime line
    cv2.rectangle(img, (8, 50), (56, 60), (40, 60, 200), -1)
    return np.clip(img.astype(int) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)


def test_only_dilated_edge_pixels_change():
    img = _anime_like()
    cfg = EdgeSmoothing(low=100, high=200, dilate=5, blur=5)
    out = smooth_edges(img, cfg)
    mask = edge_mask(img, cfg)
    changed = (out != img).any(axis=-1)
    assert changed.any()                                     # something was smoothed
    assert not (changed & ~mask).any()                       # nothing off the dilated edges
    blurred = cv2.GaussianBlur(img, (5, 5), 0, borderType=cv2.BORDER_REFLECT_101)
    assert np.array_equal(out[mask], blurred[mask])
    # the dilation widened the raw Canny edges
    raw = cv2.Canny(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 100, 200) > 0
    assert mask.sum() > raw.sum() and not (raw & ~mask).any()


def test_flat_image_is_untouched_and_gray_weights():
    flat = np.full((32, 32, 3), 90, np.uint8)
    assert np.array_equal(smooth_edges(flat, EdgeSmoothing(low=100, high=200, dilate=5, blur=5)), flat)
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    assert build_style_set(px[None], EdgeSmoothing(low=100, high=200, dilate=5, blur=5))["gray"].tolist() == [[[76, 150, 29]]]         # ITU-R 601, RGB order
    s = build_style_set(np.stack([_anime_like(0), _anime_like(1)]), EdgeSmoothing(low=100, high=200, dilate=5, blur=5))
    assert s["smoothed"].shape == s["color"].shape and s["gray"].shape == s["color"].shape[:3]


def test_prepare_style_stage(tiny_project, load_stage, monkeypatch):
    tmp_path = tiny_project.root
    ids = np.array([f"f{i}" for i in range(6)])
    color = np.stack([cv2.resize(_anime_like(i), (112, 112)) for i in range(6)])
    write_arrays(tmp_path / "data/anime/crops.npz", face_id=ids, color112=color)
    (tmp_path / "data/anime").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"face_id": ids, "split": ["train", "train", "test", "val", "train", "test"]}).to_csv(
        tmp_path / "data/anime/split.csv", index=False)
    stage = load_stage("prepare_style")
    monkeypatch.chdir(tmp_path)
    summary = stage.main()
    assert "3 train faces" in summary and "2 test faces" in summary
    style = read_arrays("data/style/style.npz")
    assert style["face_id"].tolist() == ["f0", "f1", "f4"]
    assert np.array_equal(style["color"], color[[0, 1, 4]])
    assert style["gray"].shape == (3, 112, 112) and style["smoothed"].dtype == np.uint8
    test = read_arrays("data/style/style_test.npz")
    assert test["face_id"].tolist() == ["f2", "f5"] and test["color"].shape == (2, 112, 112, 3)
    assert os.path.getsize("reports/style_preview.png") > 1000
