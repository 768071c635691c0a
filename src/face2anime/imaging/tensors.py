"""uint8 image arrays <-> the networks' float tensors: the one converter pair for photo crops and style sets.

Contract: arrays are (N, H, W, 3) uint8 RGB (or (N, H, W) uint8 gray, replicated to 3 channels); tensors
are (N, 3, H, W) float32 RGB in [-1, 1] (x / 127.5 - 1), the generators' convention. GAN training and
`face2anime convert` use the default NCHW memory; the GAN evaluation asks for `torch.channels_last`
(NHWC memory, a view of the array's bytes), the layout its committed numbers were measured with:
convolutions round differently per memory layout, so the same values give other low bits.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from face2anime.imaging.images import LUMA


def to_tensor(images: np.ndarray, size: int | None = None,
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """(N, H, W, 3) or (N, H, W) uint8 -> (N, 3, S, S) float32 in [-1, 1]; area-aware bilinear resize to
    `size` when given and different, else S = H = W of the input."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0)
    x = x.unsqueeze(-1).expand(*x.shape, 3) if x.dim() == 3 else x
    x = x.permute(0, 3, 1, 2).contiguous(memory_format=memory_format)
    if size is not None and (x.shape[-1] != size or x.shape[-2] != size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [-1, 1] (any device, any float dtype) -> (N, H, W, 3) uint8 RGB, clipped and rounded."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [-1, 1] -> (B, 1, H, W) grayscale in [0, 1], the `LUMA` weights (differentiable)."""
    w = rgb.new_tensor(LUMA).view(1, 3, 1, 1)
    return (((rgb + 1.0) * 0.5) * w).sum(dim=1, keepdim=True)
