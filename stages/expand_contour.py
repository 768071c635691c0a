"""Stage expand_contour: 5 detected contour points -> 17, and the 40-point table.

Reads `data/anime/faces.parquet`, `data/frames/` and `data/corrections/contour.csv`; writes
`data/anime/landmarks40.parquet`, `metrics/contour.json` and `reports/contour_worst.png` (docs/pipeline.md).
The work is `face2anime.anime.landmarks40.build_landmarks40`.
"""

from __future__ import annotations

from pathlib import Path

from face2anime.anime.landmarks40 import build_landmarks40
from face2anime.io import write_image, write_json, write_table
from face2anime.settings import load_settings
from face2anime.stage import run_stage
from face2anime.viz.sheets import rgb_to_bgr

FACES_IN = Path("data/anime/faces.parquet")
FRAMES_DIR = Path("data/frames")
TABLE_OUT = Path("data/anime/landmarks40.parquet")
METRICS_OUT = Path("metrics/contour.json")
PICTURE_OUT = Path("reports/contour_worst.png")


def main() -> str:
    params = load_settings("expand_contour")
    framing = load_settings("framing")
    result = build_landmarks40(params, framing, FACES_IN, FRAMES_DIR)
    write_table(TABLE_OUT, result.table)
    write_json(METRICS_OUT, result.metrics)
    write_image(PICTURE_OUT, rgb_to_bgr(result.worst_rgb))
    return result.summary()


if __name__ == "__main__":
    run_stage("expand_contour", main, outputs=[TABLE_OUT, METRICS_OUT, PICTURE_OUT])
