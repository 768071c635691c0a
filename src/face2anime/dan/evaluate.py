"""Held-out evaluation of a trained DAN, per stage: summary numbers, CED, per-landmark errors, worst faces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from face2anime.dan.data import FaceSet
from face2anime.dan.model import DAN
from face2anime.dan.train import predict
from face2anime.landmarks import schema
from face2anime.metrics import landmarks as lm
from face2anime.params import EvalDanParams
from face2anime.viz import sheets


@dataclass
class Evaluation:
    metrics: dict
    ced: dict[str, pd.DataFrame]           # stage name -> (nme, fraction)
    per_landmark: dict[str, pd.DataFrame]  # stage name -> one row per landmark
    predictions: dict[str, np.ndarray]     # stage name -> (N, 40, 2)


def _region_of() -> list[str]:
    region = [""] * schema.FACE40.n
    for name, idx in schema.FACE40_REGIONS.items():
        for i in idx:
            region[i] = name
    return region


def evaluate(model: DAN, test: FaceSet, device: torch.device, s: EvalDanParams) -> Evaluation:
    """Every stage's predictions on the held-out crops, scored; plus the mean shape as a no-skill baseline."""
    preds = predict(model, test.gray, device, batch_size=s.batch_size)
    stages = {f"stage{k + 1}": p.astype(np.float64) for k, p in enumerate(preds)}
    true = test.points.astype(np.float64)
    baseline = np.broadcast_to(model.mean_shape.cpu().numpy().astype(np.float64), true.shape)
    report = {name: lm.landmark_report(p, true, s.outlier_px, s.failure_nme, s.ced_max)
              for name, p in {**stages, "mean_shape_baseline": baseline}.items()}
    ced, per_lm = {}, {}
    region = _region_of()
    for name, p in stages.items():
        nme = lm.nme_per_image(p, true)
        x, frac = lm.ced_curve(nme, s.ced_max, s.ced_steps)
        ced[name] = pd.DataFrame({"nme": x, "fraction": frac})
        per = lm.per_landmark_error(p, true, s.outlier_px)
        per_lm[name] = pd.DataFrame({"landmark": np.arange(schema.FACE40.n), "name": schema.FACE40.names,
                                     "region": region, **per})
    final = f"stage{len(preds)}"
    keys = ("rmse_px", "outlier_points", "outlier_points_pct", "images_with_outlier", "images_with_outlier_pct",
            "nme_interocular", "failure_rate_pct", "ced_auc")
    metrics = {
        "split": "test",
        "images": len(test),
        "rmse_aggregation": "per image sqrt(mean over the 40 points of squared Euclidean error), averaged over images",
        "final_stage": final,
        "final": {k: report[final][k] for k in keys},
        **report,
    }
    return Evaluation(metrics, ced, per_lm, stages)


def worst_sheet(test: FaceSet, pred: np.ndarray, n: int, ncols: int = 8, scale: int = 2) -> np.ndarray:
    """Contact sheet of the `n` faces with the highest RMSE: truth in white, prediction coloured by region."""
    rmse = lm.rmse_per_image(pred, test.points)
    order = np.argsort(-rmse, kind="stable")[:n]
    colours = [sheets.PALETTE[r] for r in _region_of()]
    tiles, labels = [], []
    for i in order:
        img = np.repeat(np.repeat(test.gray[i], scale, 0), scale, 1)
        # pixel centres at integers: x at 112 -> (x + 0.5) * scale - 0.5 at the enlarged size
        up = lambda p: (p + 0.5) * scale - 0.5  # noqa: E731
        img = sheets.draw_points(img, up(test.points[i]), sheets.PALETTE["truth"], radius=2.0, thickness=1)
        img = sheets.draw_points(img, up(pred[i]), colours, radius=1.6)
        tiles.append(img)
        labels.append(f"{rmse[i]:.2f}px {test.face_id[i]}")
    return sheets.contact_sheet(tiles, ncols=ncols, labels=labels)
