"""The plumbing every trainer shares (the DAN and each GAN family), so that a trainer is only its data, its
model object and its epoch.

- **Run identity** (`run_fingerprint`): a checkpoint resumes only the run it was written by: the same params
  (minus the keys that only say where or how long it runs: `recipe`), the same input bytes (`file_digest`) and
  the same CPU math mode (`FACE2ANIME_CPU_MATH`: portable and native kernels give different floats).
- **Checkpoints** (`Checkpoint`): `<dir>/latest/`, written atomically after every epoch: one safetensors file per
  named weight set, the optimizer and RNG states in `optim.pt` (read back with `weights_only=True`), and
  `state.json` (epoch, fingerprint, history, and the trainer's own typed progress as JSON). A file that cannot be
  read is one line naming it, never a traceback; a fingerprint that differs means "start over".
- **Curves** (`Curves`): dvclive, replaying the checkpoint's history so that a resumed run's curves equal an
  uninterrupted run's.
- **Model folders** (`save_model_dir` / `read_model_dir`): weights in safetensors + `config.json` + extra JSON
  records, published atomically; reading checks every file and names the stage that rewrites it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import torch

from face2anime.errors import UserError, first_line
from face2anime.io import atomic_path

if TYPE_CHECKING:
    from pydantic import BaseModel

LATEST = "latest"
STATE = "state.json"
OPTIM = "optim.pt"
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------- run identity
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


def run_fingerprint(params: dict[str, Any], input_digest: str, cpu_math: str | None = None) -> str:
    """What a checkpoint belongs to: the params that change what an epoch computes, the inputs' digest and the
    CPU math mode (portable/native; default: this process's)."""
    if cpu_math is None:
        from face2anime import CPU_MATH as cpu_math
    blob = json.dumps({"params": params, "inputs": input_digest, "cpu_math": cpu_math}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def recipe(section: BaseModel, where: tuple[str, ...] = ("device", "threads")) -> dict[str, Any]:
    """A validated params section as the plain record a run is known by: every key in schema order, minus those
    that only say where it runs (`where`: the device and thread count do not change what is trained). It is
    what `run_fingerprint` hashes and what a model folder's config records as "params"."""
    return section.model_dump(exclude=set(where))


# ---------------------------------------------------------------------------------------------- checkpoints
def state_tensors(module: torch.nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A module's (or a state dict's) tensors detached, on the CPU, contiguous: what safetensors stores."""
    state = module.state_dict() if isinstance(module, torch.nn.Module) else module
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


@dataclass
class Saved:
    """What a matching checkpoint holds; the trainer puts it back into its own objects."""

    epoch: int                               # the last finished epoch (as the trainer counts them)
    history: list[dict]
    weights: dict[str, dict[str, torch.Tensor]]   # name -> state dict
    optim: dict[str, Any]                    # name -> optimizer state dict (and "rng" when saved)
    progress: dict[str, Any] | None          # the trainer's own state (JSON), None when it keeps none


class Checkpoint:
    """`<dir>/latest/`: the one checkpoint format of every trainer (see the module docstring)."""

    def __init__(self, directory: Path | str):
        self.dir = Path(directory)
        self.latest = self.dir / LATEST

    def save(self, epoch: int, fingerprint: str, history: list[dict], weights: dict[str, Any],
             optim: dict[str, Any], progress: dict[str, Any] | None = None) -> None:
        """`weights`: name -> module or state dict; `optim`: name -> state dict (optimizers, RNG states)."""
        from safetensors.torch import save_file

        with atomic_path(self.latest, is_dir=True) as tmp:
            tmp.mkdir(parents=True, exist_ok=True)
            for name, module in weights.items():
                save_file(state_tensors(module), str(tmp / f"{name}.safetensors"))
            torch.save(optim, tmp / OPTIM)
            state = {"epoch": epoch, "fingerprint": fingerprint, "history": history}
            if progress is not None:
                state["progress"] = progress
            (tmp / STATE).write_text(json.dumps(state) + "\n")

    def load(self, fingerprint: str, names: list[str], device: torch.device | str = "cpu") -> Saved | None:
        """The checkpoint when it exists and matches `fingerprint`, else None; unreadable -> one-line UserError."""
        from safetensors.torch import load_file

        state_file = self.latest / STATE
        if not state_file.exists():
            return None
        current = state_file
        try:  # random bytes, truncation, another model's files: one line naming the file
            state = json.loads(state_file.read_text())
            if not isinstance(state, dict):
                raise ValueError("not a JSON object")
            if state.get("fingerprint") != fingerprint:
                return None
            weights = {}
            for name in names:
                current = self.latest / f"{name}.safetensors"
                weights[name] = load_file(str(current), device=str(device))
            current = self.latest / OPTIM
            optim = torch.load(current, map_location=device, weights_only=True)
            if not isinstance(optim, dict):
                raise ValueError(f"a {type(optim).__name__}, not a dict")
            return Saved(int(state["epoch"]), list(state.get("history", [])), weights, optim, state.get("progress"))
        except Exception as err:  # noqa: BLE001 - every reader failure means an unusable checkpoint
            raise UserError(self.unusable(current, err)) from None

    def clear(self) -> None:
        """A fresh run drops what an earlier run (another fingerprint, an older format) left in the folder, so that
        the folder holds this run's checkpoint only."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def unusable(self, path: Path, err: BaseException) -> str:
        """The one-line message for a checkpoint file that exists but does not fit."""
        return (f"checkpoint {path} is corrupt or from another model ({first_line(err)}): "
                f"delete {self.latest} to start over")

    def restore(self, saved: Saved, apply: Callable[[], T]) -> T:
        """Run `apply` (which loads `saved` into the trainer's objects) and return what it returns; a mismatch is
        one line, not a traceback."""
        try:
            return apply()
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise UserError(self.unusable(self.latest, err)) from None


# ---------------------------------------------------------------------------------------------- curves
class Curves:
    """dvclive curves of one run. `replay` rows are logged first (a fresh run's earlier phase, or the
    checkpoint's history): the files then equal an uninterrupted run's. `keys`: the columns to log (None =
    every float of a row; a key the row lacks is a gap in its curve); a row's "step" (when present) sets dvclive's
    step."""

    def __init__(self, live_dir: Path | str | None, replay: list[dict] = (), resume: bool = False,
                 keys: tuple[str, ...] | None = None):
        self.keys, self.live = keys, None
        if live_dir is None:
            return
        from dvclive import Live

        self.live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=resume, report=None)
        for row in replay:
            self.log(row)

    def log(self, row: dict) -> None:
        if self.live is None:
            return
        if "step" in row:
            self.live.step = int(row["step"])
        keys = self.keys if self.keys is not None else [k for k, v in row.items() if isinstance(v, float)]
        for key in (k for k in keys if k in row):
            self.live.log_metric(key, row[key])
        self.live.next_step()

    def end(self) -> None:
        if self.live is not None:
            self.live.end()


# ---------------------------------------------------------------------------------------------- model folders
def save_model_dir(model_dir: Path | str, weights_file: str, tensors: dict[str, torch.Tensor], config: dict,
                   extra: dict[str, Any] | None = None) -> None:
    """Publish a model folder atomically: `weights_file` (safetensors), `config.json` (in the given key order)
    and one JSON file per `extra` item (file name -> object, keys sorted)."""
    from safetensors.torch import save_file

    with atomic_path(model_dir, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp / weights_file))
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        for name, obj in (extra or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_model_dir(model_dir: Path | str, weights_file: str, what: str, redo: str,
                   device: torch.device | str = "cpu") -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, tensors) of a model folder; a missing, unreadable or foreign file is one line that names it and
    says how to rewrite it (`redo`, e.g. "re-run `dvc repro train_dan`")."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    cfg_path, w_path = model_dir / "config.json", model_dir / weights_file
    for p in (cfg_path, w_path):
        if not p.exists():
            raise UserError(f"{what} file {p} not found: {redo}")
    try:
        config = json.loads(cfg_path.read_text())
        if not isinstance(config, dict):
            raise ValueError(f"a {type(config).__name__}, not a JSON object")
    except Exception as err:  # noqa: BLE001 - any failure here means a broken or foreign config
        raise UserError(f"{what} config {cfg_path} is unreadable ({first_line(err)}): {redo}") from None
    try:
        tensors = load_file(str(w_path), device=str(device))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for broken files
        raise UserError(f"{what} weights {w_path} are corrupt or not safetensors ({first_line(err)}): {redo}") from None
    return config, tensors
