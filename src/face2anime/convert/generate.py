"""`face2anime generate`: new anime faces painted from sampled layouts, no photo needed.

The SPADE painter paints from a rough and 40 points. Here both are drawn instead of read from a picture:
a 40-point shape from the PCA shape model of the training anime faces and a flat rough from that shape and
a (background, hair, skin) palette of one training face, with a little seeded jitter (`paint.layouts`,
stored by prepare_spade in data/spade/layouts.npz). The painter's input is then made by the one
conditioning function (`paint.conditioning.conditioning_batch` with the painter's recorded recipe), as for
its training pairs: the sampled shapes are anime shapes already, so they are not moved toward the anime
mean as a photo's points are. Face k's layout depends on (seed, k) only, so `-n 8` draws the first 8
layouts of `-n 64`. Defaults: the `generate` section of params.yaml.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from face2anime.anime.crops import CROP_SIZE
from face2anime.convert.model import resolve_model_dir
from face2anime.convert.settings import REPO_ROOT, find_params_file
from face2anime.convert.stylize import make_painter
from face2anime.device import resolve_device
from face2anime.errors import UserError
from face2anime.gan.painting import Painter
from face2anime.io import read_arrays, write_image
from face2anime.paint.conditioning import conditioning_batch, points_problem
from face2anime.paint.layouts import ShapeModel, synth_rough
from face2anime.params import GenerateParams
from face2anime.settings import load_settings as load_section
from face2anime.settings import validate
from face2anime.viz.sheets import contact_sheet, rgb_to_bgr

SECTION = "generate"
LAYOUT_KEYS = ("mean", "components", "std", "palettes")
MAX_DRAWS = 100        # shape draws per face before giving up (a draw leaving the crop is drawn again)
SHEET_FACES, SHEET_COLUMNS = 64, 8   # the contact sheet shows the first 64 faces, 8 a row


def load_settings(params: Path | str | None = None, overrides: dict[str, Any] | None = None) -> GenerateParams:
    """The `generate` section (./params.yaml, else the repository's; or `params`), with `overrides` checked by
    the same model."""
    settings = load_section(SECTION, find_params_file(params, SECTION))
    clean = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not clean:
        return settings
    return validate(GenerateParams, {**settings.model_dump(), **clean}, "options", SECTION)


@dataclass(frozen=True)
class Layouts:
    """What prepare_spade stored for generate: the anime shape model and the training faces' palettes."""

    shapes: ShapeModel
    palettes: np.ndarray   # (P, 3, 3) uint8: (background, hair, skin) RGB of each training rough


def _find(path: Path | str) -> Path:
    """`path`, or for a relative path missing here, the repository's (the package is installed editable)."""
    path = Path(path)
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        return REPO_ROOT / path
    return path


def read_layouts(path: Path | str) -> Layouts:
    """data/spade/layouts.npz, checked: a missing or malformed file is one line naming the fix."""
    path = _find(path)
    if not path.is_file():
        raise UserError(f"layouts file {path} not found: run `dvc repro prepare_spade` (it writes "
                        "data/spade/layouts.npz) or pass --layouts PATH")
    try:
        arrays = read_arrays(path)
    except Exception as err:  # noqa: BLE001 - not an npz, truncated
        text = str(err).strip().splitlines()
        raise UserError(f"cannot read layouts file {path}: {type(err).__name__}{': ' + text[0] if text else ''}"
                        ) from None
    missing = [k for k in LAYOUT_KEYS if k not in arrays]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: not a prepare_spade layouts file")
    model = ShapeModel.from_arrays(arrays)
    k = len(model.std)
    palettes = arrays["palettes"]
    if (model.mean.shape != (40, 2) or model.components.shape != (k, 80) or palettes.ndim != 3
            or palettes.shape[1:] != (3, 3) or len(palettes) == 0 or palettes.dtype != np.uint8):
        raise UserError(f"{path}: expected mean (40, 2), components (k, 80), std (k,), palettes (P, 3, 3) uint8; "
                        f"got {model.mean.shape}, {model.components.shape}, {model.std.shape}, "
                        f"{palettes.shape} {palettes.dtype}")
    return Layouts(model, palettes)


def sample_layouts(layouts: Layouts, n: int, seed: int, palette_jitter: float, size: int = CROP_SIZE
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(shapes (n, 40, 2) float64 in `size` px crop pixels, palettes (n, 3, 3) uint8); face k from (seed, k) alone.

    A shape whose points leave the crop is drawn again (the painter was trained on in-frame points only).
    """
    shapes = np.empty((n, 40, 2))
    palettes = np.empty((n, 3, 3), np.uint8)
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        for _ in range(MAX_DRAWS):
            shape = layouts.shapes.sample(1, rng)[0]
            if points_problem(shape, size, size) is None:
                break
        else:
            raise UserError(f"face {k}: {MAX_DRAWS} shapes drawn from the layouts' shape model all leave the "
                            f"{size}x{size} crop: the layouts file is not a prepare_spade one")
        base = layouts.palettes[rng.integers(len(layouts.palettes))].astype(np.float64)
        jitter = rng.normal(0.0, palette_jitter, (3, 3)) if palette_jitter > 0 else 0.0
        shapes[k] = shape
        palettes[k] = np.clip(np.round(base + jitter), 0, 255).astype(np.uint8)
    return shapes, palettes


def layout_roughs(shapes: np.ndarray, palettes: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8: the flat rough of each sampled shape and palette (`paint.layouts.synth_rough`)."""
    if len(shapes) == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([synth_rough(s, p, size) for s, p in zip(shapes, palettes, strict=True)])


def paint_layouts(painter: Painter, shapes: np.ndarray, palettes: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """(n, S, S, 3) uint8 faces: each layout's rough + shape -> the painter's conditioning -> the painter."""
    cond = conditioning_batch(layout_roughs(shapes, palettes, size), shapes, painter.cond, painter.threads)
    return painter.paint(torch.from_numpy(cond))


@dataclass
class GenerateResult:
    files: list[Path]
    sheet: Path
    model: str
    seed: int
    seconds: float

    def summary(self) -> str:
        """One line: how many faces, by which painter, where."""
        first, last = self.files[0].name, self.files[-1].name
        names = first if len(self.files) == 1 else f"{first} .. {last}"
        return (f"painted {len(self.files)} new face{'s' if len(self.files) != 1 else ''} with {self.model} "
                f"(seed {self.seed}) into {self.sheet.parent}: {names} + {self.sheet.name} ({self.seconds:.1f} s)")


def generate(n: int, out_dir: Path | str, model: str | Path | None = None, *,
             params: Path | str | None = None, **overrides: Any) -> GenerateResult:
    """Paint `n` new anime faces into `out_dir` (face_0000.png ... and sheet.png, each written atomically);
    the Python face of `face2anime generate`. `overrides`: seed, layouts, palette_jitter, batch_size, device."""
    start = time.perf_counter()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise UserError(f"-n {n}: the number of faces to paint must be a positive integer")
    s = load_settings(params, {"model": None if model is None else str(model), **overrides})
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output {out_dir} is a file: give a folder")
    layouts = read_layouts(s.layouts)
    model_dir = resolve_model_dir(s.model)
    device = resolve_device(s.device, "generate.device")
    painter = make_painter(model_dir, device, s.batch_size, threads=0, amp=False)
    if not painter.needs_points:
        raise UserError(f"model {s.model} is not a painter: generate paints from sampled layouts and needs a spade "
                        "model (e.g. --model spade-landmark); study generators translate photos (`face2anime convert`)")
    shapes, palettes = sample_layouts(layouts, int(n), s.seed, s.palette_jitter)
    faces = paint_layouts(painter, shapes, palettes)
    files = [out_dir / f"face_{k:04d}.png" for k in range(len(faces))]
    for path, face in zip(files, faces, strict=True):
        write_image(path, rgb_to_bgr(face))
    sheet = out_dir / "sheet.png"
    write_image(sheet, rgb_to_bgr(contact_sheet(list(faces[:SHEET_FACES]), ncols=SHEET_COLUMNS)))
    return GenerateResult(files, sheet, model_dir.name, s.seed, time.perf_counter() - start)
