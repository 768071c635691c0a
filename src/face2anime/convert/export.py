"""A trained generator as one file for other runtimes: ONNX (dynamic batch) or TorchScript.

A study generator takes `image` (B, 3, S, S) float32 RGB in [-1, 1] at the training size S; the SPADE
painter takes `conditioning` (B, 8, S, S) (`paint.conditioning.CHANNELS`: the part-filled rough and the
landmark channels, built from a crop and its 40 points by `paint.conditioning.conditioning` with the
config's "painter" record). Both return `anime` (B, 3, S, S) RGB in [-1, 1]; the batch size is free. The
folder's config.json rides along (ONNX metadata `face2anime_config`, TorchScript extra file `config.json`),
so a consumer can frame faces (and build the painter's conditioning) as training did. ONNX goes through the
TorchScript-based exporter (`dynamo=False`), which needs no onnxscript.
"""

from __future__ import annotations

import copy
import errno
import json
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import parametrize

from face2anime.convert.model import TrainedModel
from face2anime.convert.stylize import make_painter
from face2anime.errors import UserError
from face2anime.io import atomic_path, check_writable

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".ts", ".torchscript")}   # what a file of each is named
INPUT_NAME, PAINTER_INPUT_NAME, OUTPUT_NAME = "image", "conditioning", "anime"


def input_name(model: TrainedModel) -> str:
    """The exported input's name: `conditioning` for the painter, `image` for the study generators."""
    return PAINTER_INPUT_NAME if model.painter is not None else INPUT_NAME


def export_generator(model: TrainedModel, fmt: str, out: Path | str, opset: int = 17,
                     generator: nn.Module | None = None, overwrite: bool = False) -> Path:
    """Write the generator of `model` (or `generator`) to `out` atomically; returns `out`. An existing file is
    replaced only with `overwrite`, and the name must say the format (so a typo cannot replace a picture)."""
    if fmt not in FORMATS:
        raise UserError(f"export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise UserError(f"export output {out} is a folder: give a file name, e.g. {out / (model.name + '.' + fmt)}")
    if out.suffix.lower() not in SUFFIXES[fmt]:
        raise UserError(f"export output {out}: {fmt} files are named *{' / *'.join(SUFFIXES[fmt])}, "
                        f"e.g. {out.with_suffix(SUFFIXES[fmt][0]).name}")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise UserError(f"export output {out} exists: pass --overwrite to replace it")
    _check_writable(out)
    painter = make_painter(model.path, torch.device("cpu"), batch_size=1, threads=1, amp=False, generator=generator)
    g = _baked(painter.generator)
    example = torch.zeros(1, *painter.input_shape())
    config = json.dumps(model.config, sort_keys=True)
    try:
        with warnings.catch_warnings(), atomic_path(out) as tmp:
            warnings.simplefilter("ignore")   # tracer and deprecation chatter; parity is what the tests check
            try:
                if fmt == "onnx":
                    _onnx(g, example, tmp, opset, config, input_name(model))
                else:
                    with torch.no_grad():
                        traced = torch.jit.trace(g, example)
                    torch.jit.save(traced, str(tmp), _extra_files={"config.json": config})
            except (UserError, OSError):
                raise
            except Exception as err:  # noqa: BLE001 - an op the exporter cannot write: one line, not a traceback
                text = [t for t in str(err).strip().splitlines() if t.strip()]
                first = text[0] if text else ""
                first = first if len(first) <= 200 else first[:200] + " ..."
                raise UserError(f"cannot export {model.name} as {fmt}: {type(err).__name__}: {first}") from None
    except OSError as err:   # a full disk, a file-size limit, a folder that went away: nothing was published
        raise UserError(f"cannot write {out}: {err.strerror or err}; nothing written") from None
    return out


def _check_writable(out: Path) -> None:
    """The output's folder takes a file (probed, before any work): /proc, a read-only folder, a path under a file."""
    try:
        check_writable([out])
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno == errno.ENOENT and Path(err.filename or "").is_dir():
            reason = "cannot create files there"
        raise UserError(f"cannot write {out}: {err.filename}: {reason}") from None


def _baked(g: nn.Module) -> nn.Module:
    """A copy of `g` with every parametrization (the painter's spectral norm) folded into plain weights: the
    same weights the eval-mode module computes on each call, without the ops ONNX lacks (aten::vdot)."""
    if not any(parametrize.is_parametrized(m) for m in g.modules()):
        return g
    g = copy.deepcopy(g).eval()
    with torch.no_grad():
        for m in g.modules():
            for name in list(getattr(m, "parametrizations", {}) or {}):
                parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    return g


def _onnx(g: nn.Module, example: torch.Tensor, path: Path, opset: int, config: str, name: str) -> None:
    import onnx

    with torch.no_grad():
        torch.onnx.export(g, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[name], output_names=[OUTPUT_NAME],
                          dynamic_axes={name: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "face2anime_config", config
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
