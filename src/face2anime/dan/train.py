"""Training: stage 1, then stage 2 with stage 1 frozen.

Two schedules. `cosine` (the default) runs every stage for its full `max_epochs` with the learning rate
annealed from the stage's `lr` to `lr * lr_final` and keeps the last weights: no decision depends on the validation
score, so float noise (another CPU, another seed) moves the result a little instead of moving the epoch
at which a stage stops (with `plateau`, stage-1 RMSE moved 1.67 -> 2.31 px between two CPUs). `plateau`
keeps the best validation epoch, cuts the rate after `lr_patience` epochs without improvement and stops
after `patience`. Either way a later stage that ends worse on validation than the stage before it is
dropped (it starts as the identity, so dropping it keeps the earlier stage's prediction).

Resumable at epoch boundaries: after every epoch `checkpoints/dan/last.pt` holds the model, optimizer,
RNG states, stage, epoch, best-so-far and the metric history. A re-run continues from it when its
fingerprint (params + the exact data) matches, and starts fresh otherwise. Stage transitions are pure
functions of the checkpoint, so a kill at any moment loses at most the epoch in progress.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from face2anime.dan.data import AnimeData, Augment, FaceSet, make_batch, training_statistics
from face2anime.dan.export import save_model
from face2anime.dan.model import DAN, DANConfig
from face2anime.errors import UserError, first_line
from face2anime.io import atomic_path
from face2anime.landmarks import schema
from face2anime.params import DanParams

CHECKPOINT = "last.pt"


@dataclass(frozen=True)
class TrainSettings:
    width: float
    dropout: float
    n_stages: int
    batch_size: int
    lr: tuple[float, ...]         # per stage: Adam's rate at the start of the stage
    weight_decay: float
    schedule: str                 # cosine (fixed length, last weights) | plateau (early stopping, best weights)
    max_epochs: tuple[int, ...]   # per stage
    lr_final: float               # cosine: the rate ends at lr * lr_final
    patience: tuple[int, ...]     # plateau, per stage: epochs without validation improvement before stopping
    min_delta: float              # plateau: improvement smaller than this (in NME) does not count
    lr_patience: int              # plateau: epochs without improvement before the rate is multiplied by lr_factor
    lr_factor: float
    passes: int                   # augmented passes over the training set per epoch
    augment: Augment
    seed: int
    stage_init: str               # later stages start from: previous (the trained stage before) | random
    mirror_average: bool          # the trained DAN predicts the mean of the face's and its mirror image's estimates

    @classmethod
    def from_params(cls, p: DanParams) -> TrainSettings:
        """The `dan` section (checked by its model) with the per-stage lists cut to n_stages."""
        n = p.n_stages
        return cls(width=p.width, dropout=p.dropout, n_stages=n, batch_size=p.batch_size, lr=tuple(p.lr[:n]),
                   weight_decay=p.weight_decay, schedule=p.schedule, max_epochs=tuple(p.max_epochs[:n]),
                   lr_final=p.lr_final, patience=tuple(p.patience[:n]), min_delta=p.min_delta,
                   lr_patience=p.lr_patience, lr_factor=p.lr_factor, passes=p.passes, augment=p.augment,
                   seed=p.seed, stage_init=p.stage_init, mirror_average=p.mirror_average)



def normalised_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """(B,) mean point-to-point error divided by the true inter-ocular distance (the DAN loss)."""
    iod = torch.as_tensor(schema.inter_ocular(true.detach().cpu().double().numpy()), dtype=pred.dtype,
                          device=pred.device)
    return (pred - true).norm(dim=-1).mean(dim=-1) / iod.clamp_min(1e-6)


@torch.no_grad()
def predict(model: DAN, gray: np.ndarray, device: torch.device, batch_size: int = 64,
            n_stages: int | None = None) -> list[np.ndarray]:
    """Every stage's (N, 40, 2) prediction (`DAN.predict`) for uint8 crops (N, 112, 112), in eval mode."""
    was_training = model.training
    model.eval()
    outs: list[list[np.ndarray]] = []
    for start in range(0, len(gray), batch_size):
        x = torch.from_numpy(gray[start:start + batch_size].astype(np.float32) / 255.0)[:, None].to(device)
        shapes = model.predict(x, n_stages=n_stages)
        if not outs:
            outs = [[] for _ in shapes]
        for k, s in enumerate(shapes):
            outs[k].append(s.cpu().numpy())
    model.train(was_training)
    return [np.concatenate(o) for o in outs]


def validation_nme(model: DAN, faces: FaceSet, device: torch.device, stage: int) -> float:
    pred = predict(model, faces.gray, device, n_stages=stage)[-1]
    true = torch.from_numpy(faces.points).double()
    return float(normalised_error(torch.from_numpy(pred).double(), true).mean())


def fingerprint(params: dict, data_digest: str) -> str:
    """What the checkpoint depends on: every DAN param and the exact training/validation data."""
    return hashlib.sha256((json.dumps(params, sort_keys=True) + data_digest).encode()).hexdigest()


def _rng_state(gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "gen": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["gen"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _make_optimizer(model: DAN, stage: int, s: TrainSettings) -> torch.optim.Optimizer:
    for p in model.parameters():
        p.requires_grad_(False)
    params = model.stage_parameters(stage)
    for p in params:
        p.requires_grad_(True)
    return torch.optim.Adam(params, lr=s.lr[stage - 1], weight_decay=s.weight_decay)


def cosine_lr(s: TrainSettings, stage: int, epoch: int) -> float:
    """The rate of epoch `epoch` (0-based) of a cosine stage: a pure function, so resuming needs no state."""
    total = max(1, s.max_epochs[stage - 1] - 1)
    frac = 0.5 * (1.0 + np.cos(np.pi * min(epoch, total) / total))
    return float(s.lr[stage - 1] * (s.lr_final + (1.0 - s.lr_final) * frac))


def _set_train_mode(model: DAN, stage: int) -> None:
    """Only the stage being trained uses batch statistics and dropout; earlier stages are frozen."""
    model.eval()
    for m in model.stage_modules(stage):
        m.train()


def _train_epoch(model: DAN, opt: torch.optim.Optimizer, train: FaceSet, s: TrainSettings, stage: int,
                 gen: torch.Generator, device: torch.device, desc: str) -> float:
    _set_train_mode(model, stage)
    n = len(train)
    order = (torch.randperm(n * s.passes, generator=gen) % n).numpy()
    n_batches = max(1, int(np.ceil(len(order) / s.batch_size)))
    losses = []
    for idx in tqdm(np.array_split(order, n_batches), desc=desc, leave=False, unit="batch"):
        gray, true = make_batch(train, idx, s.augment, gen, device)
        pred = model(gray, n_stages=stage)[-1]
        loss = normalised_error(pred, true).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item() * len(idx))
    return float(np.sum(losses) / len(order))


@dataclass
class TrainResult:
    model: DAN
    history: list[dict]
    best_val: dict[int, float]
    resumed_from: tuple[int, int] | None  # (stage, epochs done) of the checkpoint a run continued from
    finished: bool


def train_dan(data: AnimeData, s: TrainSettings, params: dict, checkpoint_dir: Path | str,
              device: torch.device, live_dir: Path | str | None = None,
              stop_after_epochs: int | None = None) -> TrainResult:
    """Train (or continue training) the DAN. `stop_after_epochs` ends this call early, as a kill would."""
    train, val = data.splits["train"], data.splits["val"]
    if len(train) < 2:
        raise UserError(f"the train split has {len(train)} face(s); the DAN needs at least 2")
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT
    fp = fingerprint(params, data.digest)

    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    model = DAN(DANConfig(width=s.width, n_stages=s.n_stages, dropout=s.dropout,
                          mirror_average=s.mirror_average)).to(device)
    model.set_statistics(*training_statistics(train, s.augment.mirror))

    state = None
    if ckpt_path.exists():
        try:
            state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - random bytes, truncation, another format: all mean unusable
            raise UserError(f"checkpoint {ckpt_path} is corrupt or not a DAN checkpoint ({first_line(err)}): "
                            "delete it to start over") from None
        if not isinstance(state, dict):
            raise UserError(f"checkpoint {ckpt_path} is not a DAN checkpoint (a {type(state).__name__}, not a dict): "
                            "delete it to start over")
        if state.get("fingerprint") != fp:
            state = None  # params or data changed: the old run does not apply
    resumed_from = None
    if state is None:
        stage, epoch, best, bad, stopped, history = 1, 0, float("inf"), 0, False, []
        best_val: dict[int, float] = {}
        best_state = copy.deepcopy(model.state_dict())
        opt = _make_optimizer(model, stage, s)
    else:
        try:
            model.load_state_dict(state["model"])
            stage, epoch, best, bad = int(state["stage"]), int(state["epoch"]), float(state["best"]), int(state["bad"])
            stopped, history = bool(state["stopped"]), list(state["history"])
            best_val = {int(k): float(v) for k, v in state["best_val"].items()}
            best_state = state["best_model"]
            opt = _make_optimizer(model, stage, s)
            opt.load_state_dict(state["optimizer"])
            _set_rng_state(state["rng"], gen)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise UserError(f"checkpoint {ckpt_path} does not fit this DAN ({first_line(err)}): "
                            "delete it to start over") from None
        resumed_from = (stage, epoch)

    live = _open_live(live_dir, history)
    epochs_run = 0
    try:
        while stage <= s.n_stages:
            if stopped:
                # End of a stage: keep its best weights, freeze it, start the next one.
                model.load_state_dict(best_state)
                best_val[stage] = best
                stage, epoch, bad, stopped = stage + 1, 0, 0, False
                if stage > s.n_stages:
                    break
                if s.stage_init == "previous":
                    model.init_stage_from_previous(stage)
                opt = _make_optimizer(model, stage, s)
                # The new stage starts as the identity (zero-initialised output), so the previous
                # stage's score is the bar to beat; stage 2 can therefore never be kept if worse on val.
                best = validation_nme(model, val, device, stage)
                best_state = copy.deepcopy(model.state_dict())
            if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
                return TrainResult(model, history, best_val, resumed_from, finished=False)
            desc = f"stage {stage} epoch {epoch + 1}/{s.max_epochs[stage - 1]}"
            if s.schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(s, stage, epoch)
            train_loss = _train_epoch(model, opt, train, s, stage, gen, device, desc)
            val_nme = validation_nme(model, val, device, stage)
            epoch += 1
            epochs_run += 1
            last_epoch = epoch >= s.max_epochs[stage - 1]
            if s.schedule == "cosine":
                # keep the last weights; a later stage that ends worse than the stage before it stays the identity
                if stage == 1 or (last_epoch and val_nme < best):
                    best, best_state = val_nme, copy.deepcopy(model.state_dict())
            elif val_nme < best - s.min_delta:
                best, bad = val_nme, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
                if s.lr_patience > 0 and bad % s.lr_patience == 0:
                    for group in opt.param_groups:  # saved with the optimizer state, so resuming keeps it
                        group["lr"] *= s.lr_factor
            stopped = last_epoch or (s.schedule == "plateau" and bad >= s.patience[stage - 1])
            row = {"step": len(history), "stage": stage, "epoch": epoch, "train_nme": train_loss, "val_nme": val_nme,
                   "best_val_nme": best, "lr": opt.param_groups[0]["lr"]}
            history.append(row)
            _log_live(live, row)
            tqdm.write(f"dan stage {stage} epoch {epoch}: train NME {train_loss:.4f}  val NME {val_nme:.4f}  "
                       f"best {best:.4f}{'  (stop)' if stopped else ''}")
            _save_checkpoint(ckpt_path, {
                "fingerprint": fp, "stage": stage, "epoch": epoch, "best": best, "bad": bad, "stopped": stopped,
                "history": history, "best_val": {str(k): v for k, v in best_val.items()},
                "model": model.state_dict(), "best_model": best_state, "optimizer": opt.state_dict(),
                "rng": _rng_state(gen),
            })
    finally:
        if live is not None:
            live.end()
    return TrainResult(model, history, best_val, resumed_from, finished=True)


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _open_live(live_dir, history: list[dict]):
    """dvclive curves; a resumed run replays the checkpoint's history so the curves match it exactly."""
    if live_dir is None:
        return None
    from dvclive import Live

    live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
    for row in history:
        _log_live(live, row)
    return live


def _log_live(live, row: dict) -> None:
    if live is None:
        return
    live.step = int(row["step"])
    for key in ("stage", "train_nme", "val_nme", "best_val_nme", "lr"):
        live.log_metric(key, row[key])
    live.next_step()


def export(model_dir: Path | str, result: TrainResult, s: TrainSettings, params: dict,
           skipped: dict[str, list[str]] | None = None) -> None:
    """Write `models/dan/` from a finished run."""
    save_model(model_dir, result.model, stages_trained=s.n_stages,
               extra={"val_nme_by_stage": {str(k): v for k, v in result.best_val.items()},
                      "epochs_by_stage": {str(k): max([r["epoch"] for r in result.history if r["stage"] == k] or [0])
                                          for k in range(1, s.n_stages + 1)},
                      "params": params, "skipped": skipped or {}})
