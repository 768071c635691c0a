"""The generic GAN training loop: start (resume / init / DDP share), epochs, epoch ends, the final generator.
The losses and the update order belong to the models (`gan/objectives.py`); what an epoch records to
`gan/records.py`; checkpoints, curves, the run fingerprint and the model folder to the shared plumbing
(`face2anime.training`).

One epoch = one pass over the training photos in seeded random order. The first `init_epochs` train
the generator to reconstruct the photo (the study's initialisation, plus a pixel term); after that each
step updates D once and then G once. Every epoch ends with a checkpoint (resumable; invalidated by a
fingerprint of params + inputs + CPU math mode), dvclive metrics (every weighted G term and its share of
the G loss), and a sample grid. `training.json` beside the generator records the init's reconstruction
error and the loss shares at the start and end of the adversarial phase.

Several processes (torchrun, `gan/distributed.py`): every rank draws the same seeded epoch order and takes
its slice of every global batch (`batch_size` is the global batch); DDP averages the gradients; rank 0
alone writes checkpoints, curves, samples and the generator while the others wait at a barrier; a resumed
run starts every rank from rank 0's checkpoint (broadcast, so other nodes need no copy of it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from face2anime.device import autocast_dtype, resolve_device
from face2anime.errors import UserError, first_line
from face2anime.gan import distributed
from face2anime.gan import losses as L
from face2anime.gan.data import ConstantFeatures, StyleSet, TrainPhotos, epoch_order
from face2anime.gan.models import MODELS, generator_record, save_generator
from face2anime.gan.objectives import MODEL_CLASSES, Batch, GANModel
from face2anime.gan.records import EpochLog, reconstruction_mae, sample_grid, training_summary
from face2anime.io import write_image
from face2anime.params import AnimeGanParams, CartoonGanParams, GanCommonParams, LandmarkLossParams, SpadeGanParams
from face2anime.runtime import seed_everything, set_threads
from face2anime.training import Checkpoint, Curves, recipe, run_fingerprint, state_tensors

LOSSES = ("base", "landmark")
# Params that may change without invalidating a checkpoint: they do not alter what an epoch computes
# (more `epochs` continue the same run; the device and the process count only change where it runs).
RESUMABLE_KEYS = ("epochs", "device", "threads", "samples", "processes", "dist_timeout_s")
# The painter's inference settings: recorded in its config.json, but not part of what it learns (a sweep over
# them re-runs the stage, which resumes the finished checkpoint and only rewrites the folder).
PAINTER_INFERENCE_KEYS = ("shape_move",)
NETS = ("generator", "discriminator")        # the checkpoint's weight files; optimizers "opt_g", "opt_d"


@dataclass(frozen=True)
class TrainConfig:
    """One variant: `gan.common`, `gan.<model>` and `gan.landmark` as `params.GanParams` checked them
    (`gan.spade`: the painter, trained on anime pairs instead of photos)."""

    model: str
    loss: str
    common: GanCommonParams
    arch: CartoonGanParams | AnimeGanParams | SpadeGanParams
    landmark: LandmarkLossParams    # the landmark term (loss == 'landmark'); its Wing settings also the DAN monitor's

    @property
    def variant(self) -> str:
        return f"{self.model}-{self.loss}"

    def validate(self) -> None:
        if self.model not in MODELS:
            raise UserError(f"unknown GAN model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.loss not in LOSSES:
            raise UserError(f"unknown GAN loss {self.loss!r}; choose one of {', '.join(LOSSES)}")

    def fingerprint_params(self) -> dict[str, Any]:
        """The params a checkpoint belongs to: all but RESUMABLE_KEYS; the landmark section only where used."""
        return {"model": self.model, "loss": self.loss, "common": recipe(self.common, where=RESUMABLE_KEYS),
                "arch": recipe(self.arch, where=PAINTER_INFERENCE_KEYS),
                "landmark": recipe(self.landmark, where=()) if self.loss == "landmark" else {}}


@dataclass
class Outputs:
    checkpoint_dir: Path
    live_dir: Path | None
    samples_dir: Path | None
    model_dir: Path


def build_model(cfg: TrainConfig, backbone: nn.Module, dan: nn.Module | None, device: torch.device) -> GANModel:
    """The variant's model (fresh weights from the seed), with the landmark term when the variant has it."""
    c, lm = cfg.common, cfg.landmark
    seed_everything(c.seed)
    # the DAN is also the point-error monitor of the base variants
    land = L.LandmarkLoss(dan.to(device), lm.wing_w, lm.wing_eps, lm.reduction) if dan is not None else None
    weight = lm.weight if cfg.loss == "landmark" else 0.0
    amp = autocast_dtype(device, c.amp)
    channels_last = amp is not None if c.channels_last == "auto" else c.channels_last
    return MODEL_CLASSES[cfg.model](cfg.arch, c, backbone, land, weight, device, amp, channels_last)


def load_init(model: GANModel, init_dir: Path) -> list[dict]:
    """Load the generator an init run wrote (`init_gan` stage) into `model.G`; returns the init's history."""
    from safetensors.torch import load_file

    weights, summary = Path(init_dir) / "generator.safetensors", Path(init_dir) / "training.json"
    for f in (weights, summary):
        if not f.exists():
            raise UserError(f"{f} not found: run `dvc repro init_gan` first")
    try:
        model.G.load_state_dict(load_file(str(weights), device=str(model.device)))
        history = json.loads(summary.read_text())["history"]
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for broken files
        raise UserError(f"{init_dir} does not hold an init generator of this model ({first_line(err)}): "
                        f"re-run `dvc repro init_gan`") from None
    return history


# ---------------------------------------------------------------------------------------------- the run
@dataclass
class _Run:
    """One run's state, from `_start` to `_finish`."""

    cfg: TrainConfig
    photos: TrainPhotos
    style: StyleSet
    out: Outputs
    dist: distributed.Dist
    model: GANModel
    fp: str
    epochs: int                  # the last epoch of this run (init_epochs for an init-only run)
    start: int                   # the first epoch this process runs
    history: list[dict]
    resumed: bool
    progress: bool
    checkpoint: Checkpoint | None = None
    curves: Curves | None = None
    photo_feats: ConstantFeatures | None = None
    gray_feats: ConstantFeatures | None = None

    @property
    def device(self) -> torch.device:
        return self.dist.device


def train_gan(cfg: TrainConfig, photos: TrainPhotos, style: StyleSet, backbone: nn.Module, out: Outputs,
              dan: nn.Module | None = None, input_digest: str = "", progress: bool = True,
              init_dir: Path | None = None, stop_after_init: bool = False,
              config_extra: Mapping[str, Any] | None = None, dist: distributed.Dist | None = None) -> dict[str, Any]:
    """Train (or resume) one variant; write the final generator to `out.model_dir`. Returns a summary dict.

    `config_extra` goes into the generator's config.json as is (the stage records there how its photos were
    framed, so that `face2anime convert` frames new faces the same way).

    The init phase (reconstruction) is the same for a model's base and landmark variants, so the pipeline
    runs it once (`stop_after_init`, stage `init_gan@<model>`) and both variants start from it (`init_dir`):
    their adversarial phase then begins at epoch `init_epochs` with a fresh G optimizer, as AnimeGAN's own
    code keeps a separate optimizer for its init.

    `dist`: this process's rank when several train together (`distributed.from_env`); None = one process.
    Every rank gets the same arguments; only rank 0 reads the checkpoint and `init_dir` and writes `out`.
    """
    run = _start(cfg, photos, style, backbone, out, dan, input_digest, init_dir, stop_after_init, dist, progress)
    for epoch in range(run.start, run.epochs):
        _end_epoch(run, epoch, _run_epoch(run, epoch))
    return _finish(run, stop_after_init, config_extra)


def _start(cfg: TrainConfig, photos: TrainPhotos, style: StyleSet, backbone: nn.Module, out: Outputs,
           dan: nn.Module | None, input_digest: str, init_dir: Path | None, stop_after_init: bool,
           dist: distributed.Dist | None, progress: bool) -> _Run:
    """Check the run, build the model, put the starting state in it (checkpoint, init or fresh, then rank 0's
    on every rank), and open the outputs."""
    cfg.validate()
    c = cfg.common
    epochs = c.init_epochs if stop_after_init else c.epochs
    if init_dir is not None and epochs <= c.init_epochs:
        raise UserError(f"gan.common: epochs ({epochs}) must exceed init_epochs ({c.init_epochs})")
    dist = dist or distributed.Dist(device=resolve_device(c.device, "gan.common.device"))
    for key in ("batch_size", "init_batch_size"):
        if getattr(c, key) % dist.world:
            raise UserError(f"gan.common.{key} ({getattr(c, key)}) is the global batch: it must split evenly over "
                            f"the {dist.world} processes")
    set_threads(c.threads)
    if cfg.loss == "landmark" and dan is None:
        raise UserError("the landmark variant needs the DAN (gan.common.dan_dir)")
    backbone = backbone.to(dist.device).eval()
    fp = run_fingerprint(cfg.fingerprint_params(), input_digest)
    model = build_model(cfg, backbone, dan, dist.device)
    run = _Run(cfg, photos, style, out, dist, model, fp, epochs, 0, [], False, progress)
    if dist.is_main:                       # rank 0 reads; _share_start hands its state to the others
        run.checkpoint = Checkpoint(out.checkpoint_dir)
        run.start, run.history, run.resumed = _resume(run, init_dir)
    _share_start(run)
    if dist.started:
        model.distribute(lambda m: distributed.wrap(dist, m))
    _open_outputs(run)
    run.photo_feats = ConstantFeatures(model, photos.images)
    if model.uses_gray_features and max(run.start, c.init_epochs) < epochs:
        run.gray_feats = ConstantFeatures(model, style.gray)
    return run


def _resume(run: _Run, init_dir: Path | None) -> tuple[int, list[dict], bool]:
    """(first epoch, history, resumed): the checkpoint's when it belongs to this run and is not past it, else
    the init run's generator (`init_dir`), else a fresh start."""
    saved = run.checkpoint.load(run.fp, list(NETS), run.device)
    if saved is not None and saved.epoch + 1 <= run.epochs:   # one past the requested run: start over
        run.checkpoint.restore(saved, lambda: _put_state(run.model, {**saved.weights, **saved.optim}))
        return saved.epoch + 1, saved.history, True
    if init_dir is not None:
        return run.cfg.common.init_epochs, load_init(run.model, init_dir), False
    return 0, [], False


def _put_state(model: GANModel, state: dict[str, Any]) -> None:
    """Weights ("generator", "discriminator") and optimizer states ("opt_g", "opt_d") into the model."""
    model.G.load_state_dict(state["generator"])
    model.D.load_state_dict(state["discriminator"])
    model.opt_g.load_state_dict(state["opt_g"])
    model.opt_d.load_state_dict(state["opt_d"])


def _share_start(run: _Run) -> None:
    """Rank 0's starting state (weights, optimizer states, epoch, history) on every rank: all ranks resume
    from the same checkpoint even where only rank 0 can read it (another node)."""
    d, m = run.dist, run.model
    if not d.started:
        return
    state = distributed.broadcast_object(d, {
        "generator": state_tensors(m.G), "discriminator": state_tensors(m.D),
        "opt_g": distributed.to_cpu(m.opt_g.state_dict()), "opt_d": distributed.to_cpu(m.opt_d.state_dict()),
        "start": run.start, "history": run.history, "resumed": run.resumed} if d.is_main else None)
    if not d.is_main:
        _put_state(m, state)
    run.start, run.history, run.resumed = state["start"], state["history"], state["resumed"]


def _open_outputs(run: _Run) -> None:
    """Rank 0: a fresh run drops stale checkpoints, curves and samples; the curves start with the history
    (a fresh variant's init epochs, so that its plot shows both phases) or continue the resumed run's."""
    out = run.out
    if not run.dist.is_main:
        run.curves = Curves(None)
        return
    if not run.resumed:
        run.checkpoint.clear()
        for d in (out.live_dir, out.samples_dir):
            if d is not None:
                shutil.rmtree(d, ignore_errors=True)
    out.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    run.curves = Curves(out.live_dir, replay=() if run.resumed else run.history, resume=run.resumed)


# ---------------------------------------------------------------------------------------------- one epoch
def _phase(run: _Run, epoch: int) -> tuple[str, int]:
    """The epoch's phase and global batch size."""
    c = run.cfg.common
    return ("init", c.init_batch_size) if epoch < c.init_epochs else ("gan", c.batch_size)


def _run_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One pass over the photos (this rank's slice of each global batch); the epoch's record."""
    model, n = run.model, len(run.photos)
    phase, bs = _phase(run, epoch)
    model.set_phase(phase)
    model.G.train()
    model.D.train()
    seed = run.cfg.common.seed
    order, style_order = epoch_order(n, seed, epoch), epoch_order(len(run.style), seed, epoch, stream=1)
    # the step's own draws (the painter's layer noise, the DRAGAN perturbation) from (seed, epoch) too, so that a
    # resumed run draws what the uninterrupted one did; the study models draw nothing here
    torch.manual_seed(int(seed) * 1_000_003 + int(epoch) * 101 + 2)
    log = EpochLog()
    desc = f"{run.cfg.variant} epoch {epoch + 1}/{run.epochs}{' (init)' if phase == 'init' else ''}"
    bar = tqdm(range(0, n, bs), desc=desc, disable=not (run.progress and run.dist.is_main), leave=False)
    for k, s in enumerate(bar):
        rows = order[s:s + bs]                      # the global batch; this rank takes its slice
        mine, count = distributed.local_rows(run.dist, len(rows))
        run.dist.share = count / len(rows)
        sidx = style_order[(torch.arange(len(rows)) + k * bs) % len(run.style)][mine] if phase == "gan" else None
        batch = _batch(run, rows[mine], sidx)
        try:
            result = model.step(batch, phase)
        except FloatingPointError as err:
            raise UserError(f"{run.cfg.variant}: {err} at epoch {epoch + 1}, step {k + 1}; lower the learning "
                            f"rates or loss weights") from None
        log.add(result, count)
        bar.set_postfix(g=f"{sum(log.weighted.values()) / max(log.n, 1):.3g}")
    log.reduce(run.dist)
    return {**log.record(phase), "epoch": epoch + 1, "phase": phase}


def _batch(run: _Run, idx: torch.Tensor, sidx: torch.Tensor | None) -> Batch:
    """The step's tensors: photos `idx` (and, in the adversarial phase, anime faces `sidx`) on the device."""
    model, photos, style = run.model, run.photos, run.style
    batch = Batch(photo=model.prepare(photos.images[idx]), photo_feat=run.photo_feats(idx),
                  points=photos.points[idx].to(run.device),
                  cond=None if photos.cond is None else model.prepare(photos.cond[idx]))
    if sidx is not None:
        batch.anime = model.prepare(style.color[sidx])
        batch.anime_smooth = model.prepare(style.smoothed[sidx])
        batch.anime_gray = model.prepare(style.gray[sidx])
        batch.anime_gray_feat = run.gray_feats(sidx) if run.gray_feats is not None else None
    return batch


def _end_epoch(run: _Run, epoch: int, record: dict[str, Any]) -> None:
    """Monitors into the record (init pixel MAE, DAN point error), then rank 0 logs the curves, writes the
    sample sheet and the checkpoint; the others wait."""
    model, photos, c = run.model, run.photos, run.cfg.common
    model.G.eval()
    if epoch + 1 == c.init_epochs:
        record["init_pixel_mae"] = reconstruction_mae(model.G, photos, run.device, c.init_batch_size)
    if model.landmark is not None:
        n = min(c.monitor_photos, len(photos))
        with torch.no_grad():
            pts = model.landmark.points(model.G(photos.inputs[:n].to(run.device))).float().cpu()
        record["monitor_point_error_px"] = float((pts - photos.points[:n]).norm(dim=-1).mean())
    run.history.append(record)
    if run.dist.is_main:
        run.curves.log(record)
        if run.out.samples_dir is not None:
            sheet = sample_grid(model.G, photos, c.samples, run.device, model.landmark)
            write_image(run.out.samples_dir / f"epoch_{epoch + 1:03d}.png", sheet[..., ::-1].copy())
        run.checkpoint.save(epoch, run.fp, run.history, weights={"generator": model.G, "discriminator": model.D},
                            optim={"opt_g": model.opt_g.state_dict(), "opt_d": model.opt_d.state_dict()})
    distributed.barrier(run.dist)


# ---------------------------------------------------------------------------------------------- the end
def _finish(run: _Run, stop_after_init: bool, config_extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Rank 0 writes the generator folder (config.json, training.json); the run's summary."""
    cfg, c, model = run.cfg, run.cfg.common, run.model
    run.curves.end()
    model.G.eval()
    variant = f"{cfg.model}-init" if stop_after_init else cfg.variant
    config = {"generator": generator_record(cfg.model, cfg.arch.generator), "variant": variant,
              "image_size": c.image_size, "epochs": run.epochs, "init_epochs": c.init_epochs,
              "fingerprint": run.fp, "input_range": [-1, 1], "channels": "RGB", **(config_extra or {})}
    summary = training_summary(run.history, c.init_epochs)
    extra = {"training.json": {**summary, "history": run.history} if stop_after_init else summary}
    if run.dist.is_main:
        save_generator(run.out.model_dir, model.G, config, extra=extra)
    distributed.barrier(run.dist)
    return {"variant": variant, "epochs_run": run.epochs - run.start, "resumed_from": run.start if run.resumed else 0,
            "history": run.history, "fingerprint": run.fp, "device": str(run.device), "training": summary,
            "amp": str(model.amp_dtype).replace("torch.", "") if model.amp_dtype else "off",
            "processes": run.dist.world}
