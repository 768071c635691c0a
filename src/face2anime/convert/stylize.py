"""The generator applied to face crops: uint8 RGB in, uint8 RGB out, in batches, on the chosen device.

The pixel conversions are the training's own (`imaging.tensors.to_tensor` / `to_uint8`), so a crop meets the
generator exactly as the training photos did. bf16 autocast runs on CUDA only: CPU runs stay float32.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from face2anime.errors import UserError
from face2anime.gan.models import load_generator
from face2anime.imaging.tensors import to_tensor, to_uint8


class Stylizer:
    """`stylizer(crops)` -> stylised crops, `batch_size` faces per generator call."""

    def __init__(self, generator: nn.Module, size: int, device: torch.device, amp: bool, batch_size: int):
        self.generator = generator.to(device).eval()
        self.size, self.device, self.batch_size = int(size), device, int(batch_size)
        self.amp_dtype = torch.bfloat16 if (amp and device.type == "cuda") else None

    @classmethod
    def from_folder(cls, model_dir, size: int, device: torch.device, amp: bool, batch_size: int) -> Stylizer:
        """The trained generator of `model_dir` (a bad weights file is a one-line UserError)."""
        try:
            generator = load_generator(model_dir, device)
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - safetensors/torch errors on a damaged folder
            raise UserError(f"cannot load the generator in {model_dir}: {str(err).splitlines()[0]}") from None
        return cls(generator, size, device, amp, batch_size)

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB crops -> (N, S, S, 3) uint8 RGB at the generator's size S (crops of another
        size are resized as the training photos were); N = 0 is fine."""
        if len(crops) == 0:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        out = []
        for start in range(0, len(crops), self.batch_size):
            x = to_tensor(crops[start:start + self.batch_size], self.size).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp_dtype is not None):
                y = self.generator(x)
            out.append(to_uint8(y))
        return np.concatenate(out)
