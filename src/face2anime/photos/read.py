"""The photo crops of one split, as every later stage reads them (GAN training, GAN evaluation, report).

One reader, one check: `crops.npz` rows are the `ok` rows of `photos.csv` in order (docs/pipeline.md),
so a crops file and a table written by different runs are refused instead of silently mismatched.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from face2anime.errors import UserError
from face2anime.io import read_arrays

ARRAYS = ("photo_id", "color112", "points112")
COLUMNS = ("photo_id", "status", "split")


@dataclass(frozen=True)
class PhotoCrops:
    """The crops of one split, in file order."""

    photo_ids: np.ndarray   # (N,) str
    color: np.ndarray       # (N, 112, 112, 3) uint8 RGB
    targets: np.ndarray     # (N, 40, 2) float64 target points (crop px at 112; stored float32, widened exactly)


def load_photo_crops(crops_npz: Path | str, photos_csv: Path | str, split: str) -> PhotoCrops:
    """The rows of `crops_npz` whose `photos.csv` split is `split`; a missing, broken or mismatched pair: UserError."""
    for path in (crops_npz, photos_csv):
        if not Path(path).exists():
            raise UserError(f"{path} not found: run `dvc repro photo_landmarks` first")
    try:
        arrays = read_arrays(crops_npz)
        table = pd.read_csv(photos_csv, dtype={"photo_id": str})
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UserError(f"{crops_npz} or {photos_csv} is unreadable ({str(err).splitlines()[0]}): "
                        "re-run `dvc repro photo_landmarks`") from None
    missing = [k for k in ARRAYS if k not in arrays] + [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{crops_npz} / {photos_csv} lack {missing} (see docs/pipeline.md): re-run photo_landmarks")
    ok = table[table["status"] == "ok"].reset_index(drop=True)
    ids = arrays["photo_id"].astype(str)
    if len(ok) != len(ids) or not np.array_equal(ok["photo_id"].astype(str).to_numpy(), ids):
        raise UserError(f"{crops_npz} rows do not match the 'ok' rows of {photos_csv}: re-run photo_landmarks")
    keep = (ok["split"] == split).to_numpy()
    if not keep.any():
        raise UserError(f"no photos with split == {split!r} in {photos_csv} (of {len(ids)} crops)")
    return PhotoCrops(ids[keep], arrays["color112"][keep], arrays["points112"][keep].astype(np.float64))
