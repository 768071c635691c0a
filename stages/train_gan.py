"""Stages init_gan@<model> and train_gan@<model>-<loss>: the study's four GAN variants.

`--model {cartoongan,animegan} --init` runs the reconstruction init once per model (it is the same for
the base and landmark variants) and writes `models/gan_init/<model>/`. `--model M --loss {base,landmark}`
starts from that generator and runs the adversarial phase. Reads params `gan.common`, `gan.<model>` and
`gan.<loss>` (the adversarial stages also `framing` and `photo_landmarks.{mapping,detector,upsample,
det_threshold,max_side}`, recorded in config.json for `face2anime convert`); the training photos (photos.csv
split == gan.common.photo_split), the style set from `prepare_style`, and the frozen DAN (the landmark loss;
every variant also logs the DAN's point error on its outputs as a monitor). Writes `models/gan/<variant>/`
(generator.safetensors, config.json, training.json), resumable epoch checkpoints in
`checkpoints/gan/<variant>/`, dvclive curves in `dvclive/gan/<variant>/` and one sample grid per epoch in
`reports/gan/<variant>/`.

With `gan.common.processes: 1` it is the plain single-process run. With N > 1 it starts N ranks of itself on
this node, as `torchrun --standalone --nproc-per-node N` would (PyTorch's elastic launcher, called in-process
so that a failure stays one line): each trains on its slice of every global batch (DDP) and rank 0 alone
writes. Started by torchrun itself (several nodes, docs/scaling.md) it is one of the ranks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from face2anime.device import resolve_device
from face2anime.errors import UserError, first_line
from face2anime.gan import distributed
from face2anime.gan.backbone import load_backbone
from face2anime.gan.data import load_pairs, load_photos, load_style
from face2anime.gan.models import MODELS
from face2anime.gan.train import LOSSES, Outputs, TrainConfig, train_gan
from face2anime.settings import load_settings
from face2anime.stage import run_stage
from face2anime.training import file_digest, recipe

PHOTOS_NPZ = Path("data/photos/crops.npz")
PHOTOS_CSV = Path("data/photos/photos.csv")
STYLE = Path("data/style/style.npz")
PAIRS = Path("data/spade/pairs.npz")
PHOTOS_METRICS = Path("metrics/photos.json")
INIT_ROOT = Path("models/gan_init")


def photo_framing() -> dict:
    """How the training photos were found and framed (params `framing`, `photo_landmarks.*`), for config.json:
    `face2anime convert` must frame new faces exactly so."""
    f, p = load_settings("framing"), load_settings("photo_landmarks")
    return {"framing": f.model_dump(),
            "photo_landmarks": {"mapping": p.mapping, "detector": p.detector, "upsample": p.upsample,
                                "det_threshold": p.det_threshold, "max_side": p.max_side,
                                "lower_lid_shift": lid_shift(p.lower_lid_shift)}}


def lid_shift(param) -> float:
    """The lower-eyelid shift (px at 112) the photos' target points had: the param, or with `auto` the value
    photo_landmarks measured (metrics/photos.json); the painter's convert moves new faces' points the same way."""
    if param != "auto":
        return float(param)
    try:
        return float(json.loads(PHOTOS_METRICS.read_text())["lower_lid_shift_px"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{PHOTOS_METRICS}: no lower_lid_shift_px ({first_line(err)}): run `dvc repro photo_landmarks` "
                        f"first") from None


def painter_record(spade, anime_mean_shape: list) -> dict:
    """What `face2anime convert` and eval need beside the painter's weights: its conditioning recipe, how far a
    photo's points move toward the anime mean shape, and that mean shape (the training pairs' mean points)."""
    return {"painter": {"conditioning": recipe(spade.conditioning, where=()), "shape_move": spade.shape_move,
                        "anime_mean_shape": anime_mean_shape}}


def entry(model: str, loss: str | None) -> str | None:
    """The stage: start `gan.common.processes` ranks of this script, or be the only (or one) rank."""
    if not distributed.launched():
        common = load_settings("gan").common
        if common.processes > 1:
            distributed.launch(common.processes, [__file__, *sys.argv[1:]], common.dist_timeout_s)
            return None   # rank 0 printed the summary
    return main(model, loss)


def main(model: str, loss: str | None) -> str:
    """`loss` None = the init run of `model`. Under torchrun every process runs this; rank 0 writes."""
    gan = load_settings("gan")
    framing = photo_framing()   # read (and checked) before any work; recorded in config.json
    init = loss is None
    cfg = TrainConfig(model=model, loss="base" if init else loss, common=gan.common, arch=getattr(gan, model),
                      landmark=gan.landmark)
    cfg.validate()
    c = cfg.common
    dist = distributed.from_env(resolve_device(c.device, "gan.common.device"), c.dist_timeout_s)
    try:
        return _train(cfg, model, loss, dist, framing)
    finally:
        distributed.cleanup(dist)


def _train(cfg: TrainConfig, model: str, loss: str | None, dist: distributed.Dist, framing: dict) -> str:
    init = loss is None
    c = cfg.common
    painter = model == "spade"
    if painter:   # the painter learns from anime faces and their conditioning, never from photos
        photos = load_pairs(PAIRS, c.image_size, cfg.arch.max_pairs or None)
        framing = {**framing, **painter_record(cfg.arch, photos.points.double().mean(dim=0).tolist())}
    else:
        photos = load_photos(PHOTOS_NPZ, PHOTOS_CSV, c.photo_split, c.image_size, c.max_photos or None)
    style = load_style(STYLE, c.image_size)
    bb = c.backbone
    device = dist.device
    backbone = load_backbone(bb.name, bb.layer, bb.weights or None, bb.allow_download, device,
                             activation=bb.activation)
    inputs = [PAIRS, STYLE] if painter else [PHOTOS_NPZ, PHOTOS_CSV, STYLE]
    dan = None
    if not init and c.dan_dir:
        from face2anime.dan.inference import FrozenDAN
        dan_dir = Path(c.dan_dir)
        dan = FrozenDAN.load(dan_dir, device=device)
        inputs.append(dan_dir)
    init_dir = None if init else INIT_ROOT / model
    if init_dir is not None and dist.is_main:       # rank 0 reads it and hands it to the others
        if not (init_dir / "generator.safetensors").exists():
            raise UserError(f"{init_dir}/generator.safetensors not found: run `dvc repro init_gan@{model}` first")
        inputs.append(init_dir)
    variant = f"{model}-init" if init else cfg.variant
    out = Outputs(checkpoint_dir=Path("checkpoints/gan") / variant, live_dir=Path("dvclive/gan") / variant,
                  samples_dir=Path("reports/gan") / variant,
                  model_dir=INIT_ROOT / model if init else Path("models/gan") / variant)
    digest = distributed.broadcast_object(dist, file_digest(inputs) if dist.is_main else None)
    result = train_gan(cfg, photos, style, backbone, out, dan=dan, input_digest=digest, init_dir=init_dir,
                       stop_after_init=init, config_extra=framing if painter or not init else None, dist=dist)
    last = result["history"][-1] if result["history"] else {}
    monitor = f", DAN point error on outputs {last['monitor_point_error_px']:.2f} px" \
        if "monitor_point_error_px" in last else ""
    resumed = f" (resumed after epoch {result['resumed_from']})" if result["resumed_from"] else ""
    t = result["training"]
    mae = f", init pixel MAE {t['init_pixel_mae']:.3f}" if t["init_pixel_mae"] is not None else ""
    top = (f", largest G loss share at the adversarial start {t['max_share_start']:.0%}"
           if t["max_share_start"] is not None else "")
    ranks = f" x {dist.world} processes" if dist.world > 1 else ""
    data = f"{len(photos)} anime pairs" if painter else f"{len(photos)} photos x {len(style)} anime faces"
    return (f"{variant}: {result['epochs_run']} epochs on {data} "
            f"on {result['device']}{ranks} (autocast {result['amp']}){resumed}; "
            f"G loss {last.get('g_total', float('nan')):.4g}"
            f"{mae}{top}{monitor}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, required=True)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--loss", choices=LOSSES)
    group.add_argument("--init", action="store_true", help="the model's reconstruction init (shared by both losses)")
    args = parser.parse_args()
    if args.model == "spade":   # the painter's stages: init_spade, train_spade@<loss>
        name = "init_spade" if args.init else f"train_spade@{args.loss}"
    else:
        name = f"init_gan@{args.model}" if args.init else f"train_gan@{args.model}-{args.loss}"
    variant = f"{args.model}-init" if args.init else f"{args.model}-{args.loss}"
    outputs = [INIT_ROOT / args.model if args.init else Path("models/gan") / variant, Path("checkpoints/gan") / variant,
               Path("reports/gan") / variant, Path("dvclive/gan") / variant]
    run_stage(name, lambda: entry(args.model, None if args.init else args.loss), quiet=distributed.env_rank() != 0,
              outputs=outputs)
