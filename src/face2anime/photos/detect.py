"""The detect_photos stage's work: photos -> dlib faces + 68 points -> crop views and the photo table.

This is the slow half of the photo side (decoding and dlib), kept apart from the 40-point targets
(`photos.landmark_set`, stage photo_landmarks) so that nothing the targets read (the anime crops for the lid
shift and the comparison, the split) re-runs dlib. The views folder `data/photo_views/` holds exactly
what the targets need: each ok view's pixels and dlib points at 112 (float64, as computed) and the table
of every view and skipped photo, in processing order. Every random draw comes from
`np.random.default_rng([seed, crc32(photo_id)])`: a photo's views do not depend on the other photos.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from face2anime.errors import UserError
from face2anime.io import read_arrays, read_table, write_arrays, write_table
from face2anime.landmarks.dlib68 import DlibLandmarker, NoFace
from face2anime.landmarks.framing import Framing
from face2anime.params import PhotoLandmarksParams
from face2anime.photos.crops import CropView, crop_views
from face2anime.photos.files import PhotoFile, PhotoSkip, demo_photos, list_photos, load_photo
from face2anime.photos.views import Jitter

# photos.csv without `split` (photo_landmarks assigns it): one row per crop view or skipped photo
VIEW_COLUMNS = ["photo_id", "path", "status", "reason", "source_photo", "variant", "mirrored",
                "n_faces", "width", "height", "detect_scale", "det_score", "detail"]
ARRAYS_FILE, TABLE_FILE = "views.npz", "photos.parquet"  # parquet: the table round-trips exactly
ARRAY_KEYS = ("photo_id", "color112", "color_large", "points68_112", "square", "to_crop112")


@dataclass
class PhotoViews:
    """Everything detect_photos writes: the ok views' arrays (rows = the table's ok rows) and the table."""

    arrays: dict[str, np.ndarray]  # photo_id, color112, color_large, points68_112, square, to_crop112
    table: pd.DataFrame            # VIEW_COLUMNS

    def summary(self) -> str:
        """The stage's one-line summary."""
        ok = self.table["status"] == "ok"
        photos = self.table["source_photo"].nunique()
        kept = self.table.loc[ok, "source_photo"].nunique()
        return f"{kept}/{photos} photos with a face ({photos - kept} skipped), {int(ok.sum())} crop views"


def select_photos(p: PhotoLandmarksParams) -> list[PhotoFile]:
    """The photos to read: the demo portraits or every file of the user's folder."""
    if p.source == "demo":
        return demo_photos()
    return list_photos(p.photos_dir)


def make_landmarker(p: PhotoLandmarksParams) -> DlibLandmarker:
    """dlib's detector + 68-point predictor as the params configure them."""
    return DlibLandmarker(detector=p.detector, upsample=p.upsample, threshold=p.det_threshold,
                          policy=p.face_policy, max_side=p.max_side, predictor_path=p.predictor_path,
                          cnn_path=p.cnn_path)


def read_photos(photos: list[PhotoFile], landmarker: DlibLandmarker, framing: Framing, jitter: Jitter,
                p: PhotoLandmarksParams) -> tuple[list[dict], list[CropView], list[dict]]:
    """(table rows, crop views, skipped photos): a bad photo becomes a 'skipped' row with its reason, not an error."""
    seed, large, variants = p.seed, p.large_size, p.variants
    rows, views, skipped = [], [], []
    for photo in tqdm(photos, desc="detect_photos", unit="photo"):
        base = {"photo_id": photo.photo_id, "path": photo.label, "source_photo": photo.photo_id}
        try:
            image = load_photo(photo.path, p.max_pixels)
            face = landmarker.find_face(image)
        except (PhotoSkip, NoFace) as skip:
            n_faces = getattr(skip, "n_faces", 0)
            rows.append({**base, "status": "skipped", "reason": skip.reason, "n_faces": n_faces,
                         "detail": getattr(skip, "detail", "")})
            skipped.append({"photo": photo.label, "reason": skip.reason,
                            **({"detail": skip.detail} if getattr(skip, "detail", "") else {})})
            continue
        rng = np.random.default_rng([seed, zlib.crc32(photo.photo_id.encode())])
        note = f"{face.n_faces} faces, {p.face_policy} kept" if face.n_faces > 1 else ""
        for cv in crop_views(image, face, framing, p.mapping, large, variants, jitter, rng):
            rows.append({**base, "photo_id": f"{photo.photo_id}_v{cv.view_index:02d}", "status": "ok",
                         "reason": note, "variant": cv.view_index, "mirrored": int(cv.view.mirror),
                         "n_faces": face.n_faces, "width": image.shape[1], "height": image.shape[0],
                         "detect_scale": face.detect_scale, "det_score": face.detection.score})
            views.append(cv)
    if not views:
        reasons = ", ".join(sorted({s["reason"] for s in skipped})) or "none"
        raise UserError(f"no usable face in {len(photos)} photo(s) (skip reasons: {reasons}); "
                        "see the photo folder or set photo_landmarks.source: demo")
    return rows, views, skipped


def view_table(rows: list[dict]) -> pd.DataFrame:
    """The table with fixed columns and integer columns that stay integers next to the skipped rows' blanks."""
    df = pd.DataFrame(rows).reindex(columns=VIEW_COLUMNS)
    for col in ("variant", "mirrored", "n_faces", "width", "height"):
        df[col] = df[col].astype("Int64")
    df["reason"] = df["reason"].fillna("")
    df["detail"] = df["detail"].fillna("")
    return df


def build_photo_views(p: PhotoLandmarksParams, framing: Framing) -> PhotoViews:
    """Run detect_photos in memory: read the photos, find one face each, render its crop views."""
    photos = select_photos(p)
    jitter = p.jitter
    rows, views, _ = read_photos(photos, make_landmarker(p), framing, jitter, p)
    df = view_table(rows)
    arrays = {
        "photo_id": df.loc[df["status"] == "ok", "photo_id"].to_numpy(dtype=str),
        "color112": np.stack([v.color112 for v in views]),
        "color_large": np.stack([v.color_large for v in views]),
        "points68_112": np.stack([v.points68_112 for v in views]),  # float64: the targets are derived from it
        "square": np.array([v.view.square for v in views], dtype=np.float64),
        "to_crop112": np.stack([v.to_crop112 for v in views]),
    }
    return PhotoViews(arrays, df)


def write_photo_views(folder: Path, views: PhotoViews) -> None:
    """The views folder's two files (the caller publishes the folder as a whole)."""
    write_arrays(folder / ARRAYS_FILE, **views.arrays)
    write_table(folder / TABLE_FILE, views.table)


def read_photo_views(folder: Path) -> PhotoViews:
    """The views folder, checked to be whole: arrays rows = the table's ok rows, in order."""
    paths = [folder / ARRAYS_FILE, folder / TABLE_FILE]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UserError(f"{', '.join(missing)} not found: run `dvc repro detect_photos` first")
    arrays, table = read_arrays(paths[0]), read_table(paths[1])
    absent = sorted(set(ARRAY_KEYS) - set(arrays))
    if absent:
        raise UserError(f"{paths[0]} lacks {', '.join(absent)}: re-run `dvc repro detect_photos`")
    ok_ids = table.loc[table["status"] == "ok", "photo_id"].tolist()
    if list(table.columns) != VIEW_COLUMNS or ok_ids != arrays["photo_id"].tolist():
        raise UserError(f"{folder} is inconsistent (table columns or rows do not match {ARRAYS_FILE}): "
                        "re-run `dvc repro detect_photos`")
    return PhotoViews(arrays, table)
