"""Stage eval_gan_reference: features of the held-out photos and anime faces, shared by every eval_gan@variant.

Embeds the test-split photo crops and (a seeded subset of) the held-out anime crops with the offline
feature network (and Inception v3 when its weights resolve), and runs the frozen DAN on the photos
(the landmark baseline). Fits the "looks anime" probe on the same network's features of the TRAINING
anime crops (`style.npz`, a seeded subset of `eval_gan.max_anime`) against the training photos
(`gan.common.photo_split`), and records the held-out photos' and anime faces' rates beside it.
Writes `data/gan_eval/reference.npz`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from face2anime.dan.inference import FrozenDAN
from face2anime.device import resolve_device
from face2anime.gan.backbone import load_backbone
from face2anime.io import write_arrays
from face2anime.metrics.features import load_inception
from face2anime.metrics.features import embed
from face2anime.metrics.gan_eval import (anime_probe_reference, dan_points, load_anime, load_photos,
                                         reference_features)
from face2anime.runtime import seed_everything, set_threads
from face2anime.settings import load_settings
from face2anime.stage import run_stage

PHOTOS_NPZ = Path("data/photos/crops.npz")
PHOTOS_CSV = Path("data/photos/photos.csv")
STYLE_TEST = Path("data/style/style_test.npz")
STYLE_TRAIN = Path("data/style/style.npz")
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
    train_anime = load_anime(STYLE_TRAIN, p.max_anime, seed)
    train_photos = load_photos(PHOTOS_NPZ, PHOTOS_CSV, load_settings("gan").common.photo_split)
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
    refs.update(anime_probe_reference(embed(net, train_anime, batch, device)[0],
                                      embed(net, train_photos.color, batch, device)[0],
                                      refs["photo_pooled"], refs["anime_pooled"], p.anime_probe_l2))
    refs["feature_net"] = np.array(feature_net)
    refs["inception_note"] = np.array(note if inception is None else f"used: {note}")
    write_arrays(OUT, **refs)
    return (f"{len(photos.photo_ids)} held-out photos, {len(anime)} anime faces embedded with {feature_net}; "
            f"anime probe ({len(train_anime)} training anime vs {len(train_photos.photo_ids)} training photos): "
            f"held-out photos {float(refs['anime_rate_photo']):.0%} / anime {float(refs['anime_rate_anime']):.0%} "
            f"called anime; inception: {'yes' if inception is not None else 'no (' + note[:60] + '...)'}")


if __name__ == "__main__":
    run_stage("eval_gan_reference", main, outputs=[OUT])
