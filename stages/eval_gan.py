"""Stage eval_gan@<variant>: one trained painter on the held-out photos -> `metrics/gan/<variant>.json`.

Every family through one door (`gan.painting.load_painter`: the study generators and the spade painter).
Landmark consistency (frozen DAN on the grayscale output vs the photo's 40 target points, with the raw
photo as baseline, and vs the painter's own target points), style distance to held-out anime faces (KID),
the share of outputs that look anime (the probe of `eval_gan_reference`), faithfulness (pose and skin/hair
colours kept), content kept (feature distance to the input), and the study's two failure modes as flags:
collapse and copy. Reference features and the probe come from `eval_gan_reference`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from face2anime.stage import run_stage
from face2anime.dan.inference import FrozenDAN
from face2anime.gan.backbone import load_backbone
from face2anime.gan.painting import load_painter
from face2anime.io import write_json
from face2anime.metrics.features import embed, load_inception
from face2anime.device import resolve_device
from face2anime.metrics.gan_eval import (GanEvalSettings, dan_points, evaluate_variant, load_photos, read_reference,
                                         read_training_summary)
from face2anime.runtime import seed_everything, set_threads
from face2anime.settings import load_settings

PHOTOS_NPZ = Path("data/photos/crops.npz")
PHOTOS_CSV = Path("data/photos/photos.csv")
REFERENCE = Path("data/gan_eval/reference.npz")
DAN_DIR = Path("models/dan")


def main(variant: str) -> str:
    p = load_settings("eval_gan")
    seed = p.seed
    seed_everything(seed)
    set_threads(p.threads)
    device = resolve_device(p.device, "eval_gan.device")
    painter = load_painter(Path("models/gan") / variant, device, p.batch_size, p.threads)
    refs = read_reference(REFERENCE)
    photos = load_photos(PHOTOS_NPZ, PHOTOS_CSV, p.split)
    batch = p.batch_size
    outputs = painter(photos.color, photos.targets)
    target_points = painter.target_points(photos.targets)
    out_points = dan_points(FrozenDAN.load(DAN_DIR, device=device), outputs, batch, device)
    fn = p.feature_net
    net = load_backbone(fn.name, fn.layer, weights=fn.weights, device=device)
    out_pooled, out_maps = embed(net, outputs, batch, device)
    out_inception = None
    if "anime_inception" in refs:
        inception, _ = load_inception(p.inception.weights)
        if inception is not None:
            out_inception = embed(inception.to(device), outputs, batch, device)[0]
    settings = GanEvalSettings(outlier_px=p.outlier_px, kid_subsets=p.kid.subsets, kid_subset_size=p.kid.subset_size,
                            collapse_ratio_below=p.collapse_ratio_below,
                            copy_distance_below=p.copy_distance_below, seed=seed, batch_size=batch)
    result = {"variant": variant, **evaluate_variant(
        photos, outputs, out_points, refs["photo_dan_points"], refs, out_pooled, out_maps, out_inception,
        str(refs["feature_net"]), str(refs["inception_note"]), settings,
        training=read_training_summary(Path("models/gan") / variant), target_points=target_points)}
    write_json(Path("metrics/gan") / f"{variant}.json", result)
    lm, st, ar, fa = result["landmarks"], result["style"], result["anime_rate"], result["faithfulness"]
    flags = [name for name in ("collapse", "copy") if result[name][name]]
    return (f"{variant}: landmark RMSE {lm['output']['rmse_px']:.2f} px (photo {lm['photo_baseline']['rmse_px']:.2f}), "
            f"KID {st['kid']['mean']:.4g} (photo {st['kid_photo_baseline']['mean']:.4g}), "
            f"anime rate {ar['output']:.0%} (photo {ar['photo_baseline']:.0%}, anime {ar['anime_heldout']:.0%}), "
            f"point error to target {_fmt(fa['point_error_to_target_px']['median'])} px, "
            f"eye angle diff {_fmt(fa['eye_angle_diff_deg']['median'])} deg, skin/hair dE "
            f"{_fmt(fa['skin_delta_e']['median'])}/{_fmt(fa['hair_delta_e']['median'])}, "
            f"spread ratio {_fmt(result['collapse']['spread_ratio'])}, pixel MAE {result['copy']['pixel_mae']:.3f}, "
            f"checkerboard {result['checkerboard']['power']:.2e} (photo {result['checkerboard']['photo_baseline']:.2e})"
            f"{'; FLAGS: ' + ', '.join(flags) if flags else ''}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Evaluate one trained GAN variant on the held-out photos.")
    parser.add_argument("--variant", required=True, help="e.g. animegan-landmark (models/gan/<variant>/)")
    args = parser.parse_args()
    run_stage(f"eval_gan@{args.variant}", lambda: main(args.variant),
              outputs=[Path("metrics/gan") / f"{args.variant}.json"])
