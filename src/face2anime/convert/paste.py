"""Stylised crops warped back into the picture through a feathered mask.

The crop came from the picture by `square_to_crop_matrix` (picture pixels -> crop pixels); warping with that
matrix as the inverse map puts every crop pixel back where it was taken from. Only the square's bounding
box of the picture is touched, so pixels outside every face square keep their exact bytes. A crop larger
than its square on screen is first shrunk with area averaging (bilinear alone would alias).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from face2anime.landmarks.framing import square_to_crop_matrix

SHRINK_BELOW = 0.75   # on-screen side / crop side under which the crop is area-shrunk before the warp


def face_mask(size: int, feather: float, shape: str) -> np.ndarray:
    """(size, size) float32 weights in [0, 1]: 1 inside, a smooth ramp `feather` x side wide at the edge, 0 outside.

    shape 'ellipse': the disc inscribed in the square (the corners hold hair and background); 'square': all of it.
    """
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 2.0 - 1.0   # pixel centres in [-1, 1]
    x, y = np.meshgrid(c, c)
    inside = 1.0 - (np.hypot(x, y) if shape == "ellipse" else np.maximum(np.abs(x), np.abs(y)))
    if feather <= 0:
        return (inside > 0).astype(np.float32)
    t = np.clip(inside / (2.0 * feather), 0.0, 1.0)   # distances are in half-sides: feather x side = 2 feather
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep: no visible kink at the ramp's ends


def paste_face(picture: np.ndarray, styled: np.ndarray, square: np.ndarray, mask: np.ndarray) -> None:
    """Blend `styled` (the crop of `square`, any size) into `picture` (H, W, 3 uint8) in place."""
    x0, y0, side = (float(v) for v in square)
    h, w = picture.shape[:2]
    bx0, by0 = max(0, math.floor(x0 - 1)), max(0, math.floor(y0 - 1))
    bx1, by1 = min(w, math.ceil(x0 + side + 1)), min(h, math.ceil(y0 + side + 1))
    if bx1 <= bx0 or by1 <= by0:
        return
    size = styled.shape[0]
    if side < SHRINK_BELOW * size:
        size = max(2, math.ceil(side))
        styled = cv2.resize(styled, (size, size), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
    m = square_to_crop_matrix(np.array([x0, y0, side]), size)
    m[:, 2] += m[:, :2] @ np.array([bx0, by0], dtype=np.float64)   # picture box pixels -> crop pixels
    box = (bx1 - bx0, by1 - by0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    face = cv2.warpAffine(styled, m, box, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, m, box, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    region = picture[by0:by1, bx0:bx1]
    a = alpha[..., None]
    blended = region.astype(np.float32) * (1.0 - a) + face.astype(np.float32) * a
    picture[by0:by1, bx0:bx1] = np.where(a > 0, np.clip(blended + 0.5, 0, 255), region).astype(np.uint8)


def paste_faces(picture: np.ndarray, styled: np.ndarray, squares: list[np.ndarray], feather: float,
                shape: str) -> np.ndarray:
    """A copy of `picture` with every stylised crop pasted back (in the order given: later faces on top)."""
    out = picture.copy()
    if len(squares) == 0:
        return out
    mask = face_mask(styled.shape[1], feather, shape)
    for crop, square in zip(styled, squares):
        paste_face(out, crop, square, mask)
    return out
