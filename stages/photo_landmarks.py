"""Stage photo_landmarks: detect_photos' crop views -> train/test split, 40-point targets, mean-shape comparison.

Cheap (no photo decoded, no dlib): reads `data/photo_views/` and the anime crops (the lid shift when
`lower_lid_shift: auto`; the comparison in the metrics and picture always), writes `data/photos/crops.npz`
+ `photos.csv` (published together), `metrics/photos.json` and `reports/mean_shapes.png` (see
docs/pipeline.md). The work is `face2anime.photos.landmark_set.build_photo_set`.
"""

from __future__ import annotations

from pathlib import Path

from face2anime.io import atomic_path, write_arrays, write_image, write_json, write_table
from face2anime.photos.detect import read_photo_views
from face2anime.photos.landmark_set import build_photo_set
from face2anime.settings import load_settings
from face2anime.stage import run_stage

VIEWS_DIR = Path("data/photo_views")
OUT_DIR = Path("data/photos")
METRICS = Path("metrics/photos.json")
REPORT = Path("reports/mean_shapes.png")
ANIME_CROPS = Path("data/anime/crops.npz")
ANIME_SPLIT = Path("data/anime/split.csv")


def main() -> str:
    p = load_settings("photo_landmarks")
    photo_set = build_photo_set(p, read_photo_views(VIEWS_DIR), ANIME_CROPS, ANIME_SPLIT)
    with atomic_path(OUT_DIR, is_dir=True) as tmp:  # the pair is published by one folder rename
        write_arrays(tmp / "crops.npz", **photo_set.arrays)
        write_table(tmp / "photos.csv", photo_set.table)
    write_image(REPORT, photo_set.mean_shapes_rgb[..., ::-1])
    write_json(METRICS, photo_set.metrics)
    return photo_set.summary()


if __name__ == "__main__":
    run_stage("photo_landmarks", main, outputs=[OUT_DIR, METRICS, REPORT])
