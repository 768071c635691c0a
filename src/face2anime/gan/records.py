"""What a GAN run records: each epoch's loss record (`EpochLog`), its monitors (the init's reconstruction
error, the sample sheet) and `training.json`'s summary of the whole run.

An epoch's record holds every raw G term (`g_<term>`), the G loss (`g_total`), each weighted term's share
of it (`share_<term>`) and, in the adversarial phase, the D loss; the loop adds the epoch, the phase and
the monitors. Under DDP every rank sums its own rows and `EpochLog.reduce` adds the ranks' sums, so the
record is that of the global batches on every rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from face2anime.gan import distributed
from face2anime.gan import losses as L
from face2anime.gan.data import TrainPhotos
from face2anime.gan.objectives import StepResult
from face2anime.imaging.tensors import to_uint8


def loss_shares(terms: dict[str, float]) -> dict[str, float]:
    """Each weighted G term's share of their sum (all terms are non-negative losses)."""
    total = sum(terms.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in terms.items()}


class EpochLog:
    """Per-epoch sums of the weighted G terms, raw terms and D loss; shares come from the weighted sums."""

    def __init__(self):
        self.weighted: dict[str, float] = {}
        self.raw: dict[str, float] = {}
        self.d_loss, self.n = 0.0, 0

    def add(self, result: StepResult, batch_size: int) -> None:
        for k, v in result.g_terms.items():
            self.weighted[k] = self.weighted.get(k, 0.0) + float(v.detach()) * batch_size
        for k, v in result.g_raw.items():
            self.raw[k] = self.raw.get(k, 0.0) + float(v.detach()) * batch_size
        if result.d_loss is not None:
            self.d_loss += float(result.d_loss.detach()) * batch_size
        self.n += batch_size

    def reduce(self, d: distributed.Dist) -> None:
        """Sum each rank's sums over the ranks: the record is then the global batches' (every rank the same)."""
        if not d.started:
            return
        keys_w, keys_r = sorted(self.weighted), sorted(self.raw)
        total = distributed.all_reduce_sum(d, [self.n, self.d_loss, *(self.weighted[k] for k in keys_w),
                                               *(self.raw[k] for k in keys_r)])
        self.n, self.d_loss = int(round(total[0])), total[1]
        self.weighted = dict(zip(keys_w, total[2:2 + len(keys_w)]))
        self.raw = dict(zip(keys_r, total[2 + len(keys_w):]))

    def record(self, phase: str) -> dict[str, float]:
        rec: dict[str, Any] = {f"g_{k}": v / self.n for k, v in self.raw.items()}
        rec["g_total"] = sum(self.weighted.values()) / self.n
        rec.update({f"share_{k}": v for k, v in loss_shares(self.weighted).items()})
        if phase == "gan":
            rec["d_loss"] = self.d_loss / self.n
        return rec


@torch.no_grad()
def reconstruction_mae(G: nn.Module, photos: TrainPhotos, device: torch.device, batch: int) -> float:
    """Mean |G(input) - image| over the training images, in [0, 1] pixel units (G in eval mode, float32)."""
    total = 0.0
    for i in range(0, len(photos), batch):
        x = photos.images[i:i + batch].to(device)
        total += float((G(photos.inputs[i:i + batch].to(device)).float() - x).abs().mean(dim=(1, 2, 3)).sum()) / 2.0
    return total / len(photos)


def sample_grid(G: nn.Module, photos: TrainPhotos, n: int, device: torch.device,
                land: L.LandmarkLoss | None = None) -> np.ndarray:
    """RGB sheet: photos on top, generated images below (with the DAN's points when a DAN is given)."""
    from face2anime.viz.sheets import contact_sheet, draw_points

    n = min(n, len(photos))
    with torch.no_grad():
        x = photos.images[:n].to(device)
        fake = G(photos.inputs[:n].to(device))
        pts = land.points(fake).cpu().numpy() if land is not None else None
    top, bottom = list(to_uint8(x)), list(to_uint8(fake))
    if pts is not None:
        scale = bottom[0].shape[0] / land.dan_size
        bottom = [draw_points(img, (p + 0.5) * scale - 0.5, (0, 255, 0), radius=1.0) for img, p in zip(bottom, pts)]
    return contact_sheet(top + bottom, ncols=n)


def training_summary(history: list[dict], init_epochs: int) -> dict[str, Any]:
    """What `training.json` records: the init's reconstruction error and the G loss shares at the start and
    end of the adversarial phase (its first and last epoch's means)."""
    gan = [h for h in history if h["phase"] == "gan"]
    shares = lambda h: {k[len("share_"):]: v for k, v in h.items() if k.startswith("share_")}  # noqa: E731
    init = [h for h in history if "init_pixel_mae" in h]
    return {"init_epochs": init_epochs, "adversarial_epochs": len(gan),
            "init_pixel_mae": init[-1]["init_pixel_mae"] if init else None,
            "loss_shares_start": shares(gan[0]) if gan else None,
            "loss_shares_end": shares(gan[-1]) if gan else None,
            "max_share_start": max(shares(gan[0]).values()) if gan else None}
