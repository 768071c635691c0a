"""Which faces to keep: score, size and per-frame count filters, every rejection counted by reason.

The order is fixed and the same for both backends: detection score, minimum size, at most `max_faces`
per frame (the largest boxes), then landmark score. The count cap comes before the landmark step so the
landmark model's cost per frame stays bounded on crowded or noisy frames.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from face2anime.params import DetectAnimeParams

# Every reason a face can be dropped; metrics list all of them (zeros included) so runs compare cleanly.
# The last three are labels rows only: a box of width/height <= 0, a row repeating an earlier one (same frame
# and box), a box or point outside the frame (see `face2anime.anime.detect.labels`).
REASONS = ("det_score", "small_face", "max_faces", "lmk_score", "nan_points", "nan_box",
           "bad_box", "duplicate", "out_of_frame")

T = TypeVar("T")


@dataclass(frozen=True)
class FaceFilter:
    """Thresholds; None (or 0 for `max_faces`) switches a filter off."""

    min_det_score: float | None = None    # None = off: not param defaults (the stage builds it from params)
    min_face_px: float | None = None
    max_faces: int | None = None
    min_lmk_score: float | None = None

    @classmethod
    def from_params(cls, p: DetectAnimeParams) -> FaceFilter:
        return cls(min_det_score=p.min_det_score, min_face_px=p.min_face_px, max_faces=p.max_faces or None,
                   min_lmk_score=p.min_lmk_score)

    def select_boxes(self, boxes: np.ndarray, det_scores: np.ndarray, rejected: Counter) -> list[int]:
        """Indices of the boxes (N, 4) that pass score, size and count filters, largest first."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        keep = list(range(len(boxes)))
        if self.min_det_score is not None:
            keep = _split(keep, lambda i: det_scores[i] >= self.min_det_score, "det_score", rejected)
        if self.min_face_px is not None:
            keep = _split(keep, lambda i: boxes[i, 3] - boxes[i, 1] >= self.min_face_px, "small_face", rejected)
        areas = (boxes[:, 2] - boxes[:, 0]).clip(min=0) * (boxes[:, 3] - boxes[:, 1]).clip(min=0)
        # Largest first; ties broken by score, then by the input order (stable sort): deterministic.
        keep.sort(key=lambda i: (-areas[i], -det_scores[i]))
        if self.max_faces is not None and len(keep) > self.max_faces:
            rejected["max_faces"] += len(keep) - self.max_faces
            keep = keep[: self.max_faces]
        return keep

    def select_landmarks(self, items: Sequence[T], lmk_scores: Sequence[float], rejected: Counter) -> list[T]:
        """The items whose mean keypoint score passes `min_lmk_score`."""
        if self.min_lmk_score is None:
            return list(items)
        kept = [it for it, s in zip(items, lmk_scores, strict=True) if s >= self.min_lmk_score]
        rejected["lmk_score"] += len(items) - len(kept)
        return kept


def _split(indices: list[int], ok: Callable[[int], bool], reason: str, rejected: Counter) -> list[int]:
    kept = [i for i in indices if ok(i)]
    rejected[reason] += len(indices) - len(kept)
    return kept


def new_counter() -> Counter:
    """A rejection counter holding every reason, so metrics show zeros too."""
    return Counter(dict.fromkeys(REASONS, 0))
