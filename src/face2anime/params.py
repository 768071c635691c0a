"""Read `params.yaml` sections and seed every random generator from one number."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from face2anime.errors import UserError

PARAMS_FILE = Path("params.yaml")


def load_params(section: str | None = None, path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    """The whole params file, or one top-level section of it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run stages from the project root")
    with path.open() as f:
        params = yaml.safe_load(f) or {}
    if section is None:
        return params
    if section not in params:
        raise UserError(f"{path} has no section '{section}'")
    return params[section]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and make torch pick deterministic kernels on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
