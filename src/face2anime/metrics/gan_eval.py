"""Evaluate one trained painter on held-out photos: landmarks, style, "looks anime", faithfulness, collapse, copy.

Split in two so the expensive part runs once: `reference_features` embeds the held-out photos and anime
faces and `anime_probe_reference` fits the "looks anime" probe on the TRAINING anime crops and photos
(shared by all variants, stage `eval_gan_reference`); `evaluate_variant` runs one painter, the frozen DAN
and the feature network on its outputs and compares (stage `eval_gan@<variant>`).
Outputs are rounded to uint8 before they are measured: the numbers describe the images a user gets.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from face2anime.errors import UserError
from face2anime.imaging.tensors import luma, to_tensor
from face2anime.io import read_arrays
from face2anime.metrics import gan
from face2anime.metrics.anime_rate import LinearProbe, anime_rate, fit_linear_probe, probe_keys
from face2anime.metrics.faithfulness import faithfulness_report
from face2anime.metrics.features import embed
from face2anime.metrics.landmarks import landmark_report
from face2anime.photos.read import PhotoCrops, load_photo_crops


# ---------------------------------------------------------------- inputs
def load_photos(crops_npz: Path | str, photos_csv: Path | str, split: str = "test") -> PhotoCrops:
    """The held-out photo crops (`photos.read`); the KID needs at least 2 of them."""
    photos = load_photo_crops(crops_npz, photos_csv, split)
    if len(photos.photo_ids) < 2:
        raise UserError(f"{photos_csv}: {len(photos.photo_ids)} photos in split {split!r}; the GAN evaluation needs "
                        f"at least 2 (add photos or raise the held-out share in photo_landmarks)")
    return photos


def load_anime(style_npz: Path | str, max_images: int, seed: int) -> np.ndarray:
    """Anime colour crops (N, 112, 112, 3) uint8 of a style set (`style_test.npz`: held out, `style.npz`:
    training), a seeded subset of at most `max_images`."""
    if not Path(style_npz).exists():
        raise UserError(f"{style_npz} not found: run `dvc repro prepare_style` first")
    color = read_arrays(style_npz)["color"]
    if len(color) < 2:
        raise UserError(f"{style_npz} holds {len(color)} anime faces; the GAN evaluation needs at least 2")
    if max_images and len(color) > max_images:
        idx = np.sort(np.random.default_rng(seed).choice(len(color), int(max_images), replace=False))
        color = color[idx]
    return color


# ---------------------------------------------------------------- networks on image arrays (painters: gan.painting)
@torch.no_grad()
def dan_points(dan: nn.Module, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """Frozen DAN on (N, 112, 112, 3) uint8 RGB, converted to grayscale as in the landmark loss -> (N, 40, 2)."""
    out = []
    for start in range(0, len(images), batch_size):
        gray = luma(to_tensor(images[start:start + batch_size], memory_format=torch.channels_last).to(device))
        out.append(dan(gray).double().cpu().numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------- shared reference features
def reference_features(photos: PhotoCrops, anime: np.ndarray, net: nn.Module, inception: nn.Module | None,
                       batch_size: int, device: torch.device) -> dict[str, np.ndarray]:
    """Features of the held-out photos and anime faces, computed once for all variants."""
    photo_pooled, photo_maps = embed(net, photos.color, batch_size, device)
    anime_pooled, _ = embed(net, anime, batch_size, device)
    out = {"photo_id": photos.photo_ids, "photo_pooled": photo_pooled, "photo_maps": photo_maps.astype(np.float32),
           "anime_pooled": anime_pooled}
    if inception is not None:
        out["photo_inception"] = embed(inception, photos.color, batch_size, device)[0]
        out["anime_inception"] = embed(inception, anime, batch_size, device)[0]
    return out


PROBE_RATES = ("anime_rate_photo", "anime_rate_anime", "probe_train_anime_rate", "probe_train_photo_rate",
               "probe_anime_faces", "probe_photos", "probe_l2")


def anime_probe_reference(train_anime_pooled: np.ndarray, train_photo_pooled: np.ndarray,
                          photo_pooled: np.ndarray, anime_pooled: np.ndarray, l2: float) -> dict[str, np.ndarray]:
    """The "looks anime" probe fitted on TRAINING anime vs TRAINING photo features (`metrics.anime_rate`),
    its arrays and the rates of the held-out photos and anime faces, for `reference.npz`."""
    probe = fit_linear_probe(train_anime_pooled, train_photo_pooled, l2)
    return {**probe.to_arrays(),
            "anime_train_pooled": np.asarray(train_anime_pooled, np.float64),   # the KID floor (anime vs anime)
            "anime_rate_photo": np.array(anime_rate(probe, photo_pooled)),
            "anime_rate_anime": np.array(anime_rate(probe, anime_pooled)),
            "probe_train_anime_rate": np.array(anime_rate(probe, train_anime_pooled)),
            "probe_train_photo_rate": np.array(anime_rate(probe, train_photo_pooled)),
            "probe_anime_faces": np.array(len(train_anime_pooled)),
            "probe_photos": np.array(len(train_photo_pooled)),
            "probe_l2": np.array(float(l2))}


def read_training_summary(model_dir: Path | str) -> dict[str, Any] | None:
    """`training.json` written beside the generator (init reconstruction error, G loss shares); None if absent."""
    import json

    path = Path(model_dir) / "training.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}): re-run its train_gan stage") from None


def read_reference(path: Path | str) -> dict[str, np.ndarray]:
    """The shared reference features, with a one-line error when missing or unreadable."""
    if not Path(path).exists():
        raise UserError(f"{path} not found: run `dvc repro eval_gan_reference` first")
    try:
        refs = read_arrays(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise UserError(f"{path} is unreadable ({err}): run `dvc repro eval_gan_reference` again") from None
    missing = ({"photo_id", "photo_pooled", "photo_maps", "anime_pooled", "anime_train_pooled", "photo_dan_points",
                "feature_net",
                "inception_note", *PROBE_RATES} | probe_keys()) - set(refs)
    if missing:
        raise UserError(f"{path} lacks {sorted(missing)}: run `dvc repro eval_gan_reference` again")
    return refs


# ---------------------------------------------------------------- one variant
@dataclass(frozen=True)
class GanEvalSettings:
    outlier_px: float
    kid_subsets: int
    kid_subset_size: int
    collapse_ratio_below: float
    copy_distance_below: float
    seed: int
    batch_size: int


def _kid(x: np.ndarray, y: np.ndarray, s: GanEvalSettings) -> dict[str, Any]:
    return gan.kid(x, y, s.kid_subsets, s.kid_subset_size, s.seed).as_dict()


_LANDMARK_KEYS = ("images", "rmse_px", "rmse_px_pooled", "mean_error_px", "outlier_threshold_px", "outlier_points",
                  "outlier_points_pct", "images_with_outlier", "images_with_outlier_pct", "nme_interocular")


def _landmarks(pred: np.ndarray, true: np.ndarray, outlier_px: float) -> dict[str, Any]:
    report = landmark_report(pred, true, outlier_px=outlier_px)
    return {k: report[k] for k in _LANDMARK_KEYS}


def _anime_rate(refs: dict[str, np.ndarray], out_pooled: np.ndarray) -> dict[str, Any]:
    probe = LinearProbe.from_arrays(refs)
    return {
        "output": anime_rate(probe, out_pooled),
        "photo_baseline": float(refs["anime_rate_photo"]),
        "anime_heldout": float(refs["anime_rate_anime"]),
        "probe": {"anime_faces": int(refs["probe_anime_faces"]), "photos": int(refs["probe_photos"]),
                  "l2": float(refs["probe_l2"]), "train_anime_rate": float(refs["probe_train_anime_rate"]),
                  "train_photo_rate": float(refs["probe_train_photo_rate"])},
        "note": ("share called anime (p > 0.5) by a balanced L2 logistic regression on the style feature net's "
                 "pooled features, fitted on the training anime crops vs the training photos (never on outputs)"),
    }


def evaluate_variant(photos: PhotoCrops, outputs: np.ndarray, out_points: np.ndarray, photo_points: np.ndarray,
                     refs: dict[str, np.ndarray], out_pooled: np.ndarray, out_maps: np.ndarray,
                     out_inception: np.ndarray | None, feature_net: str, inception_note: str,
                     s: GanEvalSettings, training: dict[str, Any] | None = None, *,
                     target_points: np.ndarray) -> dict[str, Any]:
    """All numbers for one painter, JSON-ready (see docs/pipeline.md for the layout).

    `out_points`: the DAN on the outputs; `photo_points`: the DAN on the photos (the landmark baseline);
    `target_points`: the points the painter means each output to have (`Painter.target_points`).
    """
    if not np.array_equal(refs["photo_id"].astype(str), photos.photo_ids.astype(str)):
        raise UserError("reference features do not match the held-out photos: re-run eval_gan_reference")
    checks = gan.failure_checks(out_pooled, refs["photo_pooled"], outputs / 255.0, photos.color / 255.0,
                                s.collapse_ratio_below, s.copy_distance_below)
    has_inception = out_inception is not None and "anime_inception" in refs
    return {
        "photos": int(len(photos.photo_ids)),
        "anime_faces": int(len(refs["anime_pooled"])),
        "landmarks": {
            "target": "photo 40 target points (points112, lower-eyelid shift applied)",
            "output": _landmarks(out_points, photos.targets, s.outlier_px),
            "photo_baseline": _landmarks(photo_points, photos.targets, s.outlier_px),
            "output_vs_target": _landmarks(out_points, target_points, s.outlier_px),
            "output_vs_target_note": "the same DAN points vs the painter's target points (spade: shape-moved)",
        },
        "style": {
            "feature_net": feature_net,
            "kid": _kid(out_pooled, refs["anime_pooled"], s),
            "kid_photo_baseline": _kid(refs["photo_pooled"], refs["anime_pooled"], s),
            "kid_anime_floor": _kid(refs["anime_train_pooled"], refs["anime_pooled"], s),
            "inception_kid": _kid(out_inception, refs["anime_inception"], s) if has_inception else None,
            "inception_kid_photo_baseline": (_kid(refs["photo_inception"], refs["anime_inception"], s)
                                             if has_inception else None),
            "inception_note": inception_note,
        },
        "anime_rate": _anime_rate(refs, out_pooled),
        "faithfulness": faithfulness_report(outputs, photos.color, out_points, target_points, photos.targets,
                                            photo_points),
        "content": {
            "feature_cosine_distance": float(gan.cosine_distance(out_maps, refs["photo_maps"]).mean()),
            "note": "1 - cos between input and output feature maps (flattened), mean over photos",
        },
        "collapse": {"spread_ratio": checks.spread_ratio, "threshold": s.collapse_ratio_below,
                     "collapse": checks.collapse},
        "copy": {"pixel_mae": checks.copy_distance, "threshold": s.copy_distance_below, "copy": checks.copy},
        "checkerboard": {"power": gan.checkerboard_power(outputs), "photo_baseline": gan.checkerboard_power(photos.color),
                         "note": "share of AC spectral power at the period-2 (Nyquist) frequencies, mean over images"},
        "training": training,
    }
