"""Small drawing helpers shared by every stage that writes a picture: points on images, contact sheets.

Channel order is whatever the caller uses (RGB in the pipeline's arrays); colours are given in the same
order. Nothing here writes files: stages tile with `contact_sheet` and save with `face2anime.io.write_image`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_SHIFT = 4  # sub-pixel bits for cv2 drawing: points are floats, pixel centres at integers

# Distinct colours (RGB) for point groups; reused so all pictures of the project read alike.
PALETTE = {
    "contour": (255, 200, 0),
    "brows": (255, 80, 200),
    "eyes": (0, 220, 255),
    "nose": (255, 255, 255),
    "mouth": (255, 60, 60),
    "found": (40, 220, 40),
    "fallback": (255, 40, 40),
    "detected": (60, 120, 255),
    "corrected": (255, 230, 0),
    "truth": (255, 255, 255),
}


def as_color_image(img: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 copy of a gray (HxW / HxWx1) or colour image, so coloured marks can be drawn on it."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return arr.copy()


def draw_points(
    img: np.ndarray,
    pts: np.ndarray,
    color: tuple[int, int, int] | Sequence[tuple[int, int, int]] = (255, 0, 0),
    radius: float = 2.0,
    thickness: int = -1,
    marker: str = "dot",
) -> np.ndarray:
    """A copy of `img` with (n, 2) points drawn (NaN points skipped); one colour or one per point.

    marker: 'dot' (filled circle, or ring when thickness > 0) or 'cross'.
    """
    out = as_color_image(img)
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    colors = [color] * len(pts) if _is_single_color(color) else list(color)
    if len(colors) != len(pts):
        raise ValueError(f"{len(colors)} colours for {len(pts)} points")
    scale = 1 << _SHIFT
    r = max(1, int(round(radius * scale)))
    for (x, y), c in zip(pts, colors, strict=True):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        centre = (int(round(x * scale)), int(round(y * scale)))
        c = tuple(int(v) for v in c)
        if marker == "cross":
            t = max(1, thickness)
            cv2.line(out, (centre[0] - r, centre[1] - r), (centre[0] + r, centre[1] + r), c, t, cv2.LINE_AA, _SHIFT)
            cv2.line(out, (centre[0] - r, centre[1] + r), (centre[0] + r, centre[1] - r), c, t, cv2.LINE_AA, _SHIFT)
        else:
            cv2.circle(out, centre, r, c, thickness, cv2.LINE_AA, _SHIFT)
    return out


def draw_polyline(img: np.ndarray, pts: np.ndarray, color: tuple[int, int, int], thickness: int = 1) -> np.ndarray:
    """A copy of `img` with an open polyline through the finite (n, 2) points."""
    out = as_color_image(img)
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) >= 2:
        p = np.round(pts * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [p], False, tuple(int(v) for v in color), thickness, cv2.LINE_AA, _SHIFT)
    return out


def _is_single_color(color) -> bool:
    return len(color) in (3, 4) and all(np.isscalar(v) for v in color)


def contact_sheet(
    images: Sequence[np.ndarray],
    ncols: int,
    labels: Sequence[str] | None = None,
    pad: int = 2,
    background: int = 32,
    label_height: int = 14,
) -> np.ndarray:
    """Tile images (gray or colour, resized to the first one's size) into one uint8 HxWx3 sheet.

    With `labels`, each tile gets a strip above it with its label (cut to fit).
    """
    if len(images) == 0:
        raise ValueError("contact_sheet needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    tiles = [as_color_image(im) for im in images]
    h, w = tiles[0].shape[:2]
    ncols = max(1, min(ncols, len(tiles)))
    nrows = -(-len(tiles) // ncols)
    strip = label_height if labels is not None else 0
    cell_h, cell_w = h + strip + pad, w + pad
    sheet = np.full((nrows * cell_h + pad, ncols * cell_w + pad, 3), background, np.uint8)
    for k, tile in enumerate(tiles):
        if tile.shape[:2] != (h, w):
            tile = cv2.resize(tile, (w, h), interpolation=cv2.INTER_AREA)
        r, c = divmod(k, ncols)
        y0, x0 = pad + r * cell_h, pad + c * cell_w
        sheet[y0 + strip:y0 + strip + h, x0:x0 + w] = tile
        if labels is not None:
            _put_label(sheet, str(labels[k]), x0, y0, w, strip)
    return sheet


def _put_label(sheet: np.ndarray, text: str, x0: int, y0: int, width: int, height: int) -> None:
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(0.3, (height - 4) / 22)
    while text and cv2.getTextSize(text, font, scale, 1)[0][0] > width:
        text = text[1:] if len(text) > 4 else text[:-1]
    cv2.putText(sheet, text, (x0 + 1, y0 + height - 4), font, scale, (230, 230, 230), 1, cv2.LINE_AA)


def rgb_to_bgr(img: np.ndarray) -> np.ndarray:
    """For writing an RGB picture with OpenCV (`face2anime.io.write_image`)."""
    return np.ascontiguousarray(img[..., ::-1])
