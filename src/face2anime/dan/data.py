"""DAN data: the anime crops split into train/val/test, training-set statistics, batch augmentation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from face2anime.dan import geometry
from face2anime.errors import UserError
from face2anime.io import read_arrays
from face2anime.landmarks import schema
from face2anime.params import DanAugmentParams as Augment  # the `dan.augment` section

SPLITS = ("train", "val", "test")


@dataclass
class FaceSet:
    """One split: uint8 gray crops (n, 112, 112), float32 points (n, 40, 2), face ids (n,)."""

    gray: np.ndarray
    points: np.ndarray
    face_id: np.ndarray

    def __len__(self) -> int:
        return len(self.face_id)


@dataclass
class AnimeData:
    splits: dict[str, FaceSet]
    skipped: dict[str, list[str]]  # reason -> face ids
    digest: str  # hash of exactly the arrays and split the DAN uses


def load_anime_data(crops_path: Path | str, split_path: Path | str, require: tuple[str, ...] = ("train", "val")) -> AnimeData:
    """Read `crops.npz` + `split.csv` (docs/pipeline.md); faces with non-finite points are counted skips."""
    crops_path, split_path = Path(crops_path), Path(split_path)
    for p in (crops_path, split_path):
        if not p.exists():
            raise UserError(f"{p} not found: run the crop_anime and split stages first")
    arrays = read_arrays(crops_path)
    missing = [k for k in ("face_id", "gray112", "points112") if k not in arrays]
    if missing:
        raise UserError(f"{crops_path} lacks arrays {missing} (see docs/pipeline.md)")
    gray, points, face_id = arrays["gray112"], arrays["points112"], arrays["face_id"].astype(str)
    n = len(face_id)
    if gray.shape[1:] != (112, 112) or gray.dtype != np.uint8 or points.shape != (n, schema.FACE40.n, 2) or len(gray) != n:
        raise UserError(f"{crops_path}: expected gray112 (N,112,112) uint8 and points112 (N,40,2); "
                        f"got {gray.shape} {gray.dtype} and {points.shape}")
    split = pd.read_csv(split_path, dtype={"face_id": str, "split": str})
    if not {"face_id", "split"} <= set(split.columns):
        raise UserError(f"{split_path} needs columns face_id, split; has {list(split.columns)}")
    unknown = sorted(set(split["split"]) - set(SPLITS))
    if unknown:
        raise UserError(f"{split_path}: unknown split names {unknown}; expected {SPLITS}")
    which = dict(zip(split["face_id"], split["split"], strict=True))

    skipped: dict[str, list[str]] = {"no_split_row": [], "non_finite_points": []}
    keep: dict[str, list[int]] = {s: [] for s in SPLITS}
    finite = np.isfinite(points).all(axis=(1, 2))
    for i, fid in enumerate(face_id):
        if fid not in which:
            skipped["no_split_row"].append(fid)
        elif not finite[i]:
            skipped["non_finite_points"].append(fid)
        else:
            keep[which[fid]].append(i)
    splits = {s: FaceSet(gray[idx], points[idx].astype(np.float32), face_id[idx]) for s, idx in keep.items()}
    for s in require:
        if len(splits[s]) == 0:
            raise UserError(f"the '{s}' split is empty ({split_path}); the DAN needs train, val and test faces")

    h = hashlib.sha256()
    for s in SPLITS:
        fs = splits[s]
        h.update(s.encode())
        h.update("\n".join(fs.face_id).encode())
        h.update(np.ascontiguousarray(fs.gray).tobytes())
        h.update(np.ascontiguousarray(fs.points).tobytes())
    return AnimeData(splits=splits, skipped={k: v for k, v in skipped.items() if v}, digest=h.hexdigest())


def training_statistics(train: FaceSet, mirror: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean shape (40, 2) and per-pixel mean/std images (112, 112) in [0, 1] units, over the training set
    (plus its mirror images when mirroring is an augmentation, so the statistics are left-right symmetric)."""
    gray = train.gray.astype(np.float64) / 255.0
    points = train.points.astype(np.float64)
    if mirror:
        gray = np.concatenate([gray, gray[:, :, ::-1]])
        points = np.concatenate([points, schema.flip_points(points, schema.FACE40, gray.shape[2])])
    mean_image = gray.mean(axis=0)
    std_image = np.maximum(gray.std(axis=0), 1e-2)  # floor: a pixel constant over the set would divide by 0
    return points.mean(axis=0).astype(np.float32), mean_image.astype(np.float32), std_image.astype(np.float32)


def make_batch(faces: FaceSet, idx: np.ndarray, augment: Augment | None, gen: torch.Generator | None,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Gray (B, 1, 112, 112) float in [0, 1] and points (B, 40, 2), augmented when `augment` is given.

    Random numbers come only from `gen` (CPU), so a run is reproducible and resumable from its state.
    """
    gray = faces.gray[idx].astype(np.float32) / 255.0
    points = faces.points[idx].astype(np.float64)
    if augment is not None:
        b, size = len(idx), gray.shape[-1]
        if augment.mirror:
            flip = torch.rand(b, generator=gen).numpy() < 0.5
            gray[flip] = gray[flip][:, :, ::-1]
            points[flip] = schema.flip_points(points[flip], schema.FACE40, size)
        u = torch.rand(b, 6, generator=gen, dtype=torch.float64) * 2 - 1  # uniform in [-1, 1]
        angle = torch.deg2rad(u[:, 0] * augment.rotate_deg)
        scale = 1 + u[:, 1] * augment.scale
        shift = u[:, 2:4] * augment.translate_px
        c = torch.full((b, 2), (size - 1) / 2, dtype=torch.float64)
        cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
        m = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        t = c + shift - torch.einsum("bij,bj->bi", m, c)  # T(p) = m (p - c) + c + shift
        img = geometry.warp_image(torch.from_numpy(gray)[:, None].double(), (m, t), padding_mode="border")
        pts = geometry.apply_similarity(torch.from_numpy(points), (m, t))
        # Characters differ in skin/hair/eye tones: jitter contrast about the image mean, then brightness.
        mean = img.mean(dim=(1, 2, 3), keepdim=True)
        contrast = (1 + u[:, 4] * augment.contrast).view(b, 1, 1, 1)
        brightness = (u[:, 5] * augment.brightness).view(b, 1, 1, 1)
        img = ((img - mean) * contrast + mean + brightness).clamp(0.0, 1.0)
        return img.float().to(device), pts.float().to(device)
    return torch.from_numpy(np.ascontiguousarray(gray))[:, None].to(device), torch.from_numpy(points).float().to(device)
