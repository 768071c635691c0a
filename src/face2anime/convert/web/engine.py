"""What the web page does with an upload, without the page: the generators on offer and one conversion.

A conversion is `convert.run.convert_picture` (the `face2anime convert` steps: dlib detection with the
generator's training settings, the framing rule's crops, the generator through `FaceBatcher`, the feathered
paste-back), after `load_photo` (the command's reader, with the page's own `serve.max_pixels`). The page
never sees an exception: a bad upload, a picture without a face or an unexpected failure is a `PageResult`
with a message (the unexpected one's traceback goes to the server's log). Results are written only into
the page's temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import shutil
import sys
import threading
import time
import traceback
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from face2anime.convert.faces import FaceFinder, PhotoFace
from face2anime.convert.model import TrainedModel, read_model
from face2anime.convert.run import _one_line, _picture_reason, convert_picture
from face2anime.convert.settings import REPO_ROOT, ConvertSettings
from face2anime.convert.stylize import FacePainter, make_painter
from face2anime.errors import UserError
from face2anime.io import atomic_path, write_image
from face2anime.photos.files import PhotoSkip, load_photo
from face2anime.viz.sheets import contact_sheet, draw_points, rgb_to_bgr

MODES = ("paste", "crops")
CROPS_PER_ROW = 4


def find_folder(path: str | Path) -> Path:
    """`path` as given when it exists (relative to the current folder), else under the repository."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


# ---------------------------------------------------------------- the generators on offer
@dataclass(frozen=True)
class Variant:
    """A generator folder convert accepts, with eval_gan's numbers for it (None where not measured)."""

    name: str
    path: Path
    kid: float | None = None            # KID to held-out anime faces (HED-VGG16 conv5_3 features): lower = closer
    kid_std: float | None = None
    landmark_rmse: float | None = None  # px at 112: the output's DAN points vs the photo's target points

    @property
    def label(self) -> str:
        parts = [self.name]
        if self.kid is not None:
            parts.append(f"KID {self.kid:.0f}" + (f" ± {self.kid_std:.0f}" if self.kid_std is not None else ""))
        if self.landmark_rmse is not None:
            parts.append(f"landmark RMSE {self.landmark_rmse:.1f} px")
        if len(parts) == 1:
            parts.append("not evaluated")
        return " · ".join(parts)


def _number(data: Any, *keys: str) -> float | None:
    """data[k1][k2]... as a finite float, or None when any step is missing or not a number."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    if isinstance(data, bool) or not isinstance(data, (int, float)) or not math.isfinite(data):
        return None
    return float(data)


def read_metrics(path: Path) -> tuple[float | None, float | None, float | None]:
    """(KID mean, KID std, held-out landmark RMSE px) from an eval_gan `<variant>.json`; Nones when unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, None, None
    return (_number(data, "style", "kid", "mean"), _number(data, "style", "kid", "std"),
            _number(data, "landmarks", "output", "rmse_px"))


def find_variants(models: str | Path, metrics: str | Path | None) -> tuple[list[Variant], list[str]]:
    """Every generator folder under `models` that `read_model` accepts (sorted by name), and one line for each
    folder with a config.json that it refused (why): the page offers only what convert can run."""
    root = find_folder(models)
    metrics_dir = find_folder(metrics) if metrics else None
    found, refused = [], []
    for folder in sorted(p for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []:
        try:
            read_model(folder)
        except UserError as err:
            refused.append(f"{folder.name}: {err}")
            continue
        numbers = read_metrics(metrics_dir / f"{folder.name}.json") if metrics_dir else (None, None, None)
        found.append(Variant(folder.name, folder, *numbers))
    return found, refused


# ---------------------------------------------------------------- one conversion
@dataclass
class PageResult:
    """What the page shows: a message, and the before / after pictures and download where there are any."""

    message: str
    before: np.ndarray | None = None
    after: np.ndarray | Path | None = None
    download: Path | None = None
    faces: int = 0

    @property
    def ok(self) -> bool:
        return self.faces > 0


@dataclass
class _Loaded:
    """A generator ready to convert. dlib's detector and predictor must not run in two threads at once (they
    crash), so each conversion borrows a FaceFinder of its own: the pool grows to the queue's concurrency."""

    model: TrainedModel
    settings: ConvertSettings
    stylize: FacePainter
    finders: queue.SimpleQueue

    @contextlib.contextmanager
    def finder(self) -> Iterator[FaceFinder]:
        try:
            finder = self.finders.get_nowait()
        except queue.Empty:
            finder = FaceFinder(self.model, self.settings)
        try:
            yield finder
        finally:
            self.finders.put(finder)


class PageEngine:
    """Converts uploads with any offered generator; keeps the `models_loaded` most recently used in memory
    (each holds its weights and dlib's predictor). Safe to call from several threads (the page's queue runs
    `serve.concurrency` conversions at once). Results go into `results_dir`, one folder per conversion;
    folders older than `max_age_s` are deleted when a new one is made."""

    def __init__(self, variants: list[Variant], settings: ConvertSettings, device: torch.device, max_pixels: int,
                 models_loaded: int, results_dir: Path, max_age_s: float):
        if not variants:
            raise UserError("no generator to offer")
        self.variants = {v.name: v for v in variants}
        self.s, self.device, self.max_pixels = settings, device, max_pixels
        self.models_loaded, self.results_dir, self.max_age_s = models_loaded, Path(results_dir), max_age_s
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._counter = 0

    def loaded(self, name: str) -> _Loaded:
        """The generator `name` ready to convert (loaded once, least recently used one dropped)."""
        if name not in self.variants:
            raise UserError(f"unknown generator {name!r}; offered: {', '.join(self.variants)}")
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            model = read_model(self.variants[name].path)
            painter = make_painter(model.path, self.device, self.s.batch_size, self.s.threads, self.s.amp)
            entry = _Loaded(model, self.s, FacePainter(painter), queue.SimpleQueue())
            entry.finders.put(FaceFinder(model, self.s))   # the first one now: a bad predictor path fails here
            self._loaded[name] = entry
            while len(self._loaded) > self.models_loaded:
                self._loaded.popitem(last=False)
            return entry

    def _result_folder(self) -> Path:
        with self._lock:
            self._counter += 1
            n = self._counter
            old = time.time() - self.max_age_s
            for folder in self.results_dir.iterdir() if self.results_dir.is_dir() else []:
                with contextlib.suppress(OSError):
                    if folder.stat().st_mtime < old:
                        shutil.rmtree(folder)
        folder = self.results_dir / f"{n:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def convert(self, upload: str | Path | None, name: str, mode: str, overlay: bool) -> PageResult:
        """One upload -> a PageResult; never raises."""
        if not upload:
            return PageResult("Upload a photo, take one with the webcam, or pick a demo photo first.")
        if mode not in MODES:
            return PageResult(f"Unknown output {mode!r}: choose {' or '.join(MODES)}.")
        upload = Path(upload)
        start = time.perf_counter()
        try:
            rgb = load_photo(upload, self.max_pixels)
        except PhotoSkip as skip:
            return PageResult(f"**{upload.name}** cannot be converted: {_picture_reason(skip)}.")
        except Exception as err:  # noqa: BLE001 - the page must answer, whatever the file
            return PageResult(f"**{upload.name}** cannot be read: {_one_line(err)}.")
        try:
            return self._convert(rgb, upload.stem, name, mode, overlay, start)
        except UserError as err:
            return PageResult(f"Cannot convert with {name}: {err}", before=rgb)
        except Exception as err:  # noqa: BLE001
            print(f"face2anime serve: conversion of {upload.name} with {name} failed:", file=sys.stderr)
            traceback.print_exc()
            return PageResult(f"The conversion failed ({_one_line(err)}); the server's log has the details.",
                              before=rgb)

    def _convert(self, rgb: np.ndarray, stem: str, name: str, mode: str, overlay: bool, start: float) -> PageResult:
        entry = self.loaded(name)
        with entry.finder() as finder:
            picture = convert_picture(rgb, finder, entry.stylize, self.s.batch_size)
        before = draw_overlay(rgb, picture.faces) if overlay else rgb
        skips = "".join(f" Face {k} left as it was: {why}." for k, why in sorted(picture.skipped.items()))
        if not picture.painted:
            what = "No face found" if not picture.faces else "No face could be painted"
            return PageResult(f"{what} in this picture: it comes back unchanged.{skips} (dlib finds frontal faces "
                              "of about 40 px and more.)", before=before, after=rgb)
        folder = self._result_folder()
        if mode == "paste":
            out = folder / f"{stem}_anime.png"
            write_image(out, rgb_to_bgr(picture.paste(self.s.feather, self.s.mask)))
            after: np.ndarray | Path = out
        else:
            crops = [picture.styled[k] for k in picture.painted]
            after = contact_sheet(crops, CROPS_PER_ROW, labels=[f"face {k}" for k in picture.painted])
            out = folder / f"{stem}_faces.zip"
            with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as archive:
                for k, crop in zip(picture.painted, crops):
                    archive.writestr(f"{stem}_face{k}.png", _png_bytes(crop))
        n = len(picture.painted)
        seconds = time.perf_counter() - start
        return PageResult(f"Converted {n} face{'s' if n != 1 else ''} with {name} ({mode}) in {seconds:.1f} s."
                          f"{skips}", before=before, after=after, download=out, faces=n)


def _png_bytes(rgb: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", rgb_to_bgr(rgb))
    if not ok:
        raise ValueError("could not encode a PNG")
    return buf.tobytes()


def draw_overlay(rgb: np.ndarray, faces: list[PhotoFace]) -> np.ndarray:
    """A copy of the picture with each face's framing square (what the generator saw) and dlib's 68 points."""
    import cv2

    out = rgb.copy()
    scale = max(1.0, max(rgb.shape[:2]) / 512)
    for face in faces:
        x0, y0, side = (float(v) for v in face.square)
        cv2.rectangle(out, (round(x0), round(y0)), (round(x0 + side), round(y0 + side)), (255, 200, 0),
                      max(1, round(2 * scale)), cv2.LINE_AA)
        if face.points68 is not None:
            out = draw_points(out, face.points68, (0, 255, 80), radius=1.6 * scale)
    return out
