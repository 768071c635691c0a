"""The GAN's two unpaired sides as in-memory tensors: training photos (+ their 40 target points) and the style set,
and the backbone features of the images that never change (`ConstantFeatures`).

Both fit in memory at the study's scale (6,000 + 4,000 faces at 112 px is ~400 MB as uint8), so no
DataLoader: batches are index slices chosen by seeded per-epoch permutations, which also makes
resuming from an epoch checkpoint reproduce an uninterrupted run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from face2anime.errors import UserError
from face2anime.imaging.tensors import to_tensor
from face2anime.io import read_arrays
from face2anime.photos.read import load_photo_crops

if TYPE_CHECKING:
    from face2anime.gan.objectives import GANModel

DAN_SIZE = 112   # the size the photo points and the DAN live at


@dataclass
class TrainPhotos:
    """What the generator learns from: photos (the study GANs), or anime faces with their conditioning (the
    painter, `load_pairs`)."""

    ids: np.ndarray          # (N,) str
    images: torch.Tensor     # (N, 3, S, S) float RGB in [-1, 1]
    points: torch.Tensor     # (N, 40, 2) float target points, crop px at 112
    cond: torch.Tensor | None = None   # (N, C, S, S) the painter's conditioning of `images` (its G input)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def inputs(self) -> torch.Tensor:
        """The generator's inputs: the conditioning where there is one, else the photos."""
        return self.images if self.cond is None else self.cond


@dataclass
class StyleSet:
    color: torch.Tensor      # (M, 3, S, S) anime RGB in [-1, 1]
    smoothed: torch.Tensor   # (M, 3, S, S) edge-smoothed anime RGB
    gray: torch.Tensor       # (M, 3, S, S) grayscale anime, replicated to 3 channels

    def __len__(self) -> int:
        return len(self.color)


def load_photos(crops_path: Path | str, table_path: Path | str, split: str, size: int,
                max_photos: int | None = None) -> TrainPhotos:
    """Photo crops whose `photos.csv` split is `split` (`photos.read`), first `max_photos` of them, at `size`."""
    crops = load_photo_crops(crops_path, table_path, split)
    n = int(max_photos) if max_photos else len(crops.photo_ids)
    return TrainPhotos(ids=crops.photo_ids[:n], images=to_tensor(crops.color[:n], size),
                       points=torch.from_numpy(crops.targets[:n].astype(np.float32)))


def load_pairs(pairs_path: Path | str, size: int, max_pairs: int | None = None) -> TrainPhotos:
    """The painter's training pairs written by `prepare_spade` (anime face, its 40 points, its conditioning)."""
    pairs_path = Path(pairs_path)
    if not pairs_path.exists():
        raise UserError(f"{pairs_path} not found: run `dvc repro prepare_spade` first")
    a = read_arrays(pairs_path)
    n = min(len(a["face_id"]), int(max_pairs)) if max_pairs else len(a["face_id"])
    if n == 0:
        raise UserError(f"{pairs_path} holds no pairs: no anime faces in prepare_spade.train_split")
    cond = torch.from_numpy(a["cond"][:n].astype(np.float32))
    if cond.shape[-1] != size:
        raise UserError(f"{pairs_path}: conditioning is {cond.shape[-1]} px, the painter paints {size} px "
                        f"(gan.spade.conditioning.size must equal gan.common.image_size)")
    return TrainPhotos(ids=a["face_id"][:n], images=to_tensor(a["color"][:n], size),
                       points=torch.from_numpy(a["points"][:n].astype(np.float32)), cond=cond)


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


class ConstantFeatures:
    """Backbone features of images that never change (training photos, grayscale anime): computed once,
    when a batch first needs them, under the same autocast as the training step, and kept (when all fit
    in `cache_limit_bytes`; else recomputed per batch). They are always computed in the same fixed chunks
    of images, whatever the order of first use, so a resumed run gets the same bytes as an uninterrupted one."""

    CHUNK = 8

    def __init__(self, model: GANModel, images: torch.Tensor, cache_limit_bytes: int = 1 << 30):
        self.model, self.images = model, images
        probe = self._features(images[:1])
        fits = probe.numel() * probe.element_size() * len(images) <= cache_limit_bytes
        self.cache = probe.new_empty((len(images), *probe.shape[1:])) if fits else None
        self.done = torch.zeros((len(images) + self.CHUNK - 1) // self.CHUNK, dtype=torch.bool)

    @torch.no_grad()
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        with self.model.autocast():
            return self.model.backbone(self.model.prepare(x))

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            return self._features(self.images[idx])
        for chunk in (idx // self.CHUNK).unique().tolist():
            if not self.done[chunk]:
                rows = slice(chunk * self.CHUNK, (chunk + 1) * self.CHUNK)
                self.cache[rows] = self._features(self.images[rows])
                self.done[chunk] = True
        return self.cache[idx.to(self.cache.device)]
