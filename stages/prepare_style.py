"""Stage prepare_style: the GAN's style side from the anime crops.

TRAIN-split anime colour crops -> `data/style/style.npz` (color, smoothed = CartoonGAN edge-smoothed copy,
gray = ITU-R 601 grayscale for AnimeGAN, face_id) and `reports/style_preview.png`; TEST-split crops ->
`data/style/style_test.npz` (color, face_id) for the GAN evaluation's KID.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from face2anime.anime.split import read_split_crops, split_rows
from face2anime.anime.style import EdgeSmoothing, build_style_set, edge_mask
from face2anime.errors import UserError
from face2anime.io import write_arrays, write_image
from face2anime.settings import load_settings
from face2anime.stage import run_stage
from face2anime.viz.sheets import contact_sheet, rgb_to_bgr

CROPS = Path("data/anime/crops.npz")
SPLIT = Path("data/anime/split.csv")
STYLE = Path("data/style/style.npz")
STYLE_TEST = Path("data/style/style_test.npz")
PREVIEW = Path("reports/style_preview.png")


def main() -> str:
    p = load_settings("prepare_style")
    crops, ids, split = read_split_crops(CROPS, SPLIT, ("color112",))
    train = split_rows(ids, split, p.train_split)
    test = split_rows(ids, split, p.test_split)
    if len(train) == 0:
        raise UserError(f"no anime faces with split == {p.train_split!r} in {SPLIT}")
    cfg = EdgeSmoothing.from_params(p)
    style = build_style_set(crops["color112"][train], cfg)
    write_arrays(STYLE, face_id=ids[train], **style)
    write_arrays(STYLE_TEST, face_id=ids[test], color=crops["color112"][test])

    n = min(p.preview_faces, len(train))
    pick = np.linspace(0, len(train) - 1, n).round().astype(int)
    masks = [np.repeat(edge_mask(style["color"][i], cfg)[:, :, None] * np.uint8(255), 3, axis=2) for i in pick]
    tiles = [style["color"][i] for i in pick] + masks + [style["smoothed"][i] for i in pick] + \
            [style["gray"][i] for i in pick]
    labels = ["color"] * n + ["edges (dilated)"] * n + ["smoothed"] * n + ["gray"] * n
    write_image(PREVIEW, rgb_to_bgr(contact_sheet(tiles, ncols=n, labels=labels)))
    changed = float(np.mean([(style["smoothed"][i] != style["color"][i]).any(-1).mean() for i in range(len(train))]))
    return (f"style set {len(train)} train faces ({changed:.1%} of pixels edge-smoothed), "
            f"{len(test)} test faces for evaluation")


if __name__ == "__main__":
    run_stage("prepare_style", main, outputs=[STYLE, STYLE_TEST, PREVIEW])
