"""Grayscale, the one numpy version: every uint8 gray image of the pipeline comes from `to_gray`.

ITU-R BT.601 luma weights (`LUMA`, RGB order) in OpenCV's fixed-point arithmetic, so the result is what
`cv2.cvtColor(..., COLOR_RGB2GRAY)` gives (the DAN's gray crops, the contour search, the style set's
edges, cut detection). The torch version for float images inside the GAN is `imaging.tensors.luma`, with the
same weights; it stays separate because it runs inside the autograd graph and on the GPU.
"""

from __future__ import annotations

import cv2
import numpy as np

# ITU-R BT.601 luma weights (R, G, B): here, in the landmark loss, the YUV colour loss and the style set.
LUMA = (0.299, 0.587, 0.114)


def to_gray(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """(..., H, W, 3) uint8 RGB (BGR with `bgr`) -> (..., H, W) uint8 luma, rounded as OpenCV rounds."""
    code = cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY
    if image.ndim == 3:
        return cv2.cvtColor(image, code)
    h, w = image.shape[-3:-1]
    flat = np.ascontiguousarray(image).reshape(-1, w, 3)   # a per-pixel map: stack the images as rows
    return cv2.cvtColor(flat, code).reshape(*image.shape[:-3], h, w)
