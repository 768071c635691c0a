"""Stage eval_gan_reference: features of the held-out photos and anime faces, shared by every eval_gan@variant.

Embeds the test-split photo crops and (a seeded subset of) the held-out anime crops with the offline
feature network (and Inception v3 when its weights resolve), and runs the frozen DAN on the photos
(the landmark baseline). Writes `data/gan_eval/reference.npz`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from face2anime.dan.inference import FrozenDAN
from face2anime.device import resolve_device
from face2anime.gan.backbone import load_backbone
from face2anime.io import write_arrays
from face2anime.metrics.features import load_inception
from face2anime.metrics.gan_eval import dan_points, load_anime, load_photos, reference_features
from face2anime.runtime import seed_everything, set_threads
from face2anime.settings import load_settings
from face2anime.stage import run_stage

PHOTOS_NPZ = Path("data/photos/crops.npz")
PHOTOS_CSV = Path("data/photos/photos.csv")
STYLE_TEST = Path("data/style/style_test.npz")
DAN_DIR = Path("models/dan")
OUT = Path("data/gan_eval/reference.npz")


def main() -> str:
    p = load_settings("eval_gan")
    seed = p.seed
    seed_everything(seed)
    set_threads(p.threads)
    device = resolve_device(p.device, "eval_gan.device")
    photos = load_photos(PHOTOS_NPZ, PHOTOS_CSV, p.split)
    anime = load_anime(STYLE_TEST, p.max_anime, seed)
    fn = p.feature_net
    net = load_backbone(fn.name, fn.layer, weights=fn.weights, device=device)
    feature_net = f"{fn.name} {fn.layer} (ReLU), global average pooled, {net.out_channels}-d"
    inception, note = (None, "switched off (eval_gan.inception.enabled: false)")
    if p.inception.enabled:
        inception, note = load_inception(p.inception.weights)
        if inception is not None:
            inception = inception.to(device)
    batch = p.batch_size
    refs = reference_features(photos, anime, net, inception, batch, device)
    refs["photo_dan_points"] = dan_points(FrozenDAN.load(DAN_DIR, device=device), photos.color, batch, device)
    refs["feature_net"] = np.array(feature_net)
    refs["inception_note"] = np.array(note if inception is None else f"used: {note}")
    write_arrays(OUT, **refs)
    return (f"{len(photos.photo_ids)} held-out photos, {len(anime)} anime faces embedded with {feature_net}; "
            f"inception: {'yes' if inception is not None else 'no (' + note[:60] + '...)'}")


if __name__ == "__main__":
    run_stage("eval_gan_reference", main, outputs=[OUT])
