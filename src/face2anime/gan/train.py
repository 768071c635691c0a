"""GAN training loop shared by CartoonGAN and AnimeGAN, with or without the landmark loss.

One epoch = one pass over the training photos in seeded random order. The first `init_epochs` train
the generator on the content loss alone (the study's initialisation); after that each step updates
D once and then G once. Every epoch ends with a checkpoint (resumable; invalidated by a fingerprint of
params + inputs), dvclive metrics, and a sample grid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from face2anime.device import resolve_device
from face2anime.errors import UserError
from face2anime.gan import losses as L
from face2anime.gan.data import PhotoSet, StyleSet, epoch_order, to_uint8
from face2anime.gan.models import MODELS, build_discriminator, build_generator, save_generator
from face2anime.io import atomic_path, write_image
from face2anime.params import seed_everything

LOSSES = ("base", "landmark")
# Params that may change without invalidating a checkpoint: they do not alter what an epoch computes
# (more `epochs` continue the same run; the device only changes where it runs).
RESUMABLE_KEYS = ("epochs", "device", "amp", "num_threads", "samples")


@dataclass
class TrainConfig:
    model: str
    loss: str
    common: dict
    arch: dict            # the gan.<model> section
    landmark: dict = field(default_factory=dict)   # the gan.landmark section (used when loss == 'landmark')

    @property
    def variant(self) -> str:
        return f"{self.model}-{self.loss}"

    def validate(self) -> None:
        if self.model not in MODELS:
            raise UserError(f"unknown GAN model {self.model!r}; choose one of {', '.join(MODELS)}")
        if self.loss not in LOSSES:
            raise UserError(f"unknown GAN loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        c = self.common
        if int(c["init_epochs"]) < 0 or int(c["epochs"]) < 1 or int(c["batch_size"]) < 1:
            raise UserError("gan.common: need epochs >= 1, init_epochs >= 0, batch_size >= 1")
        if self.loss == "landmark" and self.landmark.get("reduction", "mean") not in L.REDUCTIONS:
            raise UserError(f"gan.landmark.reduction must be one of {L.REDUCTIONS}")

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
    blob = json.dumps({"params": cfg.fingerprint_params(), "inputs": input_digest}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]



class PhotoFeatures:
    """Backbone features of the (fixed) training photos: computed once, not at every step, when they fit."""

    def __init__(self, backbone: nn.Module, photos: torch.Tensor, device: torch.device, batch: int,
                 cache_limit_bytes: int = 1 << 30):
        self.backbone, self.photos, self.device = backbone, photos, device
        self.cache: torch.Tensor | None = None
        with torch.no_grad():
            probe = backbone(photos[:1].to(device))
        if probe.numel() * probe.element_size() * len(photos) <= cache_limit_bytes:
            with torch.no_grad():
                self.cache = torch.cat([backbone(photos[i:i + batch].to(device)) for i in range(0, len(photos), batch)])

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[idx.to(self.cache.device)]
        with torch.no_grad():
            return self.backbone(self.photos[idx].to(self.device))


def _adam(params, lr: float, betas) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(float(betas[0]), float(betas[1])))


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


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
    state = json.loads(state_file.read_text())
    if state.get("fingerprint") != fp:
        return None
    G.load_state_dict(load_file(str(latest / "generator.safetensors"), device=str(device)))
    D.load_state_dict(load_file(str(latest / "discriminator.safetensors"), device=str(device)))
    optim = torch.load(latest / "optim.pt", map_location=device, weights_only=True)
    opt_g.load_state_dict(optim["opt_g"])
    opt_d.load_state_dict(optim["opt_d"])
    return int(state["epoch"]), list(state.get("history", []))


def sample_grid(G: nn.Module, photos: PhotoSet, n: int, device: torch.device,
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


def train_gan(cfg: TrainConfig, photos: PhotoSet, style: StyleSet, backbone: nn.Module, out: Outputs,
              dan: nn.Module | None = None, input_digest: str = "", progress: bool = True) -> dict[str, Any]:
    """Train (or resume) one variant; write the final generator to `out.model_dir`. Returns a summary dict."""
    cfg.validate()
    c, arch = cfg.common, cfg.arch
    seed, bs = int(c["seed"]), int(c["batch_size"])
    epochs, init_epochs = int(c["epochs"]), int(c["init_epochs"])
    device = resolve_device(str(c.get("device", "auto")), "gan.common.device")
    use_amp = bool(c.get("amp", True)) and device.type == "cuda"
    torch.set_num_threads(int(c.get("num_threads", 2)))
    seed_everything(seed)
    if cfg.loss == "landmark" and dan is None:
        raise UserError("the landmark variant needs the DAN (gan.common.dan_dir)")

    G = build_generator({"model": cfg.model, **arch["generator"]}).to(device)
    D = build_discriminator({"model": cfg.model, **arch["discriminator"]}).to(device)
    opt_g = _adam(G.parameters(), float(c["lr_g_init"]), c["betas"])
    opt_d = _adam(D.parameters(), float(c["lr_d"]), c["betas"])
    backbone = backbone.to(device).eval()
    land = None
    if dan is not None:
        lm = cfg.landmark if cfg.loss == "landmark" else {}
        land = L.LandmarkLoss(dan.to(device), float(lm.get("wing_w", 5.0)), float(lm.get("wing_eps", 2.0)),
                              str(lm.get("reduction", "mean")))
    w = {k: float(v) for k, v in arch["weights"].items()}
    w_land = float(cfg.landmark["weight"]) if cfg.loss == "landmark" else 0.0

    fp = fingerprint(cfg, input_digest)
    resumed = load_checkpoint(out.checkpoint_dir, fp, G, D, opt_g, opt_d, device)
    if resumed and resumed[0] + 1 > epochs:   # the checkpoint is past the requested run: start over
        seed_everything(seed)
        G = build_generator({"model": cfg.model, **arch["generator"]}).to(device)
        D = build_discriminator({"model": cfg.model, **arch["discriminator"]}).to(device)
        opt_g = _adam(G.parameters(), float(c["lr_g_init"]), c["betas"])
        opt_d = _adam(D.parameters(), float(c["lr_d"]), c["betas"])
        resumed = None
    start, history = (resumed[0] + 1, resumed[1]) if resumed else (0, [])
    if not resumed:                        # fresh run: drop stale checkpoints, curves and samples
        for d in (out.checkpoint_dir, out.live_dir, out.samples_dir):
            if d is not None:
                shutil.rmtree(d, ignore_errors=True)
    out.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    live = None
    if out.live_dir is not None:
        from dvclive import Live
        live = Live(str(out.live_dir), dvcyaml=None, save_dvc_exp=False, resume=bool(resumed), report=None)

    feats = PhotoFeatures(backbone, photos.images, device, bs)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
    n = len(photos)
    monitor_n = min(int(c.get("monitor_photos", 16)), n)

    for epoch in range(start, epochs):
        init = epoch < init_epochs
        _set_lr(opt_g, float(c["lr_g_init"] if init else c["lr_g"]))
        G.train()
        D.train()
        order = epoch_order(n, seed, epoch)
        style_order = epoch_order(len(style), seed, epoch, stream=1)
        sums: dict[str, float] = {}
        steps = range(0, n, bs)
        bar = tqdm(steps, desc=f"{cfg.variant} epoch {epoch + 1}/{epochs}{' (init)' if init else ''}",
                   disable=not progress, leave=False)
        for k, s in enumerate(bar):
            idx = order[s:s + bs]
            x = photos.images[idx].to(device)
            logs: dict[str, torch.Tensor] = {}
            if init:
                with autocast():
                    fake = G(x)
                    con = L.content_loss(backbone(fake).float(), feats(idx).float())
                loss_g = w["con"] * con
                logs["g_content"] = con
            else:
                sidx = style_order[(torch.arange(len(idx)) + k * bs) % len(style)]
                anime = style.color[sidx].to(device)
                # CartoonGAN: edge-smoothed colour anime is fake; AnimeGAN: its grayscale version is.
                smooth = style.smoothed[sidx] if cfg.model == "cartoongan" else _gray3(style.smoothed[sidx])
                smooth = smooth.to(device)
                # ---- D step
                with autocast():
                    fake = G(x)
                    d_real, d_fake, d_smooth = D(anime), D(fake.detach()), D(smooth)
                    if cfg.model == "cartoongan":
                        loss_d = L.bce_d_loss(d_real.float(), d_fake.float(), d_smooth.float())
                    else:
                        gray = style.gray[sidx].to(device)
                        loss_d = L.lsgan_d_loss(d_real.float(), d_fake.float(), D(gray).float(), d_smooth.float(),
                                                arch.get("d_weights"))
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                logs["d_loss"] = loss_d
                # ---- G step (D frozen: no wasted weight gradients for it)
                D.requires_grad_(False)
                with autocast():
                    d_fake = D(fake).float()
                    feat_fake = backbone(fake).float()
                    con = L.content_loss(feat_fake, feats(idx).float())
                    adv = L.bce_g_loss(d_fake) if cfg.model == "cartoongan" else L.lsgan_g_loss(d_fake)
                    loss_g = w["adv"] * adv + w["con"] * con
                    logs.update(g_adv=adv, g_content=con)
                    if cfg.model == "animegan":
                        with torch.no_grad():
                            feat_gray = backbone(style.gray[sidx].to(device)).float()
                        gra = L.gram_loss(feat_fake, feat_gray)
                        col = L.color_loss(fake.float(), x.float())
                        loss_g = loss_g + w["gram"] * gra + w["color"] * col
                        logs.update(g_gram=gra, g_color=col)
                if w_land > 0:
                    lnd = land(fake.float(), photos.points[idx].to(device))
                    loss_g = loss_g + w_land * lnd
                    logs["g_landmark"] = lnd
                D.requires_grad_(True)
            if not torch.isfinite(loss_g.detach()):
                bad = {name: round(float(v.detach()), 4) for name, v in logs.items()}
                raise UserError(f"{cfg.variant}: non-finite generator loss at epoch {epoch + 1}, step {k + 1} "
                                f"({bad}); lower the learning rates or loss weights")
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            logs["g_total"] = loss_g
            for key, v in logs.items():
                sums[key] = sums.get(key, 0.0) + float(v.detach()) * len(idx)
            bar.set_postfix({k: f"{v / min(n, s + len(idx)):.3g}" for k, v in sums.items() if k in ("g_total", "d_loss")})
        record = {key: v / n for key, v in sums.items()}
        record["epoch"] = epoch + 1
        record["phase"] = "init" if init else "gan"
        G.eval()
        if land is not None:
            with torch.no_grad():
                pts = land.points(G(photos.images[:monitor_n].to(device))).float().cpu()
            record["monitor_point_error_px"] = float((pts - photos.points[:monitor_n]).norm(dim=-1).mean())
        history.append(record)
        if live is not None:
            for key, v in record.items():
                if isinstance(v, float):
                    live.log_metric(key, v)
            live.next_step()
        if out.samples_dir is not None:
            sheet = sample_grid(G, photos, int(c.get("samples", 6)), device, land)
            write_image(out.samples_dir / f"epoch_{epoch + 1:03d}.png", sheet[..., ::-1].copy())
        save_checkpoint(out.checkpoint_dir, epoch, fp, G, D, opt_g, opt_d, history)

    if live is not None:
        live.end()
    G.eval()
    config = {"generator": {"model": cfg.model, **arch["generator"]}, "variant": cfg.variant,
              "image_size": int(c["image_size"]), "epochs": epochs, "init_epochs": init_epochs,
              "fingerprint": fp, "input_range": [-1, 1], "channels": "RGB"}
    save_generator(out.model_dir, G, config)
    return {"variant": cfg.variant, "epochs_run": epochs - start, "resumed_from": start if resumed else 0,
            "history": history, "fingerprint": fp, "device": str(device)}


def _gray3(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [-1, 1] -> the same image as 3-channel grayscale (ITU-R 601), in [-1, 1]."""
    return (L.luma(x) * 2.0 - 1.0).expand(-1, 3, -1, -1)
