"""Typed `params.yaml`: one pydantic model per section (the schema only).

params.yaml is the only source of values: no field here has a default. Types, ranges and choices are
declared once, here. Reading the file is `settings.py` (`load_settings`), turning a validation failure into
one line is `param_errors.py`, seeding and threads are `runtime.py`: each stage depends on the schema, but
only the stages that seed or set threads depend on the runtime module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator,
                      model_validator)

PARAMS_FILE = Path("params.yaml")


INT_LIMIT = 2**63 - 1   # the largest integer numpy / torch / OpenCV take as a C integer


class _Section(BaseModel):
    """Every key required, none unknown, values frozen. Numbers are numbers: a float must be finite (.inf,
    .nan and 1e400 are refused; a key that means "no limit" says so with 0 or null, never .inf), true/false
    is not a number (pydantic would read it as 1/0), and an integer must fit a C integer (INT_LIMIT)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        kind = field.annotation if field is not None else None
        numeric = _admits(kind, (int, float)) and not _admits(kind, (bool,))
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if numeric and isinstance(item, bool):
                what = "a number" if _admits(kind, (float,)) else "an integer"
                raise ValueError(f"must be {what}, not true/false")
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > INT_LIMIT:
                raise ValueError("too large: integers here stop at 2**63 - 1")
        return value


def _admits(annotation: Any, types: tuple[type, ...]) -> bool:
    """Whether a field's type takes one of `types` anywhere (`Literal["model"] | float`, `list[Count]`, ...)."""
    return annotation in types or any(_admits(a, types) for a in get_args(annotation))


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
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]   # numpy's legacy seeding takes 32 bits
Count = Annotated[int, Field(ge=1)]          # a size or count that must be positive
Threads = Annotated[int, Field(ge=0, le=1024)]   # torch CPU threads; 0 = torch's default (OpenMP fails far above 1024)
Share = Annotated[float, Field(ge=0, le=1)]
NonNegFloat = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
Range = tuple[float, float]
MaxPixels = Annotated[int, Field(ge=0)]      # larger pictures are refused before decoding; 0 = no limit
MAX_IMAGE_SIZE = 4096                         # a generator's training side (config.json's image_size too)
Upsample = Annotated[int, Field(ge=0, le=4)]  # dlib passes: each x4 pixels, ~x5 time (1024 px side at 4: 28 s, 2.3 GB)


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
    workers: Annotated[int, Field(ge=1, le=64)]   # rendering processes; the frames are the same bytes for any count

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
    val_every: Count
    augment: DanAugmentParams
    mirror_average: Bool

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
    upsample: Upsample
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


class PrepareSpadeParams(_Section):
    train_split: Literal["train", "val", "test"]
    test_split: Literal["train", "val", "test"]
    max_faces: Annotated[int, Field(ge=0)]
    shape_components: Count
    threads: Threads
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


class DRegularizerParams(_Section):
    """The discriminator's gradient penalty, for every family: none | dragan (Kodali et al. 2017)."""

    kind: Literal["none", "dragan"]
    weight: NonNegFloat
    perturbation: PosFloat


class GanCommonParams(_Section):
    seed: Seed
    device: Device
    amp: Bool
    channels_last: Literal["auto"] | Bool
    threads: Threads
    processes: Count
    dist_timeout_s: PosFloat
    image_size: Annotated[int, Field(ge=16, le=MAX_IMAGE_SIZE)]
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
    d_regularizer: DRegularizerParams
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


class RoughParams(_Section):
    """SPADE-AnimeFace's rough: HSV, median blur, `pyrMeanShiftFiltering(spatial, color)`, median blur, back."""

    median_before: Annotated[int, Field(ge=1), AfterValidator(_odd)]
    spatial_radius: PosFloat
    color_radius: PosFloat
    median_after: Annotated[int, Field(ge=1), AfterValidator(_odd)]


class ConditioningParams(_Section):
    """The painter's input for both domains: the rough with the face parts filled + landmark channels."""

    size: Annotated[int, Field(ge=16)]
    rough: RoughParams
    fill_dilate: Annotated[int, Field(ge=0)]
    fill_radius: PosFloat
    line_width: Count
    flat_skin: Bool


class SpadeGeneratorParams(_Section):
    width: Count
    blocks: Count
    hidden: Count
    noise: Bool


class SpadeDiscriminatorParams(_Section):
    width: Count
    scales: Count
    layers: Count


class SpadeWeightsParams(_Section):
    adv: NonNegFloat
    fm: NonNegFloat
    con: NonNegFloat
    pixel: NonNegFloat


class SpadeGanParams(_Section):
    conditioning: ConditioningParams
    shape_move: Share
    max_pairs: Annotated[int, Field(ge=0)]
    generator: SpadeGeneratorParams
    discriminator: SpadeDiscriminatorParams
    weights: SpadeWeightsParams


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
    spade: SpadeGanParams
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
    anime_probe_l2: PosFloat


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
    batch_size: Annotated[int, Field(ge=1, le=128)]   # memory grows with it: params.yaml
    device: Device
    amp: Bool
    threads: Threads
    detector: Literal["model", "hog", "cnn"]
    upsample: Literal["model"] | Upsample
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
    video_tracking: Bool
    detect_every: Count
    scene_cut: Share
    track_min_score: Annotated[float, Field(ge=-1, le=1)]
    track_max_misses: Annotated[int, Field(ge=0)]
    one_euro_min_cutoff: PosFloat
    one_euro_beta: NonNegFloat
    one_euro_d_cutoff: PosFloat
    flow_blend: Annotated[float, Field(ge=0, lt=1)]


class GenerateParams(_Section):
    """The `generate` section: defaults of `face2anime generate` (new anime faces painted from sampled layouts)."""

    model: Annotated[str, Field(min_length=1)]
    seed: Seed
    layouts: Annotated[str, Field(min_length=1)]
    palette_jitter: NonNegFloat
    batch_size: Count
    device: Device


class ServeParams(_Section):
    """The `serve` section: the web page of `face2anime serve` (docs/web.md); conversions use the `convert` section."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)]
    device: Device
    models: Annotated[str, Field(min_length=1)]
    metrics: str
    concurrency: Count
    queue_size: Count
    max_pixels: MaxPixels
    max_upload_mb: PosFloat
    models_loaded: Count
    cache_clean_s: Count
    cache_max_age_s: Count


SECTIONS: dict[str, type[_Section]] = {
    "make_demo": MakeDemoParams, "extract_frames": ExtractFramesParams, "detect_anime": DetectAnimeParams,
    "expand_contour": ExpandContourParams, "framing": FramingParams, "crop_anime": CropAnimeParams,
    "split": SplitParams, "dan": DanParams, "eval_dan": EvalDanParams, "photo_landmarks": PhotoLandmarksParams,
    "prepare_style": PrepareStyleParams,
    "prepare_spade": PrepareSpadeParams, "gan": GanParams, "eval_gan": EvalGanParams, "report": ReportParams,
    "convert": ConvertParams, "generate": GenerateParams, "serve": ServeParams,
}
