"""The `hysts` backend: hysts' anime face detector (YOLOv3 or Faster R-CNN) + HRNetV2 28 points.

Runs the pure-PyTorch `anime_face_detector` runtime on local weight files that come only through
`face2anime.assets.resolve` (a path in params, then the cache, then a download when params allow it), so
an offline machine without the weights gets one line naming the file and where to get it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from face2anime.anime.detect.faces import Face
from face2anime.anime.detect.filters import FaceFilter
from face2anime.assets import ASSETS, resolve
from face2anime.errors import UserError
from face2anime.landmarks.schema import HYSTS28
from face2anime.params import DetectAnimeParams
from face2anime.runtime import set_threads

def resolve_weights(cfg: DetectAnimeParams) -> tuple[Path, Path]:
    """(face detector file, landmark model file), each through the one asset resolver."""
    detector = resolve(f"hysts-{cfg.face_detector}", cfg.detector_weights or None, cfg.allow_download,
                       param_hint="detect_anime.detector_weights")
    landmarks = resolve("hysts-hrnetv2", cfg.landmark_weights or None, cfg.allow_download,
                        param_hint="detect_anime.landmark_weights")
    return detector, landmarks


def load_detector(cfg: DetectAnimeParams):
    """The runtime's `LandmarkDetector` on the resolved weights; wrong or damaged files are one-line errors.

    Weights are resolved before torch is imported, so a missing file is reported at once.
    """
    detector_path, landmark_path = resolve_weights(cfg)
    from anime_face_detector import LandmarkDetector

    from face2anime.device import resolve_device

    set_threads(cfg.threads)
    device = str(resolve_device(cfg.device, "detect_anime.device"))
    try:
        return LandmarkDetector(landmark_path, face_detector_name=cfg.face_detector,
                                face_detector_checkpoint_path=detector_path, device=device,
                                flip_test=cfg.flip_test, box_scale_factor=cfg.box_scale_factor)
    except Exception as err:  # noqa: BLE001 - any failure of a weight file becomes one line naming the file
        raise weights_error(cfg, detector_path, landmark_path, err) from None


# The runtime's model class per asset, to tell from a load_state_dict error which file holds the wrong model.
MODEL_CLASSES = {"YOLOv3FaceDetector": "detector", "FasterRCNNFaceDetector": "detector", "LandmarkModel": "landmarks"}


def weights_error(cfg: HystsConfig, detector_path: Path, landmark_path: Path, err: Exception) -> UserError:
    """One line for a weight file the runtime could not load: which file, what is wrong with it, what to do.

    The files are re-read one by one to find the unreadable one (empty, random bytes, truncated); a file
    that reads but holds another model is named from the model class in the runtime's error.
    """
    from anime_face_detector._weights import load_state_dict_from_path

    files = {"detector": (f"hysts-{cfg.face_detector}", detector_path, "detect_anime.detector_weights"),
             "landmarks": ("hysts-hrnetv2", landmark_path, "detect_anime.landmark_weights")}

    def message(which: str, problem: str) -> UserError:
        asset, path, param = files[which]
        url = ASSETS[asset].url
        return UserError(f"{asset} weights {path}: {problem}; replace the file with {ASSETS[asset].filename} "
                         f"from {url} (set {param}, or delete a damaged cached copy so it is fetched again)")

    for which, (_, path, _) in files.items():
        try:
            load_state_dict_from_path(path)
        except Exception as read_err:  # noqa: BLE001 - SafetensorError, UnpicklingError, EOFError, OSError ...
            return message(which, f"not a readable weights file ({_first_line(read_err)})")
    text = str(err)
    for cls_name, which in MODEL_CLASSES.items():
        if f"for {cls_name}" in text:
            missing = text.count("Missing key(s)") and len(text.split("Missing key(s) in state_dict:")[1]
                                                               .split(".\n")[0].split(", "))
            return message(which, f"holds another model (its tensors do not fit {cls_name}"
                                  f"{f'; {missing} expected tensors missing' if missing else ''})")
    return UserError(f"could not load hysts weights ({cfg.face_detector}: {detector_path}; "
                     f"hrnetv2: {landmark_path}): {_first_line(err)}")


def _first_line(err: BaseException) -> str:
    import pickle

    if isinstance(err, pickle.UnpicklingError):   # torch's long advice to unpickle unsafely is not shown
        return "UnpicklingError: not a file of plain tensors (pickled code is never run)"
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200]}" if text else type(err).__name__


def scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """Enlarge (N, 4) boxes about their centres, as the runtime does before its landmark model."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = (boxes[:, 2:] - boxes[:, :2] + 1) * factor
    top_left = (boxes[:, :2] + boxes[:, 2:]) / 2 - size / 2
    return np.concatenate([top_left, top_left + size], axis=1)


class HystsBackend:
    """Detect boxes, filter them, then 28 points on the survivors; boxes kept are the detector's own."""

    name = "hysts"
    needs_image = True

    def __init__(self, detector, box_scale_factor: float = 1.1) -> None:
        self.detector = detector
        self.box_scale_factor = box_scale_factor

    @classmethod
    def from_config(cls, cfg: DetectAnimeParams) -> HystsBackend:
        return cls(load_detector(cfg), cfg.box_scale_factor)

    def detect_boxes(self, image_bgr: np.ndarray) -> np.ndarray:
        """(N, 5) face boxes x0, y0, x1, y1, score in frame pixels."""
        if self.detector.face_detector is None:
            raise UserError("the hysts backend needs a face detector")
        boxes = np.asarray(self.detector.face_detector.detect(image_bgr), dtype=np.float64)
        return boxes.reshape(-1, 5)

    def faces(self, frame: dict, image_bgr: np.ndarray, flt: FaceFilter, rejected: Counter) -> list[Face]:
        boxes = self.detect_boxes(image_bgr)
        return self.faces_from_boxes(image_bgr, boxes[:, :4], boxes[:, 4], int(frame["scene"]), flt, rejected)

    def faces_from_boxes(self, image_bgr: np.ndarray, boxes: np.ndarray, det_scores: np.ndarray, shot: int,
                         flt: FaceFilter, rejected: Counter) -> list[Face]:
        """28 points for given face boxes (after the box filters), then the landmark-score filter."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
        keep = flt.select_boxes(boxes, det_scores, rejected)
        if not keep:
            return []
        scaled = scale_boxes(boxes[keep], self.box_scale_factor)
        inputs = [np.append(b, s).astype(np.float32) for b, s in zip(scaled, det_scores[keep], strict=True)]
        results = self.detector(image_bgr, boxes=inputs)
        faces = []
        for i, result in zip(keep, results, strict=True):
            keypoints = np.asarray(result["keypoints"], dtype=np.float64).reshape(HYSTS28.n, 3)
            if not np.isfinite(keypoints).all():
                rejected["nan_points"] += 1
                continue
            faces.append(Face(box=boxes[i].copy(), det_score=float(det_scores[i]), points=keypoints[:, :2],
                              point_scores=keypoints[:, 2], shot=shot))
        return flt.select_landmarks(faces, [f.lmk_score for f in faces], rejected)

    def metrics(self) -> dict:
        lm = self.detector.landmark_detector
        return {"device": str(lm.device)}
