"""The frozen DAN that the GAN's landmark loss looks through.

`FrozenDAN.load('models/dan')` gives a module that stays in eval mode (BatchNorm statistics and dropout
fixed even inside a parent's `.train()`), has no trainable parameters, and maps grayscale crops
(B, 1, 112, 112) in [0, 1] to the last trained stage's (B, 40, 2) crop-pixel points (`DAN.predict`: mirror-
averaged when the model was trained with `dan.mirror_average`). The input is
normalised inside, and gradients flow back to the input image.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from face2anime.dan.model import DAN
from face2anime.dan.model_dir import load_dan


class FrozenDAN(nn.Module):
    def __init__(self, dan: DAN, n_stages: int | None = None):
        super().__init__()
        self.dan = dan
        self.n_stages = dan.cfg.n_stages if n_stages is None else n_stages
        for p in self.dan.parameters():
            p.requires_grad_(False)
        super().train(False)

    @classmethod
    def load(cls, model_dir: Path | str = "models/dan", device: str | torch.device = "cpu") -> FrozenDAN:
        dan, config = load_dan(model_dir, device)
        return cls(dan, n_stages=int(config.get("stages_trained", dan.cfg.n_stages)))

    def train(self, mode: bool = True) -> FrozenDAN:
        """Always eval: a frozen detector must not update BatchNorm statistics or apply dropout."""
        return super().train(False)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        if gray.dim() != 4 or gray.shape[1] != 1 or tuple(gray.shape[2:]) != (self.dan.cfg.size,) * 2:
            raise ValueError(f"FrozenDAN expects (B, 1, {self.dan.cfg.size}, {self.dan.cfg.size}), got {tuple(gray.shape)}")
        return self.dan.predict(gray, n_stages=self.n_stages)[-1]
