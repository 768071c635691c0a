"""CartoonGAN and AnimeGAN generators and discriminators, sized by their typed settings (`params.py`); the
factory and model-folder IO of all three families (the SPADE painter's networks are in `gan/spade.py`).

Generators map (B, 3, H, W) RGB in [-1, 1] to the same shape and range (tanh head); discriminators map
an image to a (B, 1, H/s, W/s) map of patch logits (no sigmoid: the losses apply it). Widths and block
counts come from params so the CPU demo can run tiny versions of the paper's networks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from face2anime.errors import UserError, first_line
from face2anime.paint.conditioning import CHANNELS
from face2anime.params import (MAX_IMAGE_SIZE, AnimeDiscriminatorParams, AnimeGeneratorParams,
                               CartoonDiscriminatorParams, CartoonGeneratorParams, SpadeDiscriminatorParams,
                               SpadeGeneratorParams)
from face2anime.param_errors import validate
from face2anime.training import read_model_dir, recipe, save_model_dir

MODELS = ("cartoongan", "animegan", "spade")


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = True) -> nn.Conv2d:
    """'same'-padded conv (reflect padding keeps image borders free of dark frames)."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=bias,
                     padding_mode="reflect" if k > 1 else "zeros")


def _norm(c: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(c, affine=True)


# ------------------------------------------------------------------------------------------ CartoonGAN
class ResBlock(nn.Module):
    """conv-IN-ReLU-conv-IN plus identity (CartoonGAN's residual block)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_conv(c, c, 3), _norm(c), nn.ReLU(inplace=True), _conv(c, c, 3), _norm(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample2(nn.Module):
    """Bilinear x2 resize (resize-conv avoids the checkerboard of transposed convs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


UPSAMPLING = ("resize", "transposed")


class CartoonGenerator(nn.Module):
    """conv7x7 -> 2 x (stride-2 conv, conv) -> N residual blocks -> 2 x (up x2, conv) -> conv7x7 + tanh.

    `upsample='transposed'` is the paper's stride-2 transposed conv, which puts a period-2 checkerboard
    into the output from the first step (uneven kernel overlap); 'resize' (bilinear x2, then a conv) does not.
    """

    def __init__(self, width: int, blocks: int, upsample: str):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise UserError(f"unknown upsampling {upsample!r}; choose one of {', '.join(UPSAMPLING)}")
        w = width
        layers: list[nn.Module] = [_conv(3, w, 7), _norm(w), nn.ReLU(inplace=True)]
        for cin, cout in ((w, 2 * w), (2 * w, 4 * w)):
            layers += [_conv(cin, cout, 3, stride=2), _conv(cout, cout, 3), _norm(cout), nn.ReLU(inplace=True)]
        layers += [ResBlock(4 * w) for _ in range(blocks)]
        for cin, cout in ((4 * w, 2 * w), (2 * w, w)):
            up = ([nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)] if upsample == "transposed"
                  else [Upsample2(), _conv(cin, cout, 3)])
            layers += up + [_conv(cout, cout, 3), _norm(cout), nn.ReLU(inplace=True)]
        layers += [_conv(w, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CartoonDiscriminator(nn.Module):
    """Shallow patch discriminator: LeakyReLU 0.2, two stride-2 stages, InstanceNorm after the first."""

    def __init__(self, width: int = 32):
        super().__init__()
        d = width
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731 - tiny factory
        self.net = nn.Sequential(
            _conv(3, d, 3), act(),
            _conv(d, 2 * d, 3, stride=2), act(), _conv(2 * d, 4 * d, 3), _norm(4 * d), act(),
            _conv(4 * d, 4 * d, 3, stride=2), act(), _conv(4 * d, 8 * d, 3), _norm(8 * d), act(),
            _conv(8 * d, 8 * d, 3), _norm(8 * d), act(),
            _conv(8 * d, 1, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ------------------------------------------------------------------------------------------ AnimeGAN
def _cna(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """conv - InstanceNorm - LeakyReLU(0.2): AnimeGAN's basic unit."""
    return nn.Sequential(_conv(cin, cout, k, stride, groups, bias=False), _norm(cout), nn.LeakyReLU(0.2, inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expand -> depthwise 3x3 -> 1x1 project (no activation) + identity (MobileNetV2 / AnimeGAN IRB)."""

    def __init__(self, c: int, expansion: int = 2):
        super().__init__()
        h = c * expansion
        self.body = nn.Sequential(_cna(c, h, 1), _cna(h, h, 3, groups=h),
                                  _conv(h, c, 1, bias=False), _norm(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AnimeGenerator(nn.Module):
    """stem -> 2 x down (stride-2 conv, conv) -> N inverted-residual blocks -> 2 x (resize, conv, conv) -> 1x1 + tanh."""

    def __init__(self, width: int = 64, blocks: int = 8, expansion: int = 2):
        super().__init__()
        w = width
        layers: list[nn.Module] = [_cna(3, w, 7), _cna(w, w)]
        for cin, cout in ((w, 2 * w), (2 * w, 4 * w)):
            layers += [_cna(cin, cout, 3, stride=2), _cna(cout, cout)]
        layers += [InvertedResidual(4 * w, expansion) for _ in range(blocks)]
        for cin, cout in ((4 * w, 2 * w), (2 * w, w)):
            layers += [Upsample2(), _cna(cin, cout), _cna(cout, cout)]
        layers += [_cna(w, w, 7), _conv(w, 3, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AnimeDiscriminator(nn.Module):
    """conv -> `stages` x (stride-2 conv, conv-IN) -> conv-IN -> 1-channel logits; spectral norm optional."""

    def __init__(self, width: int = 32, stages: int = 3, spectral: bool = False):
        super().__init__()
        sn = spectral_norm if spectral else (lambda m: m)
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731 - tiny factory
        c = width
        layers: list[nn.Module] = [sn(_conv(3, c, 3)), act()]
        for _ in range(stages):
            layers += [sn(_conv(c, 2 * c, 3, stride=2)), act(),
                       sn(_conv(2 * c, 2 * c, 3, bias=False)), _norm(2 * c), act()]
            c *= 2
        layers += [sn(_conv(c, c, 3, bias=False)), _norm(c), act(), sn(_conv(c, 1, 3))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ------------------------------------------------------------------------------------------ factory + IO
GeneratorSettings = CartoonGeneratorParams | AnimeGeneratorParams | SpadeGeneratorParams
DiscriminatorSettings = CartoonDiscriminatorParams | AnimeDiscriminatorParams | SpadeDiscriminatorParams
GENERATOR_SETTINGS: dict[str, type[GeneratorSettings]] = {"cartoongan": CartoonGeneratorParams,
                                                           "animegan": AnimeGeneratorParams,
                                                           "spade": SpadeGeneratorParams}
WEIGHTS = "generator.safetensors"
REDO = "re-run the stage that wrote it (`dvc repro train_gan`)"


def build_generator(g: GeneratorSettings, size: int | None) -> nn.Module:
    """The generator of `gan.<model>.generator` (its settings' type says which model) for `size` px images
    (the study generators are fully convolutional; the painter starts from a size / 2^k map)."""
    from face2anime.gan.spade import SpadeGenerator

    if isinstance(g, CartoonGeneratorParams):
        return CartoonGenerator(g.width, g.blocks, g.upsample)
    if isinstance(g, SpadeGeneratorParams):
        if size is None:
            raise UserError("the spade generator needs the image size it paints")
        return SpadeGenerator(len(CHANNELS), size, g)
    return AnimeGenerator(g.width, g.blocks, g.expansion)


def build_discriminator(d: DiscriminatorSettings) -> nn.Module:
    """The discriminator of `gan.<model>.discriminator` (the painter's sees conditioning + image)."""
    from face2anime.gan.spade import MultiScaleDiscriminator

    if isinstance(d, CartoonDiscriminatorParams):
        return CartoonDiscriminator(d.width)
    if isinstance(d, SpadeDiscriminatorParams):
        return MultiScaleDiscriminator(len(CHANNELS) + 3, d)
    return AnimeDiscriminator(d.width, d.stages, d.spectral_norm)


def generator_record(model: str, g: GeneratorSettings) -> dict[str, Any]:
    """What config.json records under "generator": `{"model": ..., **the generator settings}`."""
    return {"model": model, **recipe(g, where=())}


def generator_settings(record: Any, source: str) -> GeneratorSettings:
    """config.json's "generator" record read back as typed settings; a bad one is one line naming `source`."""
    model = record.get("model") if isinstance(record, dict) else None
    if model not in GENERATOR_SETTINGS:
        raise UserError(f"{source}: generator.model = {model!r}: must be one of {', '.join(MODELS)}")
    fields = {k: v for k, v in record.items() if k != "model"}
    return validate(GENERATOR_SETTINGS[model], fields, source, "generator")


def image_size_of(config: dict[str, Any], cfg_path: Path) -> int:
    """config.json's `image_size`, checked (one line naming the file)."""
    size = config.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= MAX_IMAGE_SIZE:
        raise UserError(f"{cfg_path}: image_size = {size!r}: must be an integer >= 16 and <= {MAX_IMAGE_SIZE}")
    return size


def save_generator(model_dir: Path | str, generator: nn.Module, config: dict[str, Any],
                   extra: dict[str, Any] | None = None) -> None:
    """Write the folder atomically: `generator.safetensors` (float32) + `config.json` (`config['generator']` =
    `generator_record`) + one JSON file per `extra` item (file name -> object)."""
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in generator.state_dict().items()}
    save_model_dir(model_dir, WEIGHTS, state, config, extra)


def load_generator(model_dir: Path | str, device: str | torch.device = "cpu") -> nn.Module:
    """The trained generator from `model_dir` (generator.safetensors + config.json), eval mode, frozen."""
    config, state = read_model_dir(model_dir, WEIGHTS, "generator", REDO, device)
    cfg_path = Path(model_dir) / "config.json"
    try:
        settings = generator_settings(config.get("generator"), str(cfg_path))
        size = image_size_of(config, cfg_path) if isinstance(settings, SpadeGeneratorParams) else None
        generator = build_generator(settings, size)
    except UserError as err:
        raise UserError(f"{err}; {REDO}") from None
    try:
        generator.load_state_dict(state)
    except RuntimeError as err:  # other names or shapes: another model's weights
        raise UserError(f"{Path(model_dir) / WEIGHTS} does not match {cfg_path} ({first_line(err)}): {REDO}") from None
    generator.to(device).eval()
    for p in generator.parameters():
        p.requires_grad_(False)
    return generator
