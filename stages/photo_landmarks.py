"""Stage photo_landmarks: face photos -> dlib 68 points -> 40-point targets + canonical crops (112 and large).

Reads the user's photo folder (or the demo portraits), writes `data/photos/crops.npz` + `photos.csv`,
`metrics/photos.json` and `reports/mean_shapes.png` (see docs/pipeline.md). The work is
`face2anime.data.photo_set.build_photo_set`.
"""

from __future__ import annotations

from pathlib import Path

from face2anime.cli import run_stage
from face2anime.data.photo_set import build_photo_set
from face2anime.io import write_arrays, write_image, write_json, write_table
from face2anime.params import load_settings

OUT_DIR = Path("data/photos")
METRICS = Path("metrics/photos.json")
REPORT = Path("reports/mean_shapes.png")
ANIME_CROPS = Path("data/anime/crops.npz")
ANIME_SPLIT = Path("data/anime/split.csv")


def main() -> str:
    p = load_settings("photo_landmarks")
    framing = load_settings("framing")
    photo_set = build_photo_set(p, framing, ANIME_CROPS, ANIME_SPLIT)
    write_arrays(OUT_DIR / "crops.npz", **photo_set.arrays)
    write_table(OUT_DIR / "photos.csv", photo_set.table)
    write_image(REPORT, photo_set.mean_shapes_rgb[..., ::-1])
    write_json(METRICS, photo_set.metrics)
    return photo_set.summary()


if __name__ == "__main__":
    run_stage("photo_landmarks", main)
