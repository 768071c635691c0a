"""The photo set of the photo_landmarks stage: detect_photos' crop views -> split, 40-point targets, metrics.

`build_photo_set` runs the stage in memory and returns every output ready to write, so the stage script
only parses params and writes files. It is cheap (no photo is decoded, no dlib): the anime crops it reads
(for `lower_lid_shift: auto` and the mean-shape comparison) re-run it, not dlib, and with a numeric lid
shift the targets do not depend on them, so `data/photos` keeps its bytes when only the anime side changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from face2anime.errors import UserError
from face2anime.io import read_arrays, read_table
from face2anime.landmarks.schema import dlib_to_face40
from face2anime.params import PhotoLandmarksParams
from face2anime.photos.crops import SIZE, auto_lid_shift, mean_shape, shape_offset
from face2anime.photos.detect import PhotoViews
from face2anime.photos.split import split_by_photo
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


def check_anime_input(p: PhotoLandmarksParams, anime_crops: Path) -> None:
    """Fail before any work: lid shift auto needs the anime crops."""
    if p.lower_lid_shift == "auto" and not anime_crops.exists():
        raise UserError(f"lower_lid_shift: auto needs the anime crops {anime_crops} (run crop_anime first) "
                        "or set a number (8.8 = the study)")


def photo_table(views: pd.DataFrame, test_fraction: float, seed: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """(table, side per source photo): all views of a photo land on the same side of the split."""
    df = views.copy()
    ok = df["status"] == "ok"
    sides = split_by_photo(df.loc[ok, "source_photo"].tolist(), test_fraction, seed)
    df["split"] = [sides[sp] if st == "ok" else "" for sp, st in zip(df["source_photo"], df["status"])]
    return df[CSV_COLUMNS], sides


def skipped_photos(table: pd.DataFrame) -> list[dict[str, str]]:
    """The photos detect_photos skipped, in its order, with their reasons."""
    rows = table[table["status"] == "skipped"]
    details = rows["detail"] if "detail" in rows else [""] * len(rows)
    return [{"photo": path, "reason": reason, **({"detail": detail} if detail else {})}
            for path, reason, detail in zip(rows["path"], rows["reason"], details)]


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


def build_photo_set(p: PhotoLandmarksParams, views: PhotoViews, anime_crops: Path, anime_split: Path) -> PhotoSet:
    """Run photo_landmarks in memory: split the views, derive targets, compare to anime."""
    seed = p.seed
    check_anime_input(p, anime_crops)
    df, sides = photo_table(views.table, p.test_fraction, seed)
    ok = df["status"] == "ok"
    skipped = skipped_photos(views.table)

    points68 = views.arrays["points68_112"]
    raw = dlib_to_face40(points68, p.mapping, 0.0)
    train_rows = (df.loc[ok, "split"] == "train").to_numpy()
    anime = load_anime_points(anime_crops, anime_split)  # compared in metrics + picture; a target input only if auto
    shift, shift_info = lower_lid_shift(p.lower_lid_shift, anime, raw[train_rows], anime_crops)
    target = dlib_to_face40(points68, p.mapping, shift)

    arrays = {
        "photo_id": views.arrays["photo_id"],
        "color112": views.arrays["color112"],
        "color_large": views.arrays["color_large"],
        "points112": target.astype(np.float32),
        "points112_raw": raw.astype(np.float32),
        "points68_112": points68.astype(np.float32),
        "square": views.arrays["square"],
        "to_crop112": views.arrays["to_crop112"],
    }
    shapes, offsets = compare_shapes(raw, target, shift, anime)
    picture = plot_mean_shapes(shapes, SIZE, "mean 40-point shapes in crop pixels at 112")

    reasons = pd.Series([s["reason"] for s in skipped], dtype=str).value_counts().sort_index()
    first_views = ok & (df["variant"] == 0)
    metrics = {
        "source": p.source,
        "photos": int(df["source_photo"].nunique()),
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
