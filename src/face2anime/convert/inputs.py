"""What to convert: command-line inputs expanded into pictures and videos, each with its output path.

Files are taken as given, folders recursively (sorted; hidden files and the output folder left out; links
to folders are not followed). A file convert cannot read by its extension, a missing path, a dangling link,
a link to a folder inside a folder, an input given twice or an empty folder becomes a listed skip with a reason,
never an error. Outputs mirror the inputs: OUT/<file name>, OUT/<folder name>/<path inside it>; names are
unique by stem, so no output (a picture, its crops `<stem>_face<k>.png`, a video's crops folder `<stem>/`)
can land on another's: a clash gets `_2`, `_3` (deterministic, in input order).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class Item:
    """One picture or video to convert and its output path (relative to the output folder)."""

    path: Path
    kind: str       # 'image' | 'video'
    rel_out: Path


@dataclass(frozen=True)
class Skip:
    path: Path
    reason: str


def kind_of(path: Path) -> str | None:
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None


class _Names:
    """Output names taken so far: stems (a file's name without extension, also its crops' and a video's crops
    folder's name) and folders (parents of outputs); a new name may clash with neither."""

    def __init__(self) -> None:
        self.stems: set[Path] = set()
        self.dirs: set[Path] = set()

    def free(self, rel: Path) -> bool:
        stem = rel.with_suffix("")
        return stem not in self.stems and stem not in self.dirs and not any(p in self.stems for p in rel.parents)

    def take(self, rel: Path) -> Path:
        """`rel`, or `rel` with _2, _3 ... before the extension when an earlier output took that name."""
        candidate, k = rel, 2
        while not self.free(candidate):
            candidate = rel.with_name(f"{rel.stem}_{k}{rel.suffix}")
            k += 1
        self.stems.add(candidate.with_suffix(""))
        self.dirs.update(p for p in candidate.parents if p != Path("."))
        return candidate

    def folder(self, name: str) -> Path:
        """A folder input's output folder: its name, or name_2 ... when a file's stem took it (two folders of
        one name share one output folder; their files get unique names)."""
        candidate, k = Path(name), 2
        while candidate in self.stems:
            candidate = Path(f"{name}_{k}")
            k += 1
        return candidate


def collect(inputs: list[Path | str], out_dir: Path) -> tuple[list[Item], list[Skip]]:
    """(items in input order, skips); output names are made unique when two inputs share one."""
    out_dir = Path(out_dir).resolve()
    items: list[Item] = []
    skips: list[Skip] = []
    names = _Names()
    seen: set[Path] = set()   # resolved inputs already taken: an input given twice is converted once

    def add(path: Path, rel: Path) -> None:
        kind = kind_of(path)
        if kind is None:
            ext = path.suffix or "(none)"
            skips.append(Skip(path, f"unknown extension {ext}: pictures {' '.join(IMAGE_EXTS)}, "
                                    f"videos {' '.join(VIDEO_EXTS)}"))
            return
        items.append(Item(path, kind, names.take(rel)))

    for raw in inputs:
        path = Path(raw)
        if path.exists() and path.resolve() in seen:
            skips.append(Skip(path, "given twice (the same file or folder as an earlier input): converted once"))
            continue
        if path.exists():
            seen.add(path.resolve())
        if path.is_dir():
            base = names.folder(path.resolve().name or "input")
            # outputs are never inputs: the output folder inside this input, or (-o equal to this input) the
            # subfolder this folder's outputs go to, so that repeated runs do not nest d/d/d
            own_out = out_dir / base if out_dir == path.resolve() else out_dir
            files, odd = _walk(path, own_out)
            skips += odd
            if not files and not odd:
                skips.append(Skip(path, "empty folder: no files to convert"))
            for f in files:
                add(f, base / f.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif path.is_symlink():
            skips.append(Skip(path, f"dangling link (to {os.readlink(path)})"))
        elif path.exists():
            skips.append(Skip(path, "not a regular file or folder"))
        else:
            skips.append(Skip(path, "not found"))
    return items, skips


def _walk(root: Path, exclude: Path) -> tuple[list[Path], list[Skip]]:
    """Files under `root` (sorted, hidden ones and `exclude` left out) and skips for what is not a file: links
    to folders (not followed: they could loop or leave the folder), dangling links, devices and pipes."""
    files: list[Path] = []
    skips: list[Skip] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside((here / d).resolve(), exclude)
                         or (here / d).is_symlink())
        for d in list(dirs):
            if (here / d).is_symlink():   # os.walk does not descend into them: say so
                dirs.remove(d)
                if not d.startswith("."):
                    skips.append(Skip(here / d, "link to a folder: not followed (give the folder itself)"))
        for name in sorted(names):
            p = here / name
            if name.startswith("."):
                continue
            if p.is_file():
                if not _inside(p.resolve(), exclude):
                    files.append(p)
            elif p.is_symlink():
                skips.append(Skip(p, f"dangling link (to {os.readlink(p)})"))
            else:
                skips.append(Skip(p, "not a regular file or folder"))
    return sorted(files, key=lambda p: p.relative_to(root).parts), skips


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
