"""The landmark layouts: flip pairings are consistent across every mapping into the 40-point model."""

import numpy as np
import pytest

from face2anime.landmarks import schema as s


def test_layout_sizes_and_flip_is_involution():
    for layout, n in ((s.HYSTS28, 28), (s.IBUG68, 68), (s.FACE40, 40)):
        assert layout.n == n
        perm = layout.flip_permutation()
        assert sorted(perm) == list(range(n))
        assert (perm[perm] == np.arange(n)).all()


def test_flip_pairs_pair_left_with_right_names():
    for layout in (s.HYSTS28, s.FACE40):
        for a, b in layout.flip_pairs:
            na, nb = layout.names[a], layout.names[b]
            if na.startswith("contour") or na.startswith("mouth"):
                continue
            assert na.replace("left", "X").replace("right", "X") == nb.replace("right", "X").replace("left", "X")
            assert ("left" in na) != ("left" in nb)


@pytest.mark.parametrize("mapping", ["meaning"])
def test_dlib_mapping_commutes_with_mirroring(mapping):
    rng = np.random.default_rng(0)
    pts68 = rng.uniform(0, 100, size=(5, 68, 2))
    width = 100
    mapped_then_flipped = s.flip_points(s.dlib_to_face40(pts68, mapping), s.FACE40, width)
    flipped_then_mapped = s.dlib_to_face40(s.flip_points(pts68, s.IBUG68, width), mapping)
    np.testing.assert_allclose(mapped_then_flipped, flipped_then_mapped)


def test_study_mapping_is_flip_consistent_except_at_the_eyes():
    """The study's list is kept for reproduction only: it is known not to be semantically aligned. Its eye
    points follow dlib's order (corner, two upper, corner, two lower) where hysts' has three upper and three
    lower, so exactly the 12 eye points fail to commute with mirroring; contour, brows, nose and its (all
    lower-lip) mouth points still do."""
    rng = np.random.default_rng(0)
    pts68 = rng.uniform(0, 100, size=(3, 68, 2))
    a = s.flip_points(s.dlib_to_face40(pts68, "study"), s.FACE40, 100)
    b = s.dlib_to_face40(s.flip_points(pts68, s.IBUG68, 100), "study")
    inconsistent = np.flatnonzero(~np.isclose(a, b).all(axis=(0, 2)))
    assert inconsistent.tolist() == list(s.FACE40_EYES)


def test_anime_mapping_commutes_with_mirroring():
    rng = np.random.default_rng(1)
    p28 = rng.uniform(0, 100, size=(3, 28, 2))
    c17 = rng.uniform(0, 100, size=(3, 17, 2))
    width = 100
    mapped_then_flipped = s.flip_points(s.anime_to_face40(p28, c17), s.FACE40, width)
    # mirroring reverses the contour's order and swaps hysts' pairs
    flipped_then_mapped = s.anime_to_face40(s.flip_points(p28, s.HYSTS28, width),
                                            s.flip_points(c17, _contour_layout(), width))
    np.testing.assert_allclose(mapped_then_flipped, flipped_then_mapped)


def _contour_layout():
    return s.Layout("contour17", tuple(f"c{i}" for i in range(17)), tuple((i, 16 - i) for i in range(8)))


def test_lower_lid_shift_moves_only_lower_lids():
    pts68 = np.zeros((68, 2))
    out = s.dlib_to_face40(pts68, "meaning", lower_lid_shift=8.8)
    moved = np.nonzero(out[:, 1])[0]
    assert tuple(moved) == s.FACE40_LOWER_LIDS
    np.testing.assert_allclose(out[moved, 1], 8.8)
    study = s.dlib_to_face40(pts68, "study", lower_lid_shift=8.8)
    assert np.count_nonzero(study[:, 1]) == 6  # the study shifted two eye corners too


def test_dlib_semantics_match_anime_names():
    w = s.dlib_mapping_matrix("meaning")
    # upper lid outer corner of the left eye is dlib 36; mouth corners are 48/54; nose tip 30
    assert w[s.FACE40.names.index("left_eye_upper_outer"), 36] == 1
    assert w[s.FACE40.names.index("mouth_left"), 48] == 1
    assert w[s.FACE40.names.index("mouth_right"), 54] == 1
    assert w[s.FACE40.names.index("nose"), 30] == 1


def test_table_round_trip():
    import pandas as pd

    pts = np.arange(2 * 40 * 2, dtype=float).reshape(2, 40, 2)
    df = pd.DataFrame(s.points_to_table(pts, "q"))
    np.testing.assert_array_equal(s.points_from_table(df, "q", 40), pts)
