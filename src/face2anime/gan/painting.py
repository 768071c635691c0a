"""Any trained generator as one call: face crops (+ their 40 points) in, stylised crops out.

The study generators translate the photo itself; the SPADE painter paints from a conditioning made of the
photo's rough and its points moved toward anime proportions. Evaluation, the report, `face2anime convert`
and `face2anime generate` all go through `Painter`, so the painter's input is built in one place, from the
recipe its folder records (config.json "painter": conditioning settings, shape move, anime mean shape).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from face2anime.errors import UserError
from face2anime.gan.models import image_size_of, load_generator
from face2anime.imaging.tensors import to_tensor, to_uint8
from face2anime.paint.conditioning import CHANNELS, PHOTO_MARGIN, conditioning_batch, move_shape, points_problem
from face2anime.param_errors import validate
from face2anime.params import ConditioningParams

REDO = "re-run the stage that wrote it (`dvc repro train_spade`)"
DEFAULT_SIZE = 112   # folders written before config.json recorded image_size: the study's size


class Painter:
    """`painter(crops, points)` -> uint8 RGB crops at the generator's size. `points` (N, 40, 2) in the crops'
    pixels are needed by the SPADE painter only (`needs_points`); the study generators ignore them."""

    def __init__(self, generator: nn.Module, record: dict[str, Any] | None, size: int, device: torch.device,
                 batch_size: int, threads: int, amp: bool = False, source: str = "painter"):
        self.generator = generator.to(device).eval()
        self.size, self.device, self.batch_size, self.threads = int(size), device, int(batch_size), int(threads)
        self.amp = bool(amp) and device.type == "cuda"
        self.needs_points = record is not None
        if record is not None:
            if not isinstance(record, dict) or not {"conditioning", "shape_move", "anime_mean_shape"} <= set(record):
                raise UserError(f"{source}: its \"painter\" record lacks conditioning/shape_move/anime_mean_shape: {REDO}")
            recorded = record["conditioning"]
            if isinstance(recorded, dict) and "flat_skin" not in recorded:
                recorded = {**recorded, "flat_skin": False}   # painters trained before the flat face existed
            self.cond = validate(ConditioningParams, recorded, source, "painter.conditioning")
            self.shape_move = float(record["shape_move"])
            self.mean_shape = np.asarray(record["anime_mean_shape"], np.float64)
            if self.mean_shape.shape != (40, 2) or not np.isfinite(self.mean_shape).all():
                raise UserError(f"{source}: painter.anime_mean_shape is not 40 finite (x, y) points: {REDO}")

    def input_shape(self) -> tuple[int, int, int]:
        """(C, S, S) of one generator input: the conditioning's for the painter, RGB for the others."""
        return (len(CHANNELS) if self.needs_points else 3, self.size, self.size)

    def target_points(self, points: np.ndarray) -> np.ndarray:
        """The points the output is meant to have: the painter's moved points; the photo's for the others."""
        points = np.asarray(points, np.float64)
        return move_shape(points, self.mean_shape, self.shape_move) if self.needs_points else points

    def refusals(self, crops: np.ndarray, points: np.ndarray | None) -> dict[int, str]:
        """{face index: why its points cannot condition the painter} (out of frame, non-finite), checked on
        the face's own points before they move; empty for the study generators."""
        if not self.needs_points:
            return {}
        if points is None or len(points) != len(crops):
            raise UserError(f"the spade painter needs 40 points per face ({len(crops)} faces, "
                            f"{0 if points is None else len(points)} point sets)")
        found = {k: points_problem(pts, crop.shape[1], crop.shape[0], PHOTO_MARGIN)
                 for k, (crop, pts) in enumerate(zip(crops, points))}
        return {k: f"its points cannot condition the painter: {why}" for k, why in found.items() if why}

    def conditioning(self, crops: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        """(N, C, S, S) float32 painter inputs (None for the study generators). UserError naming the first face
        of `refusals`."""
        if not self.needs_points:
            return None
        refused = self.refusals(crops, points)
        if refused:
            k = min(refused)
            raise UserError(f"face {k}: {refused[k]}")
        return conditioning_batch(crops, self.target_points(points), self.cond, self.threads, margin=PHOTO_MARGIN)

    def paint(self, inputs: torch.Tensor) -> np.ndarray:
        """Generator inputs (N, C, S, S) -> uint8 RGB (N, S, S, 3), `batch_size` at a time."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(inputs), self.batch_size):
                x = inputs[start:start + self.batch_size].to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    out.append(to_uint8(self.generator(x)))
        return np.concatenate(out) if out else np.zeros((0, self.size, self.size, 3), np.uint8)

    def __call__(self, crops: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        if self.needs_points:
            return self.paint(torch.from_numpy(self.conditioning(crops, points)))
        return self.paint(to_tensor(crops, self.size))


def painter_record(model_dir: Path | str) -> tuple[dict[str, Any] | None, int]:
    """(config.json's "painter" record or None, its image_size) of a generator folder."""
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"generator config {path} is unreadable ({err}): {REDO}") from None
    if not isinstance(config, dict):
        return None, DEFAULT_SIZE
    size = image_size_of(config, path) if "image_size" in config else DEFAULT_SIZE
    return config.get("painter"), size


def load_painter(model_dir: Path | str, device: torch.device, batch_size: int, threads: int,
                 amp: bool = False) -> Painter:
    """The trained generator of `model_dir` as a `Painter` (a bad folder is one line naming the file)."""
    generator = load_generator(model_dir, device)
    record, size = painter_record(model_dir)
    return Painter(generator, record, size, device, batch_size, threads, amp, source=str(Path(model_dir) / "config.json"))
