"""SPADE painter networks (Park et al. 2019; SPADE-AnimeFace): a generator that paints an anime face from
its conditioning map (the rough with the face parts filled + landmark channels, `paint/conditioning.py`),
and a multi-scale PatchGAN that judges (conditioning, image) pairs.

The conditioning does not enter through the first layer only: every normalisation takes its scale and
shift from it (SPADE), so the layout survives the parameter-free norms that would wash a plain encoder's
input out. Per-layer noise (SPADE-AnimeFace) gives the painter texture to work with; it is added only in
training mode, so a trained painter is deterministic and exports without random ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from face2anime.errors import UserError
from face2anime.params import SpadeDiscriminatorParams, SpadeGeneratorParams


def _resize_map(cond: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The map at a feature size. Downsampling averages (area), so that 2 px landmark lines still show at 7x7
    where SPADE's nearest sampling would drop most of them; upsampling is nearest."""
    size = (int(size[0]), int(size[1]))   # python ints: constant output sizes when traced (ONNX export)
    if cond.shape[-2:] == size:
        return cond
    if cond.shape[-2] > size[0]:
        return F.adaptive_avg_pool2d(cond, size)
    return F.interpolate(cond, size=size, mode="nearest")


class Spade(nn.Module):
    """norm(x) * (1 + gamma(map)) + beta(map), norm parameter-free (instance norm)."""

    def __init__(self, channels: int, cond_channels: int, hidden: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.shared(_resize_map(cond, x.shape[-2:]))
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)


class Noise(nn.Module):
    """x + strength * N(0, 1), one learned strength per channel, one noise image per sample (training only)."""

    def __init__(self, channels: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x + self.strength * torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)


class SpadeResBlock(nn.Module):
    """(noise, SPADE, LeakyReLU 0.2, 3x3 conv) twice + shortcut (SPADE + 1x1 conv where channels change)."""

    def __init__(self, cin: int, cout: int, cond_channels: int, hidden: int, noise: bool):
        super().__init__()
        mid = min(cin, cout)
        self.noise0 = Noise(cin) if noise else nn.Identity()
        self.noise1 = Noise(mid) if noise else nn.Identity()
        self.norm0, self.conv0 = Spade(cin, cond_channels, hidden), spectral_norm(nn.Conv2d(cin, mid, 3, padding=1))
        self.norm1, self.conv1 = Spade(mid, cond_channels, hidden), spectral_norm(nn.Conv2d(mid, cout, 3, padding=1))
        self.learned_shortcut = cin != cout
        if self.learned_shortcut:
            self.norm_s = Spade(cin, cond_channels, hidden)
            self.conv_s = spectral_norm(nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        dx = self.conv0(F.leaky_relu(self.norm0(self.noise0(x), cond), 0.2))
        dx = self.conv1(F.leaky_relu(self.norm1(self.noise1(dx), cond), 0.2))
        skip = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        return skip + dx


class SpadeGenerator(nn.Module):
    """map -> (map at size / 2^(blocks-1) -> 3x3 conv) -> `blocks` SPADE residual blocks, one per resolution,
    nearest x2 upsampling between them -> LeakyReLU -> 3x3 conv -> tanh.

    Channels halve from the coarsest block (width x 4) to the finest (width), as in SPADE's generator.
    """

    def __init__(self, cond_channels: int, size: int, g: SpadeGeneratorParams):
        super().__init__()
        self.cond_channels, self.size = int(cond_channels), int(size)
        if size % 2 ** (g.blocks - 1):
            raise UserError(f"gan.spade.generator.blocks = {g.blocks}: the image size {size} must divide by "
                            f"2^(blocks - 1) = {2 ** (g.blocks - 1)}")
        self.start = size // 2 ** (g.blocks - 1)
        widths = [g.width * 2 ** min(2, g.blocks - 1 - i) for i in range(g.blocks)]
        self.head = nn.Conv2d(cond_channels, widths[0], 3, padding=1)
        self.blocks = nn.ModuleList(
            SpadeResBlock(widths[max(i - 1, 0)], widths[i], cond_channels, g.hidden, g.noise) for i in range(g.blocks))
        self.out = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        if cond.ndim != 4 or cond.shape[1] != self.cond_channels or tuple(cond.shape[-2:]) != (self.size, self.size):
            raise UserError(f"the spade generator takes a conditioning of shape (N, {self.cond_channels}, {self.size}, "
                            f"{self.size}); got {tuple(cond.shape)}")
        x = self.head(_resize_map(cond, (self.start, self.start)))
        for k, block in enumerate(self.blocks):
            if k:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(x, cond)
        return torch.tanh(self.out(F.leaky_relu(x, 0.2)))


class PatchDiscriminator(nn.Module):
    """pix2pixHD / SPADE PatchGAN: 4x4 convs, stride 2 for all but the last two, spectral norm, instance norm
    after the first; returns every layer's output (the last is the logit map) for feature matching."""

    def __init__(self, in_channels: int, width: int, layers: int):
        super().__init__()
        chans = [in_channels] + [width * 2 ** min(i, 3) for i in range(layers)]
        self.layers = nn.ModuleList()
        for i in range(layers):
            stride = 2 if i < layers - 1 else 1
            conv = spectral_norm(nn.Conv2d(chans[i], chans[i + 1], 4, stride=stride, padding=2))
            norm = nn.InstanceNorm2d(chans[i + 1], affine=False) if i else nn.Identity()
            self.layers.append(nn.Sequential(conv, norm, nn.LeakyReLU(0.2, inplace=False)))
        self.layers.append(nn.Sequential(spectral_norm(nn.Conv2d(chans[-1], 1, 4, padding=2))))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """`scales` PatchGANs on (conditioning, image), each on a 2x average-pooled copy of the previous one's input.

    `forward(x)` takes the concatenation (B, C + 3, H, W) and returns the logit maps of all scales joined into
    one (B, 1, sum of patches) tensor, so the generic loss code sees one logit map like the other families';
    `features(x)` gives every scale's layer outputs for feature matching."""

    def __init__(self, in_channels: int, d: SpadeDiscriminatorParams):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, d.width, d.layers) for _ in range(d.scales))

    def features(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for k, net in enumerate(self.scales):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(net(x))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([f[-1].flatten(1) for f in self.features(x)], dim=1)[:, None]
