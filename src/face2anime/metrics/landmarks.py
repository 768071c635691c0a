"""Landmark accuracy numbers, generic over (N, n, 2) predicted / true point arrays (pixels).

Used for the DAN's test set and for the GAN's landmark consistency. Definitions:

- point error e_ij = |pred_ij - true_ij| (Euclidean, px);
- RMSE (the study's formula 4.2) per image = sqrt(mean_j e_ij^2); `rmse_px` averages it over images,
  `rmse_px_pooled` = sqrt(mean over all points of e^2) is given too;
- outlier point: e_ij > `outlier_px` (study: 5 px at 112); counted over all points and as images with >= 1;
- NME per image = mean_j e_ij / inter-ocular distance of the true points (schema.inter_ocular);
- CED: share of images with NME <= x for x in [0, ced_max]; AUC = area under it / ced_max; failure rate =
  share of images with NME > `failure_nme`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from face2anime.landmarks import schema


def _check(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"expected two (N, n, 2) arrays of the same shape, got {pred.shape} and {true.shape}")
    return pred, true


def point_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(N, n) Euclidean error per point."""
    pred, true = _check(pred, true)
    return np.linalg.norm(pred - true, axis=-1)


def rmse_per_image(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(N,) sqrt of the mean over points of the squared Euclidean error (study formula 4.2)."""
    err = point_errors(pred, true)
    return np.sqrt((err**2).mean(axis=1))


def nme_per_image(pred: np.ndarray, true: np.ndarray, norm: np.ndarray | None = None) -> np.ndarray:
    """(N,) mean point error divided by a per-image normaliser (default: inter-ocular distance, 40 points)."""
    err = point_errors(pred, true)
    if norm is None:
        norm = schema.inter_ocular(np.asarray(true, dtype=np.float64))
    norm = np.asarray(norm, dtype=np.float64)
    return err.mean(axis=1) / np.maximum(norm, 1e-9)


def ced_curve(nme: np.ndarray, ced_max: float, steps: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution: thresholds x in [0, ced_max] and the share of images with NME <= x."""
    x = np.linspace(0.0, ced_max, steps)
    nme = np.sort(np.asarray(nme, dtype=np.float64))
    frac = np.searchsorted(nme, x, side="right") / max(len(nme), 1)
    return x, frac


def ced_auc(x: np.ndarray, frac: np.ndarray) -> float:
    """Area under the CED curve divided by its x range (1.0 = every image perfect)."""
    return float(np.trapezoid(frac, x) / (x[-1] - x[0]))


def landmark_report(
    pred: np.ndarray,
    true: np.ndarray,
    outlier_px: float = 5.0,
    failure_nme: float = 0.08,
    ced_max: float = 0.2,
    regions: Mapping[str, Sequence[int]] | None = None,
    norm: np.ndarray | None = None,
) -> dict:
    """Every summary number for one set of predictions, JSON-ready."""
    pred, true = _check(pred, true)
    n_img, n_pts = pred.shape[:2]
    if n_img == 0:
        raise ValueError("no images to evaluate")
    err = point_errors(pred, true)
    rmse = np.sqrt((err**2).mean(axis=1))
    nme = nme_per_image(pred, true, norm)
    outliers = err > outlier_px
    x, frac = ced_curve(nme, ced_max)
    report = {
        "images": int(n_img),
        "points": int(n_img * n_pts),
        "rmse_px": float(rmse.mean()),
        "rmse_px_median": float(np.median(rmse)),
        "rmse_px_pooled": float(np.sqrt((err**2).mean())),
        "mean_error_px": float(err.mean()),
        "outlier_threshold_px": float(outlier_px),
        "outlier_points": int(outliers.sum()),
        "outlier_points_pct": float(100.0 * outliers.mean()),
        "images_with_outlier": int(outliers.any(axis=1).sum()),
        "images_with_outlier_pct": float(100.0 * outliers.any(axis=1).mean()),
        "nme_interocular": float(nme.mean()),
        "nme_interocular_median": float(np.median(nme)),
        "failure_threshold_nme": float(failure_nme),
        "failure_rate_pct": float(100.0 * (nme > failure_nme).mean()),
        "ced_max_nme": float(ced_max),
        "ced_auc": ced_auc(x, frac),
    }
    if regions is None and n_pts == schema.FACE40.n:
        regions = schema.FACE40_REGIONS
    if regions:
        report["region_mean_error_px"] = {name: float(err[:, list(idx)].mean()) for name, idx in regions.items()}
    return report


def per_landmark_error(pred: np.ndarray, true: np.ndarray, outlier_px: float = 5.0) -> dict[str, np.ndarray]:
    """Per point index: mean error (px), RMSE (px) and outlier share (%) over images."""
    err = point_errors(pred, true)
    return {
        "mean_px": err.mean(axis=0),
        "rmse_px": np.sqrt((err**2).mean(axis=0)),
        "outlier_pct": 100.0 * (err > outlier_px).mean(axis=0),
    }
