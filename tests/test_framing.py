"""The canonical framing rule: coordinates round-trip and pixels land where the points say."""

import numpy as np

from face2anime.landmarks import framing as fr


def test_to_crop_and_back_round_trip():
    rng = np.random.default_rng(0)
    pts = rng.uniform(50, 300, size=(4, 40, 2))
    sq = fr.framing_square(pts, fr.Framing(margin=1.25, y_shift=-0.05))
    back = fr.from_crop(fr.to_crop(pts, sq, 112), sq, 112)
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_framing_square_contains_points_with_margin():
    pts = np.array([[[100.0, 100.0], [200.0, 150.0], [150.0, 220.0]]])
    sq = fr.framing_square(pts, fr.Framing(margin=1.25, y_shift=0.0))
    x0, y0, side = sq[0]
    assert side == 1.25 * 120
    assert x0 < 100 and x0 + side > 200 and y0 < 100 and y0 + side > 220
    crop_pts = fr.to_crop(pts, sq, 112)
    assert (crop_pts > 0).all() and (crop_pts < 111).all()


def test_crop_image_puts_a_dot_where_the_point_maps():
    img = np.zeros((360, 640, 3), np.uint8)
    x, y = 301, 187
    img[y - 2 : y + 3, x - 2 : x + 3] = 255
    pts = np.array([[250.0, 150.0], [360.0, 260.0], [x, y]])
    sq = fr.framing_square(pts, fr.Framing(margin=1.25, y_shift=-0.05))
    crop = fr.crop_image(img, sq, 112)
    u, v = fr.to_crop(pts[None], sq[None], 112)[0, 2]
    gray = crop[..., 0].astype(float)
    yy, xx = np.mgrid[: gray.shape[0], : gray.shape[1]]
    cx, cy = (gray * xx).sum() / gray.sum(), (gray * yy).sum() / gray.sum()
    assert abs(cx - u) < 0.2 and abs(cy - v) < 0.2
