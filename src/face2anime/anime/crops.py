"""Canonical face crops from frames and 40 points, by the one framing rule (`landmarks/framing.py`).

Every crop of a face comes from the same square: gray and colour at 112 px for the DAN, colour at a
larger size for the GAN's style set. A face whose square lies mostly outside the frame is skipped
(the replicated border would be most of the crop), counted and listed by the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from face2anime.errors import UserError
from face2anime.imaging.images import to_gray
from face2anime.landmarks.framing import Framing, crop_image, framing_square, to_crop

CROP_SIZE = 112


def outside_fraction(square: np.ndarray, width: int, height: int) -> float:
    """Share of the square's area (x0, y0, side) that lies outside a width x height frame."""
    x0, y0, side = (float(v) for v in square)
    if side <= 0:
        return 1.0
    # the frame covers pixel centres 0..w-1, i.e. the area [-0.5, w - 0.5)
    ix = max(0.0, min(x0 + side, width - 0.5) - max(x0, -0.5))
    iy = max(0.0, min(y0 + side, height - 0.5) - max(y0, -0.5))
    return 1.0 - (ix * iy) / (side * side)


def check_crops_pair(crops_npz: Path | str, csv_face_ids, crops_csv: Path | str) -> None:
    """crop_anime publishes crops.npz and crops.csv back to back: a kill between the two renames (or a copy of
    only one) leaves them from different runs, which must not go on as if they matched."""
    crops_npz = Path(crops_npz)
    if not crops_npz.exists():
        raise UserError(f"{crops_npz} not found next to {crops_csv}: re-run `dvc repro crop_anime`")
    try:
        with np.load(crops_npz, allow_pickle=False) as data:
            npz_ids = data["face_id"].astype(str)
    except Exception as err:  # noqa: BLE001 - any reader failure means a broken file
        raise UserError(f"cannot read face_id from {crops_npz} ({type(err).__name__}): "
                        "re-run `dvc repro crop_anime`") from None
    csv_ids = np.asarray(csv_face_ids).astype(str)
    if len(npz_ids) != len(csv_ids) or (npz_ids != csv_ids).any():
        diff = next((i for i, (a, b) in enumerate(zip(npz_ids, csv_ids)) if a != b), min(len(npz_ids), len(csv_ids)))
        raise UserError(f"{crops_npz} ({len(npz_ids)} faces) and {crops_csv} ({len(csv_ids)} faces) do not match "
                        f"(first difference at row {diff}): they come from different crop_anime runs; "
                        "re-run `dvc repro crop_anime`")


@dataclass
class FaceCrop:
    gray112: np.ndarray
    color112: np.ndarray
    color_large: np.ndarray
    points112: np.ndarray
    square: np.ndarray


def crop_face(image_rgb: np.ndarray, points40: np.ndarray, framing: Framing, large_size: int) -> FaceCrop:
    """All crops of one face: the square from its 40 points, resampled at 112 and `large_size`."""
    square = framing_square(points40, framing)
    color112 = crop_image(image_rgb, square, CROP_SIZE)
    gray112 = to_gray(color112)
    color_large = crop_image(image_rgb, square, large_size)
    pts = to_crop(points40, square, CROP_SIZE).astype(np.float32)
    return FaceCrop(gray112, color112, color_large, pts, square)


class FrameStore:
    """Frames by id from `data/frames/` (index.csv + images), for stages that revisit detected faces."""

    def __init__(self, frames_dir: Path | str):
        self.dir = Path(frames_dir)
        index_path = self.dir / "index.csv"
        if not index_path.exists():
            raise UserError(f"{index_path} not found: run the extract_frames stage first")
        index = pd.read_csv(index_path, dtype={"frame_id": str, "path": str})
        missing = [c for c in ("frame_id", "path") if c not in index.columns]
        if missing:
            raise UserError(f"{index_path} lacks columns: {', '.join(missing)}")
        self.paths = dict(zip(index["frame_id"], index["path"], strict=True))
        self.sizes = ({f: (int(w), int(h)) for f, w, h in zip(index["frame_id"], index["width"], index["height"],
                                                              strict=True)}
                      if {"width", "height"} <= set(index.columns) else {})

    def path(self, frame_id: str) -> Path:
        if frame_id not in self.paths:
            raise UserError(f"frame {frame_id} is not in {self.dir / 'index.csv'}: re-run extract_frames "
                            "and detect_anime so that faces and frames match")
        return self.dir / self.paths[frame_id]

    def rgb(self, frame_id: str) -> np.ndarray:
        path = self.path(frame_id)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UserError(f"cannot read frame image {path}: re-run extract_frames")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def gray(self, frame_id: str) -> np.ndarray:
        return to_gray(self.rgb(frame_id))
