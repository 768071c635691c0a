"""What to convert: command-line inputs expanded into pictures and videos, each with its output path.

Files are taken as given, folders recursively (sorted; hidden files and the output folder left out). A
file convert cannot read by its extension, a missing path or an empty folder becomes a listed skip with
a reason, never an error. Outputs mirror the inputs: OUT/<file name>, OUT/<folder name>/<path inside it>.
"""

from __future__ import annotations

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


def collect(inputs: list[Path | str], out_dir: Path) -> tuple[list[Item], list[Skip]]:
    """(items in input order, skips); output names are made unique when two inputs share one."""
    out_dir = Path(out_dir).resolve()
    items: list[Item] = []
    skips: list[Skip] = []
    taken: set[Path] = set()

    def add(path: Path, rel: Path) -> None:
        kind = kind_of(path)
        if kind is None:
            ext = path.suffix or "(none)"
            skips.append(Skip(path, f"unknown extension {ext}: pictures {' '.join(IMAGE_EXTS)}, "
                                    f"videos {' '.join(VIDEO_EXTS)}"))
            return
        items.append(Item(path, kind, _unique(rel, taken)))

    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            skip_out = out_dir != path.resolve()   # an output folder inside the input: not an input
            files = [p for p in sorted(path.rglob("*")) if p.is_file() and not _hidden(p, path)
                     and not (skip_out and _inside(p.resolve(), out_dir))]
            if not files:
                skips.append(Skip(path, "empty folder: no files to convert"))
            base = Path(path.resolve().name or "input")
            for f in files:
                add(f, base / f.relative_to(path))
        elif path.is_file():
            add(path, Path(path.name))
        elif path.exists():
            skips.append(Skip(path, "not a regular file or folder"))
        else:
            skips.append(Skip(path, "not found"))
    return items, skips


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _unique(rel: Path, taken: set[Path]) -> Path:
    """`rel`, or `rel` with _2, _3 ... before the extension when an earlier input took that name."""
    candidate, k = rel, 2
    while candidate.with_suffix("") in taken:  # a.jpg and a.png would also collide as crops a_face0.png
        candidate = rel.with_name(f"{rel.stem}_{k}{rel.suffix}")
        k += 1
    taken.add(candidate.with_suffix(""))
    return candidate
