"""Anime crops (points land on the features, mirroring permutes by FACE40's pairs) and the grouped split."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from _contour_synth import faces_table, make_face, render

from face2anime.anime.crops import CROP_SIZE, crop_face, outside_fraction
from face2anime.anime.split import SPLITS, assign_splits, face_groups, split_summary
from face2anime.errors import UserError
from face2anime.io import read_arrays
from face2anime.landmarks.framing import Framing, framing_square
from face2anime.landmarks.schema import FACE40, flip_points
from face2anime.viz.sheets import contact_sheet, draw_points


def _points40(rng, cx=300.0, cy=170.0, s=60.0):
    face = make_face(cx, cy, s, rng)
    return np.concatenate([face.truth17, face.p28[5:]])


def test_points_land_on_the_features():
    rng = np.random.default_rng(0)
    pts = _points40(rng)
    img = np.zeros((360, 640, 3), np.uint8)
    marked = [0, 8, 16, 24, 35, 38]
    for i in marked:  # a bright 3x3 dot on an integer pixel near each marked point
        x, y = np.round(pts[i]).astype(int)
        pts[i] = (x, y)
        img[y - 1:y + 2, x - 1:x + 2] = 255
    crop = crop_face(img, pts, Framing(margin=1.25, y_shift=-0.05), 256)
    assert crop.gray112.shape == (CROP_SIZE, CROP_SIZE) and crop.color_large.shape == (256, 256, 3)
    g = crop.gray112.astype(float)
    for i in marked:
        u, v = crop.points112[i]
        iu, iv = int(round(u)), int(round(v))
        win = g[iv - 3:iv + 4, iu - 3:iu + 4]
        yy, xx = np.mgrid[iv - 3:iv + 4, iu - 3:iu + 4]
        cu, cv_ = (win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()
        assert abs(cu - u) < 0.3 and abs(cv_ - v) < 0.3, (i, (u, v), (cu, cv_))


def _mirror_pair():
    rng = np.random.default_rng(1)
    pts = _points40(rng, cx=250.0, cy=180.0, s=55.0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), (0, 0), 3)
    crop = crop_face(img, pts, Framing(margin=1.25, y_shift=-0.05), 256)
    mirror = crop_face(img[:, ::-1].copy(), flip_points(pts, FACE40, 640), Framing(margin=1.25, y_shift=-0.05), 256)
    return crop, mirror


def test_mirroring_permutes_crop_points_by_face40_pairs():
    crop, mirror = _mirror_pair()
    expected = flip_points(crop.points112, FACE40, CROP_SIZE)
    np.testing.assert_allclose(mirror.points112[:, 1], expected[:, 1], atol=1e-4)
    np.testing.assert_allclose(mirror.points112[:, 0], expected[:, 0], atol=1e-4)
    # a wrong pairing (identity permutation) is caught
    unpaired = CROP_SIZE - 1 - crop.points112[:, 0]
    assert np.ptp(mirror.points112[:, 0] - unpaired) > 1.0


def test_mirrored_face_gives_the_mirrored_crop_exactly():
    crop, mirror = _mirror_pair()
    np.testing.assert_allclose(mirror.points112, flip_points(crop.points112, FACE40, CROP_SIZE), atol=1e-4)
    diff = np.abs(mirror.color112.astype(int) - crop.color112[:, ::-1].astype(int))
    assert diff.mean() < 0.5


def test_outside_fraction():
    assert outside_fraction(np.array([10.0, 10.0, 50.0]), 640, 360) == pytest.approx(0.0)
    assert outside_fraction(np.array([-25.5, -0.5, 50.0]), 640, 360) == pytest.approx(0.5)
    assert outside_fraction(np.array([-100.0, -100.0, 50.0]), 640, 360) == pytest.approx(1.0)


def _split_table(rng, n_shots=30):
    rows = []
    for shot in range(n_shots):
        chars = [f"c{rng.integers(0, 40):02d}" for _ in range(rng.integers(1, 3))] + [""]
        for k in range(int(rng.integers(3, 20))):
            rows.append({"face_id": f"s{shot}_{k}", "video": "ep.mp4", "shot": shot,
                         "character": chars[k % len(chars)]})
    return pd.DataFrame(rows)


def test_split_keeps_shots_and_characters_in_one_split():
    df = _split_table(np.random.default_rng(0))
    groups = face_groups(df)
    split = assign_splits(groups, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=0)
    df["split"] = split
    assert (df.groupby("shot")["split"].nunique() == 1).all()
    named = df[df["character"] != ""]
    assert (named.groupby("character")["split"].nunique() == 1).all()
    assert set(split) == set(SPLITS)
    summary = split_summary(groups, split)
    assert summary["train"]["faces"] > summary["test"]["faces"] > 0 and summary["val"]["faces"] > 0
    assert sum(summary[s]["faces"] for s in SPLITS) == len(df)


def test_split_is_seeded():
    df = _split_table(np.random.default_rng(1))
    groups = face_groups(df)
    fr = {"train": 0.7, "val": 0.1, "test": 0.2}
    a, b = assign_splits(groups, fr, 3), assign_splits(groups, fr, 3)
    assert (a == b).all()
    assert any((assign_splits(groups, fr, s) != a).any() for s in (4, 5, 6))


def test_same_shot_number_in_two_videos_is_two_groups_and_characters_link_shots():
    df = pd.DataFrame({"face_id": list("abcd"), "video": ["v1", "v2", "v1", "v1"], "shot": [0, 0, 1, 2],
                       "character": ["", "", "x", "x"]})
    g = face_groups(df)
    assert g[0] != g[1] and g[2] == g[3] and g[0] != g[2]


def test_too_few_groups_is_a_clear_error():
    df = pd.DataFrame({"face_id": list("abc"), "video": "v", "shot": [0, 0, 1], "character": ""})
    with pytest.raises(UserError, match="groups"):
        assign_splits(face_groups(df), {"train": 0.7, "val": 0.1, "test": 0.2}, 0)
    with pytest.raises(UserError, match="sum to 1"):
        assign_splits(face_groups(df), {"train": 0.7, "val": 0.1, "test": 0.1}, 0)


def test_contact_sheet_and_draw_points():
    imgs = [np.full((20, 30), v, np.uint8) for v in (0, 100, 200)]
    sheet = contact_sheet(imgs, ncols=2, labels=["a", "b", "c"], pad=2, label_height=10)
    assert sheet.shape == (2 * (20 + 10 + 2) + 2, 2 * (30 + 2) + 2, 3)
    dotted = draw_points(imgs[0], np.array([[10.0, 5.0], [np.nan, 1.0]]), (255, 0, 0), radius=2)
    assert dotted.shape == (20, 30, 3) and dotted[5, 10, 0] == 255 and dotted[5, 10, 1] == 0
    assert imgs[0].max() == 0  # the input is not drawn on


@pytest.mark.slow
def test_three_stages_end_to_end(tiny_project, load_stage, monkeypatch):
    """expand_contour -> crop_anime -> split on a small synthetic episode: the contract's files and columns."""
    tmp_path = tiny_project.root
    rng = np.random.default_rng(7)
    (tmp_path / "data/frames/images").mkdir(parents=True)
    (tmp_path / "data/anime").mkdir(parents=True)
    (tmp_path / "data/corrections").mkdir(parents=True)
    rows, index = [], []
    for fr in range(16):
        fid = f"synth_{fr:06d}"
        faces = [make_face(170 + 300 * k, 160, rng.uniform(40, 65), rng, roll_deg=rng.uniform(-6, 6)) for k in range(2)]
        if fr == 15:  # a face mostly outside the frame: skipped by crop_anime
            faces[1] = make_face(650, 160, 60, rng)
        cv2.imwrite(str(tmp_path / f"data/frames/images/{fid}.png"), render(faces, rng=rng)[:, :, ::-1])
        index.append({"frame_id": fid, "video": "synth.mp4", "frame": fr, "time_s": fr / 24, "scene": fr // 2,
                      "width": 640, "height": 360, "path": f"images/{fid}.png"})
        rows += [(fid, fr, fr // 2, f"c{fr // 2}{k}" if k else "", f) for k, f in enumerate(faces)]
    pd.DataFrame(index).to_csv(tmp_path / "data/frames/index.csv", index=False)
    table = faces_table(rows)
    table["face_id"] = [f"{r[0]}_f{k % 2}" for k, r in enumerate(rows)]
    table.to_parquet(tmp_path / "data/anime/faces.parquet", index=False)
    (tmp_path / "data/corrections/contour.csv").write_text(
        "face_id,point,x,y\n"
        f"synth_000003_f0,6,{rows[6][4].truth17[6, 0]},{rows[6][4].truth17[6, 1]}\nnobody_f0,2,1,1\n")
    monkeypatch.chdir(tmp_path)

    summary = load_stage("expand_contour").main()
    assert "32 faces" in summary and "1 correction face(s) unknown" in summary
    m = json.loads(Path("metrics/contour.json").read_text())
    assert m["corrections_applied"] == 1 and m["unknown_faces"] == ["nobody_f0"]
    assert m["truth"]["mean_px112"] < 1.0 and m["found_by_search"] > 0.9
    lm = pd.read_parquet("data/anime/landmarks40.parquet")
    assert lm["contour_source"].iat[6][6] == "C"
    assert Path("reports/contour_worst.png").stat().st_size > 0

    assert "31 faces cropped" in load_stage("crop_anime").main()
    arr = read_arrays("data/anime/crops.npz")
    csv = pd.read_csv("data/anime/crops.csv", keep_default_na=False)
    assert list(csv.columns) == ["face_id", "frame_id", "video", "frame", "shot", "character"]
    assert (arr["face_id"] == csv["face_id"].to_numpy()).all()
    assert arr["gray112"].shape == (31, 112, 112) and arr["gray112"].dtype == np.uint8
    assert arr["color112"].shape == (31, 112, 112, 3) and arr["color_large"].shape == (31, 256, 256, 3)
    assert arr["points112"].dtype == np.float32 and arr["points112"].shape == (31, 40, 2)
    assert arr["visible"].dtype == bool and arr["square"].shape == (31, 3)
    np.testing.assert_allclose(arr["square"][0], framing_square(
        lm[[f"q{i:02d}_{a}" for i in range(40) for a in "xy"]].to_numpy().reshape(-1, 40, 2)[0], Framing(margin=1.25, y_shift=-0.05)))
    assert json.loads(Path("metrics/crops.json").read_text())["skipped_faces"] == ["synth_000015_f1"]

    load_stage("split").main()
    sp = pd.read_csv("data/anime/split.csv").merge(csv, on="face_id")
    assert len(sp) == 31 and set(sp["split"]) == set(SPLITS)
    assert (sp.groupby("shot")["split"].nunique() == 1).all()
    first = Path("data/anime/split.csv").read_bytes()
    load_stage("split").main()
    assert Path("data/anime/split.csv").read_bytes() == first
