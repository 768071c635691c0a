"""How far (KID) do anime faces move from the anime style set when they only take real people's skin colours?

The painter is asked for two things at once: KID to the held-out anime faces well below the photos' and the
photo's skin colour kept (CIELAB delta E <= 15). This measures what the second costs the first, without any
generator: each held-out anime crop's face (its outline closed over the brows) is shifted in CIELAB from its own
skin median to the skin median of a held-out photo (drawn at random), the line art and everything else kept.
KID of these recoloured anime crops to the anime training crops is then printed next to the held-out anime
crops' own KID (the floor) and the raw photos' KID, on the evaluation's features and subsets.

Run in a workspace whose `eval_gan_reference` and `prepare_spade` outputs are current (the demo, or a
`dvc exp run` on your photos): `python scripts/kid_colour_floor.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from face2anime.errors import UserError
from face2anime.gan.backbone import load_backbone
from face2anime.io import read_arrays
from face2anime.metrics import gan
from face2anime.metrics.features import embed
from face2anime.metrics.gan_eval import load_photos, read_reference
from face2anime.paint.conditioning import face_polygon, polygon_mask
from face2anime.paint.regions import skin_mask
from face2anime.runtime import set_threads
from face2anime.settings import load_settings


def skin_median_lab(rgb: np.ndarray, points40: np.ndarray) -> np.ndarray | None:
    """CIELAB (OpenCV 8-bit scale) median of the skin region, None when the region is empty."""
    skin = skin_mask(points40, rgb.shape[0])
    if not skin.any():
        return None
    return np.median(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[skin].astype(np.float64), axis=0)


def recolour_face(rgb: np.ndarray, points40: np.ndarray, skin_lab: np.ndarray) -> np.ndarray:
    """`rgb` with its face region shifted in CIELAB so that its skin median becomes `skin_lab`."""
    own = skin_median_lab(rgb, points40)
    if own is None:
        return rgb
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float64)
    face = polygon_mask(face_polygon(points40), rgb.shape[0]) > 0
    lab[face] += skin_lab - own
    return cv2.cvtColor(np.round(lab).clip(0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def main() -> int:
    try:
        measure()
    except UserError as err:
        print(f"kid_colour_floor: error: {err}", file=sys.stderr)
        return 1
    return 0


def measure() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="pairing of anime crops with photos")
    parser.add_argument("--picture", type=Path, help="write the first 48 recoloured crops here (PNG)")
    args = parser.parse_args()
    p = load_settings("eval_gan")
    set_threads(p.threads)
    device = torch.device("cpu")
    refs = read_reference(Path("data/gan_eval/reference.npz"))
    photos = load_photos(Path("data/photos/crops.npz"), Path("data/photos/photos.csv"), p.split)
    held_out = read_arrays(Path("data/spade/test.npz"))
    skins = [s for s in (skin_median_lab(c, q.astype(np.float64)) for c, q in zip(photos.color, photos.targets))
             if s is not None]
    rng = np.random.default_rng(args.seed)
    recoloured = np.stack([recolour_face(c, q.astype(np.float64), skins[rng.integers(len(skins))])
                           for c, q in zip(held_out["color"], held_out["points"])])
    fn = p.feature_net
    net = load_backbone(fn.name, fn.layer, weights=fn.weights, device=device)
    feats = embed(net, recoloured, p.batch_size, device)[0]
    train = refs["anime_train_pooled"]

    def kid(x: np.ndarray) -> str:
        k = gan.kid(x, train, p.kid.subsets, p.kid.subset_size, p.seed)
        return f"{k.mean:.0f} +- {k.std:.0f}"

    if args.picture:
        rows = [np.concatenate(list(recoloured[i:i + 8]), axis=1) for i in range(0, min(48, len(recoloured)) - 7, 8)]
        cv2.imwrite(str(args.picture), cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
    print(f"KID to the {len(train)} anime training crops: held-out anime {kid(refs['anime_pooled'])} (the floor); "
          f"the same crops with {len(skins)} photos' skin colours {kid(feats)}; the raw photos "
          f"{kid(refs['photo_pooled'])}")


if __name__ == "__main__":
    sys.exit(main())
