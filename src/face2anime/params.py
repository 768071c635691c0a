"""Typed `params.yaml`: one pydantic model per section, checked at the stage boundary; and the one seeding.

params.yaml is the only source of values: no field here has a default. Types, ranges and choices are
declared once, here; `load_settings` turns any failure into one line naming the file, the dotted key, the
bad value and what is allowed (params.yaml itself documents what each key does).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import annotated_types as at
import numpy as np
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError, model_validator
from pydantic.fields import FieldInfo

from face2anime.errors import UserError

PARAMS_FILE = Path("params.yaml")


class _Section(BaseModel):
    """Every key required, none unknown, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _device(value: str) -> str:
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise ValueError("must be auto, cpu, cuda or cuda:N")


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError("must be an odd integer >= 1")
    return value


def _fourcc(value: str) -> str:
    if value != "auto" and len(value) != 4:
        raise ValueError("must be auto or a four-letter fourcc such as mp4v, MJPG, VP80")
    return value


Bool = StrictBool                            # true/false only: a quoted "no" is not read as a truth value
Device = Annotated[str, AfterValidator(_device)]
Seed = Annotated[int, Field(ge=0)]
Count = Annotated[int, Field(ge=1)]          # a size or count that must be positive
Threads = Annotated[int, Field(ge=0)]        # torch CPU threads; 0 = torch's default
Share = Annotated[float, Field(ge=0, le=1)]
NonNegFloat = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Range = tuple[float, float]
MaxPixels = Annotated[int, Field(ge=0)]      # larger pictures are refused before decoding; 0 = no limit


# ---- make_demo
class MakeDemoParams(_Section):
    seed: Seed
    width: Annotated[int, Field(ge=64)]
    height: Annotated[int, Field(ge=64)]
    fps: Count
    duration_s: PosFloat
    shot_len_s: Range
    max_characters: Annotated[int, Field(ge=1, le=3)]
    empty_shot_share: Share
    recurring_share: Share
    face_height_px: Range
    max_roll_deg: NonNegFloat
    max_zoom: Annotated[float, Field(ge=1)]
    world_margin: NonNegFloat
    blink_every_s: Range
    talk_share: Share
    supersample: Count
    frame_margin_px: NonNegFloat
    preview_frames: Count

    @model_validator(mode="after")
    def _ranges(self) -> MakeDemoParams:
        for key in ("shot_len_s", "face_height_px", "blink_every_s"):
            lo, hi = getattr(self, key)
            if not 0 < lo <= hi:
                raise ValueError(f"{key} must be [min, max] with 0 < min <= max, got [{lo}, {hi}]")
        return self

    @property
    def n_frames(self) -> int:
        return int(round(self.duration_s * self.fps))


# ---- extract_frames
class ExtractFramesParams(_Section):
    source: Literal["demo", "videos"]
    demo_video: str
    videos_dir: str
    step_s: NonNegFloat
    dedupe_hamming: Annotated[int, Field(ge=-1)]
    hash_size: Annotated[int, Field(ge=2)]
    scene_threshold: PosFloat
    keep_scene_starts: Bool
    max_side: Annotated[int, Field(ge=0)]
    jpeg_quality: Annotated[int, Field(ge=1, le=100)]
    workers: Count
    sheet_scenes: Count

    @model_validator(mode="after")
    def _max_side(self) -> ExtractFramesParams:
        if 0 < self.max_side < 16:
            raise ValueError(f"max_side must be 0 (keep size) or >= 16, got {self.max_side}")
        return self


# ---- detect_anime
class DetectAnimeParams(_Section):
    backend: Literal["labels", "hysts"]
    labels_file: str
    min_det_score: float | None
    min_face_px: NonNegFloat | None
    max_faces: Annotated[int, Field(ge=0)] | None
    min_lmk_score: float | None
    face_detector: Literal["yolov3", "faster-rcnn"]
    detector_weights: str | None
    landmark_weights: str | None
    allow_download: Bool
    device: Device
    flip_test: Bool
    box_scale_factor: PosFloat
    threads: Threads


# ---- expand_contour / framing / crop_anime / split
class ContourSearchParams(_Section):
    """Contour search and quality-check settings; lengths are fractions of the face width (p00-p04)."""

    smooth_sigma: NonNegFloat
    min_sigma_px: NonNegFloat
    local_sigma: PosFloat
    threshold: float
    back: NonNegFloat
    window: PosFloat
    max_window: PosFloat
    min_strength: float
    line_half: PosFloat
    max_line: PosFloat
    max_offset: PosFloat
    concave_tol: NonNegFloat
    max_turn_deg: Annotated[float, Field(gt=0, le=180)]
    prior_tol: PosFloat
    min_confident: Count


class ExpandContourParams(_Section):
    corrections: str
    visible_min_score: float
    worst_faces: Annotated[int, Field(ge=0)]
    search: ContourSearchParams


class FramingParams(_Section):
    margin: PosFloat
    y_shift: Annotated[float, Field(ge=-0.5, le=0.5)]


class CropAnimeParams(_Section):
    large_size: Annotated[int, Field(ge=112)]
    max_outside: Share
    sheet_faces: Count


class SplitParams(_Section):
    seed: Seed
    train: Share
    val: Share
    test: Share

    @model_validator(mode="after")
    def _sum(self) -> SplitParams:
        total = self.train + self.val + self.test
        if not np.isclose(total, 1.0, atol=1e-6):
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


# ---- train_dan / eval_dan
class DanAugmentParams(_Section):
    mirror: Bool
    rotate_deg: NonNegFloat
    scale: Annotated[float, Field(ge=0, lt=1)]
    translate_px: NonNegFloat
    brightness: NonNegFloat
    contrast: Annotated[float, Field(ge=0, lt=1)]


class DanParams(_Section):
    seed: Seed
    device: Device
    threads: Threads
    width: PosFloat
    dropout: Annotated[float, Field(ge=0, lt=1)]
    n_stages: Annotated[int, Field(ge=1, le=2)]
    stage_init: Literal["previous", "random"]
    batch_size: Count
    lr: list[PosFloat]
    weight_decay: NonNegFloat
    schedule: Literal["cosine", "plateau"]
    max_epochs: list[Count]
    lr_final: Annotated[float, Field(gt=0, le=1)]
    patience: list[Count]
    min_delta: NonNegFloat
    lr_patience: Count
    lr_factor: Annotated[float, Field(gt=0, lt=1)]
    passes: Count
    augment: DanAugmentParams
    mirror_average: bool

    @model_validator(mode="after")
    def _per_stage(self) -> DanParams:
        for key in ("lr", "max_epochs", "patience"):
            if len(getattr(self, key)) < self.n_stages:
                raise ValueError(f"{key} needs one entry per stage (n_stages = {self.n_stages})")
        return self


class DanTargets(_Section):
    rmse_px: NonNegFloat
    outlier_points_pct: NonNegFloat
    images_with_outlier_pct: NonNegFloat


class EvalDanParams(_Section):
    device: Device
    threads: Threads
    batch_size: Count
    outlier_px: PosFloat
    failure_nme: PosFloat
    ced_max: PosFloat
    ced_steps: Annotated[int, Field(ge=2)]
    worst_n: Count
    targets: DanTargets


# ---- photo_landmarks
class PhotoJitterParams(_Section):
    scale: Annotated[float, Field(ge=0, lt=1)]
    shift: NonNegFloat
    angle: NonNegFloat
    mirror_prob: Share
    brightness: Share
    contrast: Annotated[float, Field(ge=0, lt=1)]
    saturation: Annotated[float, Field(ge=0, lt=1)]


class PhotoLandmarksParams(_Section):
    source: Literal["demo", "folder"]
    photos_dir: str
    detector: Literal["hog", "cnn"]
    upsample: Annotated[int, Field(ge=0)]
    det_threshold: float
    face_policy: Literal["largest", "best", "skip_multiple"]
    max_side: Annotated[int, Field(ge=64)]
    mapping: Literal["meaning", "study"]
    lower_lid_shift: Literal["auto"] | float
    large_size: Annotated[int, Field(ge=112)]
    variants: Annotated[int, Field(ge=0)]
    jitter: PhotoJitterParams
    test_fraction: Annotated[float, Field(gt=0, lt=1)]
    seed: Seed
    predictor_path: str
    cnn_path: str
    max_pixels: MaxPixels


# ---- prepare_style / train_gan
class PrepareStyleParams(_Section):
    train_split: Literal["train", "val", "test"]
    test_split: Literal["train", "val", "test"]
    canny_low: Annotated[int, Field(ge=0)]
    canny_high: Annotated[int, Field(ge=0)]
    dilate: Count
    blur: Annotated[int, Field(ge=1), AfterValidator(_odd)]
    preview_faces: Count


class InitWeights(_Section):
    con: NonNegFloat
    pixel: NonNegFloat


class BackboneParams(_Section):
    name: Literal["hed-vgg16", "vgg19"]
    layer: str
    activation: Literal["pre", "relu"]
    weights: str | None
    allow_download: Bool


class GanCommonParams(_Section):
    seed: Seed
    device: Device
    amp: Bool
    channels_last: Literal["auto"] | Bool
    threads: Threads
    processes: Count
    dist_timeout_s: PosFloat
    image_size: Annotated[int, Field(ge=16)]
    photo_split: Literal["train", "val", "test"]
    max_photos: Annotated[int, Field(ge=0)]
    batch_size: Count
    init_batch_size: Count
    epochs: Count
    init_epochs: Annotated[int, Field(ge=0)]
    init_weights: InitWeights
    lr_g_init: PosFloat
    lr_g: PosFloat
    lr_d: PosFloat
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]]
    backbone: BackboneParams
    dan_dir: str
    monitor_photos: Annotated[int, Field(ge=0)]
    samples: Count


class CartoonGeneratorParams(_Section):
    width: Count
    blocks: Annotated[int, Field(ge=0)]
    upsample: Literal["resize", "transposed"]


class CartoonDiscriminatorParams(_Section):
    width: Count


class CartoonWeightsParams(_Section):
    adv: NonNegFloat
    con: NonNegFloat


class CartoonGanParams(_Section):
    generator: CartoonGeneratorParams
    discriminator: CartoonDiscriminatorParams
    weights: CartoonWeightsParams


class AnimeGeneratorParams(_Section):
    width: Count
    blocks: Annotated[int, Field(ge=0)]
    expansion: Count


class AnimeDiscriminatorParams(_Section):
    width: Count
    stages: Count
    spectral_norm: Bool


class AnimeWeightsParams(_Section):
    adv: NonNegFloat
    con: NonNegFloat
    gram: NonNegFloat
    color: NonNegFloat


class AnimeDWeightsParams(_Section):
    real: NonNegFloat
    fake: NonNegFloat
    gray: NonNegFloat
    smooth: NonNegFloat


class AnimeGanParams(_Section):
    generator: AnimeGeneratorParams
    discriminator: AnimeDiscriminatorParams
    weights: AnimeWeightsParams
    d_weights: AnimeDWeightsParams


class BaseLossParams(_Section):
    """The base variants add no loss term: the section stays empty."""


class LandmarkLossParams(_Section):
    weight: NonNegFloat
    wing_w: PosFloat
    wing_eps: PosFloat
    reduction: Literal["mean", "study"]


class GanParams(_Section):
    common: GanCommonParams
    cartoongan: CartoonGanParams
    animegan: AnimeGanParams
    base: BaseLossParams
    landmark: LandmarkLossParams


# ---- eval_gan / report
class FeatureNetParams(_Section):
    name: Literal["hed-vgg16", "vgg19"]
    layer: str
    weights: str | None


class InceptionParams(_Section):
    enabled: Bool
    weights: str | None


class KidParams(_Section):
    subsets: Count
    subset_size: Annotated[int, Field(ge=2)]


class EvalGanParams(_Section):
    seed: Seed
    split: Literal["train", "val", "test"]
    device: Device
    threads: Threads
    batch_size: Count
    outlier_px: PosFloat
    max_anime: Count
    feature_net: FeatureNetParams
    inception: InceptionParams
    kid: KidParams
    collapse_ratio_below: NonNegFloat
    copy_distance_below: NonNegFloat


class ReportParams(_Section):
    variants: Annotated[list[str], Field(min_length=1)]
    photos: Count
    scale: Count


# ---- face2anime convert / export
class ConvertParams(_Section):
    """The `convert` section: defaults of `face2anime convert` / `export`, overridable by CLI options."""

    model: Annotated[str, Field(min_length=1)]
    mode: Literal["paste", "crops"]
    no_face: Literal["copy", "skip"]
    batch_size: Count
    device: Device
    amp: Bool
    threads: Threads
    detector: Literal["model", "hog", "cnn"]
    upsample: Literal["model"] | Annotated[int, Field(ge=0)]
    det_threshold: Literal["model"] | float
    max_side: Literal["model"] | Annotated[int, Field(ge=64)]
    mask: Literal["ellipse", "square"]
    feather: Annotated[float, Field(ge=0, le=0.5)]
    jpeg_quality: Annotated[int, Field(ge=1, le=100)]
    video_codec: Annotated[str, AfterValidator(_fourcc)]
    audio: Literal["copy", "drop"]
    onnx_opset: Annotated[int, Field(ge=9)]
    predictor_path: str
    cnn_path: str
    max_pixels: MaxPixels


SECTIONS: dict[str, type[_Section]] = {
    "make_demo": MakeDemoParams, "extract_frames": ExtractFramesParams, "detect_anime": DetectAnimeParams,
    "expand_contour": ExpandContourParams, "framing": FramingParams, "crop_anime": CropAnimeParams,
    "split": SplitParams, "dan": DanParams, "eval_dan": EvalDanParams, "photo_landmarks": PhotoLandmarksParams,
    "prepare_style": PrepareStyleParams, "gan": GanParams, "eval_gan": EvalGanParams, "report": ReportParams,
    "convert": ConvertParams,
}
M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------------------------------------- loading
class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the last one
    silently, and DVC refuses the file: either way the value a user edited may not be the one used)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first at line "
                                                    f"{seen[key].start_mark.line + 1})", key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_params_file(path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    """The raw YAML mapping; a missing file, a syntax error or a duplicate key is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: run stages from the project root")
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path}: YAML syntax error{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a mapping of sections, got {type(data).__name__}")
    return data


def load_params(section: str | None = None, path: Path | str = PARAMS_FILE) -> Any:
    """The raw (unchecked) file or one section of it: for scripts and benchmarks; stages use load_settings."""
    data = read_params_file(path)
    if section is None:
        return data
    if section not in data:
        raise UserError(f"{path}: {section}: missing")
    return data[section]


def load_settings(section: str, path: Path | str = PARAMS_FILE) -> Any:
    """One section of the params file, checked against its model (e.g. `load_settings("dan") -> DanParams`)."""
    if section not in SECTIONS:
        raise UserError(f"{path}: {section}: unknown section; known: {', '.join(SECTIONS)}")
    data = read_params_file(path)
    if section not in data:
        raise UserError(f"{path}: {section}: missing")
    return validate(SECTIONS[section], data[section], str(path), section)


def load_all(path: Path | str = PARAMS_FILE) -> dict[str, _Section]:
    """Every section of the file checked; unknown sections and every bad key reported in one line."""
    data = read_params_file(path)
    problems = [f"{k}: unknown section" for k in data if k not in SECTIONS]
    problems += [f"{k}: missing" for k in SECTIONS if k not in data]
    out: dict[str, _Section] = {}
    for name, model in SECTIONS.items():
        if name not in data:
            continue
        try:
            out[name] = model.model_validate(data[name])
        except ValidationError as err:
            problems += _problems(err, model, name)
    if problems:
        raise UserError(f"{path}: " + "; ".join(problems))
    return out


def validate(model: type[M], data: Any, source: str, prefix: str) -> M:
    """`data` checked against `model`; failures -> one-line UserError '<source>: <prefix>.<key> = <value>: <rule>'."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(f"{source}: " + "; ".join(_problems(err, model, prefix))) from None


def _problems(err: ValidationError, model: type[BaseModel], prefix: str) -> list[str]:
    """One phrase per bad key; errors of one key from the members of a union are joined with 'or'."""
    by_key: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for e in err.errors(include_url=False):
        key, field = _key(model, e["loc"], prefix)
        if e["type"] == "missing":
            by_key.setdefault(f"{key}: missing", [])
            continue
        if e["type"] == "extra_forbidden":
            by_key.setdefault(f"{key}: unknown key", [])
            continue
        if not e["loc"] or e["type"] == "value_error" and _is_model_level(model, e["loc"]):
            by_key.setdefault(f"{key}: {_message(e, None)}", [])
            continue
        values.setdefault(key, e.get("input"))
        msg = _message(e, field)
        msgs = by_key.setdefault(key, [])
        if msg not in msgs:
            msgs.append(msg)
    lines = []
    for key, msgs in by_key.items():
        if not msgs:
            lines.append(key)
            continue
        text = msgs[0] + "".join(" or " + m.removeprefix("must be ") for m in msgs[1:])
        lines.append(f"{key} = {_show(values.get(key))}: {text}")
    return lines


def _is_model_level(model: type[BaseModel], loc: tuple) -> bool:
    """Whether `loc` ends at a nested model (a model_validator's error), not at a field value."""
    cls: Any = model
    for part in loc:
        fields = getattr(cls, "model_fields", None)
        if not fields or part not in fields:
            return False
        cls = _model_of(fields[part].annotation)
        if cls is None:
            return False
    return True


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _key(model: type[BaseModel], loc: tuple, prefix: str) -> tuple[str, Any]:
    """Dotted key of an error location (union member tags dropped) and the field it ends at."""
    key, cls, field = prefix, model, None
    for part in loc:
        fields = getattr(cls, "model_fields", None) if cls is not None else None
        if isinstance(part, int):
            key += f"[{part}]"
            field, cls = _item_field(field), None
        elif fields and part in fields:
            field = fields[part]
            key = f"{key}.{part}" if key else str(part)
            cls = _model_of(field.annotation)
        elif cls is None or fields:
            if fields is not None and cls is not None and part not in fields:
                key = f"{key}.{part}" if key else str(part)   # an unknown key
                cls = None
            # else: a union member's tag (e.g. 'int', "literal['model']"): not part of the key
    return key, field


def _item_field(field: Any) -> Any:
    """The field of one item of a list field (its type and range), so `lr[0] = -1` says the item's rule."""
    args = get_args(field.annotation) if field is not None and get_origin(field.annotation) is list else ()
    return FieldInfo.from_annotation(args[0]) if args else None


def _bounds(metadata: list) -> str:
    parts = []
    for m in metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(m, getattr(at, attr.capitalize())):
                parts.append(f"{op} {getattr(m, attr)}")
    return " and ".join(parts)


def _base_type(field: Any) -> type | None:
    ann = field.annotation
    if get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    return ann if ann in (int, float) else None


_TYPE_PHRASES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "text",
                 "list": "a list", "tuple": "a list", "dict": "a mapping of keys", "model": "a mapping of keys"}
_RANGE = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _message(e: dict, field: Any) -> str:
    """'must be ...' for one pydantic error; a plain field's type and range are said together."""
    kind, ctx = e["type"], e.get("ctx", {})
    base = _base_type(field) if field is not None else None
    family = kind.split("_")[0]
    if base is not None and (family in ("int", "float") or kind in _RANGE):
        bounds = _bounds(field.metadata)
        return f"must be {'an integer' if base is int else 'a number'}" + (f" {bounds}" if bounds else "")
    if kind in _RANGE:
        what = "an integer" if isinstance(e.get("input"), int) else "a number"
        return f"must be {what} {_RANGE[kind]} {next(iter(ctx.values()))}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "value_error":
        return str(ctx.get("error", e["msg"])).removeprefix("Value error, ")
    if kind in ("too_short", "too_long"):
        return e["msg"].replace("Value should", "must").replace("List should", "must").replace(
            "Tuple should", "must")
    if kind == "model_type" or kind == "model_attributes_type" or kind == "dict_type":
        return "must be a mapping of keys"
    for name, phrase in _TYPE_PHRASES.items():
        if kind.startswith(name):
            return f"must be {phrase}"
    return e["msg"][0].lower() + e["msg"][1:]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------- runtime
def set_threads(threads: int) -> None:
    """The one meaning of every `threads` param: torch CPU threads; 0 = torch's default."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and make torch pick deterministic kernels on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
