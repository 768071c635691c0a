"""A picture of what extraction kept: the first kept frame of every scene, to check cuts at a glance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from face2anime.viz.sheets import contact_sheet


def scene_sheet(index: pd.DataFrame, frames_dir: Path, max_tiles: int = 48, tile_width: int = 192,
                ncols: int = 6) -> np.ndarray | None:
    """BGR contact sheet of each scene's first kept frame (evenly thinned to `max_tiles`); None if no frame."""
    firsts = index.groupby(["video", "scene"], sort=False).head(1)
    if firsts.empty or max_tiles <= 0:
        return None
    if len(firsts) > max_tiles:
        firsts = firsts.iloc[np.linspace(0, len(firsts) - 1, max_tiles).round().astype(int)]
    tiles, labels = [], []
    for row in firsts.itertuples():
        image = cv2.imread(str(Path(frames_dir) / row.path))
        height = max(1, round(image.shape[0] * tile_width / image.shape[1]))
        tiles.append(cv2.resize(image, (tile_width, height), interpolation=cv2.INTER_AREA))
        labels.append(f"{row.video} scene {row.scene} f{row.frame}")
    return contact_sheet(tiles, ncols=ncols, labels=labels)
