"""A trained generator folder as convert needs it: the weights, and how its training faces were framed.

Stylising a new face only works when the face is framed exactly as the training photos were, so the
folder's config.json must say so (`framing`, `photo_landmarks`: written by the train_gan stages). A
folder written before it did is refused with a one-line error: re-run the pipeline to rewrite it.
A painter folder (config.json "painter", the spade family) also paints from the face's 40 points, so it
must record the lower-eyelid shift its photos' target points had (`photo_landmarks.lower_lid_shift`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict

from face2anime.convert.settings import FROM_MODEL, REPO_ROOT, ConvertSettings
from face2anime.errors import UserError
from face2anime.gan.models import GeneratorSettings, generator_settings
from face2anime.landmarks.framing import Framing
from face2anime.landmarks.schema import DLIB_MAPPINGS
from face2anime.params import GanCommonParams
from face2anime.settings import validate

VARIANTS_DIR = Path("models/gan")
DETECTION_KEYS = ("detector", "upsample", "det_threshold", "max_side")
LID_KEY = "lower_lid_shift"   # photo_landmarks' lower-eyelid shift (px at 112), a number as the photos used it


class _TrainedSize(BaseModel):
    """config.json's training size, under the rule `gan.common.image_size` was checked by."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    image_size: Annotated[int, GanCommonParams.model_fields["image_size"]]


@dataclass(frozen=True)
class TrainedModel:
    """A generator folder with the framing, landmark mapping and detection its training photos used."""

    path: Path
    config: dict[str, Any]
    generator: GeneratorSettings   # config.json's "generator" record, typed (`gan.models.generator_settings`)
    image_size: int
    framing: Framing
    mapping: str
    detection: dict[str, Any]   # detector, upsample, det_threshold, max_side as in training
    lid_shift: float | None     # px at 112 the photos' lower eyelids moved down (photo_landmarks.lower_lid_shift)

    @property
    def painter(self) -> dict[str, Any] | None:
        """config.json's "painter" record (conditioning recipe, shape move, anime mean shape) or None: study
        generators translate the crop itself, the painter paints from its conditioning."""
        return self.config.get("painter")

    @property
    def name(self) -> str:
        return str(self.config.get("variant", self.path.name))

    def detection_for(self, settings: ConvertSettings) -> dict[str, Any]:
        """The training's detection settings, where the convert settings do not override them."""
        return {k: self.detection[k] if getattr(settings, k) == FROM_MODEL else getattr(settings, k)
                for k in DETECTION_KEYS}


def resolve_model_dir(model: str | Path) -> Path:
    """A generator folder, or a variant name looked up in ./models/gan and then the repository's models/gan."""
    path = Path(model)
    if path.is_dir():
        return path
    if path.is_file():   # an exported .onnx / .pt, a config.json, a weights file: say what --model takes
        what = "an exported generator" if path.suffix.lower() in (".onnx", ".pt", ".pth", ".ts") else "a file"
        raise UserError(f"model {str(model)!r} is {what}, not a generator folder: give the folder "
                        f"(generator.safetensors + config.json; convert runs the PyTorch weights) or a variant name")
    name = str(model)
    if "/" not in name and "\\" not in name:
        for root in (VARIANTS_DIR, REPO_ROOT / VARIANTS_DIR):
            if (root / name).is_dir():
                return root / name
    known = sorted({p.name for root in (VARIANTS_DIR, REPO_ROOT / VARIANTS_DIR) if root.is_dir()
                    for p in root.iterdir() if (p / "config.json").exists()})
    hint = f"; variants here: {', '.join(known)}" if known else "; run `dvc repro` to train the variants"
    raise UserError(f"model {name!r} not found: give a generator folder or a variant name{hint}")


def read_model(model: str | Path) -> TrainedModel:
    """Read and check `config.json` of a generator folder (weights are loaded later, on the chosen device)."""
    path = resolve_model_dir(model)
    cfg_path = path / "config.json"
    try:   # a folder of generator folders (models/gan): name them rather than "config.json is missing"
        inner = [] if cfg_path.exists() else sorted(p.name for p in path.iterdir() if (p / "config.json").is_file())
    except OSError:
        inner = []
    if inner:
        raise UserError(f"{path} holds generator folders ({', '.join(inner[:6])}{', ...' if len(inner) > 6 else ''}): "
                        f"give one of them, e.g. {path / inner[0]}")
    for p in (cfg_path, path / "generator.safetensors"):
        if not p.is_file():
            raise UserError(f"{path} is not a generator folder: {p.name} is missing")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {cfg_path}: {err}") from None
    if not isinstance(cfg, dict) or "generator" not in cfg or "image_size" not in cfg:
        raise UserError(f"{cfg_path} is not a generator config (no 'generator' / 'image_size')")
    if cfg.get("input_range", [-1, 1]) != [-1, 1] or cfg.get("channels", "RGB") != "RGB":
        raise UserError(f"{cfg_path}: convert expects RGB input in [-1, 1], the model says "
                        f"{cfg.get('channels')} in {cfg.get('input_range')}")
    lm = cfg.get("photo_landmarks")
    if str(cfg.get("variant", "")).endswith("-init") and "framing" not in cfg:
        raise UserError(f"{path} is an init generator (variant {cfg['variant']}: the content-only warm-up, before "
                        "the adversarial phase): give a trained one, models/gan/<variant>")
    if "framing" not in cfg or not isinstance(lm, dict) or any(k not in lm for k in ("mapping", *DETECTION_KEYS)):
        raise UserError(f"{cfg_path} does not record how its training faces were framed (keys 'framing', "
                        "'photo_landmarks'): it predates `face2anime convert`; re-run `dvc repro` to rewrite it")
    generator = generator_settings(cfg["generator"], str(cfg_path))
    size = validate(_TrainedSize, cfg, str(cfg_path), "").image_size
    framing = validate(Framing, cfg["framing"], str(cfg_path), "framing")
    if lm["mapping"] not in DLIB_MAPPINGS:
        raise UserError(f"{cfg_path}: unknown landmark mapping {lm['mapping']!r}")
    shift = lm.get(LID_KEY)
    if shift is not None and (isinstance(shift, bool) or not isinstance(shift, (int, float))
                              or not math.isfinite(shift)):
        raise UserError(f"{cfg_path}: photo_landmarks.{LID_KEY} = {shift!r}: must be a number (px at 112)")
    if shift is None and cfg.get("painter") is not None:
        raise UserError(f"{cfg_path} is a painter but does not record photo_landmarks.{LID_KEY} (how its photos' "
                        "40 points were made): re-run `dvc repro` to rewrite it")
    return TrainedModel(path=path, config=cfg, generator=generator, image_size=size, framing=framing,
                        mapping=str(lm["mapping"]), detection={k: lm[k] for k in DETECTION_KEYS},
                        lid_shift=None if shift is None else float(shift))
