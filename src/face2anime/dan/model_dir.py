"""The trained DAN's folder (`models/dan/`), on the shared model-folder plumbing (`training.save_model_dir` /
`read_model_dir`): `dan.safetensors` (the float weights and statistics: mean_shape, mean_image, std_image) and
`config.json` (architecture, stages trained, input size, layout and, for a trained model, its training record:
`train.save_trained_dan`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from face2anime.dan.model import DAN, DANConfig
from face2anime.errors import UserError, first_line
from face2anime.training import read_model_dir, save_model_dir

WEIGHTS = "dan.safetensors"
REDO = "re-run `dvc repro train_dan` to rewrite it"


def save_dan(model_dir: Path | str, model: DAN, stages_trained: int, **record: Any) -> None:
    """Publish the folder atomically; `record` items follow the architecture keys in `config.json`, in order."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in model.state_dict().items()
               if v.is_floating_point()}
    config = {"architecture": model.cfg.to_dict(), "stages_trained": stages_trained,
              "input_size": model.cfg.size, "layout": "face40", **record}
    save_model_dir(model_dir, WEIGHTS, tensors, config)


def load_dan(model_dir: Path | str, device: str | torch.device = "cpu") -> tuple[DAN, dict[str, Any]]:
    """Rebuild the DAN from `config.json` and load its weights; one-line error when the folder is incomplete."""
    config, state = read_model_dir(model_dir, WEIGHTS, "DAN", REDO)
    cfg_path, w_path = Path(model_dir) / "config.json", Path(model_dir) / WEIGHTS
    try:
        model = DAN(DANConfig.from_dict(config["architecture"]))
    except Exception as err:  # noqa: BLE001 - any failure here means a foreign config
        raise UserError(f"DAN config {cfg_path} is not a DAN config ({first_line(err)}): {REDO}") from None
    # BatchNorm's integer step counters are not stored; they do not affect inference.
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # same names, other shapes: another architecture
        raise UserError(f"{w_path} does not match {cfg_path} ({first_line(err)}): {REDO}") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(f"{w_path} does not match {cfg_path}: missing {missing[:3]}, unexpected {unexpected[:3]}; "
                        f"{REDO}")
    return model.to(device), config
