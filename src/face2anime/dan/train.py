"""Training: stage 1, then stage 2 with stage 1 frozen.

Two schedules. `cosine` (the default) runs every stage for its full `max_epochs` with the learning rate
annealed from the stage's `lr` to `lr * lr_final` and keeps the last weights: no decision depends on the validation
score, so float noise (another CPU, another seed) moves the result a little instead of moving the epoch
at which a stage stops (with `plateau`, stage-1 RMSE moved 1.67 -> 2.31 px between two CPUs). `plateau`
keeps the best validation epoch, cuts the rate after `lr_patience` epochs without improvement and stops
after `patience`. Either way a later stage that ends worse on validation than the stage before it is
dropped (it starts as the identity, so dropping it keeps the earlier stage's prediction).

Resumable at epoch boundaries through the shared plumbing (`face2anime.training`): after every epoch
`checkpoints/dan/latest/` holds the weights ("model", and "best_model": the weights the stage keeps so far),
the optimizer and RNG states, the metric history and `DanProgress` (stage, epoch, best-so-far). A re-run
continues from it when its fingerprint (the `dan` recipe, the exact data and the CPU math mode) matches, and
starts fresh otherwise. Stage transitions are pure functions of the checkpoint, so a kill at any moment loses
at most the epoch in progress. The loop reads top to bottom: `_start` (fresh or resumed), then per epoch
`_next_stage` (move on when a stage is over), `_run_epoch` (train, validate, `_judge`) and `_record` (history,
curves, checkpoint).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from face2anime.dan.data import AnimeData, Augment, FaceSet, make_batch, training_statistics
from face2anime.dan.model import DAN, DANConfig
from face2anime.dan.model_dir import save_dan
from face2anime.errors import UserError
from face2anime.landmarks import schema
from face2anime.params import DanParams
from face2anime.training import Checkpoint, Curves, recipe, run_fingerprint

# Keys that do not change the trained weights: where it runs, and how often validation watches a cosine run.
# They stay out of the run's fingerprint and of models/dan's record, so changing them re-trains nothing downstream.
NOT_RECIPE = ("device", "threads", "val_every")
WEIGHTS = ("model", "best_model")  # the checkpoint's weight sets: the weights being trained, the stage's kept ones
CURVES = ("stage", "train_nme", "val_nme", "best_val_nme", "lr")  # the dvclive columns of a history row


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
    val_every: int                # cosine: validate every val_every epochs and at a stage's last (plateau: every one)
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
                   lr_patience=p.lr_patience, lr_factor=p.lr_factor, passes=p.passes, val_every=p.val_every, augment=p.augment,
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


@dataclass
class DanProgress:
    """Where a run stands between two epochs (besides weights, optimizer, RNG and history): the checkpoint's
    `progress` JSON."""

    stage: int = 1                # the stage being trained (1-based)
    epoch: int = 0                # epochs finished in this stage
    best: float = math.inf        # the validation NME of the stage's kept weights (the bar a later stage must beat)
    bad: int = 0                  # plateau: epochs since the last improvement
    stopped: bool = False         # this stage is over: the next step moves on to the next stage
    best_val: dict[int, float] = field(default_factory=dict)  # finished stage -> validation NME of its kept weights

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "best_val": {str(k): v for k, v in self.best_val.items()}}

    @classmethod
    def from_json(cls, saved: object) -> DanProgress:
        """Rebuilt with every field's type checked: a foreign or broken record raises (KeyError/TypeError)."""
        if not isinstance(saved, dict):
            raise TypeError(f"progress is a {type(saved).__name__}, not a JSON object")
        return cls(stage=int(saved["stage"]), epoch=int(saved["epoch"]), best=float(saved["best"]),
                   bad=int(saved["bad"]), stopped=bool(saved["stopped"]),
                   best_val={int(k): float(v) for k, v in saved["best_val"].items()})


@dataclass
class _DanRun:
    """The objects one call trains: the loop's helpers update them in place."""

    model: DAN
    opt: torch.optim.Optimizer
    gen: torch.Generator          # every random draw of the data pipeline comes from it
    best_state: dict[str, torch.Tensor]   # the weights the current stage keeps so far
    progress: DanProgress
    history: list[dict]


def train_dan(data: AnimeData, params: DanParams, checkpoint_dir: Path | str, device: torch.device,
              live_dir: Path | str | None = None, stop_after_epochs: int | None = None) -> TrainResult:
    """Train (or continue training) the DAN from the validated `dan` section. `stop_after_epochs` ends this call
    early, as a kill would."""
    s = TrainSettings.from_params(params)
    train, val = data.splits["train"], data.splits["val"]
    if len(train) < 2:
        raise UserError(f"the train split has {len(train)} face(s); the DAN needs at least 2")
    ckpt = Checkpoint(checkpoint_dir)
    fp = run_fingerprint(recipe(params, where=NOT_RECIPE), data.digest)
    run, resumed_from = _start(train, s, ckpt, fp, device)
    curves = Curves(live_dir, replay=run.history, resume=False, keys=CURVES)
    epochs_run = 0
    try:
        while _next_stage(run, s, val, device):
            if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
                return TrainResult(run.model, run.history, run.progress.best_val, resumed_from, finished=False)
            row = _run_epoch(run, s, train, val, device)
            epochs_run += 1
            _record(run, row, ckpt, fp, curves)
    finally:
        curves.end()
    return TrainResult(run.model, run.history, run.progress.best_val, resumed_from, finished=True)


def _start(train: FaceSet, s: TrainSettings, ckpt: Checkpoint, fp: str,
           device: torch.device) -> tuple[_DanRun, tuple[int, int] | None]:
    """A fresh run, or the checkpoint's when it belongs to this one; also (stage, epoch) it resumed at."""
    torch.manual_seed(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    model = DAN(DANConfig(width=s.width, n_stages=s.n_stages, dropout=s.dropout,
                          mirror_average=s.mirror_average)).to(device)
    model.set_statistics(*training_statistics(train, s.augment.mirror))
    saved = ckpt.load(fp, list(WEIGHTS))
    if saved is None:  # nothing saved, or params/data/CPU math changed: the old run does not apply
        ckpt.clear()
        best_state = copy.deepcopy(model.state_dict())
        return _DanRun(model, _make_optimizer(model, 1, s), gen, best_state, DanProgress(), []), None

    def apply() -> _DanRun:
        progress = DanProgress.from_json(saved.progress)
        model.load_state_dict(saved.weights["model"])
        opt = _make_optimizer(model, progress.stage, s)
        opt.load_state_dict(saved.optim["optimizer"])
        _set_rng_state(saved.optim["rng"], gen)
        return _DanRun(model, opt, gen, saved.weights["best_model"], progress, saved.history)

    run = ckpt.restore(saved, apply)  # a checkpoint that does not fit this DAN: one line naming it
    return run, (run.progress.stage, run.progress.epoch)


def _next_stage(run: _DanRun, s: TrainSettings, val: FaceSet, device: torch.device) -> bool:
    """At the end of a stage keep its best weights, freeze it and start the next one; False when all are done."""
    p = run.progress
    if not p.stopped:
        return True
    run.model.load_state_dict(run.best_state)
    p.best_val[p.stage] = p.best
    p.stage, p.epoch, p.bad, p.stopped = p.stage + 1, 0, 0, False
    if p.stage > s.n_stages:
        return False
    if s.stage_init == "previous":
        run.model.init_stage_from_previous(p.stage)
    run.opt = _make_optimizer(run.model, p.stage, s)
    # The new stage starts as the identity (zero-initialised output), so the previous
    # stage's score is the bar to beat; stage 2 can therefore never be kept if worse on val.
    p.best = validation_nme(run.model, val, device, p.stage)
    run.best_state = copy.deepcopy(run.model.state_dict())
    return True


def _validates(s: TrainSettings, stage: int, epoch: int) -> bool:
    """Whether epoch `epoch` (1-based) of `stage` is validated. Cosine decides nothing on the score before a
    stage's last epoch, so the epochs between two validations train exactly as with `val_every` 1."""
    return s.schedule == "plateau" or epoch % s.val_every == 0 or epoch >= s.max_epochs[stage - 1]


def _run_epoch(run: _DanRun, s: TrainSettings, train: FaceSet, val: FaceSet, device: torch.device) -> dict:
    """One epoch of the current stage: train, validate (when due), judge; returns its history row (an epoch that
    was not validated has no val_nme / best_val_nme: a gap in those curves)."""
    p, opt = run.progress, run.opt
    desc = f"stage {p.stage} epoch {p.epoch + 1}/{s.max_epochs[p.stage - 1]}"
    if s.schedule == "cosine":
        for group in opt.param_groups:
            group["lr"] = cosine_lr(s, p.stage, p.epoch)
    train_loss = _train_epoch(run.model, opt, train, s, p.stage, run.gen, device, desc)
    p.epoch += 1
    row = {"step": len(run.history), "stage": p.stage, "epoch": p.epoch, "train_nme": train_loss}
    if _validates(s, p.stage, p.epoch):
        val_nme = validation_nme(run.model, val, device, p.stage)
        _judge(run, s, val_nme)
        row.update(val_nme=val_nme, best_val_nme=p.best)
    return {**row, "lr": opt.param_groups[0]["lr"]}


def _judge(run: _DanRun, s: TrainSettings, val_nme: float) -> None:
    """Keep the weights the schedule keeps, cut a plateau's rate, and decide whether the stage is over (after a
    validated epoch; a cosine stage's last epoch always is)."""
    p = run.progress
    last_epoch = p.epoch >= s.max_epochs[p.stage - 1]
    if s.schedule == "cosine":
        # keep the last weights; a later stage that ends worse than the stage before it stays the identity
        if p.stage == 1 or (last_epoch and val_nme < p.best):
            p.best, run.best_state = val_nme, copy.deepcopy(run.model.state_dict())
    elif val_nme < p.best - s.min_delta:
        p.best, p.bad = val_nme, 0
        run.best_state = copy.deepcopy(run.model.state_dict())
    else:
        p.bad += 1
        if s.lr_patience > 0 and p.bad % s.lr_patience == 0:
            for group in run.opt.param_groups:  # saved with the optimizer state, so resuming keeps it
                group["lr"] *= s.lr_factor
    p.stopped = last_epoch or (s.schedule == "plateau" and p.bad >= s.patience[p.stage - 1])


def _record(run: _DanRun, row: dict, ckpt: Checkpoint, fp: str, curves: Curves) -> None:
    """The epoch's row into the history and the curves, then the checkpoint (a kill loses at most the next epoch)."""
    p = run.progress
    run.history.append(row)
    curves.log(row)
    val = f"  val NME {row['val_nme']:.4f}  best {p.best:.4f}" if "val_nme" in row else ""
    tqdm.write(f"dan stage {p.stage} epoch {p.epoch}: train NME {row['train_nme']:.4f}{val}"
               f"{'  (stop)' if p.stopped else ''}")
    ckpt.save(len(run.history), fp, run.history, weights={"model": run.model, "best_model": run.best_state},
              optim={"optimizer": run.opt.state_dict(), "rng": _rng_state(run.gen)}, progress=run.progress.to_json())


def save_trained_dan(model_dir: Path | str, result: TrainResult, params: DanParams,
                     skipped: dict[str, list[str]] | None = None) -> None:
    """`models/dan/` from a finished run, with its record: per stage the kept validation NME and the epochs
    trained, the recipe (`training.recipe` of the `dan` section) and the faces the data loader skipped."""
    n = params.n_stages
    epochs = {str(k): max([r["epoch"] for r in result.history if r["stage"] == k] or [0]) for k in range(1, n + 1)}
    save_dan(model_dir, result.model, stages_trained=n,
             val_nme_by_stage={str(k): v for k, v in result.best_val.items()}, epochs_by_stage=epochs,
             params=recipe(params, where=NOT_RECIPE), skipped=skipped or {})
