"""Landmark metrics against numbers computed by hand."""

import math

import numpy as np
import pytest

from face2anime.landmarks import schema
from face2anime.metrics import landmarks as lm


def _face(iod=40.0):
    """A 40-point face whose eye centres are exactly `iod` px apart."""
    pts = np.zeros((40, 2))
    pts[:, 0] = np.linspace(10, 100, 40)
    pts[:, 1] = 50.0
    pts[list(schema.FACE40_LEFT_EYE)] = [30.0, 40.0]
    pts[list(schema.FACE40_RIGHT_EYE)] = [30.0 + iod, 40.0]
    return pts


def test_rmse_outliers_and_nme_by_hand():
    true = np.stack([_face(40.0), _face(20.0)])
    pred = true.copy()
    # image 0: every point off by (3, 4) -> error 5 px exactly (not an outlier: > 5 is required)
    pred[0] += [3.0, 4.0]
    # image 1: one point off by 6 px (outlier), one by 2 px, the rest exact
    pred[1, 0] += [6.0, 0.0]
    pred[1, 5] += [0.0, 2.0]

    err = lm.point_errors(pred, true)
    assert err[0] == pytest.approx(np.full(40, 5.0))
    rmse = lm.rmse_per_image(pred, true)
    assert rmse[0] == pytest.approx(5.0)
    assert rmse[1] == pytest.approx(math.sqrt((36 + 4) / 40))

    nme = lm.nme_per_image(pred, true)
    assert nme[0] == pytest.approx(5.0 / 40.0)
    assert nme[1] == pytest.approx((8.0 / 40) / 20.0)

    r = lm.landmark_report(pred, true, outlier_px=5.0, failure_nme=0.08, ced_max=0.2)
    assert r["images"] == 2 and r["points"] == 80
    assert r["rmse_px"] == pytest.approx((5.0 + math.sqrt(1.0)) / 2)
    assert r["rmse_px_pooled"] == pytest.approx(math.sqrt((40 * 25 + 36 + 4) / 80))
    assert r["outlier_points"] == 1
    assert r["outlier_points_pct"] == pytest.approx(100 / 80)
    assert r["images_with_outlier"] == 1 and r["images_with_outlier_pct"] == pytest.approx(50.0)
    assert r["nme_interocular"] == pytest.approx((0.125 + 0.01) / 2)
    assert r["failure_rate_pct"] == pytest.approx(50.0)  # 0.125 > 0.08, 0.01 is not
    # contour holds points 0 and 5 of image 1: (5*17 + 6 + 2) / 34 over both images
    assert r["region_mean_error_px"]["contour"] == pytest.approx((5 * 17 + 6 + 2) / 34)
    assert r["region_mean_error_px"]["nose"] == pytest.approx(2.5)


def test_ced_and_auc():
    nme = np.array([0.0, 0.05, 0.1, 0.3])
    x, frac = lm.ced_curve(nme, ced_max=0.2, steps=5)  # x = 0, .05, .1, .15, .2
    np.testing.assert_allclose(x, [0, 0.05, 0.1, 0.15, 0.2])
    np.testing.assert_allclose(frac, [0.25, 0.5, 0.75, 0.75, 0.75])
    # trapezoid: 0.05 * (0.375 + 0.625 + 0.75 + 0.75) = 0.125 ; / 0.2
    assert lm.ced_auc(x, frac) == pytest.approx(0.625)


def test_per_landmark_and_shape_checks():
    true = np.zeros((4, 40, 2))
    pred = true.copy()
    pred[:, 3, 0] = [1.0, 2.0, 3.0, 10.0]
    per = lm.per_landmark_error(pred, true, outlier_px=5.0)
    assert per["mean_px"][3] == pytest.approx(4.0)
    assert per["rmse_px"][3] == pytest.approx(math.sqrt((1 + 4 + 9 + 100) / 4))
    assert per["outlier_pct"][3] == pytest.approx(25.0) and per["outlier_pct"][0] == 0
    with pytest.raises(ValueError):
        lm.point_errors(pred, true[:, :39])
