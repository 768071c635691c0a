"""Where torch work runs: 'auto' takes the GPU when there is one, else the CPU."""

from __future__ import annotations

import torch

from face2anime.errors import UserError


def resolve_device(name: str, param: str = "device") -> torch.device:
    """'auto' | 'cpu' | 'cuda[:N]' -> torch.device; asking for CUDA without a GPU is a one-line UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{param} is {name!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)
