"""The generic GAN training loop: data, phases, resume, logging, samples. The losses and the update
order belong to the models (`gan/objectives.py`).

One epoch = one pass over the training photos in seeded random order. The first `init_epochs` train
the generator to reconstruct the photo (the study's initialisation, plus a pixel term); after that each
step updates D once and then G once. Every epoch ends with a checkpoint (resumable; invalidated by a
fingerprint of params + inputs), dvclive metrics (every weighted G term and its share of the G loss),
and a sample grid. `training.json` beside the generator records the init's reconstruction error and the
loss shares at the start and end of the adversarial phase.

Several processes (torchrun, `gan/distributed.py`): every rank draws the same seeded epoch order and takes
its slice of every global batch (`batch_size` is the global batch); DDP averages the gradients; rank 0
alone writes checkpoints, curves, samples and the generator while the others wait at a barrier; a resumed
run starts every rank from rank 0's checkpoint (broadcast, so other nodes need no copy of it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from face2anime.data.tensors import to_uint8
from face2anime.device import autocast_dtype, resolve_device
from face2anime.errors import UserError, first_line
from face2anime.gan import distributed
from face2anime.gan import losses as L
from face2anime.gan.data import StyleSet, TrainPhotos, epoch_order
from face2anime.gan.models import MODELS, save_generator
from face2anime.gan.objectives import MODEL_CLASSES, Batch, GANModel
from face2anime.io import atomic_path, write_image
from face2anime.params import seed_everything, set_threads

LOSSES = ("base", "landmark")
# Params that may change without invalidating a checkpoint: they do not alter what an epoch computes
# (more `epochs` continue the same run; the device and the process count only change where it runs).
RESUMABLE_KEYS = ("epochs", "device", "threads", "samples", "processes", "dist_timeout_s")


@dataclass
class TrainConfig:
    model: str
    loss: str
    common: dict          # gan.common, gan.<model> and gan.landmark as checked by params.GanParams (model_dump)
    arch: dict
    landmark: dict        # used when loss == 'landmark'

    @property
    def variant(self) -> str:
        return f"{self.model}-{self.loss}"

    def validate(self) -> None:
        if self.model not in MODELS:
            raise UserError(f"unknown GAN model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.loss not in LOSSES:
            raise UserError(f"unknown GAN loss {self.loss!r}; choose one of {', '.join(LOSSES)}")

    def fingerprint_params(self) -> dict:
        common = {k: v for k, v in self.common.items() if k not in RESUMABLE_KEYS}
        return {"model": self.model, "loss": self.loss, "common": common, "arch": self.arch,
                "landmark": self.landmark if self.loss == "landmark" else {}}


@dataclass
class Outputs:
    checkpoint_dir: Path
    live_dir: Path | None
    samples_dir: Path | None
    model_dir: Path


def file_digest(paths: list[Path]) -> str:
    """sha256 over the bytes of files (directories: their files in sorted order)."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def fingerprint(cfg: TrainConfig, input_digest: str) -> str:
    """Checkpoints resume only a run with the same params, inputs and CPU math mode (portable/native)."""
    from face2anime import CPU_MATH

    blob = json.dumps({"params": cfg.fingerprint_params(), "inputs": input_digest, "cpu_math": CPU_MATH},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]



class ConstantFeatures:
    """Backbone features of images that never change (training photos, grayscale anime): computed once,
    when a batch first needs them, under the same autocast as the training step, and kept (when all fit
    in `cache_limit_bytes`; else recomputed per batch). They are always computed in the same fixed chunks
    of images, whatever the order of first use, so a resumed run gets the same bytes as an uninterrupted one."""

    CHUNK = 8

    def __init__(self, model: GANModel, images: torch.Tensor, cache_limit_bytes: int = 1 << 30):
        self.model, self.images = model, images
        probe = self._features(images[:1])
        fits = probe.numel() * probe.element_size() * len(images) <= cache_limit_bytes
        self.cache = probe.new_empty((len(images), *probe.shape[1:])) if fits else None
        self.done = torch.zeros((len(images) + self.CHUNK - 1) // self.CHUNK, dtype=torch.bool)

    @torch.no_grad()
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        with self.model.autocast():
            return self.model.backbone(self.model.prepare(x))

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            return self._features(self.images[idx])
        for chunk in (idx // self.CHUNK).unique().tolist():
            if not self.done[chunk]:
                rows = slice(chunk * self.CHUNK, (chunk + 1) * self.CHUNK)
                self.cache[rows] = self._features(self.images[rows])
                self.done[chunk] = True
        return self.cache[idx.to(self.cache.device)]


def _state_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_checkpoint(path: Path, epoch: int, fp: str, G: nn.Module, D: nn.Module, opt_g, opt_d,
                    history: list[dict]) -> None:
    """`path/latest/` (atomic): G and D weights (safetensors) + optimizer states and progress (state.pt)."""
    from safetensors.torch import save_file

    with atomic_path(path / "latest", is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        save_file(_state_tensors(G), str(tmp / "generator.safetensors"))
        save_file(_state_tensors(D), str(tmp / "discriminator.safetensors"))
        torch.save({"opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}, tmp / "optim.pt")
        (tmp / "state.json").write_text(json.dumps({"epoch": epoch, "fingerprint": fp, "history": history}) + "\n")


def load_checkpoint(path: Path, fp: str, G: nn.Module, D: nn.Module, opt_g, opt_d,
                    device: torch.device) -> tuple[int, list[dict]] | None:
    """(last finished epoch, history) when `path/latest` matches fingerprint `fp`, else None."""
    from safetensors.torch import load_file

    latest = path / "latest"
    state_file = latest / "state.json"
    if not state_file.exists():
        return None
    current = state_file
    try:  # random bytes, truncation, another model's files: one line naming the file, never a traceback
        state = json.loads(state_file.read_text())
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
        if state.get("fingerprint") != fp:
            return None
        for current, module in ((latest / "generator.safetensors", G), (latest / "discriminator.safetensors", D)):
            module.load_state_dict(load_file(str(current), device=str(device)))
        current = latest / "optim.pt"
        optim = torch.load(current, map_location=device, weights_only=True)
        opt_g.load_state_dict(optim["opt_g"])
        opt_d.load_state_dict(optim["opt_d"])
        return int(state["epoch"]), list(state.get("history", []))
    except Exception as err:  # noqa: BLE001 - every reader failure means an unusable checkpoint
        raise UserError(f"checkpoint {current} is corrupt or from another model ({first_line(err)}): "
                        f"delete {latest} to start over") from None


@torch.no_grad()
def reconstruction_mae(G: nn.Module, photos: TrainPhotos, device: torch.device, batch: int) -> float:
    """Mean |G(p) - p| over the photos, in [0, 1] pixel units (G in eval mode, float32)."""
    total = 0.0
    for i in range(0, len(photos), batch):
        x = photos.images[i:i + batch].to(device)
        total += float((G(x).float() - x).abs().mean(dim=(1, 2, 3)).sum()) / 2.0
    return total / len(photos)


def loss_shares(terms: dict[str, float]) -> dict[str, float]:
    """Each weighted G term's share of their sum (all terms are non-negative losses)."""
    total = sum(terms.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in terms.items()}


def sample_grid(G: nn.Module, photos: TrainPhotos, n: int, device: torch.device,
                land: L.LandmarkLoss | None = None) -> np.ndarray:
    """RGB sheet: photos on top, generated images below (with the DAN's points when a DAN is given)."""
    from face2anime.viz.sheets import contact_sheet, draw_points

    n = min(n, len(photos))
    with torch.no_grad():
        x = photos.images[:n].to(device)
        fake = G(x)
        pts = land.points(fake).cpu().numpy() if land is not None else None
    top, bottom = list(to_uint8(x)), list(to_uint8(fake))
    if pts is not None:
        scale = bottom[0].shape[0] / land.dan_size
        bottom = [draw_points(img, (p + 0.5) * scale - 0.5, (0, 255, 0), radius=1.0) for img, p in zip(bottom, pts)]
    return contact_sheet(top + bottom, ncols=n)



def build_model(cfg: TrainConfig, backbone: nn.Module, dan: nn.Module | None, device: torch.device) -> GANModel:
    """The variant's model (fresh weights from the seed), with the landmark term when the variant has it."""
    c = cfg.common
    seed_everything(int(c["seed"]))
    land = None
    if dan is not None:                      # also the point-error monitor of the base variants
        lm = cfg.landmark
        if not {"wing_w", "wing_eps", "reduction"} <= set(lm):
            raise UserError("params.yaml gan.landmark needs wing_w, wing_eps and reduction (the DAN monitor uses it)")
        land = L.LandmarkLoss(dan.to(device), float(lm["wing_w"]), float(lm["wing_eps"]), str(lm["reduction"]))
    weight = float(cfg.landmark["weight"]) if cfg.loss == "landmark" else 0.0
    amp = autocast_dtype(device, bool(c["amp"]))
    channels_last = amp is not None if c["channels_last"] == "auto" else bool(c["channels_last"])
    return MODEL_CLASSES[cfg.model](cfg.arch, c, backbone, land, weight, device, amp, channels_last)


class EpochLog:
    """Per-epoch sums of the weighted G terms, raw terms and D loss; shares come from the weighted sums."""

    def __init__(self):
        self.weighted: dict[str, float] = {}
        self.raw: dict[str, float] = {}
        self.d_loss, self.n = 0.0, 0

    def add(self, result, batch_size: int) -> None:
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


def _log_record(live, record: dict) -> None:
    for key, v in record.items():
        if isinstance(v, float):
            live.log_metric(key, v)
    live.next_step()


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


def _cpu(obj: Any) -> Any:
    """Tensors anywhere in nested dicts/lists moved to the CPU (for a broadcast that any rank can unpickle)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def share_start(d: distributed.Dist, model: GANModel, start: int, history: list[dict], resumed: bool) -> tuple:
    """Rank 0's starting state (weights, optimizer states, epoch, history) on every rank: all ranks resume
    from the same checkpoint even where only rank 0 can read it (another node)."""
    if not d.started:
        return start, history, resumed
    state = distributed.broadcast_object(d, {
        "G": _state_tensors(model.G), "D": _state_tensors(model.D), "opt_g": _cpu(model.opt_g.state_dict()),
        "opt_d": _cpu(model.opt_d.state_dict()), "start": start, "history": history, "resumed": resumed}
        if d.is_main else None)
    if not d.is_main:
        model.G.load_state_dict(state["G"])
        model.D.load_state_dict(state["D"])
        model.opt_g.load_state_dict(state["opt_g"])
        model.opt_d.load_state_dict(state["opt_d"])
    return state["start"], state["history"], state["resumed"]


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


def train_gan(cfg: TrainConfig, photos: TrainPhotos, style: StyleSet, backbone: nn.Module, out: Outputs,
              dan: nn.Module | None = None, input_digest: str = "", progress: bool = True,
              init_dir: Path | None = None, stop_after_init: bool = False,
              config_extra: dict | None = None, dist: distributed.Dist | None = None) -> dict[str, Any]:
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
    cfg.validate()
    c = cfg.common
    seed, bs = int(c["seed"]), int(c["batch_size"])
    epochs, init_epochs = int(c["epochs"]), int(c["init_epochs"])
    if stop_after_init:
        epochs = init_epochs
    if init_dir is not None and epochs <= init_epochs:
        raise UserError(f"gan.common: epochs ({epochs}) must exceed init_epochs ({init_epochs})")
    dist = dist or distributed.Dist(device=resolve_device(str(c["device"]), "gan.common.device"))
    for key in ("batch_size", "init_batch_size"):
        if int(c[key]) % dist.world:
            raise UserError(f"gan.common.{key} ({c[key]}) is the global batch: it must split evenly over the "
                            f"{dist.world} processes")
    device, main = dist.device, dist.is_main
    set_threads(int(c["threads"]))
    if cfg.loss == "landmark" and dan is None:
        raise UserError("the landmark variant needs the DAN (gan.common.dan_dir)")
    backbone = backbone.to(device).eval()

    fp = fingerprint(cfg, input_digest)
    model = build_model(cfg, backbone, dan, device)
    start, history, resumed = 0, [], False
    if main:                               # rank 0 reads; share_start hands its state to the others
        loaded = load_checkpoint(out.checkpoint_dir, fp, model.G, model.D, model.opt_g, model.opt_d, device)
        if loaded and loaded[0] + 1 > epochs:   # the checkpoint is past the requested run: start over
            model, loaded = build_model(cfg, backbone, dan, device), None
        if loaded:
            start, history, resumed = loaded[0] + 1, loaded[1], True
        elif init_dir is not None:
            history = load_init(model, init_dir)
            start = init_epochs
    start, history, resumed = share_start(dist, model, start, history, resumed)
    if dist.started:
        model.distribute(lambda m: distributed.wrap(dist, m))
    if main and not resumed:               # fresh run: drop stale checkpoints, curves and samples
        for d in (out.checkpoint_dir, out.live_dir, out.samples_dir):
            if d is not None:
                shutil.rmtree(d, ignore_errors=True)
    if main:
        out.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    live = None
    if main and out.live_dir is not None:
        from dvclive import Live
        live = Live(str(out.live_dir), dvcyaml=None, save_dvc_exp=False, resume=resumed, report=None)
        if not resumed:                    # the init's curves first, so each variant's plot shows both phases
            for record in history:
                _log_record(live, record)

    photo_feats = ConstantFeatures(model, photos.images)
    needs_gray = model.uses_gray_features and max(start, init_epochs) < epochs
    gray_feats = ConstantFeatures(model, style.gray) if needs_gray else None
    n = len(photos)
    monitor_n = min(int(c["monitor_photos"]), n)

    for epoch in range(start, epochs):
        phase = "init" if epoch < init_epochs else "gan"
        bs = int(c["init_batch_size"] if phase == "init" else c["batch_size"])
        model.set_phase(phase)
        model.G.train()
        model.D.train()
        order = epoch_order(n, seed, epoch)
        style_order = epoch_order(len(style), seed, epoch, stream=1)
        log = EpochLog()
        bar = tqdm(range(0, n, bs), desc=f"{cfg.variant} epoch {epoch + 1}/{epochs}{' (init)' if phase == 'init' else ''}",
                   disable=not (progress and main), leave=False)
        for k, s in enumerate(bar):
            rows = order[s:s + bs]                      # the global batch; this rank takes its slice
            mine, count = distributed.local_rows(dist, len(rows))
            dist.share = count / len(rows)
            idx = rows[mine]
            batch = Batch(photo=model.prepare(photos.images[idx]), photo_feat=photo_feats(idx),
                          points=photos.points[idx].to(device))
            if phase == "gan":
                sidx = style_order[(torch.arange(len(rows)) + k * bs) % len(style)][mine]
                batch.anime = model.prepare(style.color[sidx])
                batch.anime_smooth = model.prepare(style.smoothed[sidx])
                batch.anime_gray = model.prepare(style.gray[sidx])
                batch.anime_gray_feat = gray_feats(sidx) if gray_feats is not None else None
            try:
                result = model.step(batch, phase)
            except FloatingPointError as err:
                raise UserError(f"{cfg.variant}: {err} at epoch {epoch + 1}, step {k + 1}; lower the learning "
                                f"rates or loss weights") from None
            log.add(result, count)
            bar.set_postfix(g=f"{sum(log.weighted.values()) / max(log.n, 1):.3g}")
        log.reduce(dist)
        record = log.record(phase)
        record["epoch"] = epoch + 1
        record["phase"] = phase
        model.G.eval()
        if epoch + 1 == init_epochs:
            record["init_pixel_mae"] = reconstruction_mae(model.G, photos, device, bs)
        if model.landmark is not None:
            with torch.no_grad():
                pts = model.landmark.points(model.G(photos.images[:monitor_n].to(device))).float().cpu()
            record["monitor_point_error_px"] = float((pts - photos.points[:monitor_n]).norm(dim=-1).mean())
        history.append(record)
        if main:
            if live is not None:
                _log_record(live, record)
            if out.samples_dir is not None:
                sheet = sample_grid(model.G, photos, int(c["samples"]), device, model.landmark)
                write_image(out.samples_dir / f"epoch_{epoch + 1:03d}.png", sheet[..., ::-1].copy())
            save_checkpoint(out.checkpoint_dir, epoch, fp, model.G, model.D, model.opt_g, model.opt_d, history)
        distributed.barrier(dist)

    if live is not None:
        live.end()
    model.G.eval()
    variant = f"{cfg.model}-init" if stop_after_init else cfg.variant
    config = {"generator": {"model": cfg.model, **cfg.arch["generator"]}, "variant": variant,
              "image_size": int(c["image_size"]), "epochs": epochs, "init_epochs": init_epochs,
              "fingerprint": fp, "input_range": [-1, 1], "channels": "RGB", **(config_extra or {})}
    summary = training_summary(history, init_epochs)
    extra = {"training.json": {**summary, "history": history} if stop_after_init else summary}
    if main:
        save_generator(out.model_dir, model.G, config, extra=extra)
    distributed.barrier(dist)
    return {"variant": variant, "epochs_run": epochs - start, "resumed_from": start if resumed else 0,
            "history": history, "fingerprint": fp, "device": str(device), "training": summary,
            "amp": str(model.amp_dtype).replace("torch.", "") if model.amp_dtype else "off",
            "processes": dist.world}
