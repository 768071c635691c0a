"""Every landmark layout of the project, in one place.

Three layouts meet in this pipeline:

- `HYSTS28`: hysts' anime-face-detector output (28 points, 5 of them on the lower face contour);
- `IBUG68`: dlib's 68-point predictor on photos (iBUG 300-W order);
- `FACE40`: the study's 40-point model (contour 17, brows 3+3, eyes 6+6, nose 1, mouth 4), which the
  DAN predicts and the landmark loss compares.

Mappings into `FACE40` are linear: a (40, n_in) weight matrix, so a "virtual" point such as the middle
of the upper eyelid can be the mean of two dlib points. "Left/right" always means the image's left/right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """Point names and the horizontal-flip permutation of one landmark layout."""

    name: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]

    @property
    def n(self) -> int:
        return len(self.names)

    def flip_permutation(self) -> np.ndarray:
        """perm[i] = index that point i becomes after mirroring the image."""
        perm = np.arange(self.n)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def group(self, prefix: str) -> list[int]:
        """Indices of the points whose name starts with `prefix` (e.g. 'brow', 'left_eye')."""
        return [i for i, nm in enumerate(self.names) if nm.startswith(prefix)]


def flip_points(points: np.ndarray, layout: Layout, width: float) -> np.ndarray:
    """Mirror (..., n, 2) pixel coordinates in an image `width` px wide and relabel by the layout's pairs.

    Pixel centres are at integer coordinates, so x maps to (width - 1) - x.
    """
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 0] = (width - 1) - out[..., 0]
    return out[..., layout.flip_permutation(), :]


# ---------------------------------------------------------------- hysts 28 (anime detector)
HYSTS28 = Layout(
    name="hysts28",
    names=(
        "contour_left", "contour_left_cheek", "contour_chin", "contour_right_cheek", "contour_right",
        "left_brow_outer", "left_brow_mid", "left_brow_inner",
        "right_brow_inner", "right_brow_mid", "right_brow_outer",
        "left_eye_upper_outer", "left_eye_upper_top", "left_eye_upper_inner",
        "left_eye_lower_outer", "left_eye_lower_mid", "left_eye_lower_inner",
        "right_eye_upper_inner", "right_eye_upper_top", "right_eye_upper_outer",
        "right_eye_lower_inner", "right_eye_lower_mid", "right_eye_lower_outer",
        "nose",
        "mouth_left", "mouth_upper", "mouth_right", "mouth_lower",
    ),
    # From the model's own config (see ../shared/reference/landmarks.md).
    flip_pairs=((0, 4), (1, 3), (5, 10), (6, 9), (7, 8), (11, 19), (12, 18), (13, 17),
                (14, 22), (15, 21), (16, 20), (24, 26)),
)
HYSTS28_CONTOUR = (0, 1, 2, 3, 4)

# ---------------------------------------------------------------- iBUG 68 (dlib)
_IBUG_NAMES = (
    [f"jaw_{i:02d}" for i in range(17)]
    + [f"left_brow_{i}" for i in range(5)]
    + [f"right_brow_{i}" for i in range(5)]
    + [f"nose_bridge_{i}" for i in range(4)]
    + [f"nostril_{i}" for i in range(5)]
    + ["left_eye_outer", "left_eye_upper_outer", "left_eye_upper_inner", "left_eye_inner",
       "left_eye_lower_inner", "left_eye_lower_outer"]
    + ["right_eye_inner", "right_eye_upper_inner", "right_eye_upper_outer", "right_eye_outer",
       "right_eye_lower_outer", "right_eye_lower_inner"]
    + [f"outer_lip_{i:02d}" for i in range(12)]
    + [f"inner_lip_{i}" for i in range(8)]
)
IBUG68 = Layout(
    name="ibug68",
    names=tuple(_IBUG_NAMES),
    flip_pairs=(
        *((i, 16 - i) for i in range(8)),                      # jaw
        *((17 + i, 26 - i) for i in range(5)),                 # brows
        (31, 35), (32, 34),                                    # nostrils
        (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
        (48, 54), (49, 53), (50, 52), (59, 55), (58, 56),      # outer lip
        (60, 64), (61, 63), (67, 65),                          # inner lip
    ),
)
IBUG68_LEFT_EYE = tuple(range(36, 42))
IBUG68_RIGHT_EYE = tuple(range(42, 48))

# ---------------------------------------------------------------- the 40-point model
FACE40 = Layout(
    name="face40",
    names=(
        tuple(f"contour_{i:02d}" for i in range(17))
        + HYSTS28.names[5:11]    # brows: left outer->inner, right inner->outer
        + HYSTS28.names[11:23]   # eyes: left upper 3, left lower 3, right upper 3, right lower 3
        + HYSTS28.names[23:28]   # nose, mouth left/upper/right/lower
    ),
    flip_pairs=(
        *((i, 16 - i) for i in range(8)),
        *((a + 12, b + 12) for a, b in HYSTS28.flip_pairs if a >= 5),
    ),
)
FACE40_CONTOUR = tuple(range(17))
FACE40_BROWS = tuple(range(17, 23))
FACE40_LEFT_EYE = tuple(range(23, 29))
FACE40_RIGHT_EYE = tuple(range(29, 35))
FACE40_EYES = FACE40_LEFT_EYE + FACE40_RIGHT_EYE
FACE40_LOWER_LIDS = (26, 27, 28, 32, 33, 34)
FACE40_NOSE = (35,)
FACE40_MOUTH = (36, 37, 38, 39)
# Where hysts' 5 detected contour points land in the 17-point contour (5 -> 9 -> 17 by midpoints).
FACE40_CONTOUR_ANCHORS = (0, 4, 8, 12, 16)

# Regions, for per-region error reports.
FACE40_REGIONS = {
    "contour": FACE40_CONTOUR,
    "brows": FACE40_BROWS,
    "eyes": FACE40_EYES,
    "nose": FACE40_NOSE,
    "mouth": FACE40_MOUTH,
}


def inter_ocular(points40: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (mean of each eye's 6 points), for (..., 40, 2) points."""
    left = points40[..., FACE40_LEFT_EYE, :].mean(axis=-2)
    right = points40[..., FACE40_RIGHT_EYE, :].mean(axis=-2)
    return np.linalg.norm(left - right, axis=-1)


# ---------------------------------------------------------------- mappings into FACE40
def anime_to_face40(points28: np.ndarray, contour17: np.ndarray) -> np.ndarray:
    """Join hysts' 28 points with the expanded 17-point contour: (..., 28, 2) + (..., 17, 2) -> (..., 40, 2)."""
    points28 = np.asarray(points28, dtype=np.float64)
    contour17 = np.asarray(contour17, dtype=np.float64)
    return np.concatenate([contour17, points28[..., 5:28, :]], axis=-2)


def _one_hot_rows(rows: list[list[int]], n_in: int) -> np.ndarray:
    """Weights (len(rows), n_in): each output point is the mean of the listed input points."""
    w = np.zeros((len(rows), n_in))
    for r, idx in enumerate(rows):
        w[r, idx] = 1.0 / len(idx)
    return w


# By meaning: each 40-point index gets the dlib point(s) with the same anatomical role as hysts' point.
_DLIB_BY_MEANING: list[list[int]] = (
    [[i] for i in range(17)]                          # contour
    + [[17], [19], [21], [22], [24], [26]]            # brows: outer, middle, inner | inner, middle, outer
    + [[36], [37, 38], [39], [41], [40, 41], [40]]    # left eye: upper outer/top/inner, lower outer/mid/inner
    + [[42], [43, 44], [45], [47], [46, 47], [46]]    # right eye: upper inner/top/outer, lower inner/mid/outer
    + [[30]]                                          # nose tip
    + [[48], [51], [54], [57]]                        # mouth: left corner, upper centre, right corner, lower centre
)

# The study's exact list (see ../shared/reference/landmarks.md): kept to reproduce it, not semantically aligned.
DLIB_STUDY_INDICES: tuple[int, ...] = tuple(range(17)) + (
    17, 19, 21, 22, 24, 26, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 30, 59, 66, 55, 57)
# The study moved these dlib points down before its mapping ("lower eyelid"); two of them are eye corners.
DLIB_STUDY_SHIFTED = (39, 40, 41, 45, 46, 47)

DLIB_MAPPINGS = ("meaning", "study")


def dlib_mapping_matrix(mapping: str = "meaning") -> np.ndarray:
    """(40, 68) weights that turn dlib's 68 points into the 40-point model."""
    if mapping == "meaning":
        return _one_hot_rows(_DLIB_BY_MEANING, IBUG68.n)
    if mapping == "study":
        return _one_hot_rows([[i] for i in DLIB_STUDY_INDICES], IBUG68.n)
    raise ValueError(f"unknown dlib mapping {mapping!r}; choose one of {DLIB_MAPPINGS}")


def dlib_to_face40(points68: np.ndarray, mapping: str = "meaning", lower_lid_shift: float = 0.0) -> np.ndarray:
    """Map (..., 68, 2) dlib points to (..., 40, 2), moving the lower eyelids down by `lower_lid_shift` px.

    With mapping='meaning' the shift goes onto the six 40-point lower-lid points; with 'study' it goes onto
    the dlib points the study shifted (before the mapping), exactly as the study did.
    """
    pts = np.array(points68, dtype=np.float64, copy=True)
    w = dlib_mapping_matrix(mapping)
    if mapping == "study" and lower_lid_shift:
        pts[..., DLIB_STUDY_SHIFTED, 1] += lower_lid_shift
    out = np.einsum("oi,...ic->...oc", w, pts)
    if mapping == "meaning" and lower_lid_shift:
        out[..., FACE40_LOWER_LIDS, 1] += lower_lid_shift
    return out


def table_columns(prefix: str, n: int, with_visibility: bool = False) -> list[str]:
    """Column names for points stored flat in a table: p00_x, p00_y[, p00_v], ..."""
    cols = []
    for i in range(n):
        cols += [f"{prefix}{i:02d}_x", f"{prefix}{i:02d}_y"]
        if with_visibility:
            cols.append(f"{prefix}{i:02d}_v")
    return cols


def points_from_table(df, prefix: str, n: int) -> np.ndarray:
    """(rows, n, 2) float array from flat columns written with `table_columns`."""
    cols = table_columns(prefix, n)
    return df[cols].to_numpy(dtype=np.float64).reshape(len(df), n, 2)


def points_to_table(points: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Flat {column: values} for a (rows, n, 2) array, the inverse of `points_from_table`."""
    points = np.asarray(points)
    n = points.shape[1]
    cols = table_columns(prefix, n)
    flat = points.reshape(len(points), n * 2)
    return {c: flat[:, j] for j, c in enumerate(cols)}
