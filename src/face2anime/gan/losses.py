"""GAN losses, each a small function of tensors (so each can be checked against its formula).

Conventions: images are RGB in [-1, 1]; discriminator outputs are logits (patch maps); landmark points
are crop pixels at the DAN's input size (112). Every loss returns a scalar tensor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from face2anime.imaging.images import LUMA
from face2anime.imaging.tensors import luma
from face2anime.params import AnimeDWeightsParams

# RGB -> YUV (BT.601 analogue, U/V unscaled), rows Y, U, V; Y is the one luma (`imaging.images.LUMA`).
YUV_MATRIX = (
    LUMA,
    (-0.14714119, -0.28886916, 0.43601035),
    (0.61497538, -0.51496512, -0.10001026),
)
REDUCTIONS = ("mean", "study")


# ------------------------------------------------------------------------------------------ colour helpers
def to_unit(rgb: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (rgb + 1.0) * 0.5


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [-1, 1] -> (B, 3, H, W) YUV of the [0, 1] image (channels Y, U, V)."""
    m = rgb.new_tensor(YUV_MATRIX)
    return torch.einsum("oc,bchw->bohw", m, to_unit(rgb))


# ------------------------------------------------------------------------------------------ adversarial
def bce_d_loss(real: torch.Tensor, fake: torch.Tensor, smooth: torch.Tensor | None = None) -> torch.Tensor:
    """CartoonGAN discriminator: real anime -> 1, generated -> 0, edge-smoothed anime -> 0 (BCE on logits)."""
    loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    if smooth is not None:
        loss = loss + F.binary_cross_entropy_with_logits(smooth, torch.zeros_like(smooth))
    return loss


def bce_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """CartoonGAN generator: make D call the generated image real (target 1, not the port's bug of 0)."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


STUDY_D_WEIGHTS = AnimeDWeightsParams(real=1.0, fake=1.0, gray=1.0, smooth=0.2)


def lsgan_d_loss(real: torch.Tensor, fake: torch.Tensor, gray: torch.Tensor | None = None,
                 smooth: torch.Tensor | None = None, weights: AnimeDWeightsParams = STUDY_D_WEIGHTS) -> torch.Tensor:
    """AnimeGAN discriminator (LSGAN): E[(D(real)-1)^2] + E[D(fake)^2] + w_g E[D(gray)^2] + w_s E[D(smooth)^2]."""
    w = weights
    loss = w.real * ((real - 1.0) ** 2).mean() + w.fake * (fake ** 2).mean()
    if gray is not None:
        loss = loss + w.gray * (gray ** 2).mean()
    if smooth is not None:
        loss = loss + w.smooth * (smooth ** 2).mean()
    return loss


def lsgan_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """AnimeGAN generator (LSGAN): E[(D(G(p)) - 1)^2]."""
    return ((fake - 1.0) ** 2).mean()


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """SPADE discriminator (hinge): E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """SPADE generator (hinge): -E[D(G(c))]."""
    return -fake.mean()


def feature_matching_loss(fake_feats: list[list[torch.Tensor]], real_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD / SPADE discriminator feature matching: L1 between D's intermediate outputs (the logit maps
    excluded) on the generated and the real image, averaged over the scales."""
    total = fake_feats[0][0].new_zeros(())
    for fake, real in zip(fake_feats, real_feats, strict=True):
        for f, r in zip(fake[:-1], real[:-1], strict=True):
            total = total + F.l1_loss(f.float(), r.detach().float())
    return total / len(fake_feats)


def dragan_penalty(score, real: torch.Tensor, perturbation: float, generator: torch.Generator | None = None,
                   noise: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """DRAGAN (Kodali et al. 2017; the reference code): E[(||grad_x D(x_hat)||_2 - 1)^2] with
    x_hat = x + alpha * perturbation * std(x) * U[0, 1] near the real samples, alpha ~ U[0, 1] per sample.

    `score(x)` is D's logit map of an image batch; its per-sample mean is differentiated (a patch D has one
    logit per patch). `noise` = (alpha (B,), u like x) replaces the random draws (tests)."""
    if noise is None:
        alpha = torch.rand(real.shape[0], generator=generator, device="cpu").to(real.device, real.dtype)
        u = torch.rand(real.shape, generator=generator, device="cpu").to(real.device, real.dtype)
    else:
        alpha, u = noise
    x_hat = (real.detach() + alpha.view(-1, *[1] * (real.ndim - 1)) * perturbation * real.detach().std() * u)
    x_hat.requires_grad_(True)
    out = score(x_hat).float().flatten(1).mean(dim=1)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


# ------------------------------------------------------------------------------------------ content/style
def content_loss(feat_fake: torch.Tensor, feat_photo: torch.Tensor) -> torch.Tensor:
    """Mean L1 between backbone features of G(p) and of p."""
    return F.l1_loss(feat_fake, feat_photo)


def gram(feat: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix normalised by C*H*W (scale-free across layers and sizes)."""
    b, c, h, w = feat.shape
    f = feat.reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def gram_loss(feat_fake: torch.Tensor, feat_gray_anime: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the Gram matrices of G(p) and of grayscale anime images (AnimeGAN style loss)."""
    return F.l1_loss(gram(feat_fake), gram(feat_gray_anime))


def color_loss(fake: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """AnimeGAN colour loss in YUV: L1 on Y, Huber (delta 1) on U and on V."""
    a, b = rgb_to_yuv(fake), rgb_to_yuv(photo)
    return (F.l1_loss(a[:, 0], b[:, 0]) + F.huber_loss(a[:, 1], b[:, 1], delta=1.0)
            + F.huber_loss(a[:, 2], b[:, 2], delta=1.0))


# ------------------------------------------------------------------------------------------ landmarks
def wing_constant(w: float, eps: float) -> float:
    """C = w - w ln(1 + w/eps): joins the log and linear pieces continuously (w=5, eps=2: C = -1.264)."""
    return w - w * math.log(1.0 + w / eps)


def wing(x: torch.Tensor, w: float = 5.0, eps: float = 2.0) -> torch.Tensor:
    """Elementwise Wing loss: w ln(1 + |x|/eps) where |x| < w, else |x| - C."""
    ax = x.abs()
    return torch.where(ax < w, w * torch.log1p(ax / eps), ax - wing_constant(w, eps))


def wing_landmark_loss(pred: torch.Tensor, target: torch.Tensor, w: float = 5.0, eps: float = 2.0,
                       reduction: str = "mean") -> torch.Tensor:
    """Wing between (B, N, 2) point sets. 'mean': over everything; 'study': sum over points and x/y,
    mean over the batch, halved (the study's code)."""
    loss = wing(pred - target, w, eps)
    if reduction == "mean":
        return loss.mean()
    if reduction == "study":
        return loss.sum(dim=(1, 2)).mean() / 2.0
    raise ValueError(f"unknown landmark loss reduction {reduction!r}; choose one of {REDUCTIONS}")


class LandmarkLoss(nn.Module):
    """grayscale(G(p)) -> frozen DAN -> Wing against the photo's points, inside the autograd graph.

    The DAN's parameters are frozen (requires_grad False) and it stays in eval mode, so gradients reach
    the generator through the image only and nothing ever updates the DAN.
    """

    def __init__(self, dan: nn.Module, w: float = 5.0, eps: float = 2.0, reduction: str = "mean",
                 dan_size: int = 112):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown landmark loss reduction {reduction!r}; choose one of {REDUCTIONS}")
        self.dan = dan.eval()
        for p in self.dan.parameters():
            p.requires_grad_(False)
        self.w, self.eps, self.reduction, self.dan_size = float(w), float(eps), reduction, int(dan_size)

    def train(self, mode: bool = True) -> LandmarkLoss:
        """Never let a parent's .train() switch the DAN out of eval mode (BN statistics, dropout)."""
        super().train(mode)
        self.dan.eval()
        return self

    def points(self, fake_rgb: torch.Tensor) -> torch.Tensor:
        """The DAN's (B, 40, 2) reading of generated RGB images in [-1, 1] (resized to the DAN's input size)."""
        gray = luma(fake_rgb.float())
        if gray.shape[-1] != self.dan_size or gray.shape[-2] != self.dan_size:
            gray = F.interpolate(gray, size=(self.dan_size, self.dan_size), mode="bilinear",
                                 align_corners=False, antialias=True)
        return self.dan(gray)

    def forward(self, fake_rgb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return wing_landmark_loss(self.points(fake_rgb), target, self.w, self.eps, self.reduction)
