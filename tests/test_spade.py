"""The SPADE painter (gan/spade.py, the spade objective, gan/painting.py) and the DRAGAN penalty (gan/losses.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from face2anime.demo.character import sample_character
from face2anime.demo.draw import Canvas, downscale, render
from face2anime.demo.face import FaceState, build_face
from face2anime.demo.geometry import Pose
from face2anime.errors import UserError
from face2anime.gan import losses as L
from face2anime.gan.models import build_discriminator, build_generator, generator_record, save_generator
from face2anime.gan.painting import Painter, load_painter
from face2anime.gan.spade import Spade, SpadeGenerator
from face2anime.landmarks.schema import anime_to_face40
from face2anime.paint.conditioning import CHANNELS, conditioning_batch
from face2anime.params import (ConditioningParams, RoughParams, SpadeDiscriminatorParams, SpadeGeneratorParams)

COND = ConditioningParams(size=32, rough=RoughParams(median_before=3, spatial_radius=10.0, color_radius=40.0,
                                                     median_after=3),
                          fill_dilate=1, fill_radius=3.0, line_width=1, flat_skin=True)
TINY_G = SpadeGeneratorParams(width=16, blocks=3, hidden=16, noise=True)


def anime_crops(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` demo-renderer anime faces framed in `size` px crops, and their 40 true points."""
    rng = np.random.default_rng(seed)
    crops, points = [], []
    for k in range(n):
        ch = sample_character(rng, f"c{k}")
        ss = 2
        canvas = np.full((size * ss, size * ss, 3), 200, np.uint8)
        face = build_face(ch, FaceState(Pose(size / 2, size * 0.42, size * 0.3, float(rng.uniform(-8, 8)))))
        render(Canvas(canvas, ss), face.items)
        crops.append(downscale(canvas, ss))
        points.append(anime_to_face40(face.points28, face.contour17))
    return np.stack(crops), np.stack(points).astype(np.float32)


@pytest.fixture(scope="module")
def pairs():
    crops, points = anime_crops(4, COND.size)
    return crops, points, conditioning_batch(crops, points, COND, threads=2)


def test_spade_block_takes_scale_and_shift_from_the_map():
    """Parameter-free norm: with gamma/beta convs zeroed the block is a plain instance norm; with a map that
    differs only in one region, only that region's output changes."""
    torch.manual_seed(0)
    block = Spade(4, 2, 8)
    x = torch.randn(1, 4, 8, 8)
    for conv in (block.gamma, block.beta):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    assert torch.allclose(block(x, torch.randn(1, 2, 8, 8)), torch.nn.functional.instance_norm(x), atol=1e-6)
    block = Spade(4, 2, 8)
    a = torch.zeros(1, 2, 8, 8)
    b = a.clone()
    b[..., :2, :2] = 1.0   # differs in the top-left corner only
    changed = (block(x, a) - block(x, b)).abs().sum(dim=1)[0] > 1e-6
    assert changed[:4, :4].any() and not changed[5:, 5:].any()   # 3x3 convs twice: a 2 px reach


def test_generator_output_and_a_wrong_conditioning_is_one_line():
    G = SpadeGenerator(len(CHANNELS), 64, TINY_G).eval()
    y = G(torch.zeros(2, len(CHANNELS), 64, 64))
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1
    with pytest.raises(UserError, match=r"conditioning of shape \(N, 8, 64, 64\); got \(2, 3, 64, 64\)"):
        G(torch.zeros(2, 3, 64, 64))
    with pytest.raises(UserError, match="must divide by"):
        SpadeGenerator(8, 62, TINY_G)


def test_noise_only_in_training_so_a_trained_painter_is_deterministic():
    G = SpadeGenerator(len(CHANNELS), 64, TINY_G)
    for m in G.modules():
        if hasattr(m, "strength"):
            torch.nn.init.constant_(m.strength, 0.5)
    c = torch.rand(1, len(CHANNELS), 64, 64)
    G.train()
    assert not torch.equal(G(c), G(c))
    G.eval()
    assert torch.equal(G(c), G(c))


def test_multiscale_discriminator_sees_every_scale():
    D = build_discriminator(SpadeDiscriminatorParams(width=8, scales=2, layers=3))
    x = torch.randn(2, len(CHANNELS) + 3, 64, 64)
    feats = D.features(x)
    assert len(feats) == 2 and len(feats[0]) == 4
    logits = D(x)
    assert logits.shape[:2] == (2, 1) and logits.shape[2] == sum(f[-1][0].numel() for f in feats)


@pytest.mark.slow
def test_tiny_painter_overfits_four_anime_crops_from_their_conditioning(pairs):
    """Reconstruction from the conditioning alone: pixel MAE (in [0, 1] units) <= 0.05 on 4 anime crops."""
    crops, _, cond = pairs
    torch.manual_seed(0)
    G = build_generator(TINY_G, COND.size)
    target = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    c = torch.from_numpy(cond)
    opt = torch.optim.Adam(G.parameters(), lr=3e-3, betas=(0.5, 0.999))
    for _ in range(300):
        loss = (G(c) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    G.eval()
    with torch.no_grad():
        mae = float((G(c) - target).abs().mean()) / 2
    assert mae <= 0.05, mae


def test_dragan_penalty_matches_a_hand_computation():
    """A linear D(x) = sum(w * x) / P over its P patches: the gradient of the per-sample mean logit is w / P
    whatever x_hat, so the penalty is (||w|| / P - 1)^2; with a quadratic D the value depends on x_hat and is
    checked against the formula with the same draws."""
    torch.manual_seed(0)
    w = torch.randn(1, 3, 4, 4)

    def linear(x):     # (B, 3, 4, 4) -> (B, 1, 2) "patch" logits: the sum split in two halves
        y = (w * x).flatten(1)
        return torch.stack([y[:, :24].sum(1), y[:, 24:].sum(1)], dim=1)[:, None]

    real = torch.randn(5, 3, 4, 4)
    got = L.dragan_penalty(linear, real, 0.5)
    want = (w.norm() / 2 - 1) ** 2
    assert torch.allclose(got, want, atol=1e-5)

    def quadratic(x):  # D(x) = sum(x^2): grad = 2 x_hat
        return (x ** 2).flatten(1).sum(1)[:, None, None]

    alpha, u = torch.rand(5), torch.rand(5, 3, 4, 4)
    x_hat = real + alpha.view(-1, 1, 1, 1) * 0.5 * real.std() * u
    want = ((2 * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(L.dragan_penalty(quadratic, real, 0.5, noise=(alpha, u)), want, atol=1e-5)


def test_hinge_and_feature_matching_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert float(L.hinge_d_loss(real, fake)) == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert float(L.hinge_g_loss(fake)) == pytest.approx(1.0)
    a = [[torch.ones(1, 2), torch.zeros(1)]]
    b = [[torch.zeros(1, 2), torch.ones(1)]]     # the logit layers differ but are excluded
    assert float(L.feature_matching_loss(a, b)) == pytest.approx(1.0)


def _painter_dir(tmp_path, mean_shape):
    G = build_generator(TINY_G, COND.size)
    config = {"generator": generator_record("spade", TINY_G), "image_size": COND.size,
              "painter": {"conditioning": COND.model_dump(), "shape_move": 1.0, "anime_mean_shape": mean_shape}}
    save_generator(tmp_path / "spade", G, config)
    return tmp_path / "spade"


def test_painter_folder_round_trip_and_bad_points(tmp_path, pairs):
    crops, points, _ = pairs
    folder = _painter_dir(tmp_path, points.mean(axis=0).tolist())
    painter = load_painter(folder, torch.device("cpu"), batch_size=2, threads=1)
    assert painter.needs_points and painter.input_shape() == (len(CHANNELS), 32, 32)
    out = painter(crops, points)
    assert out.shape == (4, 32, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out, painter(crops, points))                     # deterministic
    moved = painter.target_points(points)                                  # shape_move 1: the fitted mean
    assert np.allclose(moved.mean(axis=0), points.mean(axis=0), atol=2.0)
    bad = points.copy()
    bad[1, 5] = (500.0, 10.0)
    with pytest.raises(UserError, match="face 1: its points cannot condition the painter: .*out of the 32x32 frame"):
        painter(crops, bad)
    with pytest.raises(UserError, match="needs 40 points per face"):
        painter(crops)
    config = json.loads((folder / "config.json").read_text())
    assert painter.cond.flat_skin and np.array_equal(painter.conditioning(crops, points),
                                                     conditioning_batch(crops, moved, COND, threads=1))
    del config["painter"]["conditioning"]["flat_skin"]       # a painter trained before the flat face existed
    (folder / "config.json").write_text(json.dumps(config))
    old = load_painter(folder, torch.device("cpu"), batch_size=2, threads=1)
    assert not old.cond.flat_skin
    assert np.array_equal(old.conditioning(crops, points),
                          conditioning_batch(crops, moved, COND.model_copy(update={"flat_skin": False}), threads=1))
    config["painter"]["anime_mean_shape"] = [[0, 0]]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="anime_mean_shape is not 40 finite"):
        load_painter(folder, torch.device("cpu"), batch_size=2, threads=1)


def test_study_generators_paint_the_photo_itself(tmp_path):
    from face2anime.params import CartoonGeneratorParams

    g = CartoonGeneratorParams(width=4, blocks=1, upsample="resize")
    save_generator(tmp_path / "cg", build_generator(g, None), {"generator": generator_record("cartoongan", g),
                                                               "image_size": 32})
    painter = load_painter(tmp_path / "cg", torch.device("cpu"), batch_size=3, threads=1)
    assert not painter.needs_points and painter.conditioning(np.zeros((1, 32, 32, 3), np.uint8), None) is None
    crops = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    assert painter(crops).shape == (5, 32, 32, 3)
    assert np.array_equal(painter.target_points(np.ones((1, 40, 2))), np.ones((1, 40, 2)))
    assert isinstance(painter, Painter)
