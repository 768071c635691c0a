"""Feature networks for the GAN metrics: the offline VGG16 backbone, and Inception v3 where its weights exist.

KID is only comparable between runs that use the same feature network, so each result names its
network. The offline default is the project's frozen hed-vgg16 backbone (global-average-pooled
activations of one conv layer); Inception v3 with the FID weights (pool3, 2048-d) is used only when
`assets.resolve('inception-fid')` finds the file, and otherwise recorded as unavailable with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from face2anime.assets import ASSETS, resolve
from face2anime.errors import UserError
from face2anime.imaging.tensors import to_tensor


@torch.no_grad()
def embed(net: nn.Module, images: np.ndarray, batch_size: int = 32,
          device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """`net` on (N, H, W, 3) uint8 RGB images: (pooled (N, C), flattened maps (N, C*h*w)), float64.

    `net` takes (B, 3, H, W) RGB in [-1, 1] and returns a (B, C, h, w) feature map (or (B, C) vectors);
    pooled = global average over space.
    """
    pooled, maps = [], []
    for start in range(0, len(images), batch_size):
        x = to_tensor(images[start:start + batch_size], memory_format=torch.channels_last)
        f = net(x.to(device)).double()
        if f.ndim == 2:
            f = f[:, :, None, None]
        pooled.append(f.mean(dim=(2, 3)).cpu().numpy())
        maps.append(f.flatten(1).cpu().numpy())
    return np.concatenate(pooled), np.concatenate(maps)


# ---------------------------------------------------------------- Inception v3 (FID weights)
class InceptionPool3(nn.Module):
    """torchvision's Inception v3 holding the FID weights, returning the 2048-d pool3 features.

    The FID network (TF's 2015 Inception) differs from torchvision's in pooling only: the average
    pools inside Mixed_5b..7b exclude the zero padding from the count, and Mixed_7c's pool branch is a
    max pool. Hooks on the pool branches reproduce that without rewriting the blocks.
    Input: (B, 3, H, W) RGB in [-1, 1], resized to 299 x 299 bilinearly.
    """

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
        if state_dict is not None:
            net.load_state_dict(state_dict, strict=True)
        net.fc = nn.Identity()
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7b"):
            getattr(self.net, name).branch_pool.register_forward_pre_hook(_exclude_padding_from_average)
        self._mixed_7c_pool = _MaxPoolBranch(self.net.Mixed_7c)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x)


def _padding_count(h: int, w: int, device: torch.device) -> torch.Tensor:
    """How many real (non-padding) pixels a 3x3, stride-1, pad-1 window covers at each position."""
    ones = torch.ones(1, 1, h, w, device=device)
    return F.avg_pool2d(ones, 3, stride=1, padding=1, count_include_pad=True) * 9.0


def _exclude_padding_from_average(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
    """The block passes avg_pool(x) with padding counted (sum / 9); rescale to sum / (real pixels)."""
    (pooled,) = args
    return (pooled * (9.0 / _padding_count(pooled.shape[2], pooled.shape[3], pooled.device)),)


class _MaxPoolBranch:
    """Hooks that feed a block's pool branch max_pool(block input) instead of the block's average pool."""

    def __init__(self, block: nn.Module) -> None:
        self._input: torch.Tensor | None = None
        block.register_forward_pre_hook(self._remember)
        block.branch_pool.register_forward_pre_hook(self._replace)

    def _remember(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._input = args[0]

    def _replace(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor]:
        x, self._input = self._input, None
        return (F.max_pool2d(x, kernel_size=3, stride=1, padding=1),)


def load_inception(local_path: str | Path | None = None) -> tuple[InceptionPool3 | None, str]:
    """Inception v3 with the FID weights, or (None, reason) when the weights do not resolve or load."""
    try:
        path = resolve("inception-fid", local_path=local_path, allow_download=False,
                       param_hint="eval_gan.inception.weights")
    except UserError:
        # No machine-specific paths in the reason: it lands in versioned metrics.
        asset = ASSETS["inception-fid"]
        where = "eval_gan.inception.weights does not exist" if local_path else "not found offline"
        return None, (f"Inception KID not computed: FID weights {asset.filename} {where}; get them from "
                      f"{asset.url} and put them in the asset cache or set eval_gan.inception.weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return InceptionPool3(state), f"inception-v3 pool3 (FID weights, {Path(path).name})"
    except (RuntimeError, OSError, ValueError) as err:
        return None, f"Inception KID not computed: {Path(path).name} could not be loaded ({str(err).splitlines()[0]})"
