"""Face crops through any trained generator (`gan.painting.Painter`), with the painter's refusals per face.

Convert, evaluation and `face2anime generate` share one `Painter`: the study generators translate the crop
(the training's own pixel conversions, `imaging.tensors`), the SPADE painter paints from the conditioning
of the crop and its 40 points. A face whose points cannot condition the painter (out of frame, not finite)
is not an error of the picture: `FacePainter` paints the others and returns why that face was left out.
bf16 autocast runs on CUDA only: CPU runs stay float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from face2anime.errors import UserError
from face2anime.gan.painting import Painter, load_painter, painter_record


def make_painter(model_dir: Path, device: torch.device, batch_size: int, threads: int, amp: bool,
                 generator: nn.Module | None = None) -> Painter:
    """The folder's painter; with `generator`, that module under the folder's painter record (tests,
    benchmarks). A damaged weights file is a one-line UserError."""
    try:
        if generator is not None:
            record, size = painter_record(model_dir)
            return Painter(generator, record, size, device, batch_size, threads, amp,
                           source=str(Path(model_dir) / "config.json"))
        return load_painter(model_dir, device, batch_size, threads, amp)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - safetensors/torch errors on a damaged folder
        raise UserError(f"cannot load the generator in {model_dir}: {str(err).splitlines()[0]}") from None


class FacePainter:
    """`fp(crops, points)` -> (styled (N, S, S, 3) uint8, {face index: why it was skipped}).

    The painter's refusals (`Painter.refusals`, a cheap check of each face's points) are set aside first and
    the other faces painted in one call. A skipped face's row of `styled` is zeros: callers leave that face
    as it was.
    """

    def __init__(self, painter: Painter):
        self.painter = painter

    @property
    def size(self) -> int:
        return self.painter.size

    def __call__(self, crops: np.ndarray, points: np.ndarray | None) -> tuple[np.ndarray, dict[int, str]]:
        if not self.painter.needs_points or points is None:   # no points: the painter's own one-line error
            return self.painter(crops, points), {}
        skipped = self.painter.refusals(crops, points)
        if not skipped:
            return self.painter(crops, points), {}
        styled = np.zeros((len(crops), self.size, self.size, 3), np.uint8)
        good = [k for k in range(len(crops)) if k not in skipped]
        if good:
            styled[good] = self.painter(crops[good], points[good])
        return styled, skipped
