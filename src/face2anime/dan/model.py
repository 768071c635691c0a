"""The Deep Alignment Network (Kowalski et al., 2017), readable top to bottom.

gray (B,1,112,112) in [0,1]
  -> normalise by the training set's per-pixel mean/std images
  -> stage 1: VGG-like net -> S1 = S0 + delta1                       (S0 = training mean shape)
  -> connection layers: T = similarity fit S1 -> S0; warp the image by T; T(S1); heatmap of T(S1);
     feature image = FC(256 -> 56*56, ReLU) of stage 1's FC features, upscaled to 112
  -> stage 2 on concat[warped image, heatmap, feature image]: S2 = T^-1(T(S1) + delta2)

Everything is batched torch, so the landmark loss can backpropagate through the whole network into the
image that was fed to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from face2anime.dan import geometry
from face2anime.landmarks import schema

BASE_CHANNELS = (64, 128, 256, 512)


@dataclass(frozen=True)
class DANConfig:
    """Architecture numbers; `width` multiplies the conv channels (1.0 = the paper's network)."""

    width: float = 1.0
    n_stages: int = 2
    size: int = 112
    n_points: int = 40
    fc_units: int = 256
    dropout: float = 0.5
    mirror_average: bool = False  # `predict` averages the face's and its mirror image's estimates

    def channels(self) -> tuple[int, ...]:
        return tuple(max(1, round(c * self.width)) for c in BASE_CHANNELS)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DANConfig:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class StageNet(nn.Module):
    """4 x [conv-BN-ReLU, conv-BN-ReLU, maxpool] -> dropout -> FC 256 (BN, ReLU) -> FC 2n (a shape offset)."""

    def __init__(self, in_channels: int, cfg: DANConfig):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in cfg.channels():
            layers += conv_bn_relu(c_in, c) + conv_bn_relu(c, c) + [nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        side = cfg.size // 2 ** len(BASE_CHANNELS)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c_in * side * side, cfg.fc_units, bias=False)
        self.fc_bn = nn.BatchNorm1d(cfg.fc_units)
        self.out = nn.Linear(cfg.fc_units, cfg.n_points * 2)
        # Start at "no offset": stage 1 begins at the mean shape, stage 2 begins as the identity on S1.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        fc = F.relu(self.fc_bn(self.fc(self.dropout(h))))
        return self.out(fc).view(x.shape[0], -1, 2), fc


class ConnectionLayers(nn.Module):
    """Between two stages: canonical-pose image, landmark heatmap and feature image for the next stage."""

    def __init__(self, cfg: DANConfig):
        super().__init__()
        self.size = cfg.size
        self.feature = nn.Linear(cfg.fc_units, (cfg.size // 2) ** 2)

    def forward(self, image: torch.Tensor, shape: torch.Tensor, mean_shape: torch.Tensor, fc: torch.Tensor):
        transform = geometry.fit_similarity(shape, mean_shape[None])
        warped = geometry.warp_image(image, transform)
        shape_canonical = geometry.apply_similarity(shape, transform)
        heatmap = geometry.landmark_heatmap(shape_canonical, self.size, self.size)
        half = self.size // 2
        feature = F.relu(self.feature(fc)).view(-1, 1, half, half)
        feature = F.interpolate(feature, scale_factor=2, mode="nearest")
        return torch.cat([warped, heatmap, feature], dim=1), shape_canonical, transform


class DAN(nn.Module):
    """Multi-stage DAN. `forward` returns every stage's (B, n, 2) estimate in crop pixels."""

    def __init__(self, cfg: DANConfig):
        super().__init__()
        self.cfg = cfg
        s = cfg.size
        # Training-set statistics; set by `set_statistics`, saved with the weights.
        self.register_buffer("mean_shape", torch.zeros(cfg.n_points, 2))
        self.register_buffer("mean_image", torch.zeros(s, s))
        self.register_buffer("std_image", torch.ones(s, s))
        self.stages = nn.ModuleList([StageNet(1, cfg)] + [StageNet(3, cfg) for _ in range(cfg.n_stages - 1)])
        self.connections = nn.ModuleList([ConnectionLayers(cfg) for _ in range(cfg.n_stages - 1)])

    @torch.no_grad()
    def set_statistics(self, mean_shape, mean_image, std_image) -> None:
        self.mean_shape.copy_(torch.as_tensor(mean_shape, dtype=torch.float32))
        self.mean_image.copy_(torch.as_tensor(mean_image, dtype=torch.float32))
        self.std_image.copy_(torch.as_tensor(std_image, dtype=torch.float32))

    def stage_parameters(self, stage: int) -> list[nn.Parameter]:
        """Parameters trained in `stage` (1-based): the stage net plus the connection layers feeding it."""
        params = list(self.stages[stage - 1].parameters())
        if stage > 1:
            params += list(self.connections[stage - 2].parameters())
        return params

    @torch.no_grad()
    def init_stage_from_previous(self, stage: int) -> None:
        """Start `stage` (>= 2) from the previous stage's trained net instead of random weights.

        Every layer but the output copies the previous stage (the image channel of the first conv takes its
        filters, the heatmap and feature-image channels start at zero); the output stays zero, so the stage
        still begins as the identity. From random weights stage 2 settled in a seed-dependent basin (final
        RMSE 0.96-1.24 px over three seeds on the demo); from stage 1's features it starts where faces are
        already understood (docs/reproducibility.md).
        """
        src, dst = self.stages[stage - 2].state_dict(), self.stages[stage - 1].state_dict()
        for key, value in src.items():
            if key.startswith("out."):
                continue
            if key == "features.0.weight":
                dst[key].zero_()
                dst[key][:, : value.shape[1]] = value
            else:
                dst[key].copy_(value)
        self.stages[stage - 1].load_state_dict(dst)

    def stage_modules(self, stage: int) -> list[nn.Module]:
        mods: list[nn.Module] = [self.stages[stage - 1]]
        if stage > 1:
            mods.append(self.connections[stage - 2])
        return mods

    def predict(self, gray: torch.Tensor, n_stages: int | None = None) -> list[torch.Tensor]:
        """Every stage's estimate as the trained DAN reports it (validation, evaluation, the GAN's landmark loss).

        With `mirror_average` it is the mean of the estimate on the face and the estimate on its mirror image,
        mapped back and relabelled left/right. Mirroring is a training augmentation, so both are readings of
        the same face by the same net; their mean is exactly mirror-symmetric and cancels the part of a
        net's error that is not, which differs from seed to seed (docs/reproducibility.md).
        """
        if not self.cfg.mirror_average:
            return self(gray, n_stages=n_stages)
        b, last = gray.shape[0], gray.shape[-1] - 1
        perm = torch.as_tensor(schema.FACE40.flip_permutation(), device=gray.device)
        shapes = self(torch.cat([gray, gray.flip(-1)]), n_stages=n_stages)
        out = []
        for s in shapes:
            m = s[b:, perm]
            out.append(0.5 * (s[:b] + torch.stack([last - m[..., 0], m[..., 1]], dim=-1)))
        return out

    def forward(self, gray: torch.Tensor, n_stages: int | None = None) -> list[torch.Tensor]:
        n_stages = self.cfg.n_stages if n_stages is None else n_stages
        x = (gray - self.mean_image) / self.std_image
        delta, fc = self.stages[0](x)
        shape = self.mean_shape[None] + delta
        shapes = [shape]
        for k in range(1, n_stages):
            stage_in, shape_canonical, transform = self.connections[k - 1](x, shape, self.mean_shape, fc)
            delta, fc = self.stages[k](stage_in)
            shape = geometry.apply_similarity(shape_canonical + delta, geometry.invert_similarity(transform))
            shapes.append(shape)
        return shapes
