"""Accuracy of the photo-landmark stage against human 68-point annotations (iBUG `.pts` files, e.g. HELEN).

Two readings of each photo are scored against the annotation:
- `stage`: the stage's own path (load_photo -> detection policy/size cap -> framing square -> crop at 112 ->
  points in crop pixels stored as float32 -> mapped back to the image with `from_crop`);
- `raw`: dlib's detector + predictor straight on the decoded image (largest detection), no transforms.
NME = mean point error / distance of the annotation's OUTER eye corners (points 36 and 45): the iBUG
"inter-ocular" normalisation. The 40-point NME applies the same mapping to the annotation (no lid shift)
and keeps the same normaliser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from face2anime.landmarks.dlib68 import DlibLandmarker, NoFace, choose_face
from face2anime.landmarks.framing import Framing, from_crop
from face2anime.landmarks.schema import dlib_to_face40
from face2anime.metrics.landmarks import nme_per_image
from face2anime.photos.crops import SIZE, crop_views
from face2anime.photos.files import PhotoSkip, load_photo

OUTER_CORNERS = (36, 45)


def read_pts(path: Path | str) -> np.ndarray:
    """(n, 2) points of an iBUG .pts file; accepts the 'version/n_points/{ }' header or bare 'x y' lines."""
    pts = []
    for line in Path(path).read_text().splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            continue
        try:
            pts.append((float(parts[0]), float(parts[1])))
        except ValueError:
            continue  # header lines such as "n_points: 68"
    if not pts:
        raise ValueError(f"no points in {path}")
    return np.array(pts, dtype=np.float64)


def annotated_photos(folder: Path | str) -> list[tuple[Path, Path]]:
    """(image, .pts) pairs in `folder`, sorted by name."""
    folder = Path(folder)
    pairs = []
    for pts in sorted(folder.glob("*.pts")):
        for ext in (".jpg", ".png", ".jpeg"):
            if (img := pts.with_suffix(ext)).exists():
                pairs.append((img, pts))
                break
    return pairs


@dataclass
class EvalResult:
    """Per-image points of both readings on the images where both found a face, plus the failures."""

    names: list[str] = field(default_factory=list)
    truth68: list[np.ndarray] = field(default_factory=list)
    stage68: list[np.ndarray] = field(default_factory=list)
    raw68: list[np.ndarray] = field(default_factory=list)
    stage_failed: list[str] = field(default_factory=list)
    raw_failed: list[str] = field(default_factory=list)

    def nme(self, mapping: str = "meaning") -> dict:
        """NMEs (mean over images, outer-corner normalised) for 68 points and for the 40-point mapping."""
        gt, st, rw = (np.stack(a) for a in (self.truth68, self.stage68, self.raw68))
        norm = np.linalg.norm(gt[:, OUTER_CORNERS[0]] - gt[:, OUTER_CORNERS[1]], axis=-1)
        gt40 = dlib_to_face40(gt, mapping, 0.0)
        return {
            "images": len(self.names),
            "stage_failed": len(self.stage_failed),
            "raw_failed": len(self.raw_failed),
            "nme68_stage": float(nme_per_image(st, gt, norm).mean()),
            "nme68_raw": float(nme_per_image(rw, gt, norm).mean()),
            "nme40_stage": float(nme_per_image(dlib_to_face40(st, mapping, 0.0), gt40, norm).mean()),
            "nme40_raw": float(nme_per_image(dlib_to_face40(rw, mapping, 0.0), gt40, norm).mean()),
            "normaliser": "outer eye corners (annotation points 36-45)",
        }


def stage_points68(path: Path, landmarker: DlibLandmarker, framing: Framing, mapping: str) -> np.ndarray:
    """dlib's 68 points through the stage's transforms, back in original image pixels."""
    image = load_photo(path, 0)   # evaluation photos are the project's own (no size limit)
    face = landmarker.find_face(image)
    view = crop_views(image, face, framing, mapping, SIZE, 0, None, np.random.default_rng(0))[0]
    stored = view.points68_112.astype(np.float32)  # as written to crops.npz
    return from_crop(stored, np.asarray(view.view.square), SIZE)


def raw_points68(image_path: Path, landmarker: DlibLandmarker) -> np.ndarray:
    """dlib straight on the decoded image: detector, largest face, predictor."""
    import cv2

    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)[..., ::-1]
    det = choose_face(landmarker.detect(image), "largest")
    return landmarker.predict(image, det.box)


def evaluate(pairs: list[tuple[Path, Path]], landmarker: DlibLandmarker, framing: Framing,
             mapping: str = "meaning", progress: bool = False) -> EvalResult:
    """Both readings of every annotated photo; failures of either side are counted, not scored."""
    from tqdm import tqdm

    res = EvalResult()
    for img, pts in tqdm(pairs, desc="helen", disable=not progress):
        try:
            st = stage_points68(img, landmarker, framing, mapping)
        except (PhotoSkip, NoFace):
            res.stage_failed.append(img.name)
            st = None
        try:
            rw = raw_points68(img, landmarker)
        except NoFace:
            res.raw_failed.append(img.name)
            rw = None
        if st is None or rw is None:
            continue
        res.names.append(img.name)
        res.truth68.append(read_pts(pts))
        res.stage68.append(st)
        res.raw68.append(rw)
    return res
