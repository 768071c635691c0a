"""Stage train_gan@<model>-<loss>: train one of the study's four GAN variants.

`--model {cartoongan,animegan} --loss {base,landmark}`. Reads params `gan.common`, `gan.<model>` and
`gan.<loss>`; the training photos (photos.csv split == gan.common.photo_split), the style set from
`prepare_style`, and the frozen DAN (the landmark loss; every variant also logs the DAN's point error on
its outputs as a monitor). Writes `models/gan/<variant>/` (generator.safetensors + config.json),
resumable epoch checkpoints in `checkpoints/gan/<variant>/`, dvclive curves in `dvclive/gan/<variant>/`
and one sample grid per epoch in `reports/gan/<variant>/`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from face2anime.cli import run_stage
from face2anime.gan.backbone import load_backbone
from face2anime.gan.data import load_photos, load_style
from face2anime.gan.models import MODELS
from face2anime.device import resolve_device
from face2anime.gan.train import LOSSES, Outputs, TrainConfig, file_digest, train_gan
from face2anime.params import load_params

PHOTOS_NPZ = Path("data/photos/crops.npz")
PHOTOS_CSV = Path("data/photos/photos.csv")
STYLE = Path("data/style/style.npz")


def main(model: str, loss: str) -> str:
    gan = load_params("gan")
    cfg = TrainConfig(model=model, loss=loss, common=gan["common"], arch=gan[model], landmark=gan.get("landmark", {}))
    cfg.validate()
    c = cfg.common
    size = int(c["image_size"])
    photos = load_photos(PHOTOS_NPZ, PHOTOS_CSV, str(c["photo_split"]), size, int(c["max_photos"]) or None)
    style = load_style(STYLE, size)
    bb = c["backbone"]
    device = resolve_device(str(c.get("device", "auto")), "gan.common.device")
    backbone = load_backbone(str(bb["name"]), str(bb["layer"]), bb.get("weights") or None,
                             bool(bb.get("allow_download", False)), device)
    dan_dir = Path(str(c["dan_dir"])) if c.get("dan_dir") else None
    dan = None
    inputs = [PHOTOS_NPZ, PHOTOS_CSV, STYLE]
    if dan_dir is not None:
        from face2anime.dan.inference import FrozenDAN
        dan = FrozenDAN.load(dan_dir, device=device)
        inputs.append(dan_dir)
    variant = cfg.variant
    out = Outputs(checkpoint_dir=Path("checkpoints/gan") / variant, live_dir=Path("dvclive/gan") / variant,
                  samples_dir=Path("reports/gan") / variant, model_dir=Path("models/gan") / variant)
    result = train_gan(cfg, photos, style, backbone, out, dan=dan, input_digest=file_digest(inputs))
    last = result["history"][-1] if result["history"] else {}
    monitor = f", DAN point error on outputs {last['monitor_point_error_px']:.2f} px" \
        if "monitor_point_error_px" in last else ""
    resumed = f" (resumed after epoch {result['resumed_from']})" if result["resumed_from"] else ""
    return (f"{variant}: {result['epochs_run']} epochs on {len(photos)} photos x {len(style)} anime faces "
            f"on {result['device']}{resumed}; G loss {last.get('g_total', float('nan')):.4g}{monitor}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--loss", choices=LOSSES, required=True)
    args = parser.parse_args()
    run_stage(f"train_gan@{args.model}-{args.loss}", lambda: main(args.model, args.loss))
