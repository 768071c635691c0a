"""Contour expansion 5 -> 17: the search finds a drawn outline, hidden outlines fall back, corrections win."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _contour_synth import faces_table, make_face, render
from _params import settings

from face2anime.errors import UserError
from face2anime.landmarks import contour as ct
from face2anime.landmarks.corrections import read_corrections, split_corrections
from face2anime.landmarks.expand import expand_table, truth_errors
from face2anime.landmarks.framing import Framing
from face2anime.landmarks.schema import points_from_table

PARAMS = settings("expand_contour").search


def _expand_one(img_rgb, face, prior=None, fixed=None):
    gray = img_rgb.mean(axis=2).astype(np.uint8)
    p5 = face.p28[:5]
    width = float(np.linalg.norm(p5[4] - p5[0]))
    x0, y0, x1, y1 = ct.face_region(p5, face.box, gray.shape, width)
    omap = ct.OutlineMap(gray[y0:y1, x0:x1], x0, y0, width, PARAMS)
    return ct.expand_face(omap, p5, face.p28[5:].mean(axis=0), PARAMS, prior, fixed)


@pytest.mark.parametrize("seed", range(6))
def test_search_finds_a_drawn_outline(seed):
    rng = np.random.default_rng(seed)
    face = make_face(320, 150, rng.uniform(35, 75), rng, roll_deg=rng.uniform(-8, 8))
    img = render([face], thickness=rng.uniform(1.3, 3.0), rng=rng)
    res = _expand_one(img, face)
    assert res.source_str == "DSSSDSSSDSSSDSSSD", res.failures
    err = np.linalg.norm(res.points - face.truth17, axis=1)
    assert err[list(ct.NEW_POINTS)].mean() < 0.7
    # near the steep sides the vertical line meets the outline at a slant: a small offset across the
    # line is a larger one along it
    assert err.max() < 2.5
    # new points sit on the vertical line through their neighbours' midpoint, as the construction says
    for j in ct.LEVELS[1]:
        assert res.points[j, 0] == pytest.approx((res.points[j - 1, 0] + res.points[j + 1, 0]) / 2)
    np.testing.assert_allclose(res.points[list(ct.ANCHORS)], face.p28[:5])


def test_hidden_outline_falls_back_and_is_flagged():
    rng = np.random.default_rng(1)
    face = make_face(320, 150, 60, rng)
    t = face.truth17
    # paint skin over the outline around the chin-left stretch (true points 5..7), so there is no line to find
    hide = (t[5, 0] - 3, t[5, 1] - 25, t[7, 0] + 3, t[7, 1] + 25)
    img = render([face], rng=rng, hide=[hide])
    res = _expand_one(img, face)
    assert res.source[6] == ct.FALLBACK and {5, 7} <= {j for j, s in enumerate(res.source) if s == ct.FALLBACK}
    assert {j: res.failures[j] for j in (5, 6, 7)} and all(res.failures[j] for j in (5, 6, 7))
    for j in (10, 11, 13, 14):  # the visible side is still searched
        assert res.source[j] == ct.SEARCH
    # the fallback curve through the found points stays near the true outline
    err = np.linalg.norm(res.points - t, axis=1)
    assert err[[5, 6, 7]].max() < 4.0


def test_mean_shape_prior_improves_the_fallback():
    rng = np.random.default_rng(3)
    faces, frames = [], {}
    for k in range(14):
        f = make_face(160 + 300 * (k % 2), 150, rng.uniform(40, 70), rng, roll_deg=rng.uniform(-6, 6))
        fid = f"fr{k // 2:03d}"
        faces.append((fid, k // 2, k // 2, f"c{k}", f))
    for fid in sorted({r[0] for r in faces}):
        fs = [r[4] for r in faces if r[0] == fid]
        hide = []
        if fid == "fr000":  # hide most of the first face's lower-left outline
            t = fs[0].truth17
            hide = [(t[3, 0] - 3, t[2, 1] - 10, t[7, 0] + 3, t[7, 1] + 25)]
        frames[fid] = render(fs, rng=rng, hide=hide).mean(axis=2).astype(np.uint8)
    table = faces_table(faces)
    res = expand_table(table, frames.__getitem__, PARAMS, {}, 0.5)
    assert res.mean_shape is not None and res.confident_faces >= PARAMS.min_confident
    src0 = res.table["contour_source"].iat[0]
    assert src0[3:8] == "FDFFF"  # index 4 is the detected cheek point
    assert all(s == "DSSSDSSSDSSSDSSSD" for s in res.table["contour_source"].iloc[1:])
    err = truth_errors(table, res.table, Framing(margin=1.25, y_shift=-0.05))
    assert err.shape == (14, 12)
    assert np.nanmean(err[1:]) < 0.7
    assert err[0].max() < 1.5  # fallback shaped by the mean contour: close to the hidden outline
    # without enough confident faces there is no mean shape: the spline-only fallback is worse here
    alone = expand_table(table, frames.__getitem__, PARAMS.model_copy(update={"min_confident": 100}), {}, 0.5)
    assert alone.mean_shape is None
    assert truth_errors(table, alone.table, Framing(margin=1.25, y_shift=-0.05))[0].mean() > err[0].mean()
    # contract columns
    for col in ["face_id", "frame_id", "video", "frame", "shot", "character", "q00_x", "q39_y", "v00", "v39",
                "contour_source"]:
        assert col in res.table.columns
    assert res.table["v00"].dtype == np.uint8


def test_corrections_are_applied_and_unknown_faces_skipped(tmp_path):
    rng = np.random.default_rng(5)
    face = make_face(320, 150, 55, rng)
    img = render([face], rng=rng)
    path = tmp_path / "contour.csv"
    path.write_text("face_id,point,x,y\nfr000_f0,6,300.5,201.25\nfr000_f0,8,321,210\nghost_f0,3,1,2\n")
    df = read_corrections(path)
    fixed, unknown = split_corrections(df, ["fr000_f0"])
    assert unknown == ["ghost_f0"]
    res = _expand_one(img, face, fixed=fixed["fr000_f0"])
    assert res.source[6] == ct.CORRECTED and res.source[8] == ct.CORRECTED
    np.testing.assert_allclose(res.points[6], (300.5, 201.25))
    np.testing.assert_allclose(res.points[8], (321, 210))
    # the corrected points drive the later midpoints
    assert res.points[7, 0] == pytest.approx((300.5 + 321) / 2)
    assert res.points[5, 0] == pytest.approx((res.points[4, 0] + 300.5) / 2)


def test_absent_corrections_file_means_none(tmp_path):
    assert read_corrections(tmp_path / "nope.csv").empty


@pytest.mark.parametrize("body, words", [
    ("face_id,point,x\nf,1,2\n", "missing columns"),
    ("face_id,point,x,y\nf,17,2,3\n", "0..16"),
    ("face_id,point,x,y\nf,1.5,2,3\n", "0..16"),
    ("face_id,point,x,y\nf,1,nan,3\n", "finite"),
    ("face_id,point,x,y\nf,1,2,3\nf,1,4,5\n", "more than once"),
])
def test_malformed_corrections_are_one_line_errors(tmp_path, body, words):
    path = tmp_path / "c.csv"
    path.write_text(body)
    with pytest.raises(UserError, match=words) as info:
        read_corrections(path)
    assert "\n" not in str(info.value)


def test_similarity_fit_and_mean_shape_recover_a_shape():
    rng = np.random.default_rng(0)
    base = make_face(0, 0, 1.0, rng).truth17
    contours = []
    for _ in range(8):
        ang = rng.uniform(-0.3, 0.3)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        contours.append(rng.uniform(30, 90) * base @ rot.T + rng.uniform(0, 300, 2))
    mean = ct.mean_contour_shape(np.stack(contours))
    s, r, t = ct.similarity_fit(mean, base)
    np.testing.assert_allclose(s * mean @ r.T + t, base, atol=1e-6)


def test_table_points_round_trip():
    rng = np.random.default_rng(2)
    face = make_face(320, 150, 50, rng)
    table = faces_table([("fr000", 0, 0, "", face)])
    np.testing.assert_allclose(points_from_table(table, "c", 17), face.truth17[None])
    assert isinstance(table, pd.DataFrame)
