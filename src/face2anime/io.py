"""Atomic output writing: every stage output appears whole or not at all.

Each writer goes through `atomic_path`, which hands out a temporary sibling path and renames it
over the target only when the block finished without an exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(target: Path | str, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    work = tmp if is_dir else tmp / target.name
    try:
        yield work
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(work, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path | str, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_table(path: Path | str, df: pd.DataFrame) -> None:
    """CSV for tables a person reads, parquet for large ones: chosen by the file's suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False, lineterminator="\n", float_format="%.4f")
        else:
            raise ValueError(f"unknown table format: {path}")


def read_table(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


def write_arrays(path: Path | str, **arrays: np.ndarray) -> None:
    """Consolidated array file (uncompressed .npz): DVC handles one big file better than many small."""
    with atomic_path(path) as tmp:
        with tmp.open("wb") as f:
            np.savez(f, **arrays)


def read_arrays(path: Path | str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_image(path: Path | str, image_bgr: np.ndarray, params: list[int] | None = None) -> None:
    path = Path(path)
    with atomic_path(path) as tmp:
        ok, buf = cv2.imencode(path.suffix, image_bgr, params or [])
        if not ok:
            raise ValueError(f"could not encode image {path}")
        tmp.write_bytes(buf.tobytes())
