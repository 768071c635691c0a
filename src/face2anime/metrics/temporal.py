"""Temporal consistency of a video's output: warping error (Lai et al. 2018, "Learning Blind Video Temporal
Consistency").

Flicker is what a viewer sees when the output of frame t+1, moved back along the motion of the *input*,
does not land on the output of frame t. The motion comes from the input frames (OpenCV's DIS optical flow),
so a perfectly stable stylisation scores the same as the input itself (its own warping error is the floor:
flow errors, noise, compression). Pixels the forward-backward check marks as occluded or badly matched
(Sundaram et al. 2010, the test Lai et al. use) are left out:

    |F(p) + B(p + F(p))|^2 < 0.01 (|F(p)|^2 + |B(p + F(p))|^2) + 0.5

E = sum_t sum_p M_t(p) |O_t(p) - warp(O_t+1)(p)| / sum_t sum_p M_t(p) (3 channels, grey levels 0..255).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from face2anime.imaging.images import to_gray

DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM


def dis_flow(a: np.ndarray, b: np.ndarray, dis: cv2.DISOpticalFlow | None = None) -> np.ndarray:
    """(H, W, 2) float32 flow from frame `a` to frame `b` (a(p) ~ b(p + flow(p))), DIS on their grey levels."""
    dis = dis or cv2.DISOpticalFlow_create(DIS_PRESET)
    return dis.calc(_gray(a), _gray(b), None)


def warp_back(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` (frame t+1) sampled at p + flow(p): frame t+1 moved back onto frame t (bilinear, edges replicated)."""
    h, w = flow.shape[:2]
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xx + flow[..., 0], yy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where the forward-backward check passes (not occluded, flow trusted, inside the frame)."""
    h, w = forward.shape[:2]
    back_at = warp_back(backward, forward)            # B(p + F(p))
    total = forward + back_at
    lhs = (total ** 2).sum(-1)
    rhs = 0.01 * ((forward ** 2).sum(-1) + (back_at ** 2).sum(-1)) + 0.5
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    tx, ty = xx + forward[..., 0], yy + forward[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return (lhs < rhs) & inside


def pair_flows(inputs: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(forward flow, trusted-pixel mask) for every consecutive pair of input frames; computed once, reused to
    score several outputs of the same input."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    out = []
    for a, b in zip(inputs[:-1], inputs[1:]):
        fwd, bwd = dis_flow(a, b, dis), dis_flow(b, a, dis)
        out.append((fwd, occlusion_mask(fwd, bwd)))
    return out


def warping_error(outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray] | None = None,
                  flows: list[tuple[np.ndarray, np.ndarray]] | None = None,
                  regions: Sequence[np.ndarray] | None = None, skip: Sequence[int] | set[int] = ()) -> float:
    """Masked mean absolute difference (grey levels, 0..255) between each output frame and the next one warped
    back by the input's flow. `flows` (from `pair_flows(inputs)`) saves recomputing the flow; `regions`
    (one (H, W) bool per pair) restricts the mean to those pixels (e.g. the faces); pairs listed in `skip`
    (index t: the pair t, t+1, e.g. a scene cut, where no flow exists) are left out. 0.0 when no pixel counts."""
    if flows is None:
        if inputs is None:
            raise ValueError("give the input frames or their flows")
        flows = pair_flows(inputs)
    if len(flows) != len(outputs) - 1:
        raise ValueError(f"{len(outputs)} output frames need {len(outputs) - 1} flows, got {len(flows)}")
    total = count = 0.0
    for t, (flow, mask) in enumerate(flows):
        if t in skip:
            continue
        m = mask if regions is None else (mask & regions[t])
        if not m.any():
            continue
        a = outputs[t].astype(np.float32)
        b = warp_back(outputs[t + 1].astype(np.float32), flow)
        diff = np.abs(a - b)
        diff = diff.sum(-1) / diff.shape[-1] if diff.ndim == 3 else diff
        total += float(diff[m].sum())
        count += float(m.sum())
    return total / count if count else 0.0


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else to_gray(image)
