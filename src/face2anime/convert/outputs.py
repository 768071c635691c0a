"""Where convert's outputs may go, and how a picture is encoded with what its input carried.

Rules (issue 28): an output never lands on another output of the same run (`inputs.collect` makes names
unique, `OutputGuard` refuses what slips through), never replaces a folder convert did not write (even with
`--overwrite`), and replaces an existing file only when an earlier convert run wrote it (recorded in
OUT/.face2anime-convert.json with its size and time, so a file a person put there or changed since is not
one) or with `--overwrite`. A refusal is one listed skip of that input. The output folder is made and
probed with a real file, and the temps of killed runs cleaned, before any detection work.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import cv2
import numpy as np

from face2anime.errors import UserError
from face2anime.io import atomic_path, check_writable, clean_run_temps, write_json
from face2anime.photos.files import PhotoExtras

MANIFEST = ".face2anime-convert.json"   # hidden: never an input when -o is inside an input folder
ALPHA_EXTS = (".png", ".tif", ".tiff", ".webp")
JPEG_EXTS = (".jpg", ".jpeg")
_ICC_CHUNK = 65519   # bytes of profile per APP2 segment (65535 - 2 length - 14 header)


def prepare_out_dir(out_dir: Path | str) -> Path:
    """The output folder made and proven writable (a probe file), and stale temps of killed runs removed.
    Raises UserError with one line when the folder cannot be made or written."""
    start = time.time()
    raw = str(out_dir)
    if not raw.strip():
        raise UserError("the output folder is empty (-o \"\"): name a folder, e.g. -o out")
    out_dir = Path(raw)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output {out_dir} is a file: give a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        check_writable([out_dir / MANIFEST])
    except OSError as err:
        where = err.filename or out_dir
        raise UserError(f"cannot write the output folder {out_dir} ({where}: {err.strerror or err}): "
                        f"choose another -o or fix its permissions") from None
    clean_run_temps(out_dir, start)
    return out_dir


class OutputGuard:
    """What this run wrote, what earlier runs wrote (the manifest), and whether a target may be written."""

    def __init__(self, out_dir: Path | str, overwrite: bool = False):
        self.out_dir, self.overwrite = Path(out_dir), overwrite
        self.previous = _read_manifest(self.out_dir / MANIFEST)
        self.written: dict[str, dict] = {}

    def _rel(self, target: Path) -> str:
        return Path(target).relative_to(self.out_dir).as_posix()

    def refusal(self, target: Path, folder: bool = False) -> str | None:
        """None when `target` (a file, or a crops folder) may be written now, else the one-line reason."""
        rel = self._rel(target)
        if rel in self.written:
            return f"its output {target} was already written by an earlier input of this run: not replaced"
        if not (target.exists() or target.is_symlink()):
            return None
        entry = self.previous.get(rel)
        if target.is_dir() and not target.is_symlink():
            if folder and entry is not None and entry.get("folder"):
                return None
            return (f"output {target} is an existing folder that convert did not write: not replaced, even with "
                    f"--overwrite (move it or choose another -o)")
        if not folder and entry is not None and _same_file(target, entry):
            return None
        if self.overwrite:
            return None
        return f"output {target} exists and convert did not write it: not replaced (--overwrite replaces it)"

    def record(self, target: Path) -> None:
        """`target` was published by this run."""
        target = Path(target)
        if target.is_dir():
            self.written[self._rel(target)] = {"folder": True}
        elif target.is_file():
            st = target.stat()
            self.written[self._rel(target)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def save(self) -> None:
        """The manifest: earlier entries whose files are still there, and this run's."""
        if not self.written:
            return
        kept = {rel: e for rel, e in self.previous.items()
                if rel not in self.written and (self.out_dir / rel).exists()}
        try:
            write_json(self.out_dir / MANIFEST, {"outputs": dict(sorted({**kept, **self.written}.items()))})
        except OSError:
            pass   # the outputs are whole; a later run only asks for --overwrite before replacing them


def _read_manifest(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
        outputs = data.get("outputs", {}) if isinstance(data, dict) else {}
        return {str(k): v for k, v in outputs.items() if isinstance(v, dict)}
    except (OSError, ValueError, AttributeError):
        return {}   # none or unreadable: every existing file counts as not ours (refused, never lost)


def _same_file(path: Path, entry: dict) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    return path.is_file() and st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns")


def keeps_alpha(path: Path, extras: PhotoExtras | None) -> bool:
    """The picture has transparency and its output format can store it."""
    return extras is not None and extras.alpha is not None and path.suffix.lower() in ALPHA_EXTS


def write_picture(path: Path, rgb: np.ndarray, extras: PhotoExtras | None, params: list[int]) -> None:
    """`rgb` encoded by the output's extension, atomically, with the input's alpha (PNG/TIFF/WebP) and, for JPEG,
    its ICC profile and EXIF (orientation removed: the pixels are upright)."""
    image = rgb[..., ::-1]
    if keeps_alpha(path, extras):
        image = np.dstack([image, extras.alpha])
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(image), params)
    if not ok:
        raise ValueError(f"could not encode image {path}")
    data = buf.tobytes()
    if extras is not None and path.suffix.lower() in JPEG_EXTS:
        data = jpeg_with_metadata(data, extras.icc, extras.exif)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def jpeg_with_metadata(data: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """A JPEG's bytes with an APP1 EXIF and APP2 ICC_PROFILE segments inserted after SOI (and JFIF's APP0);
    the image data is untouched. EXIF over one segment's 64 KB is left out (JPEG cannot hold it in APP1)."""
    if data[:2] != b"\xff\xd8":
        return data
    pos = 2
    if data[2:4] == b"\xff\xe0":
        pos = 4 + int.from_bytes(data[4:6], "big")
    segments = b""
    if exif:
        payload = exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif
        if len(payload) + 2 <= 0xFFFF:
            segments += b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    if icc:
        n = math.ceil(len(icc) / _ICC_CHUNK)
        if n <= 255:
            for i in range(n):
                payload = b"ICC_PROFILE\x00" + bytes([i + 1, n]) + icc[i * _ICC_CHUNK:(i + 1) * _ICC_CHUNK]
                segments += b"\xff\xe2" + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:pos] + segments + data[pos:]
