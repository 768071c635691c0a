"""Atomic output writing: every output appears whole or not at all, and no temp file lies inside an output.

Design (issue 15, "nothing partial"):
- Inside a project (the nearest folder above the target that holds `dvc.yaml`), temporary work lives in one
  scratch folder, `<project>/.scratch/` (gitignored, in .dvcignore), never next to the target: a kill -9
  mid-write leaves debris only there, never inside a DVC-tracked output folder. The scratch folder is on the
  project's filesystem, so the final rename stays atomic; a target on another filesystem (a symlinked data
  folder) gets the finished file copied to a hidden sibling temp first, then renamed.
- Outside a project (`face2anime convert` writing to a user folder) the temp is a hidden sibling,
  `.<pid>@<host>.<name>.XXXXXXXX.tmp`.
- Every temp name starts with the writer's `<pid>@<host>`: `clean_stale_temps` (run by `cli.run_stage` at
  stage start) deletes the entries of processes that are gone, and legacy `.<name>.XXXXXXXX.tmp` siblings
  that older versions left inside a stage's outputs. `*.tmp` is also in .dvcignore, so DVC never hashes one.
- A file replaces the old target with one `os.replace` (readers see the old or the new file, never none).
  A folder is swapped in with Linux `renameat2(RENAME_EXCHANGE)`, atomic too; where the filesystem lacks it,
  the old folder is renamed aside and the new one renamed in (a gap of one rename, never a half-filled folder).
- Outputs that belong together: build them in one folder published by one rename (`atomic_path(dir,
  is_dir=True)`), or, where they share a folder with other outputs, `atomic_group` writes all of them
  first and replaces them back to back, and their readers check that they match.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

SCRATCH = ".scratch"           # project-level temp folder (same filesystem as the outputs)
PROJECT_MARKER = "dvc.yaml"
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
_OWNED = re.compile(r"^\.?(\d+)@([A-Za-z0-9_-]+)\.")            # <pid>@<host>. at the start of a temp name
_LEGACY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")              # .<name>.XXXXXXXX.tmp (before the scratch folder)


def _tag() -> str:
    return f"{os.getpid()}@{_HOST}"


def project_root(path: Path | str) -> Path | None:
    """The nearest folder at or above `path` holding dvc.yaml (None outside a project)."""
    p = Path(path).absolute()
    for folder in (p, *p.parents):
        if (folder / PROJECT_MARKER).is_file():
            return folder
    return None


def _short(name: str) -> str:
    """`name` for a temp name: kept when short, else its start and a hash, so that the temp name stays under
    the file system's NAME_MAX (255) for any target name that fits it (the target's own name is used inside)."""
    if len(name) <= 40:
        return name
    return f"{name[:24]}-{hashlib.sha1(name.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"


def _temp_dir(target: Path) -> Path:
    """A fresh private folder for building `target`: in the project's scratch folder, else a hidden sibling."""
    root = project_root(target.parent)
    if root is not None:
        scratch = root / SCRATCH
        scratch.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{_tag()}.{_short(target.name)}.", suffix=".tmp", dir=scratch))
    return Path(tempfile.mkdtemp(prefix=f".{_tag()}.{_short(target.name)}.", suffix=".tmp", dir=target.parent))


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2); False where that is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _publish(work: Path, target: Path, tmp_dir: Path) -> None:
    """Put `work` at `target`, replacing what is there without a moment where a reader finds a half state."""
    if work.stat().st_dev != target.parent.stat().st_dev:
        # another filesystem: copy next to the target under a temp name, then rename there
        near = Path(tempfile.mkdtemp(prefix=f".{_tag()}.{_short(target.name)}.", suffix=".tmp", dir=target.parent))
        try:
            moved = near / target.name
            shutil.move(str(work), moved)
            _publish(moved, target, near)
        finally:
            shutil.rmtree(near, ignore_errors=True)
        return
    old_exists = target.exists() or target.is_symlink()
    old_is_dir = target.is_dir() and not target.is_symlink()
    if not old_exists or (not work.is_dir() and not old_is_dir):
        os.replace(work, target)  # files: one atomic rename over the old one
        return
    if _exchange(work, target):
        return  # the old folder now lies at `work`, removed with tmp_dir
    aside = tmp_dir / ("old" if target.name != "old" else "old.1")
    os.rename(target, aside)
    try:
        os.rename(work, target)
    except OSError:
        os.rename(aside, target)
        raise


@contextlib.contextmanager
def atomic_path(target: Path | str, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path to build `target` at (a folder that exists, for `is_dir`); publish it on success.

    The temp lives in the project's scratch folder (or a hidden sibling outside a project): see the module doc.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_dir(target)
    work = tmp / target.name
    if is_dir:
        work.mkdir()
    try:
        yield work
        _publish(work, target, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_group(*targets: Path | str) -> Iterator[list[Path]]:
    """Temp paths for files that belong together; all are published back to back only when all were written.

    A kill between two of the renames can still leave them out of step: their readers check that they match.
    """
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(t)) for t in targets]


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _stale(name: str, legacy: bool) -> bool:
    m = _OWNED.match(name)
    if m:
        return m.group(2) == _HOST and name.endswith(".tmp") and _pid_gone(int(m.group(1)))
    return legacy and bool(_LEGACY.match(name))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def clean_stale_temps(outputs: Iterable[Path | str] = (), root: Path | str = ".") -> list[Path]:
    """Delete temps that dead processes left: in the project's scratch folder and in and next to `outputs`
    (legacy temps included there). Returns what was deleted."""
    removed: list[Path] = []
    project = project_root(root)
    folders: list[tuple[Path, bool]] = []
    if project is not None and (project / SCRATCH).is_dir():
        folders.append((project / SCRATCH, False))
    for out in map(Path, outputs):
        folders.append((out.parent, True))
        if out.is_dir() and not out.is_symlink():
            folders += [(Path(d), True) for d, _, _ in os.walk(out)]
    for folder, legacy in folders:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if _stale(entry.name, legacy):
                _remove(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


def clean_run_temps(folder: Path | str, before: float) -> list[Path]:
    """Delete the temps that dead writers on this host left in and under `folder` (not following links) and in
    the project's scratch folder, when older than `before` (a time.time()): a user command's start-of-run
    cleanup. Only names of our own pattern (`.<pid>@<host>.` ... `.tmp`) are touched. Returns what was deleted."""
    folder = Path(folder)
    roots = [folder] if folder.is_dir() else []
    project = project_root(folder)
    if project is not None and (project / SCRATCH).is_dir():
        roots.append(project / SCRATCH)
    removed: list[Path] = []
    for root in roots:
        for here, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                path = Path(here) / name
                try:
                    old = path.lstat().st_mtime < before
                except OSError:
                    continue
                if old and _stale(name, legacy=False):
                    _remove(path)
                    removed.append(path)
            # temps are siblings of outputs, never inside other hidden folders (.git, .venv): not walked
            dirs[:] = [d for d in dirs if not d.startswith(".") and not (Path(here) / d).is_symlink()
                       and Path(here, d).exists()]
    return removed


def check_writable(outputs: Iterable[Path | str]) -> None:
    """Raise OSError naming the folder when an output's folder (or the scratch folder) cannot be written.

    Probes with a real temp file, since permission bits say nothing about read-only mounts, ACLs or root.
    Creates nothing: a folder that does not exist yet is probed through its nearest existing parent."""
    for out in map(Path, outputs):
        folders = [out.parent]
        if out.is_dir() and not out.is_symlink():
            folders.append(out)  # stages that write into an existing folder (checkpoints)
        root = project_root(out.parent)
        if root is not None:
            folders.append(root / SCRATCH)
        for folder in folders:
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent  # a folder still to be made: its nearest existing parent must take it
            try:
                fd, probe = tempfile.mkstemp(prefix=f".{_tag()}.probe.", suffix=".tmp", dir=folder)
                os.close(fd)
                os.unlink(probe)
            except OSError as err:
                raise OSError(err.errno, err.strerror, str(folder)) from None


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
