"""A trained generator as one file for other runtimes: ONNX (dynamic batch) or TorchScript.

Both take (B, 3, S, S) float32 RGB in [-1, 1] at the training size S and return the same shape and range;
the batch size is free. The folder's config.json rides along (ONNX metadata `face2anime_config`, TorchScript
extra file `config.json`), so a consumer can frame faces as training did. ONNX goes through the
TorchScript-based exporter (`dynamo=False`), which needs no onnxscript.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from face2anime.convert.model import TrainedModel
from face2anime.errors import UserError
from face2anime.gan.models import load_generator
from face2anime.io import atomic_path

FORMATS = ("onnx", "torchscript")
INPUT_NAME, OUTPUT_NAME = "image", "anime"


def export_generator(model: TrainedModel, fmt: str, out: Path | str, opset: int = 17,
                     generator: nn.Module | None = None) -> Path:
    """Write the generator of `model` (or `generator`) to `out` atomically; returns `out`."""
    if fmt not in FORMATS:
        raise UserError(f"export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise UserError(f"export output {out} is a folder: give a file name, e.g. {out / (model.name + '.' + fmt)}")
    g = (generator if generator is not None else load_generator(model.path, "cpu")).to("cpu").eval()
    size = model.image_size
    example = torch.zeros(1, 3, size, size)
    config = json.dumps(model.config, sort_keys=True)
    with warnings.catch_warnings(), atomic_path(out) as tmp:
        warnings.simplefilter("ignore")   # tracer and deprecation chatter; parity is what the tests check
        if fmt == "onnx":
            _onnx(g, example, tmp, opset, config)
        else:
            with torch.no_grad():
                traced = torch.jit.trace(g, example)
            torch.jit.save(traced, str(tmp), _extra_files={"config.json": config})
    return out


def _onnx(g: nn.Module, example: torch.Tensor, path: Path, opset: int, config: str) -> None:
    import onnx

    with torch.no_grad():
        torch.onnx.export(g, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "face2anime_config", config
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
