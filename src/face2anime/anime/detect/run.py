"""Run one backend over the extracted frames: the faces table plus the counts `metrics/detect.json` holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from face2anime.anime.detect.faces import Face, face_row, faces_table
from face2anime.anime.detect.filters import FaceFilter, new_counter
from face2anime.errors import UserError

INDEX_COLUMNS = ["frame_id", "video", "frame", "scene", "width", "height", "path"]


class Backend(Protocol):
    name: str
    needs_image: bool

    def faces(self, frame: dict, image_bgr: np.ndarray | None, flt: FaceFilter,
              rejected: Counter) -> list[Face]: ...

    def metrics(self) -> dict: ...


@dataclass
class DetectResult:
    faces: pd.DataFrame
    metrics: dict = field(default_factory=dict)


def read_frame_index(frames_dir: Path | str) -> pd.DataFrame:
    """`data/frames/index.csv` (docs/pipeline.md, "Frame index"), checked for the columns used here."""
    path = Path(frames_dir) / "index.csv"
    if not path.exists():
        raise UserError(f"{path} not found: run the extract_frames stage first")
    index = pd.read_csv(path, dtype={"frame_id": str, "video": str, "path": str})
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:
        raise UserError(f"{path} lacks columns: {', '.join(missing)}")
    return index


def detect_frames(index: pd.DataFrame, frames_dir: Path | str, backend: Backend, flt: FaceFilter,
                  with_contour: bool = False, progress: bool = True) -> DetectResult:
    """Faces of every indexed frame, in index order; face k of a frame is `<frame_id>_f<k>`, left to right."""
    frames_dir = Path(frames_dir)
    rejected = new_counter()
    rows: list[dict] = []
    with_faces = 0
    unreadable: list[str] = []
    for frame in tqdm(index.to_dict("records"), desc="detect_anime", unit="frame", disable=not progress):
        image = None
        if backend.needs_image:
            image = cv2.imread(str(frames_dir / frame["path"]), cv2.IMREAD_COLOR)
            if image is None:
                unreadable.append(str(frame["path"]))
                continue
        faces = backend.faces(frame, image, flt, rejected)
        faces.sort(key=lambda f: (float(f.box[0]), float(f.box[1])))
        with_faces += bool(faces)
        for k, face in enumerate(faces):
            rows.append(face_row(face, f"{frame['frame_id']}_f{k}", str(frame["frame_id"]),
                                 str(frame["video"]), int(frame["frame"])))
    table = faces_table(rows, with_contour)
    n_frames = len(index) - len(unreadable)
    metrics = {
        "backend": backend.name,
        "frames": n_frames,
        "frames_with_faces": with_faces,
        "frames_without_face": n_frames - with_faces,
        "faces": len(table),
        "rejected": dict(rejected),
        "frames_unreadable": len(unreadable),
        "unreadable_frames": unreadable,
        **backend.metrics(),
    }
    return DetectResult(table, metrics)
