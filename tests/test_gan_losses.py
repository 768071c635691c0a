"""GAN losses against their formulas on tiny tensors, and the landmark loss's gradient path."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from face2anime.gan import losses as L
from face2anime.gan.models import CartoonGenerator
from face2anime.imaging.tensors import luma
from face2anime.params import AnimeDWeightsParams


def test_wing_constant_and_both_pieces():
    c = L.wing_constant(5.0, 2.0)
    assert c == pytest.approx(5.0 - 5.0 * math.log(3.5)) and c == pytest.approx(-1.2638, abs=1e-4)
    x = torch.tensor([0.0, 1.0, -3.0, 4.999, 5.0, -7.5, 20.0])
    got = L.wing(x, 5.0, 2.0)
    want = [5 * math.log(1 + abs(v) / 2) if abs(v) < 5 else abs(v) - c for v in x.tolist()]
    assert torch.allclose(got, torch.tensor(want), atol=1e-5)
    # C makes the two pieces meet at |x| = w
    assert L.wing(torch.tensor(5.0 - 1e-4)).item() == pytest.approx(L.wing(torch.tensor(5.0)).item(), abs=1e-3)


def test_wing_reductions():
    pred = torch.tensor([[[1.0, 2.0], [0.0, 6.0]], [[3.0, 0.0], [0.0, 0.0]]])
    target = torch.zeros_like(pred)
    per = L.wing(pred - target)
    assert L.wing_landmark_loss(pred, target, reduction="mean").item() == pytest.approx(per.mean().item())
    study = per.sum(dim=(1, 2)).mean() / 2          # the study's code: sum points and x/y, batch mean, halved
    assert L.wing_landmark_loss(pred, target, reduction="study").item() == pytest.approx(study.item())
    with pytest.raises(ValueError):
        L.wing_landmark_loss(pred, target, reduction="sum")


def _bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_bce_targets():
    real, fake, smooth = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5]), torch.tensor([-2.0, 0.0])
    want = (np.mean([_bce(v, 1) for v in real.tolist()]) + np.mean([_bce(v, 0) for v in fake.tolist()])
            + np.mean([_bce(v, 0) for v in smooth.tolist()]))
    assert L.bce_d_loss(real, fake, smooth).item() == pytest.approx(want, rel=1e-6)
    # The generator wants D(G(p)) called real: target 1 (a zero target, the port's bug, would reward fakes looking fake)
    assert L.bce_g_loss(fake).item() == pytest.approx(np.mean([_bce(v, 1) for v in fake.tolist()]), rel=1e-6)
    assert L.bce_g_loss(torch.tensor([5.0])) < L.bce_g_loss(torch.tensor([-5.0]))


def test_lsgan():
    real, fake, gray, smooth = (torch.tensor(v) for v in ([1.0, 0.0], [0.5, -0.5], [0.2, 0.4], [1.0, 1.0]))
    want = 0.5 + 0.25 + 0.7 * 0.1 + 0.2 * 1.0
    got = L.lsgan_d_loss(real, fake, gray, smooth, AnimeDWeightsParams(real=1.0, fake=1.0, gray=0.7, smooth=0.2))
    assert got.item() == pytest.approx(want)
    assert L.lsgan_d_loss(real, fake, gray, smooth).item() == pytest.approx(0.5 + 0.25 + 0.1 + 0.2)   # the study's
    assert L.lsgan_g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(2.0)


def test_gram_and_gram_loss():
    f = torch.tensor([[[[1.0, 2.0]], [[0.0, 3.0]]]])           # (1, C=2, H=1, W=2)
    g = L.gram(f)
    assert torch.allclose(g, torch.tensor([[[5.0, 6.0], [6.0, 9.0]]]) / 4)
    h = torch.zeros_like(f)
    assert L.gram_loss(f, h).item() == pytest.approx((5 + 6 + 6 + 9) / 4 / 4)


def test_yuv_colour_loss_uses_rgb_order():
    red = torch.full((1, 3, 2, 2), -1.0)
    red[:, 0] = 1.0
    yuv = L.rgb_to_yuv(red)
    assert yuv[0, 0].mean().item() == pytest.approx(0.299, abs=1e-6)
    assert yuv[0, 2].mean().item() == pytest.approx(0.61497538, abs=1e-6)
    black = torch.full_like(red, -1.0)
    # L1 on Y + Huber(delta 1) on U and V; all differences < 1, so Huber = 0.5 d^2
    want = 0.299 + 0.5 * 0.14714119 ** 2 + 0.5 * 0.61497538 ** 2
    assert L.color_loss(red, black).item() == pytest.approx(want, abs=1e-6)
    blue = red.flip(1)                                          # a BGR mix-up would give a different value
    assert L.color_loss(blue, black).item() != pytest.approx(want, abs=1e-3)


def test_luma_and_content():
    x = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1)        # R=1, G=0.5, B=0 in [0, 1]
    assert luma(x).item() == pytest.approx(0.299 + 0.587 * 0.5)
    a, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 0.0, 0.0])
    assert L.content_loss(a, b).item() == pytest.approx(3.5 / 3)


def test_landmark_loss_trains_generator_never_dan(tiny_dan):
    dan = tiny_dan(width=0.125, frozen=True)
    torch.manual_seed(0)
    G = CartoonGenerator(width=4, blocks=1, upsample="resize")
    before = {k: v.clone() for k, v in dan.state_dict().items()}
    loss_fn = L.LandmarkLoss(dan, 5.0, 2.0, "mean")
    G.train()
    loss_fn.train()                      # a parent's .train() must not wake the DAN up
    assert not dan.training
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    target = torch.rand(2, 40, 2) * 80 + 16
    loss = loss_fn(G(x), target)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in G.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None and not p.requires_grad for p in dan.parameters())
    torch.optim.Adam(G.parameters(), lr=1e-2).step()
    after = dan.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)   # BN running stats untouched too


def _smooth_image(seed: int, size: int = 112) -> torch.Tensor:
    """(1, 3, size, size) in [-1, 1] with only coarse detail: it survives a 2x downscale nearly unchanged."""
    coarse = torch.rand(1, 3, 7, 7, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def test_landmark_loss_resizes_to_dan_input(tiny_dan):
    """A 56 px generator output is scaled up to the DAN's 112 px input, so the DAN reads the same face, in
    its own 112 px frame, as it reads in the 112 px version of that image (not a padded or cropped one)."""
    dan = tiny_dan(width=0.125, frozen=True)
    loss_fn = L.LandmarkLoss(dan)
    big = _smooth_image(2)
    small = F.interpolate(big, size=(56, 56), mode="bilinear", antialias=True, align_corners=False)
    seen = []
    hook = dan.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        read_big, read_small, read_other = (loss_fn.points(x) for x in (big, small, _smooth_image(3)))
    hook.remove()
    assert seen == [(1, 1, 112, 112)] * 3
    assert (read_other - read_big).abs().mean() > 2.0     # the DAN's reading depends on the image...
    assert (read_small - read_big).abs().mean() < 1.0     # ...and the 56 px image reads as its 112 px self
    small = small.clone().requires_grad_(True)
    target = torch.full((1, 40, 2), 56.0)
    loss = loss_fn(small, target)
    assert loss.item() == pytest.approx(L.wing_landmark_loss(read_small, target).item(), rel=1e-5)
    loss.backward()
    assert small.grad is not None and small.grad.abs().sum() > 0
