"""One detected (or labelled) face and the faces table it becomes (docs/pipeline.md, "Faces table").

Both backends produce `Face` records, so the table layout is written in one place only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from face2anime.landmarks.schema import HYSTS28

BOX_COLUMNS = ["box_x0", "box_y0", "box_x1", "box_y1"]
ID_COLUMNS = ["face_id", "frame_id", "video", "frame", "shot", "character"]
N_CONTOUR = 17


def point_columns(n: int = HYSTS28.n) -> list[str]:
    """p00_x, p00_y, p00_s, ...: x, y and per-point score of each of the 28 points."""
    cols = []
    for i in range(n):
        cols += [f"p{i:02d}_x", f"p{i:02d}_y", f"p{i:02d}_s"]
    return cols


def contour_columns(n: int = N_CONTOUR) -> list[str]:
    """c00_x, c00_y, ...: the true 17-point contour, carried from labels for evaluation."""
    cols = []
    for i in range(n):
        cols += [f"c{i:02d}_x", f"c{i:02d}_y"]
    return cols


FACE_COLUMNS = ID_COLUMNS + BOX_COLUMNS + ["det_score", "lmk_score"] + point_columns()


@dataclass
class Face:
    """A face in one frame, in frame pixels; `point_scores` are keypoint scores (or visibility for labels)."""

    box: np.ndarray                    # (4,) x0, y0, x1, y1
    det_score: float
    points: np.ndarray                 # (28, 2)
    point_scores: np.ndarray           # (28,)
    shot: int
    character: str = ""
    contour: np.ndarray | None = field(default=None)   # (17, 2) true contour, labels only

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))

    @property
    def lmk_score(self) -> float:
        """Mean keypoint score, the number the landmark filter thresholds."""
        return float(np.mean(self.point_scores))


def face_row(face: Face, face_id: str, frame_id: str, video: str, frame: int) -> dict:
    """The faces-table row of one face."""
    row: dict = {"face_id": face_id, "frame_id": frame_id, "video": video, "frame": int(frame),
                 "shot": int(face.shot), "character": str(face.character)}
    row.update({c: float(v) for c, v in zip(BOX_COLUMNS, face.box, strict=True)})
    row["det_score"] = float(face.det_score)
    row["lmk_score"] = face.lmk_score
    for i in range(HYSTS28.n):
        row[f"p{i:02d}_x"] = float(face.points[i, 0])
        row[f"p{i:02d}_y"] = float(face.points[i, 1])
        row[f"p{i:02d}_s"] = float(face.point_scores[i])
    if face.contour is not None:
        for i in range(N_CONTOUR):
            row[f"c{i:02d}_x"] = float(face.contour[i, 0])
            row[f"c{i:02d}_y"] = float(face.contour[i, 1])
    return row


def faces_table(rows: list[dict], with_contour: bool) -> pd.DataFrame:
    """Rows in the contract's column order and dtypes (an empty table still has every column)."""
    columns = FACE_COLUMNS + (contour_columns() if with_contour else [])
    df = pd.DataFrame(rows, columns=columns)
    for c in ("face_id", "frame_id", "video", "character"):
        df[c] = df[c].astype(str)
    for c in ("frame", "shot"):
        df[c] = df[c].astype(np.int64)
    float_cols = [c for c in columns if c not in ID_COLUMNS]
    df[float_cols] = df[float_cols].astype(np.float64)
    return df


def faces_points(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 28, 2) points and (rows, 28) scores read back from a faces table."""
    n = HYSTS28.n
    xy = np.stack([df[[f"p{i:02d}_x", f"p{i:02d}_y"]].to_numpy(np.float64) for i in range(n)], axis=1)
    scores = df[[f"p{i:02d}_s" for i in range(n)]].to_numpy(np.float64)
    return xy, scores
