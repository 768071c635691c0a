"""Face photos: discovery (user folder or the demo portraits installed packages ship), robust loading,
augmented crop views and the train/test split by source photo.

Loading never raises for a bad file: it raises `PhotoSkip` with a short reason the stage counts and lists.
Views are similarity transforms (scale, rotation, shift) of the canonical framing square, optionally
mirrored, with mild colour jitter; points go through exactly the same transform as the pixels.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from face2anime.data.images import LUMA
from face2anime.errors import UserError
from face2anime.landmarks.framing import crop_image, square_to_crop_matrix
from face2anime.landmarks.schema import Layout, flip_points
from face2anime.params import PhotoJitterParams as Jitter  # the `photo_landmarks.jitter` section

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


# ---------------------------------------------------------------- views (augmentation)
@dataclass(frozen=True)
class View:
    """One crop of a photo: the (jittered) framing square, a rotation about the crop centre (degrees,
    counter-clockwise on screen), a mirror flag and colour factors (brightness in 0..255 units)."""

    square: tuple[float, float, float]
    angle: float = 0.0
    mirror: bool = False
    brightness: float = 0.0
    contrast: float = 1.0
    saturation: float = 1.0

    @property
    def is_identity(self) -> bool:
        return (self.angle == 0.0 and not self.mirror and self.brightness == 0.0
                and self.contrast == 1.0 and self.saturation == 1.0)


def make_views(square: np.ndarray, n_variants: int, jitter: Jitter | None, rng: np.random.Generator) -> list[View]:
    """The canonical view first, then `n_variants` jittered ones drawn from `rng` (jitter may be None when 0)."""
    x0, y0, side = (float(v) for v in square)
    views = [View((x0, y0, side))]
    cx, cy = x0 + side / 2, y0 + side / 2
    for _ in range(n_variants):
        u = rng.uniform(-1.0, 1.0, size=7)
        s = side * (1.0 + jitter.scale * u[0])
        ncx, ncy = cx + jitter.shift * side * u[1], cy + jitter.shift * side * u[2]
        views.append(View(
            square=(ncx - s / 2, ncy - s / 2, s),
            angle=jitter.angle * u[3],
            mirror=bool(rng.random() < jitter.mirror_prob),
            brightness=255.0 * jitter.brightness * u[4],
            contrast=1.0 + jitter.contrast * u[5],
            saturation=1.0 + jitter.saturation * u[6],
        ))
    return views


def view_matrix(view: View, size: int, with_mirror: bool = True) -> np.ndarray:
    """2x3 affine: image pixels -> crop pixels of this view at `size` (rotation, then mirror if set)."""
    m = np.vstack([square_to_crop_matrix(np.asarray(view.square), size), [0.0, 0.0, 1.0]])
    c = (size - 1) / 2.0
    if view.angle:
        a = math.radians(view.angle)
        cos, sin = math.cos(a), math.sin(a)
        # rotate about the crop centre; with y pointing down, (cos, sin; -sin, cos) turns content counter-clockwise
        r = np.array([[cos, sin, c - cos * c - sin * c], [-sin, cos, c + sin * c - cos * c], [0, 0, 1.0]])
        m = r @ m
    if with_mirror and view.mirror:
        m = np.array([[-1.0, 0, size - 1.0], [0, 1.0, 0], [0, 0, 1.0]]) @ m
    return m[:2]


def view_points(points: np.ndarray, view: View, size: int, layout: Layout) -> np.ndarray:
    """Image points (n, 2) -> crop points of `view`, relabelled by `layout`'s flip pairs when mirrored."""
    m = view_matrix(view, size, with_mirror=False)
    pts = np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]
    return flip_points(pts, layout, size) if view.mirror else pts


def render_view(image: np.ndarray, view: View, size: int) -> np.ndarray:
    """The crop of `view` at `size` (RGB uint8): the canonical `crop_image`; rotated views use the same
    low-pass + bilinear rule on a padded window around the crop (no blur of the whole photo per view)."""
    if view.angle == 0.0:  # the canonical crop, literally
        crop = crop_image(image, np.asarray(view.square, dtype=np.float64), size)
    else:
        crop = _rotated_crop(image, view, size)
    if view.mirror:
        crop = crop[:, ::-1]
    return colour_jitter(np.ascontiguousarray(crop), view)


def _rotated_crop(image: np.ndarray, view: View, size: int) -> np.ndarray:
    """crop_image's rule (Gaussian low-pass when shrinking > 1.5x, bilinear, edges replicated) for a rotated square."""
    side = float(view.square[2])
    sigma = 0.5 * side / size if side / size > 1.5 else 0.0
    pad = int(math.ceil(4 * sigma)) + 2  # beyond the blur kernel's reach (3 sigma for uint8)
    m = view_matrix(view, size, with_mirror=False)
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    src = corners @ inv[:, :2].T + inv[:, 2]
    h, w = image.shape[:2]
    wx0 = int(np.clip(math.floor(src[:, 0].min()) - pad, 0, w - 1))
    wy0 = int(np.clip(math.floor(src[:, 1].min()) - pad, 0, h - 1))
    wx1 = int(np.clip(math.ceil(src[:, 0].max()) + pad + 1, wx0 + 1, w))
    wy1 = int(np.clip(math.ceil(src[:, 1].max()) + pad + 1, wy0 + 1, h))
    window = np.ascontiguousarray(image[wy0:wy1, wx0:wx1])
    if sigma:
        window = cv2.GaussianBlur(window, (0, 0), sigmaX=sigma, sigmaY=sigma)
    mw = m.copy()
    mw[:, 2] += m[:, :2] @ np.array([wx0, wy0], dtype=np.float64)
    return cv2.warpAffine(window, mw, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def colour_jitter(rgb: np.ndarray, view: View) -> np.ndarray:
    """Saturation (blend with luma), contrast about mid-grey, then brightness; identity leaves bytes as they are."""
    if view.brightness == 0.0 and view.contrast == 1.0 and view.saturation == 1.0:
        return rgb
    f = rgb.astype(np.float32)
    luma = f @ np.array(LUMA, dtype=np.float32)   # float luma for the blend (the uint8 gray image: to_gray)
    f = luma[..., None] + (f - luma[..., None]) * view.saturation
    f = (f - 127.5) * view.contrast + 127.5 + view.brightness
    return np.clip(f, 0, 255).round().astype(np.uint8)


# ---------------------------------------------------------------- split
def split_by_photo(photo_ids: list[str], test_fraction: float, seed: int) -> dict[str, str]:
    """'train'/'test' per source photo (all views of a photo share its side); >= 1 each side from 2 photos."""
    ids = sorted(set(photo_ids))
    n = len(ids)
    if n == 0:
        return {}
    if n == 1:
        return {ids[0]: "train"}
    n_test = int(np.clip(round(test_fraction * n), 1, n - 1))
    perm = np.random.default_rng(seed).permutation(n)
    test = {ids[i] for i in perm[:n_test]}
    return {i: ("test" if i in test else "train") for i in ids}
