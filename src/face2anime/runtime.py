"""Run-time set-up of a process: torch threads and the one seeding (CPU math is pinned at import, `__init__.py`)."""

from __future__ import annotations

import os
import random

import numpy as np


def set_threads(threads: int) -> None:
    """The one meaning of every `threads` param: torch CPU threads; 0 = torch's default."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


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
