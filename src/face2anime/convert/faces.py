"""Every face of a picture, found and framed exactly as the generator's training photos were.

Same path as the photo_landmarks stage: dlib's detector and 68-point predictor (`DlibLandmarker`, with the
training's detection settings unless overridden), 68 -> 40 points by the training's mapping, and the one
framing rule (`face_square`, `crop_image`). Only difference: all faces are kept, not one per photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face2anime.convert.model import TrainedModel
from face2anime.convert.settings import ConvertSettings
from face2anime.landmarks.dlib68 import DlibLandmarker
from face2anime.landmarks.framing import crop_image
from face2anime.photos.crops import SIZE, face_square


@dataclass(frozen=True)
class PhotoFace:
    """One face of a picture: its framing square (x0, y0, side) in picture pixels and the detector's score."""

    square: np.ndarray
    score: float


class FaceFinder:
    """dlib loaded once; `find(rgb)` -> faces (largest first), `crops(rgb, faces)` -> their 112 px crops."""

    def __init__(self, model: TrainedModel, settings: ConvertSettings):
        det = model.detection_for(settings)
        self.detection = det
        self.landmarker = DlibLandmarker(detector=str(det["detector"]), upsample=int(det["upsample"]),
                                         threshold=float(det["det_threshold"]), max_side=int(det["max_side"]),
                                         predictor_path=settings.predictor_path or None,
                                         cnn_path=settings.cnn_path or None)
        self.framing, self.mapping = model.framing, model.mapping
        self.size = SIZE   # the training photos' crop size; the generator resizes to its own as in training

    def find(self, rgb: np.ndarray) -> list[PhotoFace]:
        return [PhotoFace(face_square(f.points68, self.framing, self.mapping), f.detection.score)
                for f in self.landmarker.find_faces(rgb)]

    def crops(self, rgb: np.ndarray, faces: list[PhotoFace]) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB, one canonical crop per face: `crop_image` on the whole picture, exactly as
        the training photos' `color112` (its low-pass blurs the picture once per face; cheap next to detection)."""
        if not faces:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.stack([crop_image(rgb, f.square, self.size) for f in faces])

