"""dlib's face detector + 68-point shape predictor, with a one-face policy and a size cap.

Photos give the landmark loss its targets: dlib finds the face (HOG by default, the CNN "mmod" detector as an
option), picks one face per photo by a stated policy, and predicts the iBUG 68 points. Huge photos are
downscaled for detection only (detection cost grows with pixels; faces in huge photos are big anyway); the box
is mapped back and the predictor runs on the full-resolution image, so points are in original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face2anime.assets import resolve
from face2anime.errors import UserError

DETECTORS = ("hog", "cnn")
FACE_POLICIES = ("largest", "best", "skip_multiple")


@dataclass(frozen=True)
class Detection:
    """A face box (x0, y0, x1, y1) in image pixels and the detector's confidence."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@dataclass(frozen=True)
class FaceResult:
    """The chosen face: 68 points in original image pixels, its detection and how many faces were seen."""

    points68: np.ndarray  # (68, 2) float64
    detection: Detection
    n_faces: int
    detect_scale: float  # detection ran on the image resized by this factor (1.0 = not downscaled)


class NoFace(Exception):
    """No face could be chosen; `reason` is a short skip reason for tables and metrics."""

    def __init__(self, reason: str, n_faces: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.n_faces = n_faces


def choose_face(detections: list[Detection], policy: str) -> Detection:
    """One face per photo: 'largest' box (ties: higher score), 'best' score, or 'skip_multiple'."""
    if policy not in FACE_POLICIES:
        raise UserError(f"photo_landmarks.face_policy={policy!r}: choose one of {', '.join(FACE_POLICIES)}")
    if not detections:
        raise NoFace("no face")
    if policy == "skip_multiple" and len(detections) > 1:
        raise NoFace("several faces", n_faces=len(detections))
    if policy == "best":
        return max(detections, key=lambda d: (d.score, d.area))
    return max(detections, key=lambda d: (d.area, d.score))


class DlibLandmarker:
    """Detector + predictor loaded once; `find_face(image)` returns the chosen face's 68 points."""

    def __init__(self, detector: str = "hog", upsample: int = 1, threshold: float = 0.0,
                 policy: str = "largest", max_side: int = 1024,
                 predictor_path: str | Path | None = None, cnn_path: str | Path | None = None):
        import dlib  # heavy import, only when a landmarker is built

        if detector not in DETECTORS:
            raise UserError(f"photo_landmarks.detector={detector!r}: choose one of {', '.join(DETECTORS)}")
        if policy not in FACE_POLICIES:
            raise UserError(f"photo_landmarks.face_policy={policy!r}: choose one of {', '.join(FACE_POLICIES)}")
        if int(max_side) < 64:
            raise UserError(f"photo_landmarks.max_side={max_side} is too small (>= 64)")
        self.detector_name = detector
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self.policy = policy
        self.max_side = int(max_side)
        shape_file = resolve("dlib-shape-68", predictor_path or None, param_hint="photo_landmarks.predictor_path")
        self._predictor = dlib.shape_predictor(str(shape_file))
        self._rect = dlib.rectangle
        if detector == "hog":
            self._hog = dlib.get_frontal_face_detector()
        else:
            cnn_file = resolve("dlib-mmod-face", cnn_path or None, param_hint="photo_landmarks.cnn_path")
            self._cnn = dlib.cnn_face_detection_model_v1(str(cnn_file))

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in an RGB (or gray) uint8 image, boxes in that image's pixels."""
        image = np.ascontiguousarray(image)
        if self.detector_name == "hog":
            rects, scores, _ = self._hog.run(image, self.upsample, self.threshold)
            return [Detection((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]
        found = self._cnn(image, self.upsample)
        return [Detection((m.rect.left(), m.rect.top(), m.rect.right(), m.rect.bottom()), float(m.confidence))
                for m in found if m.confidence >= self.threshold]

    def predict(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(68, 2) float64 points of the face in `box`."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._predictor(np.ascontiguousarray(image), self._rect(x0, y0, x1, y1))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def _detect_capped(self, image: np.ndarray) -> tuple[list[Detection], float]:
        """(detections on a copy downscaled to `max_side` if larger, in that copy's pixels; the factor applied)."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            scale = size[0] / w  # the factor actually applied (rounding)
        return self.detect(small), scale

    @staticmethod
    def _to_original(detection: Detection, scale: float) -> Detection:
        """A box found on the downscaled copy, in original pixels (pixel centres at integers)."""
        if scale >= 1.0:
            return detection
        return Detection(tuple((v + 0.5) / scale - 0.5 for v in detection.box), detection.score)

    def find_face(self, image: np.ndarray) -> FaceResult:
        """Detect (on a copy downscaled to `max_side` if larger), choose one face, predict at full resolution.

        Raises `NoFace` with the skip reason when no face can be chosen.
        """
        detections, scale = self._detect_capped(image)
        chosen = self._to_original(choose_face(detections, self.policy), scale)
        points = self.predict(image, chosen.box)
        return FaceResult(points68=points, detection=chosen, n_faces=len(detections), detect_scale=scale)

    def find_faces(self, image: np.ndarray) -> list[FaceResult]:
        """Every face of the image (no policy: converting a picture styles all its faces), largest first,
        by the same detection and prediction path as `find_face`; an empty list when there is none."""
        detections, scale = self._detect_capped(image)
        faces = [self._to_original(d, scale) for d in sorted(detections, key=lambda d: (-d.area, -d.score))]
        return [FaceResult(points68=self.predict(image, d.box), detection=d, n_faces=len(detections),
                           detect_scale=scale) for d in faces]
