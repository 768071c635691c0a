"""Stage detect_photos: face photos -> dlib face + 68 points -> crop views (112 and large) and the photo table.

The slow half of the photo side (decoding, dlib); it reads no anime data, so an anime change never
re-runs it. Reads the user's photo folder (or the demo portraits) and writes the folder
`data/photo_views/` (`views.npz` + `photos.parquet`, published together) that photo_landmarks turns into
targets (see docs/pipeline.md). The work is `face2anime.photos.detect.build_photo_views`.
"""

from __future__ import annotations

from pathlib import Path

from face2anime.io import atomic_path
from face2anime.photos.detect import build_photo_views, write_photo_views
from face2anime.settings import load_settings
from face2anime.stage import run_stage

OUT_DIR = Path("data/photo_views")


def main() -> str:
    p = load_settings("photo_landmarks")
    framing = load_settings("framing")
    views = build_photo_views(p, framing)
    with atomic_path(OUT_DIR, is_dir=True) as tmp:
        write_photo_views(tmp, views)
    return views.summary()


if __name__ == "__main__":
    run_stage("detect_photos", main, outputs=[OUT_DIR])
