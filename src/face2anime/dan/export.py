"""The trained-model folder (`models/dan/`): weights + statistics in safetensors, architecture in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from face2anime.dan.model import DAN, DANConfig
from face2anime.errors import UserError, first_line
from face2anime.io import atomic_path

WEIGHTS = "dan.safetensors"
CONFIG = "config.json"


def save_model(model_dir: Path | str, model: DAN, stages_trained: int, extra: dict | None = None) -> None:
    """Write the folder atomically: `dan.safetensors` (weights, mean_shape, mean_image, std_image) + `config.json`."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in model.state_dict().items()
               if v.is_floating_point()}
    config = {"architecture": model.cfg.to_dict(), "stages_trained": stages_trained,
              "input_size": model.cfg.size, "layout": "face40", **(extra or {})}
    with atomic_path(model_dir, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")


def load_model(model_dir: Path | str, device: str | torch.device = "cpu") -> tuple[DAN, dict]:
    """Rebuild the DAN from `config.json` and load its weights; one-line error when the folder is incomplete."""
    model_dir = Path(model_dir)
    cfg_path, w_path = model_dir / CONFIG, model_dir / WEIGHTS
    for p in (cfg_path, w_path):
        if not p.exists():
            raise UserError(f"DAN model file {p} not found: run `dvc repro train_dan` first")
    redo = "re-run `dvc repro train_dan` to rewrite it"
    try:
        config = json.loads(cfg_path.read_text())
        model = DAN(DANConfig.from_dict(config["architecture"]))
    except Exception as err:  # noqa: BLE001 - any failure here means a broken or foreign config
        raise UserError(f"DAN config {cfg_path} is unreadable or not a DAN config ({first_line(err)}): {redo}") from None
    try:
        state = load_file(str(w_path))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for broken files
        raise UserError(f"DAN weights {w_path} are corrupt or not safetensors ({first_line(err)}): {redo}") from None
    # BatchNorm's integer step counters are not stored; they do not affect inference.
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # same names, other shapes: another architecture
        raise UserError(f"{w_path} does not match {cfg_path} ({first_line(err)}): {redo}") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(f"{w_path} does not match {cfg_path}: missing {missing[:3]}, unexpected {unexpected[:3]}; "
                        f"{redo}")
    return model.to(device), config
