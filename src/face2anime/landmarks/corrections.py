"""Hand corrections of contour points, as a versioned input file instead of unrecorded edits.

`data/corrections/contour.csv` has the columns face_id, point (0..16, the 17-point contour index), x, y
(frame pixels). A corrected point replaces what the search would have found (source letter 'C') and
is used as a known point for the points that depend on it (later midpoints, the fallback curve).

A row naming a face that the current faces table does not have is skipped, counted and listed in
`metrics/contour.json` (face ids change when detection settings change; a stale correction must not
block the pipeline). A malformed file (empty, not CSV, missing columns, point outside 0..16, non-finite
coordinates, the same point twice, a point outside its face's frame) is an error the user fixes: one line,
exit 1, before any contour work (an out-of-frame point would otherwise fail deep inside OpenCV).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from face2anime.errors import UserError

COLUMNS = ("face_id", "point", "x", "y")
N_CONTOUR = 17


def read_corrections(path: Path | str) -> pd.DataFrame:
    """The corrections table, validated; an absent file means no corrections."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(COLUMNS, (str, int, float, float), strict=True)})
    try:
        df = pd.read_csv(path, dtype={"face_id": str})
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: empty file; write the header {','.join(COLUMNS)} (no rows = no corrections) "
                        "or delete the file") from None
    except (ValueError, OSError) as err:   # ParserError, UnicodeDecodeError, a folder
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise UserError(f"{path}: not a readable CSV ({err.__class__.__name__}: {first})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing columns {missing}; expected {list(COLUMNS)}")
    df = df[list(COLUMNS)].copy()
    point = pd.to_numeric(df["point"], errors="coerce")
    bad = df.index[point.isna() | (point != point.round()) | (point < 0) | (point > N_CONTOUR - 1)]
    if len(bad):
        raise UserError(f"{path}: row {bad[0] + 2}: point must be an integer 0..16, got {df['point'][bad[0]]!r}")
    df["point"] = point.astype(int)
    for c in ("x", "y"):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = df.index[~np.isfinite(v.to_numpy(dtype=float))]
        if len(bad):
            raise UserError(f"{path}: row {bad[0] + 2}: {c} must be a finite number, got {df[c][bad[0]]!r}")
        df[c] = v.astype(float)
    dup = df.duplicated(["face_id", "point"], keep=False)
    if dup.any():
        r = df[dup].iloc[0]
        raise UserError(f"{path}: face {r['face_id']} point {r['point']} is corrected more than once")
    return df.reset_index(drop=True)


def check_in_frame(fixed: dict[str, dict[int, tuple[float, float]]], frame_size, path: Path | str) -> None:
    """Every corrected point inside its face's frame; `frame_size(face_id)` gives (width, height) or None."""
    for fid, points in fixed.items():
        size = frame_size(fid)
        if size is None:
            continue
        width, height = size
        for point, (x, y) in sorted(points.items()):
            if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
                raise UserError(f"{path}: face {fid} point {point}: ({x:g}, {y:g}) is outside its frame "
                                f"({width}x{height}; x 0..{width - 1}, y 0..{height - 1} frame pixels)")


def split_corrections(df: pd.DataFrame, known_faces) -> tuple[dict[str, dict[int, tuple[float, float]]], list[str]]:
    """{face_id: {point: (x, y)}} for known faces, and the sorted unknown face ids that were skipped."""
    known = set(known_faces)
    by_face: dict[str, dict[int, tuple[float, float]]] = {}
    unknown: set[str] = set()
    for fid, point, x, y in df.itertuples(index=False, name=None):
        if fid not in known:
            unknown.add(fid)
            continue
        by_face.setdefault(fid, {})[int(point)] = (float(x), float(y))
    return by_face, sorted(unknown)
