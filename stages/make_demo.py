"""Stage make_demo: render the synthetic anime episode with exact landmark ground truth.

Writes data/demo/episode.mp4, data/demo/truth.csv and data/demo/preview.png (see docs/pipeline.md).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from face2anime.demo.episode import Shot, render_episode
from face2anime.demo.preview import annotate, contact_sheet
from face2anime.errors import UserError
from face2anime.io import atomic_path, write_image, write_table
from face2anime.settings import load_settings
from face2anime.stage import run_stage

OUT = Path("data/demo")
VIDEO = OUT / "episode.mp4"


def main() -> str:
    # every random draw comes from numpy generators seeded with make_demo.seed (no global state involved)
    cfg = load_settings("make_demo")
    middles: dict[int, np.ndarray] = {}  # each shot's middle frame, for the preview

    with atomic_path(VIDEO) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height))
        if not writer.isOpened():
            raise UserError("OpenCV cannot write mp4v video here: install opencv-python-headless with FFmpeg")

        def sink(shot: Shot, k: int, rgb: np.ndarray) -> None:
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if k == shot.length // 2:
                middles[shot.index] = rgb

        try:
            shots, truth = render_episode(cfg, sink, video=VIDEO.name)
        finally:
            writer.release()

    write_table(OUT / "truth.csv", truth)
    with_faces = [s for s in shots if s.actors]
    pool = with_faces or shots  # a sheet even if the params leave no faces at all
    pick = np.unique(np.linspace(0, len(pool) - 1, max(1, min(cfg.preview_frames, len(pool)))).round().astype(int))
    tiles, labels = [], []
    for i in pick:
        s = pool[i]
        f = s.start + s.length // 2
        tiles.append(annotate(middles[s.index], truth[truth["frame"] == f]))
        labels.append(f"frame {f}  shot {s.index}")
    write_image(OUT / "preview.png", cv2.cvtColor(contact_sheet(tiles, labels), cv2.COLOR_RGB2BGR))

    heights = truth["box_y1"] - truth["box_y0"]
    hidden = int((truth[[c for c in truth.columns if c.endswith("_v")]] == 0).to_numpy().sum())
    groups = truth.groupby(["shot", "character"]).ngroups
    return (f"{cfg.n_frames} frames, {len(shots)} shots ({len(shots) - len(with_faces)} without faces), "
            f"{truth['character'].nunique()} characters, {groups} shot/character groups, {len(truth)} faces, "
            f"face height {heights.min():.0f}-{heights.max():.0f} px, {hidden} hidden points -> {OUT}/")


if __name__ == "__main__":
    run_stage("make_demo", main, outputs=[VIDEO, OUT / "truth.csv", OUT / "preview.png"])
