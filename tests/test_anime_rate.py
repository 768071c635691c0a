"""The "looks anime" probe: a balanced L2 logistic regression checked against its hand-solved optimum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq, check_grad
from scipy.special import expit

from face2anime.io import read_arrays, write_arrays
from face2anime.metrics.anime_rate import LinearProbe, _objective, anime_rate, fit_linear_probe, probe_keys


def test_one_dimensional_optimum_by_hand_and_class_sizes_do_not_move_the_boundary():
    # 3 anime at x = +1, 1 photo at x = -1. Standardised with the pooled mean 0.5 and std sqrt(0.75):
    # z_a = 0.5 / s, z_p = -1.5 / s. With each class weighing 1/2, d loss / d b = 0 gives
    # sigmoid(-l_a) = sigmoid(l_p), i.e. l_p = -l_a: b = -w (z_a + z_p) / 2, so the boundary is the midpoint
    # x = 0 however many crops each class has. d loss / d w = 0 then reads
    #   0.5 * sigmoid(-w d / 2) * d = (l2 / N) * w,   d = z_a - z_p = 2 / s, N = 4.
    l2, n = 2.0, 4
    s = np.sqrt(0.75)
    z_a, z_p, d = 0.5 / s, -1.5 / s, 2.0 / s
    w_hand = brentq(lambda w: 0.5 * expit(-w * d / 2) * d - l2 / n * w, 0.0, 100.0, xtol=1e-14)
    b_hand = -w_hand * (z_a + z_p) / 2
    probe = fit_linear_probe(np.ones((3, 1)), -np.ones((1, 1)), l2)
    assert probe.mean == pytest.approx([0.5]) and probe.std == pytest.approx([s])
    assert probe.w == pytest.approx([w_hand], abs=1e-6) and probe.b == pytest.approx(b_hand, abs=1e-6)
    assert probe.logits(np.array([[0.0]]))[0] == pytest.approx(0.0, abs=1e-6)
    # p(anime) at the anime value = sigmoid(w d / 2), the same margin on both sides
    assert probe.prob(np.array([[1.0], [-1.0]])) == pytest.approx([expit(w_hand * d / 2), expit(-w_hand * d / 2)],
                                                                    abs=1e-6)
    # a stronger penalty shrinks w, never moves the boundary
    weak = fit_linear_probe(np.ones((3, 1)), -np.ones((1, 1)), 0.1)
    assert weak.w[0] > probe.w[0] > 0 and weak.logits(np.array([[0.0]]))[0] == pytest.approx(0.0, abs=1e-6)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(7, 3)), np.array([1, 1, 1, -1, -1, 1, -1.0])
    c = rng.uniform(0.1, 1.0, 7)
    f = lambda p: _objective(p, z, y, c, 0.3)[0]  # noqa: E731
    g = lambda p: _objective(p, z, y, c, 0.3)[1]  # noqa: E731
    assert check_grad(f, g, rng.normal(size=4)) < 1e-6


def test_anime_rate_counts_p_above_one_half():
    probe = LinearProbe(mean=np.zeros(1), std=np.ones(1), w=np.array([2.0]), b=-1.0)
    # logits -1, -0.2, 0 (p exactly 0.5: not anime), 0.2, 3
    assert anime_rate(probe, np.array([[0.0], [0.4], [0.5], [0.6], [2.0]])) == pytest.approx(2 / 5)
    with pytest.raises(ValueError):
        anime_rate(probe, np.zeros((0, 1)))


def test_separable_clouds_and_scale_invariance():
    rng = np.random.default_rng(1)
    shift = np.zeros(16)
    shift[:4] = 2.0
    anime, photo = rng.normal(size=(60, 16)) + shift, rng.normal(size=(20, 16))
    probe = fit_linear_probe(anime, photo, 1.0)
    test_anime, test_photo = rng.normal(size=(200, 16)) + shift, rng.normal(size=(200, 16))
    assert anime_rate(probe, test_anime) > 0.9 and anime_rate(probe, test_photo) < 0.1
    # the features are standardised: a unit change of one feature (x1000) changes nothing
    scale = np.ones(16)
    scale[3] = 1000.0
    scaled = fit_linear_probe(anime * scale, photo * scale, 1.0)
    assert scaled.prob(test_photo * scale) == pytest.approx(probe.prob(test_photo), abs=1e-6)
    # deterministic: the same features give the same bytes
    again = fit_linear_probe(anime, photo, 1.0)
    assert again.w.tobytes() == probe.w.tobytes() and again.b == probe.b


def test_constant_feature_and_arrays_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    anime, photo = rng.normal(1.0, 1.0, (10, 3)), rng.normal(-1.0, 1.0, (10, 3))
    anime[:, 2] = photo[:, 2] = 5.0          # no information, std 0: kept finite
    probe = fit_linear_probe(anime, photo, 1.0)
    assert probe.std[2] == 1.0 and probe.w[2] == pytest.approx(0.0, abs=1e-9) and np.isfinite(probe.w).all()
    write_arrays(tmp_path / "ref.npz", **probe.to_arrays(), other=np.zeros(2))
    arrays = read_arrays(tmp_path / "ref.npz")
    assert probe_keys() <= set(arrays)
    back = LinearProbe.from_arrays(arrays)
    assert np.array_equal(back.w, probe.w) and np.array_equal(back.mean, probe.mean) and back.b == probe.b


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same d"):
        fit_linear_probe(np.zeros((3, 2)), np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="one sample per class"):
        fit_linear_probe(np.zeros((0, 2)), np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="l2"):
        fit_linear_probe(np.ones((3, 2)), np.zeros((3, 2)), 0.0)
