"""The photo set of the photo_landmarks stage: photos -> dlib faces -> crop views, table, targets, metrics.

`build_photo_set` runs the whole stage in memory and returns every output ready to write, so the stage
script only parses params and writes files. Every random draw comes from
`np.random.default_rng([seed, crc32(photo_id)])`: a photo's views do not depend on the other photos.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from face2anime.data.photo_crops import SIZE, CropView, auto_lid_shift, crop_views, mean_shape, shape_offset
from face2anime.data.photos import Jitter, PhotoFile, PhotoSkip, demo_photos, list_photos, load_photo, split_by_photo
from face2anime.errors import UserError
from face2anime.io import read_arrays, read_table
from face2anime.landmarks.dlib68 import DlibLandmarker, NoFace
from face2anime.landmarks.framing import Framing
from face2anime.landmarks.schema import dlib_to_face40
from face2anime.params import PhotoLandmarksParams
from face2anime.viz.mean_shapes import plot_mean_shapes

CSV_COLUMNS = ["photo_id", "path", "status", "reason", "split", "source_photo", "variant", "mirrored",
               "n_faces", "width", "height", "detect_scale", "det_score"]


@dataclass
class AnimePoints:
    """The anime side of the comparison: points112 + visibility and which faces they are ('train' or 'all')."""

    points: np.ndarray   # (N, 40, 2) float64, crop pixels at 112
    visible: np.ndarray  # (N, 40) bool
    which: str


@dataclass
class PhotoSet:
    """Everything photo_landmarks writes: the crops' arrays, the photo table, the metrics, the mean-shape picture."""

    arrays: dict[str, np.ndarray]  # data/photos/crops.npz
    table: pd.DataFrame            # data/photos/photos.csv: one row per crop view or skipped photo
    metrics: dict[str, Any]        # metrics/photos.json
    mean_shapes_rgb: np.ndarray    # reports/mean_shapes.png (RGB)
    lid_shift: float               # px at 112, unrounded (the metrics hold it rounded)

    def summary(self) -> str:
        """The stage's one-line summary."""
        m = self.metrics
        offsets = m["mean_offset_to_anime_px"]
        off = f", mean offset to anime {offsets['target']['mean']:.2f} px" if offsets else ", no anime crops to compare"
        return (f"{m['ok']}/{m['photos']} photos ok ({m['skipped']} skipped), {m['crops']} crops, "
                f"{m['train_photos']} train / {m['test_photos']} test photos, lid shift {self.lid_shift:.2f} px{off}")


def check_params(p: PhotoLandmarksParams, anime_crops: Path) -> None:
    """Fail early, before any photo is read: lid shift auto needs the anime crops."""
    if p.lower_lid_shift == "auto" and not anime_crops.exists():
        raise UserError(f"lower_lid_shift: auto needs the anime crops {anime_crops} (run crop_anime first) "
                        "or set a number (8.8 = the study)")


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
    for photo in tqdm(photos, desc="photo_landmarks", unit="photo"):
        base = {"photo_id": photo.photo_id, "path": photo.label, "source_photo": photo.photo_id}
        try:
            image = load_photo(photo.path)
            face = landmarker.find_face(image)
        except (PhotoSkip, NoFace) as skip:
            n_faces = getattr(skip, "n_faces", 0)
            rows.append({**base, "status": "skipped", "reason": skip.reason, "n_faces": n_faces})
            skipped.append({"photo": photo.label, "reason": skip.reason})
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


def photo_table(rows: list[dict], test_fraction: float, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """(table, side per source photo): all views of a photo land on the same side of the split."""
    df = pd.DataFrame(rows).reindex(columns=CSV_COLUMNS)
    for col in ("variant", "mirrored", "n_faces", "width", "height"):
        df[col] = df[col].astype("Int64")
    ok = df["status"] == "ok"
    sides = split_by_photo(df.loc[ok, "source_photo"].tolist(), test_fraction, seed)
    df["split"] = [sides[sp] if st == "ok" else "" for sp, st in zip(df["source_photo"], df["status"])]
    df["reason"] = df["reason"].fillna("")
    return df, sides


def load_anime_points(crops: Path, split: Path) -> AnimePoints | None:
    """The anime crops' points112 + visibility (train faces when the split exists), or None if absent."""
    if not crops.exists():
        return None
    arrays = read_arrays(crops)
    points, visible = arrays["points112"].astype(np.float64), arrays["visible"].astype(bool)
    which = "all"
    if split.exists():
        sides = read_table(split).set_index("face_id")["split"]
        train = np.array([sides.get(f, "") == "train" for f in arrays["face_id"]])
        if train.any():
            points, visible, which = points[train], visible[train], "train"
    if len(points) == 0:
        return None
    return AnimePoints(points, visible, which)


def lower_lid_shift(shift_param: Any, anime: AnimePoints | None, train_raw: np.ndarray, anime_crops: Path
                    ) -> tuple[float, dict[str, float]]:
    """(shift in px at 112, eye openings when 'auto'): a fixed number, or the train photos' gap to the anime eyes."""
    if shift_param != "auto":
        return float(shift_param), {}
    if anime is None:
        raise UserError(f"lower_lid_shift: auto needs anime faces in {anime_crops}; it has none")
    shift, anime_open, photo_open = auto_lid_shift(anime.points, anime.visible, train_raw)
    return shift, {"anime_eye_opening_px": round(anime_open, 3), "photo_eye_opening_px": round(photo_open, 3)}


def compare_shapes(raw: np.ndarray, target: np.ndarray, shift: float, anime: AnimePoints | None
                   ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """(mean shapes by label, offsets of the photo means to the anime mean): what the lid shift changes."""
    shapes = {"photos (dlib, raw)": mean_shape(raw), f"photos (target, lid shift {shift:.1f} px)": mean_shape(target)}
    offsets = {}
    if anime is not None:
        anime_mean = mean_shape(anime.points, anime.visible)
        shapes = {f"anime ({anime.which} faces, n={len(anime.points)})": anime_mean, **shapes}
        offsets = {"raw": shape_offset(anime_mean, shapes["photos (dlib, raw)"]),
                   "target": shape_offset(anime_mean, mean_shape(target))}
    return shapes, offsets


def build_photo_set(p: PhotoLandmarksParams, framing: Framing, anime_crops: Path, anime_split: Path) -> PhotoSet:
    """Run photo_landmarks in memory: read the photos, crop the views, split, derive targets, compare to anime."""
    seed = p.seed
    check_params(p, anime_crops)
    photos = select_photos(p)
    jitter = p.jitter
    landmarker = make_landmarker(p)
    rows, views, skipped = read_photos(photos, landmarker, framing, jitter, p)
    df, sides = photo_table(rows, p.test_fraction, seed)
    ok = df["status"] == "ok"

    points68 = np.stack([v.points68_112 for v in views])
    raw = dlib_to_face40(points68, p.mapping, 0.0)
    anime = load_anime_points(anime_crops, anime_split)
    train_rows = (df.loc[ok, "split"] == "train").to_numpy()
    shift, shift_info = lower_lid_shift(p.lower_lid_shift, anime, raw[train_rows], anime_crops)
    target = dlib_to_face40(points68, p.mapping, shift)

    arrays = {
        "photo_id": df.loc[ok, "photo_id"].to_numpy(dtype=str),
        "color112": np.stack([v.color112 for v in views]),
        "color_large": np.stack([v.color_large for v in views]),
        "points112": target.astype(np.float32),
        "points112_raw": raw.astype(np.float32),
        "points68_112": points68.astype(np.float32),
        "square": np.array([v.view.square for v in views], dtype=np.float64),
        "to_crop112": np.stack([v.to_crop112 for v in views]),
    }
    shapes, offsets = compare_shapes(raw, target, shift, anime)
    picture = plot_mean_shapes(shapes, SIZE, "mean 40-point shapes in crop pixels at 112")

    reasons = pd.Series([s["reason"] for s in skipped], dtype=str).value_counts().sort_index()
    first_views = ok & (df["variant"] == 0)
    metrics = {
        "source": p.source,
        "photos": len(photos),
        "ok": int(df.loc[ok, "source_photo"].nunique()),
        "crops": int(ok.sum()),
        "skipped": int(len(skipped)),
        "skipped_by_reason": {k: int(v) for k, v in reasons.items()},
        "skipped_photos": skipped,
        "multi_face_photos": int(df.loc[first_views, "n_faces"].gt(1).sum()),
        "downscaled_photos": int(df.loc[first_views, "detect_scale"].lt(1).sum()),
        "train_photos": sum(v == "train" for v in sides.values()),
        "test_photos": sum(v == "test" for v in sides.values()),
        "detector": p.detector,
        "face_policy": p.face_policy,
        "mapping": p.mapping,
        "lower_lid_shift_px": round(shift, 3),
        "lower_lid_shift_source": "auto" if p.lower_lid_shift == "auto" else "param",
        **shift_info,
        "anime_faces_compared": 0 if anime is None else len(anime.points),
        "mean_offset_to_anime_px": offsets or None,
    }
    return PhotoSet(arrays, df, metrics, picture, shift)
