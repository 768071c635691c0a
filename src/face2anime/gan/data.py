"""The GAN's two unpaired sides as in-memory tensors: training photos (+ their 40 target points) and the style set.

Both fit in memory at the study's scale (6,000 + 4,000 faces at 112 px is ~400 MB as uint8), so no
DataLoader: batches are index slices chosen by seeded per-epoch permutations, which also makes
resuming from an epoch checkpoint reproduce an uninterrupted run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from face2anime.errors import UserError
from face2anime.io import read_arrays

DAN_SIZE = 112   # the size the photo points and the DAN live at


@dataclass
class PhotoSet:
    ids: np.ndarray          # (N,) str
    images: torch.Tensor     # (N, 3, S, S) float RGB in [-1, 1]
    points: torch.Tensor     # (N, 40, 2) float target points, crop px at 112

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class StyleSet:
    color: torch.Tensor      # (M, 3, S, S) anime RGB in [-1, 1]
    smoothed: torch.Tensor   # (M, 3, S, S) edge-smoothed anime RGB
    gray: torch.Tensor       # (M, 3, S, S) grayscale anime, replicated to 3 channels

    def __len__(self) -> int:
        return len(self.color)


def to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W, 3) or (N, H, W) uint8 -> (N, 3, size, size) float in [-1, 1] (area-resized if needed)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(127.5).sub_(1.0)
    x = x.unsqueeze(-1).expand(*x.shape, 3) if x.dim() == 3 else x
    x = x.permute(0, 3, 1, 2).contiguous()
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) float in [-1, 1] -> (N, H, W, 3) uint8 RGB."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def load_photos(crops_path: Path | str, table_path: Path | str, split: str, size: int,
                max_photos: int | None = None) -> PhotoSet:
    """Photo crops whose `photos.csv` split is `split` (rows matched by photo_id), first `max_photos` of them."""
    crops_path, table_path = Path(crops_path), Path(table_path)
    for p in (crops_path, table_path):
        if not p.exists():
            raise UserError(f"photo input {p} not found: run `dvc repro photo_landmarks` first")
    arrays = read_arrays(crops_path)
    for key in ("photo_id", "color112", "points112"):
        if key not in arrays:
            raise UserError(f"{crops_path} has no array {key!r} (see docs/pipeline.md)")
    table = pd.read_csv(table_path, dtype={"photo_id": str})
    if "split" not in table.columns:
        raise UserError(f"{table_path} has no 'split' column")
    wanted = set(table.loc[table["split"] == split, "photo_id"])
    ids = arrays["photo_id"].astype(str)
    keep = np.flatnonzero([i in wanted for i in ids])
    if max_photos:
        keep = keep[: int(max_photos)]
    if len(keep) == 0:
        raise UserError(f"no photos with split == {split!r} in {table_path} (of {len(ids)} crops)")
    return PhotoSet(ids=ids[keep], images=to_tensor(arrays["color112"][keep], size),
                    points=torch.from_numpy(arrays["points112"][keep].astype(np.float32)))


def load_style(style_path: Path | str, size: int) -> StyleSet:
    """The style set written by `prepare_style` (color, smoothed, gray)."""
    style_path = Path(style_path)
    if not style_path.exists():
        raise UserError(f"style set {style_path} not found: run `dvc repro prepare_style` first")
    arrays = read_arrays(style_path)
    if len(arrays.get("color", ())) == 0:
        raise UserError(f"style set {style_path} is empty: no anime faces in the train split")
    return StyleSet(color=to_tensor(arrays["color"], size), smoothed=to_tensor(arrays["smoothed"], size),
                    gray=to_tensor(arrays["gray"], size))


def epoch_order(n: int, seed: int, epoch: int, stream: int = 0) -> torch.Tensor:
    """A permutation of range(n) that depends only on (seed, epoch, stream): resumable batching."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) * 101 + int(stream))
    return torch.randperm(n, generator=g)
