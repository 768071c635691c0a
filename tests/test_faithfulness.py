"""Faithfulness metrics: eye-line angle, CIELAB medians and delta E, region colours, the per-set report."""

from __future__ import annotations

import numpy as np
import pytest

from face2anime.metrics.faithfulness import (angle_difference, delta_e76, eye_line_angle, faithfulness_report,
                                             mean_point_error, median_lab, region_colour_difference)
from face2anime.paint.regions import hair_mask, skin_mask

# Published sRGB (D65) -> CIELAB values (e.g. Bruce Lindbloom's calculator): white, pure red, pure blue.
LAB_WHITE = (100.0, 0.0, 0.0)
LAB_RED = (53.2408, 80.0925, 67.2032)
LAB_BLUE = (32.2970, 79.1875, -107.8602)


def _face(cx: float = 56.0, cy: float = 56.0) -> np.ndarray:
    """A level, upright 40-point face (schema FACE40 order) centred near (cx, cy) in a 112 px crop."""
    t = np.pi - np.arange(17) * np.pi / 16
    contour = np.stack([cx + 30 * np.cos(t), cy - 4 + 36 * np.sin(t)], axis=1)
    rel = [(-24, -14), (-16, -17), (-8, -15), (8, -15), (16, -17), (24, -14),            # brows
           (-22, -6), (-15, -9), (-8, -6), (-22, -5), (-15, -2), (-8, -5),               # left eye
           (8, -6), (15, -9), (22, -6), (8, -5), (15, -2), (22, -5),                     # right eye
           (0, 6), (-9, 16), (0, 14), (9, 16), (0, 19)]                                  # nose, mouth
    return np.concatenate([contour, np.array(rel, np.float64) + (cx, cy)])


def _rotate(points: np.ndarray, degrees: float, centre=(56.0, 56.0)) -> np.ndarray:
    """Rotation in image coordinates (y down): positive = clockwise on screen."""
    a = np.radians(degrees)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - centre) @ r.T + centre


# ---------------------------------------------------------------- pose
def test_eye_line_angle_of_a_level_and_a_rotated_face():
    face = _face()
    assert eye_line_angle(face) == pytest.approx(0.0, abs=1e-12)
    assert eye_line_angle(_rotate(face, 10.0)) == pytest.approx(10.0)
    # the right eye 7 px lower than the left, 30 px apart: atan(7 / 30)
    tilted = face.copy()
    tilted[29:35, 1] += 7.0
    assert eye_line_angle(tilted) == pytest.approx(np.degrees(np.arctan2(7.0, 30.0)))
    # batched, and mirrored faces (left and right swapped) point the other way
    batch = np.stack([_rotate(face, -5.0), _rotate(face, 170.0)])
    assert eye_line_angle(batch) == pytest.approx([-5.0, 170.0])


def test_angle_difference_wraps():
    assert angle_difference(179.0, -179.0) == pytest.approx(-2.0)
    assert angle_difference(10.0, 350.0) == pytest.approx(20.0)
    assert angle_difference(np.array([3.0, -170.0]), np.array([1.0, 170.0])) == pytest.approx([2.0, 20.0])
    face = _face()
    assert abs(angle_difference(eye_line_angle(_rotate(face, 175.0)), eye_line_angle(_rotate(face, -178.0)))) \
        == pytest.approx(7.0)


# ---------------------------------------------------------------- colour
def _flat(rgb, size=16) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (size, size, 3)).copy()


def test_median_lab_is_proper_cielab_and_delta_e_by_hand():
    full = np.ones((16, 16), bool)
    assert median_lab(_flat((255, 255, 255)), full) == pytest.approx(LAB_WHITE, abs=0.02)
    assert median_lab(_flat((255, 0, 0)), full) == pytest.approx(LAB_RED, abs=0.02)
    assert median_lab(_flat((0, 0, 255)), full) == pytest.approx(LAB_BLUE, abs=0.02)
    # white vs red: sqrt(46.7592^2 + 80.0925^2 + 67.2032^2)
    want = np.sqrt(46.7592 ** 2 + 80.0925 ** 2 + 67.2032 ** 2)
    assert want == pytest.approx(114.53, abs=0.01)
    assert delta_e76(median_lab(_flat((255, 255, 255)), full), median_lab(_flat((255, 0, 0)), full)) \
        == pytest.approx(want, abs=0.05)
    assert delta_e76(np.array([[0.0, 0, 0], [1, 2, 2]]), np.zeros((2, 3))) == pytest.approx([0.0, 3.0])


def test_median_lab_ignores_a_minority_and_pixels_outside_the_mask():
    img = _flat((255, 0, 0))
    img[:3] = 255                     # 3 of 16 rows white: the median stays red
    img[:, 12:] = (0, 0, 255)         # blue, but outside the mask
    mask = np.zeros((16, 16), bool)
    mask[:, :12] = True
    assert median_lab(img, mask) == pytest.approx(LAB_RED, abs=0.02)
    assert np.isnan(median_lab(img, np.zeros((16, 16), bool))).all()
    with pytest.raises(ValueError):
        median_lab(img, np.ones((8, 8), bool))


def _painted(points: np.ndarray, skin, hair, rest=(30, 90, 30), size: int = 112) -> np.ndarray:
    """An image whose skin region (from `points`) is `skin`, hair region `hair`, everything else `rest`."""
    img = _flat(rest, size)
    img[skin_mask(points, size)] = skin
    img[hair_mask(points, size)] = hair
    return img


def test_region_colours_follow_each_image_own_points():
    face = _face()
    moved = _rotate(face, 8.0) + (10.0, -8.0)          # where the output's face is meant to be
    photo = _painted(face, skin=(255, 0, 0), hair=(0, 0, 255))
    # same colours at the moved place: nothing changed, if the output's regions come from its own points
    out = _painted(moved, skin=(255, 0, 0), hair=(0, 0, 255))
    assert region_colour_difference(out, photo, moved, face, 112) == pytest.approx({"skin": 0.0, "hair": 0.0},
                                                                                   abs=1e-9)
    # ... while the photo's points laid on the output would measure the wrong pixels
    wrong = region_colour_difference(out, photo, face, face, 112)
    assert wrong["skin"] > 50 and wrong["hair"] > 50
    # skin repainted white: skin dE = dE(white, red) by hand, hair untouched
    out_white = _painted(moved, skin=(255, 255, 255), hair=(0, 0, 255))
    got = region_colour_difference(out_white, photo, moved, face, 112)
    assert got["skin"] == pytest.approx(np.sqrt(46.7592 ** 2 + 80.0925 ** 2 + 67.2032 ** 2), abs=0.05)
    assert got["hair"] == pytest.approx(0.0, abs=1e-9)
    # flat images: every region has the one colour, dE = the pair's
    flat = region_colour_difference(_flat((255, 0, 0), 112), _flat((0, 0, 255), 112), face, face, 112)
    lab_d = np.linalg.norm(np.subtract(LAB_RED, LAB_BLUE))
    assert flat["skin"] == pytest.approx(lab_d, abs=0.05) and flat["hair"] == pytest.approx(lab_d, abs=0.05)
    with pytest.raises(ValueError, match="expected"):
        region_colour_difference(_flat((0, 0, 0), 64), photo, face, face, 112)


# ---------------------------------------------------------------- one set of outputs
def test_report_on_known_outputs():
    face = _face()
    photos = np.stack([_painted(face, (200, 150, 120), (40, 30, 20)), _painted(face, (220, 170, 140), (90, 60, 30))])
    pts = np.stack([face, face])
    # output = photo, DAN points 3-4-5 px off the targets (a shift: the eye line keeps its angle)
    rep = faithfulness_report(photos, photos, pts + (3.0, 4.0), pts, pts)
    assert rep["point_error_to_target_px"] == {"median": pytest.approx(5.0), "mean": pytest.approx(5.0), "images": 2}
    assert rep["eye_angle_diff_deg"]["median"] == pytest.approx(0.0, abs=1e-9)
    assert "eye_angle_diff_deg_photo_baseline" not in rep     # only with the DAN's points on the photos
    assert rep["skin_delta_e"]["median"] == pytest.approx(0.0) and rep["hair_delta_e"]["mean"] == pytest.approx(0.0)
    # the output's DAN points turned by 4 and 6 degrees: median |diff| 5
    turned = np.stack([_rotate(face, 4.0), _rotate(face, -6.0)])
    rep = faithfulness_report(photos, photos, turned, pts, pts, photo_dan_points=np.stack([_rotate(face, 2.0)] * 2))
    assert rep["eye_angle_diff_deg"]["median"] == pytest.approx(5.0)
    assert rep["eye_angle_diff_deg_photo_baseline"]["median"] == pytest.approx(2.0)
    assert rep["point_error_to_target_px"]["mean"] == pytest.approx(mean_point_error(turned, pts).mean())
    # a face off the crop has empty regions: counted out, and never a NaN in the JSON
    away = pts + 500.0
    rep = faithfulness_report(photos, photos, away, away, pts)
    assert rep["skin_delta_e"] == {"median": None, "mean": None, "images": 0}


def test_mean_point_error_by_hand():
    a = np.zeros((1, 2, 2))
    b = np.array([[[3.0, 4.0], [0.0, 1.0]]])
    assert mean_point_error(a, b) == pytest.approx([3.0])
