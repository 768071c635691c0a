"""Expand the detector's 5 lower-face contour points to the 40-point model's 17 (the study's stage 3).

The study's algorithm: smooth and binarise the face image so the drawn outline stands out; from the
midpoint of each pair of neighbouring contour points, search along the image's vertical direction for
the outline; a hit becomes a new point. Twice: 5 -> 9 -> 17.

Here, in addition, every new point is quality-checked (a hit inside the search window, a dark enough
line, not too far from the chord, no spike or dent in the angle sequence, close enough to the face's
fitted mean contour shape once one is known) and a failed point falls back automatically to a smooth
curve through the points that were found, shaped by the mean contour of the confident faces. The study
fixed failures by hand; `corrections.py` replays such fixes from a versioned file instead.

Indices are into the 17-point contour: the detected points sit at 0, 4, 8, 12, 16; level 1 adds
2, 6, 10, 14 (between neighbours two apart), level 2 adds the odd indices (between neighbours one apart).
The outline is searched on the outward side of the chord (away from the face centre), so that a convex
outline is hit exactly where the vertical line through the chord's midpoint crosses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from face2anime.landmarks.schema import FACE40_CONTOUR_ANCHORS
from face2anime.params import ContourSearchParams as ContourParams  # the `expand_contour.search` section

N_CONTOUR = 17
ANCHORS = FACE40_CONTOUR_ANCHORS
LEVELS: tuple[tuple[int, ...], ...] = ((2, 6, 10, 14), (1, 3, 5, 7, 9, 11, 13, 15))
NEW_POINTS = tuple(sorted(LEVELS[0] + LEVELS[1]))
_STEP = {0: 2, 1: 1}  # neighbour distance (in contour indices) at each level

# One-letter sources, as stored in the 40-point table's `contour_source`.
DETECTED, SEARCH, FALLBACK, CORRECTED = "D", "S", "F", "C"


@dataclass
class FaceContour:
    """Result for one face: 17 points (frame pixels), one source letter each, and why points failed."""

    points: np.ndarray
    source: list[str]
    failures: dict[int, str] = field(default_factory=dict)

    @property
    def source_str(self) -> str:
        return "".join(self.source)


class OutlineMap:
    """The binarised outline evidence of one face region: smoothed gray and 'darker than around' levels."""

    def __init__(self, gray: np.ndarray, x0: int, y0: int, face_width: float, params: ContourParams):
        self.x0, self.y0 = x0, y0
        g = gray.astype(np.float32)
        self.sigma = max(params.min_sigma_px, params.smooth_sigma * face_width)
        self.smooth = cv2.GaussianBlur(g, (0, 0), self.sigma)
        local = cv2.GaussianBlur(self.smooth, (0, 0), max(2.0, params.local_sigma * face_width))
        # darkness > threshold is the binarised outline (an adaptive threshold); its level is the strength
        self.darkness = local - self.smooth
        self.h, self.w = g.shape

    def profile(self, x: float, ys: np.ndarray, which: str = "darkness") -> np.ndarray:
        """`darkness` or `smooth` gray sampled (bilinear) along the vertical line x at rows ys; NaN outside."""
        src = self.darkness if which == "darkness" else self.smooth
        xs = np.full(ys.shape, x - self.x0, np.float32)
        yy = (ys - self.y0).astype(np.float32)
        vals = cv2.remap(src, xs.reshape(1, -1), yy.reshape(1, -1), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan).ravel()
        inside = (xs >= 0) & (xs <= self.w - 1) & (yy >= 0) & (yy <= self.h - 1)
        vals[~inside] = np.nan
        return vals


def face_region(contour5: np.ndarray, box: np.ndarray, shape: tuple[int, int],
                face_width: float) -> tuple[int, int, int, int]:
    """Integer ROI (x0, y0, x1, y1) around the lower face with room for the outward search."""
    pad = 0.45 * face_width
    lo = np.minimum(contour5.min(axis=0), box[:2]) - pad
    hi = np.maximum(contour5.max(axis=0), box[2:]) + pad
    h, w = shape
    x0, y0 = max(0, int(np.floor(lo[0]))), max(0, int(np.floor(lo[1])))
    x1, y1 = min(w, int(np.ceil(hi[0])) + 1), min(h, int(np.ceil(hi[1])) + 1)
    return x0, y0, x1, y1


def search_outline(omap: OutlineMap, a: np.ndarray, b: np.ndarray, centre: np.ndarray,
                   face_width: float, params: ContourParams, fwhm: float | None = None) -> tuple[float | None, str]:
    """y of the outline on the vertical line through the chord (a, b)'s midpoint, or None and a reason.

    Walks outward (the vertical direction pointing away from `centre` across the chord), binarises the
    darkness profile, takes the first dark run that reaches the chord and places the point on the centre
    of the drawn line there (`_line_centre`); `fwhm` is the face's measured outline width (`line_width`).
    """
    mid = (a + b) / 2
    chord = float(np.linalg.norm(b - a))
    half_line = params.line_half * face_width if fwhm is None else fwhm / 2
    if chord < 1.0:
        return None, "degenerate"
    normal = np.array([-(b - a)[1], (b - a)[0]]) / chord
    if np.dot(normal, mid - centre) < 0:
        normal = -normal
    ny = abs(normal[1])
    if ny < 0.1:
        return None, "vertical_chord"
    direction = 1.0 if normal[1] > 0 else -1.0
    back = params.back * face_width / ny
    length = min(params.window * chord / ny, params.max_window * face_width)
    step = 0.25
    t = np.arange(-back, length + step, step)
    prof = omap.profile(float(mid[0]), mid[1] + direction * t)
    if np.isnan(prof).all():
        return None, "outside_image"
    dark = np.nan_to_num(prof, nan=-1e3) > params.threshold
    # runs of dark samples
    edges = np.flatnonzero(np.diff(np.concatenate([[0], dark.astype(np.int8), [0]])))
    starts, ends = edges[0::2], edges[1::2] - 1
    smooth = omap.profile(float(mid[0]), mid[1] + direction * t, "smooth")
    for s, e in zip(starts, ends, strict=True):
        if t[e] < 0:  # wholly inward of the chord: a face feature, not the outline
            continue
        if s == 0:  # already dark where the search starts: cannot tell where this line is
            return None, "dark_start"
        seg = prof[s:e + 1]
        if float(seg.max()) < params.min_strength:
            return None, "weak"
        ti = _line_centre(t, prof, smooth, s, e, step, omap.sigma + 0.3, half_line / ny)
        return float(mid[1] + direction * ti), ""
    return None, "not_found"


def _parabola_peak(v: np.ndarray, i: int) -> float:
    """Sub-sample offset of the extremum at index i from its two neighbours."""
    if 0 < i < len(v) - 1:
        den = v[i - 1] - 2 * v[i] + v[i + 1]
        if den != 0:
            return float(np.clip(0.5 * (v[i - 1] - v[i + 1]) / den, -0.5, 0.5))
    return 0.0


def _half_width(smooth: np.ndarray, k: int, level: float, lo: int, hi: int) -> tuple[float, float]:
    """Sub-sample indices where the profile rises back above `level` on each side of its minimum k."""
    a = k
    while a > lo and smooth[a - 1] <= level:
        a -= 1
    b = k
    while b < hi and smooth[b + 1] <= level:
        b += 1
    fa = float(a)
    if a > lo and smooth[a - 1] != smooth[a]:
        fa = a - (level - smooth[a]) / (smooth[a - 1] - smooth[a])
    fb = float(b)
    if b < hi and smooth[b + 1] != smooth[b]:
        fb = b + (level - smooth[b]) / (smooth[b + 1] - smooth[b])
    return fa, fb


def line_width(omap: OutlineMap, contour5: np.ndarray, face_width: float, params: ContourParams) -> float:
    """The face's outline width (full width at half depth, px across the line), measured at the cheeks.

    Vertical profiles through the detected cheek points (1 and 3) that show an isolated line (lighter on
    both sides) give one measurement each; their median, or `2 x line_half` when neither is isolated.
    """
    default = 2 * params.line_half * face_width
    if face_width < 8.0:  # too small to measure a line
        return default
    step = 0.25
    widths = []
    for k in (1, 3):  # the cheeks: at the chin the neck's lines meet the outline
        p, a, b = contour5[k], contour5[k - 1], contour5[k + 1]
        chord = b - a
        ny = abs(chord[0]) / (np.linalg.norm(chord) + 1e-9)  # |y| of the outline's normal, roughly
        if ny < 0.3:
            continue
        r = 0.06 * face_width / ny
        t = np.arange(-r, r + step, step)
        prof = omap.profile(float(p[0]), p[1] + t, "smooth")
        if not np.isfinite(prof).all():
            continue
        c = len(t) // 2
        win = int(np.ceil(0.03 * face_width / ny / step))
        i = c - win + int(np.argmin(prof[c - win:c + win + 1]))
        gmin = float(prof[i])
        left, right = float(prof[:i + 1].max()), float(prof[i:].max())
        depth = min(left, right) - gmin
        if depth < params.min_strength:
            continue
        fa, fb = _half_width(prof, i, gmin + 0.5 * depth, 0, len(prof) - 1)
        widths.append((fb - fa) * step * ny)
    if not widths:
        return default
    return float(np.clip(np.median(widths), 0.5, params.max_line * face_width))


def _line_centre(t: np.ndarray, dark: np.ndarray, smooth: np.ndarray, s: int, e: int, step: float,
                 sigma: float, half_line: float) -> float:
    """Where the drawn outline's centre lies in the dark run s..e of the profile.

    An isolated line shows as a darkness bump close to where the skin ends: its centre is the bump's
    centroid (a line crossed at a slant gives a long flat bump, whose middle is still the centre). When the
    outline borders a dark region (hair, a dark background) the run goes on past the line and the bump
    drifts outward; then the centre is the skin edge (steepest darkening) plus half a line. `half_line`
    is measured along the profile (already divided by the outline's slant); `sigma` is the blur's scale.
    """
    seg = dark[s:e + 1]
    k = 0
    while k + 1 < len(seg) and seg[k + 1] >= seg[k] - 0.5:  # first local maximum (tolerating noise)
        if seg[k + 1] >= seg[k]:
            k += 1
        elif k + 2 < len(seg) and seg[k + 2] >= seg[k]:
            k += 2
        else:
            break
    top = 0.8 * seg[k]
    lo_k, hi_k = k, k
    while lo_k > 0 and seg[lo_k - 1] >= top:
        lo_k -= 1
    while hi_k + 1 < len(seg) and seg[hi_k + 1] >= top:
        hi_k += 1
    w = seg[lo_k:hi_k + 1] - top + 1e-3
    peak = float((t[s + lo_k:s + hi_k + 1] * w).sum() / w.sum())
    lo = max(0, s - int(np.ceil(3 * sigma / step)))
    slope = -np.diff(smooth[lo:s + k + 1])  # darkening outward, between samples
    if len(slope) == 0 or not np.isfinite(slope).all():
        return peak
    m = int(np.argmax(slope))
    edge = t[lo] + (m + 0.5 + _parabola_peak(slope, m)) * step
    if peak - edge <= half_line + 1.5 * sigma:
        return peak
    return float(edge + half_line)


def check_point(p: np.ndarray, a: np.ndarray, b: np.ndarray, centre: np.ndarray, face_width: float,
                params: ContourParams) -> str:
    """Geometric checks of a hit against its two neighbours: '' when fine, else the reason."""
    chord = float(np.linalg.norm(b - a))
    normal = np.array([-(b - a)[1], (b - a)[0]]) / chord
    mid = (a + b) / 2
    if np.dot(normal, mid - centre) < 0:
        normal = -normal
    off = float(np.dot(p - mid, normal))
    if off > params.max_offset * chord:
        return "far_from_chord"
    if off < -params.concave_tol * face_width:
        return "concave"
    u, v = p - a, b - p
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-9))
    if np.degrees(np.arccos(np.clip(cos, -1, 1))) > params.max_turn_deg:
        return "sharp_turn"
    return ""


# ---------------------------------------------------------------- shape prior and fallback
def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (scale, rotation R, translation t) with dst ~ scale * src @ R.T + t (Umeyama)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1
    rot = u @ d @ vt
    var = (s0 ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sv) @ d) / var) if var > 0 else 1.0
    return scale, rot, md - scale * ms @ rot.T


def mean_contour_shape(contours: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes mean of (N, 17, 2) contours: unit-size, centred, in the first face's orientation."""
    x = contours - contours.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=(1, 2), keepdims=True)
    ref = x[0]
    for _ in range(iterations):
        aligned = []
        for c in x:
            s, r, t = similarity_fit(c, ref)
            aligned.append(s * c @ r.T + t)
        ref = np.mean(aligned, axis=0)
        ref -= ref.mean(axis=0)
        ref /= np.linalg.norm(ref)
    return ref


def provisional_contour(points: np.ndarray, known: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    """All 17 points: the known ones as they are, the others from the prior fitted to the known ones.

    With a mean shape: similarity-fit it to the known points and add the known points' residuals,
    interpolated along the contour, so the curve passes through every known point. Without one: a
    cubic spline through the known points over the contour index.
    """
    idx = np.flatnonzero(known)
    allidx = np.arange(N_CONTOUR)
    if prior is not None and len(idx) >= 3:
        s, r, t = similarity_fit(prior[idx], points[idx])
        base = s * prior @ r.T + t
        res = points[idx] - base[idx]
        out = base + np.stack([np.interp(allidx, idx, res[:, 0]), np.interp(allidx, idx, res[:, 1])], axis=1)
    else:
        from scipy.interpolate import CubicSpline  # here: scipy.interpolate costs 0.5 s at import, and the
        spline = CubicSpline(idx, points[idx], axis=0)  # painter's stages import this module for similarity_fit
        out = spline(allidx)
    out[idx] = points[idx]
    return out


def curve_y_at(curve17: np.ndarray, ia: int, ib: int, x: float) -> float | None:
    """y where the smooth curve through the 17 points crosses the vertical line x between indices ia and ib."""
    from scipy.interpolate import CubicSpline

    spline = CubicSpline(np.arange(N_CONTOUR), curve17, axis=0)
    u = np.linspace(ia, ib, 64 * (ib - ia) + 1)
    xy = spline(u)
    f = xy[:, 0] - x
    hits = np.flatnonzero(np.sign(f[:-1]) * np.sign(f[1:]) <= 0)
    if len(hits) == 0:
        return None
    # the crossing closest to the middle of the arc, for curves that fold near a steep side
    k = hits[np.argmin(np.abs(hits - len(u) // 2))]
    w = f[k] / (f[k] - f[k + 1]) if f[k] != f[k + 1] else 0.0
    return float(xy[k, 1] + w * (xy[k + 1, 1] - xy[k, 1]))


# ---------------------------------------------------------------- one face
def expand_face(omap: OutlineMap, contour5: np.ndarray, centre: np.ndarray, params: ContourParams,
                prior: np.ndarray | None = None, fixed: dict[int, tuple[float, float]] | None = None) -> FaceContour:
    """5 detected contour points -> 17, level by level; `fixed` are corrections (index -> x, y) that win."""
    pts = np.full((N_CONTOUR, 2), np.nan)
    src = [""] * N_CONTOUR
    pts[list(ANCHORS)] = contour5
    for i in ANCHORS:
        src[i] = DETECTED
    fixed = fixed or {}
    for i, xy in fixed.items():
        if i in ANCHORS:
            pts[i], src[i] = xy, CORRECTED
    face_width = float(np.linalg.norm(pts[16] - pts[0]))
    fwhm = line_width(omap, pts[list(ANCHORS)], face_width, params)
    failures: dict[int, str] = {}
    for level, new in enumerate(LEVELS):
        step = _STEP[level]
        known_before = np.array([s != "" for s in src])
        found: dict[int, float] = {}
        for j in new:
            a, b = pts[j - step], pts[j + step]
            mx = (a[0] + b[0]) / 2
            if j in fixed:
                pts[j], src[j] = fixed[j], CORRECTED
                continue
            y, why = search_outline(omap, a, b, centre, face_width, params, fwhm)
            if y is not None:
                why = check_point(np.array([mx, y]), a, b, centre, face_width, params)
            if not why and prior is not None:
                expect = curve_y_at(provisional_contour(pts, known_before, prior), j - step, j + step, mx)
                if expect is not None and abs(y - expect) > params.prior_tol * face_width:
                    why = "off_mean_shape"
            if why:
                failures[j] = why
            else:
                found[j] = y
        for j, y in found.items():
            pts[j] = ((pts[j - step][0] + pts[j + step][0]) / 2, y)
            src[j] = SEARCH
        missing = [j for j in new if src[j] == ""]
        if missing:
            known = np.array([s != "" for s in src])
            curve = provisional_contour(pts, known, prior)
            for j in missing:
                a, b = pts[j - step], pts[j + step]
                mx = (a[0] + b[0]) / 2
                y = curve_y_at(curve, j - step, j + step, mx)
                pts[j] = (mx, y) if y is not None else curve[j]
                src[j] = FALLBACK
    return FaceContour(points=pts, source=src, failures=failures)
