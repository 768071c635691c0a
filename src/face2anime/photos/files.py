"""Face photos: discovery (user folder or the demo portraits installed packages ship) and robust loading.

Loading never raises for a bad file: it raises `PhotoSkip` with a short reason the stage counts and lists.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from face2anime.errors import UserError

# Public-domain / CC0 portraits shipped by installed packages: (package, path inside it).
DEMO_PHOTOS: tuple[tuple[str, str], ...] = (
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),  # US Navy photo, public domain
    ("skimage", "data/astronaut.png"),                        # NASA photo of Eileen Collins, public domain
)
IGNORED_NAMES = ("readme",)  # documentation files that live in the photo folder are not photos


class PhotoSkip(Exception):
    """A photo that cannot be used; `reason` is a short category for tables and metrics, `detail` the specifics."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PhotoFile:
    """A photo to process: a stable id, the path to read, and the path as written to tables (portable)."""

    photo_id: str
    path: Path
    label: str


# ---------------------------------------------------------------- discovery
def demo_photos() -> list[PhotoFile]:
    """The demo portraits, located inside their installed packages (no network)."""
    found = []
    for package, rel in DEMO_PHOTOS:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            path = Path(folder) / rel
            if path.is_file():
                found.append(PhotoFile(Path(rel).stem, path, f"{package}:{rel}"))
                break
    if not found:
        raise UserError("no demo photo found (matplotlib / scikit-image sample data missing): "
                        "reinstall them or set photo_landmarks.source: folder")
    return found


def list_photos(folder: Path | str) -> list[PhotoFile]:
    """Every file under `folder` (recursively, sorted) except hidden files and README*; bad ones are
    skipped later with a reason rather than silently ignored here."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"photo folder {folder} does not exist: create it and put face photos there "
                        f"(or set photo_landmarks.source: demo)")
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                   and not p.name.lower().startswith(IGNORED_NAMES))
    if not files:
        raise UserError(f"no photos in {folder}: put .jpg/.png face photos there (or set photo_landmarks.source: demo)")
    ids: dict[str, int] = {}
    for p in files:
        base = "__".join(p.relative_to(folder).with_suffix("").parts)
        ids[base] = ids.get(base, 0) + 1
    out = []
    for p in files:
        base = "__".join(p.relative_to(folder).with_suffix("").parts)
        pid = base if ids[base] == 1 else f"{base}_{p.suffix.lstrip('.').lower()}"  # a.jpg + a.png
        out.append(PhotoFile(pid, p, p.as_posix()))
    return out


# ---------------------------------------------------------------- loading
def load_photo(path: Path | str, max_pixels: int) -> np.ndarray:
    """RGB uint8 (H, W, 3), upright per EXIF; gray, palette, alpha (over white) and 16-bit images converted.

    Raises `PhotoSkip` for non-images, truncated/corrupt files, empty files and images of more than
    `max_pixels` pixels (0 = no limit of ours; PIL's own bomb guard still refuses ~179 MP). The size is
    read from the header (`Image.open` is lazy), so a decompression bomb is refused before any decoding.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise PhotoSkip("empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if max_pixels and width * height > max_pixels:
                    raise PhotoSkip("too large", f"{width}x{height} > max_pixels {max_pixels}")
                im.load()
                im = ImageOps.exif_transpose(im)
                return to_rgb8(im)
    except PhotoSkip:
        raise
    except UnidentifiedImageError:
        raise PhotoSkip("not an image") from None
    except Image.DecompressionBombError:
        raise PhotoSkip("too large", f"over PIL's limit of {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as err:
        msg = str(err).lower()
        raise PhotoSkip("truncated" if "truncat" in msg else "unreadable") from None


def to_rgb8(im: Image.Image) -> np.ndarray:
    """Any PIL image -> RGB uint8; 16/32-bit integer and float gray are rescaled, not clipped."""
    if im.mode.startswith("I") or im.mode == "F":
        arr = np.asarray(im).astype(np.float64)
        if im.mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        elif arr.size and np.nanmax(arr) > 255:  # 16-bit data (PIL stores it as I;16 or I)
            arr = arr / 257.0
        gray = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float64)
        alpha = rgba[..., 3:4] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)  # composite over white
        return rgb.round().astype(np.uint8)
    return np.ascontiguousarray(np.asarray(im.convert("RGB")), dtype=np.uint8)


@dataclass
class PhotoExtras:
    """What `load_photo`'s RGB leaves out and an output of the same format can carry (convert)."""

    alpha: np.ndarray | None = None   # (H, W) uint8, upright, when the picture has transparency
    rgb: np.ndarray | None = None     # with alpha: the colours under it (not composited over white)
    icc: bytes | None = None          # the embedded colour profile
    exif: bytes | None = None         # EXIF ("Exif\0\0" + TIFF data) with the orientation removed (pixels are upright)
    frames: int = 1                   # frames (APNG, GIF, WebP) or pages (TIFF); convert reads the first only


def read_extras(path: Path | str) -> PhotoExtras:
    """Alpha, ICC profile, EXIF and frame count of a picture `load_photo` could read (same orientation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            extras = PhotoExtras(icc=im.info.get("icc_profile") or None, frames=int(getattr(im, "n_frames", 1)))
            exif = im.getexif()
            if len(exif):
                exif.pop(0x0112, None)   # ExifTags.Base.Orientation: the written pixels are already upright
                extras.exif = exif.tobytes()
            has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
            if has_alpha and not (im.mode.startswith("I") or im.mode == "F"):
                im.load()
                rgba = np.asarray(ImageOps.exif_transpose(im).convert("RGBA"))
                extras.alpha = np.ascontiguousarray(rgba[..., 3])
                extras.rgb = np.ascontiguousarray(rgba[..., :3])
    return extras
