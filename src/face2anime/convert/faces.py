"""Every face of a picture, found and framed exactly as the generator's training photos were.

Same path as the photo_landmarks stage: dlib's detector and 68-point predictor (`DlibLandmarker`, with the
training's detection settings unless overridden), 68 -> 40 points by the training's mapping, and the one
framing rule (`face_square`, `crop_image`). Only difference: all faces are kept, not one per photo.
The painter also needs each face's 40 points in its 112 px crop: made as the training photos' `points112`
(dlib's 68 points through the crop's own transform, `view_points` of the canonical view, then
`dlib_to_face40` with the recorded mapping and lower-eyelid shift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from face2anime.convert.model import TrainedModel
from face2anime.convert.settings import ConvertSettings
from face2anime.landmarks.dlib68 import DlibLandmarker
from face2anime.landmarks.framing import crop_image
from face2anime.landmarks.schema import IBUG68, dlib_to_face40
from face2anime.photos.crops import SIZE, face_square
from face2anime.photos.views import View, view_points


@dataclass(frozen=True)
class PhotoFace:
    """One face of a picture: its framing square (x0, y0, side) in picture pixels, the detector's score, its
    40 points in the 112 px crop (None when the model records no lower-eyelid shift: study generators), and
    dlib's 68 points in picture pixels (what the web page's landmark overlay draws)."""

    square: np.ndarray
    score: float
    points112: np.ndarray | None = None
    points68: np.ndarray | None = None


def crop_points40(points68: np.ndarray, square: np.ndarray, mapping: str, lid_shift: float) -> np.ndarray:
    """(40, 2) points of a face in its canonical 112 px crop, exactly as photo_landmarks' `points112`."""
    points68_112 = view_points(points68, View(tuple(float(v) for v in square)), SIZE, IBUG68)
    return dlib_to_face40(points68_112, mapping, lid_shift)


class FaceFinder:
    """dlib loaded once; `find(rgb)` -> faces (largest first), `crops(rgb, faces)` -> their 112 px crops,
    `points(faces)` -> their 40 points in those crops."""

    def __init__(self, model: TrainedModel, settings: ConvertSettings):
        det = model.detection_for(settings)
        self.detection = det
        self.landmarker = DlibLandmarker(detector=str(det["detector"]), upsample=int(det["upsample"]),
                                         threshold=float(det["det_threshold"]), max_side=int(det["max_side"]),
                                         predictor_path=settings.predictor_path or None,
                                         cnn_path=settings.cnn_path or None)
        self.framing, self.mapping, self.lid_shift = model.framing, model.mapping, model.lid_shift
        self.size = SIZE   # the training photos' crop size; the generator resizes to its own as in training

    def find(self, rgb: np.ndarray) -> list[PhotoFace]:
        faces = []
        for f in self.landmarker.find_faces(rgb):
            square = face_square(f.points68, self.framing, self.mapping)
            points = (None if self.lid_shift is None
                      else crop_points40(f.points68, square, self.mapping, self.lid_shift))
            faces.append(PhotoFace(square, f.detection.score, points, f.points68))
        return faces

    def crops(self, rgb: np.ndarray, faces: list[PhotoFace]) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB, one canonical crop per face: `crop_image` on the whole picture, exactly as
        the training photos' `color112` (its low-pass blurs the picture once per face; cheap next to detection)."""
        if not faces:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.stack([crop_image(rgb, f.square, self.size) for f in faces])

    @staticmethod
    def points(faces: list[PhotoFace]) -> np.ndarray | None:
        """(N, 40, 2) float64 crop points of the faces, or None when they were not made (study generators)."""
        if any(f.points112 is None for f in faces):
            return None
        return np.stack([f.points112 for f in faces]) if faces else np.zeros((0, 40, 2))
