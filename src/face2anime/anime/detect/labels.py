"""The `labels` backend: 28-point annotations from a table, matched to the extracted frames.

The table follows docs/pipeline.md "Ground truth / labels table" (the demo's `truth.csv` is one). Rows
are matched to frames by (video, frame), comparing video names by their stem as `frame_id` does, so
`episode.mp4` and `episode` match. Optional columns: `shot`, `character` (else the frame's scene and
empty), `pNN_v` (visibility, else 1), the contour `cNN_x/_y` (all 17 or none) and `width`, `height`
(the image size the labels were made at; points are then scaled to the extracted frame's size).

A malformed table (unreadable, a column missing, a non-numeric value, a visibility outside 0..1, a size <= 0)
stops the stage with one line naming the file, line and column. A bad face row is skipped, counted and listed
with its line: NaN values, a box of width or height <= 0, a repeat of an earlier row (same frame and box), a
box that does not overlap the frame or a point farther outside the frame than the face box's larger side
(faces cut by the frame edge keep points a little beyond it; a point one face away is a typo).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from face2anime.anime.detect.faces import BOX_COLUMNS, N_CONTOUR, Face
from face2anime.anime.detect.filters import FaceFilter
from face2anime.errors import UserError
from face2anime.landmarks.schema import HYSTS28, table_columns

POINT_COLUMNS = table_columns("p", HYSTS28.n)
REQUIRED_COLUMNS = ["video", "frame", *BOX_COLUMNS, *POINT_COLUMNS]
VISIBILITY_COLUMNS = [f"p{i:02d}_v" for i in range(HYSTS28.n)]
CONTOUR_COLUMNS = table_columns("c", N_CONTOUR)


def video_key(video: str) -> str:
    """Videos are matched by file stem (as in `frame_id`), so an extension on one side only still matches."""
    return PurePath(str(video)).stem


def read_labels(path: Path | str) -> pd.DataFrame:
    """Load and check a labels table (.csv or .parquet); problems are one-line `UserError`s."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"labels file {path} not found (set detect_anime.labels_file)")
    try:
        df = (pd.read_parquet(path) if path.suffix == ".parquet"
              else pd.read_csv(path, dtype={"video": str, "character": str}))
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise UserError(f"labels file {path} could not be read: {str(err).splitlines()[0]}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"labels file {path} lacks required columns: {_short_list(missing)} "
                        f"(schema: docs/pipeline.md, 'Ground truth / labels table')")
    contour_present = [c for c in CONTOUR_COLUMNS if c in df.columns]
    if contour_present and len(contour_present) != len(CONTOUR_COLUMNS):
        missing = [c for c in CONTOUR_COLUMNS if c not in df.columns]
        raise UserError(f"labels file {path} has a partial contour; missing columns: {_short_list(missing)}")
    if ("width" in df.columns) != ("height" in df.columns):
        raise UserError(f"labels file {path} must have both width and height columns, or neither")
    frames = pd.to_numeric(df["frame"], errors="coerce")
    bad = df.index[frames.isna() | (frames != frames.round())]
    if len(bad):
        raise UserError(f"labels file {path}: column frame must hold whole frame numbers; "
                        f"bad value {df['frame'].iloc[bad[0]]!r} on line {bad[0] + 2}")
    df = df.copy()
    df["frame"] = frames.astype(np.int64)
    df["video"] = df["video"].astype(str)
    numeric = [*BOX_COLUMNS, *POINT_COLUMNS, *contour_present]
    numeric += [c for c in (*VISIBILITY_COLUMNS, "shot", "width", "height") if c in df.columns]
    for c in numeric:
        values = pd.to_numeric(df[c], errors="coerce")
        bad = df.index[(values.isna() & df[c].notna()).to_numpy()]
        if len(bad):
            raise UserError(f"labels file {path}: line {bad[0] + 2}, column {c}: {df[c].iloc[bad[0]]!r} "
                            f"is not a number")
        df[c] = values.astype(np.float64)
    _check_range(df, path, [c for c in VISIBILITY_COLUMNS if c in df.columns], 0.0, 1.0,
                 "a visibility is 1 (visible), 0 (hidden) or blank (visible)")
    _check_range(df, path, [c for c in ("width", "height") if c in df.columns], 1.0, np.inf,
                 "the labelled image size in pixels, > 0")
    return df


def _check_range(df: pd.DataFrame, path: Path, columns: list[str], lo: float, hi: float, allowed: str) -> None:
    """One-line error at the first value of `columns` outside [lo, hi] (blanks pass)."""
    for c in columns:
        values = df[c].to_numpy(np.float64)
        bad = np.flatnonzero(~np.isnan(values) & ~((values >= lo) & (values <= hi)))
        if len(bad):
            raise UserError(f"labels file {path}: line {bad[0] + 2}, column {c}: {values[bad[0]]!r} "
                            f"is not allowed ({allowed})")


def _rescale(points: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(n, 2) pixel coordinates into an image resized by `scale`: pixel centres stay at integers."""
    return (points + 0.5) * scale - 0.5


def _in_frame(box: np.ndarray, points: np.ndarray, width: float, height: float) -> bool:
    """The box overlaps the frame and no point lies farther outside it than the box's larger side."""
    x0, y0, x1, y1 = box
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return False
    slack = max(x1 - x0, y1 - y0)
    x, y = points[:, 0], points[:, 1]
    # NaN contour points (a partial contour) are not judged here; the contour code handles them.
    with np.errstate(invalid="ignore"):
        outside = (x < -slack) | (x > width - 1 + slack) | (y < -slack) | (y > height - 1 + slack)
    return not outside.any()


def _short_list(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" ... ({len(names)} in all)" if len(names) > limit else "")


class LabelsBackend:
    """Faces straight from the labels: det_score 1, per-point score = visibility."""

    name = "labels"
    needs_image = False

    def __init__(self, labels: pd.DataFrame, frame_index: pd.DataFrame) -> None:
        self.labels = labels.reset_index(drop=True)
        self.has_contour = all(c in self.labels.columns for c in CONTOUR_COLUMNS)
        self.rows_by_key: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, (video, frame) in enumerate(zip(self.labels["video"], self.labels["frame"], strict=True)):
            self.rows_by_key[(video_key(video), int(frame))].append(i)
        extracted = {(video_key(v), int(f)) for v, f in zip(frame_index["video"], frame_index["frame"], strict=True)}
        self.labels_unused = sum(len(rows) for key, rows in self.rows_by_key.items() if key not in extracted)
        self.skipped: list[dict] = []   # faces dropped (NaN, bad box, repeat, out of frame), with the line to fix
        keys = pd.DataFrame({"key": self.labels["video"].map(video_key), "frame": self.labels["frame"]})
        self._repeat = pd.concat([keys, self.labels[BOX_COLUMNS]], axis=1).duplicated().to_numpy()
        # Column blocks as arrays once, so per-frame work does not go through pandas rows.
        lab = self.labels
        n = len(lab)
        self._box = lab[BOX_COLUMNS].to_numpy(np.float64)
        self._points = lab[POINT_COLUMNS].to_numpy(np.float64).reshape(n, HYSTS28.n, 2)
        if all(c in lab.columns for c in VISIBILITY_COLUMNS):
            vis = lab[VISIBILITY_COLUMNS].to_numpy(np.float64)         # numeric, 0..1 (read_labels)
            self._visibility = np.where(np.isfinite(vis), vis, 1.0)   # blank = not marked hidden
        else:
            self._visibility = np.ones((n, HYSTS28.n))
        self._contour = (lab[CONTOUR_COLUMNS].to_numpy(np.float64).reshape(n, N_CONTOUR, 2)
                         if self.has_contour else None)
        self._shot = lab["shot"].tolist() if "shot" in lab.columns else [None] * n
        self._character = lab["character"].tolist() if "character" in lab.columns else [None] * n
        self._size = (lab[["width", "height"]].to_numpy(np.float64) if "width" in lab.columns
                      else np.full((n, 2), np.nan))

    def faces(self, frame: dict, image_bgr: np.ndarray | None, flt: FaceFilter, rejected: Counter) -> list[Face]:
        rows = self.rows_by_key.get((video_key(frame["video"]), int(frame["frame"])), [])
        candidates = [face for i in rows if (face := self._face(i, frame, rejected)) is not None]
        if not candidates:
            return []
        boxes = np.stack([f.box for f in candidates])
        keep = flt.select_boxes(boxes, np.array([f.det_score for f in candidates]), rejected)
        kept = [candidates[i] for i in keep]
        return flt.select_landmarks(kept, [f.lmk_score for f in kept], rejected)

    def _face(self, i: int, frame: dict, rejected: Counter) -> Face | None:
        box, points = self._box[i], self._points[i]
        contour = self._contour[i] if self._contour is not None else None
        for reason, values in (("nan_box", box), ("nan_points", points)):
            if not np.isfinite(values).all():
                return self._skip(i, reason, rejected)
        if box[2] <= box[0] or box[3] <= box[1]:
            return self._skip(i, "bad_box", rejected)
        if self._repeat[i]:
            return self._skip(i, "duplicate", rejected)
        width, height = self._size[i]
        if np.isfinite(width) and np.isfinite(height) and (width, height) != (frame["width"], frame["height"]):
            scale = np.array([float(frame["width"]) / width, float(frame["height"]) / height])
            box = _rescale(box.reshape(2, 2), scale).reshape(4)
            points = _rescale(points, scale)
            contour = _rescale(contour, scale) if contour is not None else None
        if not _in_frame(box, points if contour is None else np.concatenate([points, contour]),
                         float(frame["width"]), float(frame["height"])):
            return self._skip(i, "out_of_frame", rejected)
        shot, character = self._shot[i], self._character[i]
        return Face(box=box.copy(), det_score=1.0, points=points.copy(), point_scores=self._visibility[i].copy(),
                    shot=int(shot) if pd.notna(shot) else int(frame["scene"]),
                    character=str(character) if pd.notna(character) else "",
                    contour=None if contour is None else contour.copy())

    def _skip(self, i: int, reason: str, rejected: Counter) -> None:
        """Count and list a skipped row with its line in the labels file (header = line 1)."""
        rejected[reason] += 1
        self.skipped.append({"video": str(self.labels.at[i, "video"]), "frame": int(self.labels.at[i, "frame"]),
                             "line": i + 2, "reason": reason})

    def metrics(self) -> dict:
        return {"labels_rows": len(self.labels), "labels_unused": self.labels_unused,
                "skipped_faces": self.skipped}
