"""Faces followed through a video: detect now and then, track in between, smooth the points over time.

Detecting every face in every frame (dlib's HOG pyramid) is most of a video's conversion time, and the
detector's box jitters from frame to frame, so the crop and the stylised face swim. Here a face is detected
once and then followed: each frame, dlib's 68-point predictor runs on a box placed on the face's previous
(smoothed) points exactly as the detector had placed its box relative to them (the predictor is ~40x cheaper
than detection). The detector runs again every `detect_every` frames (new faces), at a scene cut (a jump of the
frame's grey-level histogram), and whenever a tracked face's confidence drops (the grey patch of its new
square no longer correlates with the previous frame's). A face keeps its identity (track id) until the
scene cuts or it is lost. Points and the framing square go through a One-Euro filter (Casiez et al. 2012):
strong smoothing when the head is still, little lag when it moves. `FlowBlend` (`flow_blend`, off by default)
is the optional post-hoc deflicker: faces mixed with the previous output moved along the input's optical flow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from face2anime.convert.faces import FaceFinder, PhotoFace, crop_points40
from face2anime.convert.settings import ConvertSettings
from face2anime.imaging.images import to_gray
from face2anime.landmarks.framing import square_to_crop_matrix
from face2anime.metrics.temporal import occlusion_mask, warp_back
from face2anime.photos.crops import face_square

PATCH = 32          # side of the grey patch whose correlation is the tracking confidence (cheap, enough detail)
HIST_SIDE = 64      # the scene-cut histogram reads about this many pixels per row (every n-th pixel)
HIST_BINS = 32
MATCH_IOU = 0.3     # a detection and a track whose boxes overlap this much are the same face
SAME_FACE_IOU = 0.5  # two tracks overlapping this much follow one face: the younger is dropped


class OneEuro:
    """One-Euro filter (Casiez, Roussel, Vogel 2012) on an array signal sampled at `rate` Hz.

    A first-order low-pass whose cut-off grows with the signal's (smoothed) speed: cutoff = min_cutoff +
    beta * |speed|. A still signal is smoothed at `min_cutoff` (jitter removed), a moving one passes with
    little lag. The first sample passes through unchanged."""

    def __init__(self, rate: float, min_cutoff: float, beta: float, d_cutoff: float):
        self.rate, self.min_cutoff = float(rate), float(min_cutoff)
        self.beta, self.d_cutoff = float(beta), float(d_cutoff)
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
        return 1.0 / (1.0 + tau * self.rate)

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self.x is None:
            self.x, self.dx = value.copy(), np.zeros_like(value)
            return value.copy()
        speed = (value - self.x) * self.rate
        a_d = self._alpha(self.d_cutoff)
        self.dx = self.dx + a_d * (speed - self.dx)
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx))
        self.x = self.x + a * (value - self.x)
        return self.x.copy()

    def settle_frames(self, fraction: float = 0.1) -> int:
        """Frames after which a step is followed to within `fraction` of its size, at the slowest (beta = 0): the
        filter's set lag; any beta > 0 only shortens it."""
        a = float(self._alpha(self.min_cutoff))
        return max(1, math.ceil(math.log(fraction) / math.log(1.0 - a))) if a < 1 else 1


@dataclass
class TrackedFace:
    """One face in one frame: its track id, the face as convert frames it (smoothed square and points) and the
    smoothed 68 points in frame pixels."""

    track_id: int
    face: PhotoFace
    points68: np.ndarray
    detected: bool    # this frame's points came from a detection (else from the previous frame's points)


@dataclass
class _Track:
    id: int
    points: np.ndarray            # raw 68 points of the last frame
    box_rel: np.ndarray           # the detector's box relative to the points: (dx, dy, w, h) / points' spread
    patch: np.ndarray             # grey patch of the last frame's square
    points_filter: OneEuro
    square_filter: OneEuro
    misses: int = 0
    score: float = 1.0
    detected: bool = True
    smooth: np.ndarray | None = None   # the filtered points of the last frame


def _spread(points: np.ndarray) -> tuple[np.ndarray, float]:
    centre = points.mean(axis=0)
    return centre, float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean())) or 1.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _zncc(a: np.ndarray, b: np.ndarray) -> float:
    """Zero-mean normalised cross-correlation of two patches (-1..1); 0 when either is flat."""
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-6 else 0.0


class FaceTracker:
    """`step(rgb)` -> the frame's faces (`TrackedFace`, by track id), for frames given in order.

    Counters: `detections` (frames where the detector ran), `cuts` (scene cuts seen), `tracks` (ids handed out)."""

    def __init__(self, finder: FaceFinder, settings: ConvertSettings, fps: float):
        self.finder, self.lm = finder, finder.landmarker
        self.every, self.cut_threshold = settings.detect_every, settings.scene_cut
        self.min_score, self.max_misses = settings.track_min_score, settings.track_max_misses
        self.filter_args = (fps, settings.one_euro_min_cutoff, settings.one_euro_beta, settings.one_euro_d_cutoff)
        self.tracks: list[_Track] = []
        self.frame = -1
        self.last_detection = -10 ** 9
        self.prev_hist: np.ndarray | None = None
        self.detections = self.cuts = self.tracks_made = 0

    # ------------------------------------------------------------------ pieces
    def _is_cut(self, gray: np.ndarray) -> bool:
        hist = gray_histogram(gray)
        prev, self.prev_hist = self.prev_hist, hist
        return prev is not None and cv2.compareHist(prev, hist, cv2.HISTCMP_BHATTACHARYYA) > self.cut_threshold

    def _predict(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The predictor's 68 points for `box`, run on the box's neighbourhood only (dlib copies the image it is
        given: the whole frame would cost more than the prediction; the trees only read pixels near the shape)."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        m = max(x1 - x0, y1 - y0)
        h, w = rgb.shape[:2]
        ox, oy = min(max(0, x0 - m), w - 1), min(max(0, y0 - m), h - 1)
        ex, ey = max(min(w, x1 + m), ox + 1), max(min(h, y1 + m), oy + 1)
        return self.lm.predict(rgb[oy:ey, ox:ex], (x0 - ox, y0 - oy, x1 - ox, y1 - oy)) + np.array([ox, oy])

    def _square(self, points: np.ndarray) -> np.ndarray:
        return face_square(points, self.finder.framing, self.finder.mapping)

    @staticmethod
    def _patch(gray: np.ndarray, square: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(gray, square_to_crop_matrix(square, PATCH), (PATCH, PATCH), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)

    @staticmethod
    def _box(points: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """(x0, y0, x1, y1): the detector's box for these points."""
        c, s = _spread(points)
        cx, cy = c + rel[:2] * s
        w, h = rel[2:] * s
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def _new_track(self, points: np.ndarray, box: tuple[float, float, float, float], gray: np.ndarray) -> _Track:
        c, s = _spread(points)
        x0, y0, x1, y1 = box
        rel = np.array([((x0 + x1) / 2 - c[0]) / s, ((y0 + y1) / 2 - c[1]) / s, (x1 - x0) / s, (y1 - y0) / s])
        self.tracks_made += 1
        return _Track(self.tracks_made - 1, points, rel, self._patch(gray, self._square(points)),
                      OneEuro(*self.filter_args), OneEuro(*self.filter_args))

    def _inside(self, box: np.ndarray, shape: tuple[int, ...]) -> bool:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return 0 <= cx < shape[1] and 0 <= cy < shape[0]

    # ------------------------------------------------------------------ one frame
    def step(self, rgb: np.ndarray) -> list[TrackedFace]:
        self.frame += 1
        gray = to_gray(rgb)
        if self._is_cut(gray):
            self.cuts += 1
            self.tracks = []          # another shot: the faces there are other faces
            cut = True
        else:
            cut = False
        for t in self.tracks:         # follow each face from its previous points
            # from the smoothed points: the box stays still on a still head, and the predictor's own noise is
            # not fed back into where it looks next
            points = self._predict(rgb, self._box(t.points if t.smooth is None else t.smooth, t.box_rel))
            patch = self._patch(gray, self._square(points))
            t.score, t.points, t.patch, t.detected = _zncc(patch, t.patch), points, patch, False
        self.tracks = [t for t in self.tracks if self._inside(self._box(t.points, t.box_rel), gray.shape)]
        weak = any(t.score < self.min_score for t in self.tracks)
        if cut or weak or self.frame - self.last_detection >= self.every:
            self._detect(rgb, gray)
        self._drop_duplicates()
        return [self._output(t) for t in sorted(self.tracks, key=lambda t: t.id)]

    def _detect(self, rgb: np.ndarray, gray: np.ndarray) -> None:
        """Run the detector; match its faces to the tracks (box overlap), start tracks for new faces, drop the
        tracks it no longer confirms (weak ones at once, others after `track_max_misses` misses)."""
        self.detections += 1
        self.last_detection = self.frame
        found = self.lm.find_faces(rgb)
        boxes = {t.id: self._box(t.points, t.box_rel) for t in self.tracks}
        pairs = sorted(((_iou(np.array(f.detection.box), boxes[t.id]), i, t.id) for i, f in enumerate(found)
                        for t in self.tracks), reverse=True)
        used_f, matched = set(), {}
        for iou, i, tid in pairs:
            if iou < MATCH_IOU:
                break
            if i in used_f or tid in matched:
                continue
            used_f.add(i)
            matched[tid] = i
        kept = []
        for t in self.tracks:
            if t.id in matched:
                f = found[matched[t.id]]
                if t.score < self.min_score:   # lost its way: restart from the detection, same identity
                    fresh = self._new_track(f.points68, f.detection.box, gray)
                    self.tracks_made -= 1
                    t.points, t.box_rel, t.patch, t.smooth = fresh.points, fresh.box_rel, fresh.patch, None
                    t.detected = True
                t.misses, t.score = 0, 1.0
                kept.append(t)
            elif t.score >= self.min_score and t.misses < self.max_misses:
                t.misses += 1          # the detector can miss a face the tracker still holds (roll, blur)
                kept.append(t)
        for i, f in enumerate(found):
            if i not in used_f:
                kept.append(self._new_track(f.points68, f.detection.box, gray))
        self.tracks = kept

    def _drop_duplicates(self) -> None:
        """Two tracks on one face (a new detection beside a drifted track): the older identity stays."""
        boxes = [(t, self._box(t.points, t.box_rel)) for t in sorted(self.tracks, key=lambda t: t.id)]
        keep: list[tuple[_Track, np.ndarray]] = []
        for t, box in boxes:
            if all(_iou(box, b) < SAME_FACE_IOU for _, b in keep):
                keep.append((t, box))
        self.tracks = [t for t, _ in keep]

    def _output(self, t: _Track) -> TrackedFace:
        points = t.smooth = t.points_filter(t.points)
        square = t.square_filter(self._square(points))
        f = self.finder
        p112 = None if f.lid_shift is None else crop_points40(points, square, f.mapping, f.lid_shift)
        return TrackedFace(t.id, PhotoFace(square, t.score, p112, points68=points), points, t.detected)


class FlowBlend:
    """Post-hoc deflicker (`flow_blend`): the faces of each output frame mixed with the previous output frame
    moved onto this one by the optical flow of the input frames (DIS), where the forward-backward check trusts
    the flow; nothing is mixed across a scene cut or outside the pasted faces. Costs some sharpness."""

    def __init__(self, weight: float, cut_threshold: float):
        self.weight, self.cut_threshold = float(weight), float(cut_threshold)
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None   # (grey input, histogram, output)
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def __call__(self, rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
        gray = to_gray(rgb)
        hist = gray_histogram(gray)
        prev, self.prev = self.prev, None
        faces = np.any(out != rgb, axis=-1)
        if (prev is not None and faces.any()
                and cv2.compareHist(prev[1], hist, cv2.HISTCMP_BHATTACHARYYA) <= self.cut_threshold):
            # the flow only where faces were pasted (their bounding box, with room for the motion): a full
            # frame's flow would cost more than the face
            ys, xs = np.nonzero(faces)
            pad = max(16, (ys.max() - ys.min()) // 4)
            y0, y1 = max(0, ys.min() - pad), min(gray.shape[0], ys.max() + pad + 1)
            x0, x1 = max(0, xs.min() - pad), min(gray.shape[1], xs.max() + pad + 1)
            g, pg = np.ascontiguousarray(gray[y0:y1, x0:x1]), np.ascontiguousarray(prev[0][y0:y1, x0:x1])
            back = self.dis.calc(g, pg, None)               # this frame -> previous frame
            ahead = self.dis.calc(pg, g, None)
            trust = occlusion_mask(back, ahead) & faces[y0:y1, x0:x1]
            moved = warp_back(np.ascontiguousarray(prev[2][y0:y1, x0:x1]), back).astype(np.float32)
            region = out[y0:y1, x0:x1]
            mixed = (1.0 - self.weight) * region.astype(np.float32) + self.weight * moved
            out = out.copy()
            out[y0:y1, x0:x1] = np.where(trust[..., None], np.clip(mixed + 0.5, 0, 255).astype(np.uint8), region)
        self.prev = (gray, hist, out)
        return out


def gray_histogram(gray: np.ndarray) -> np.ndarray:
    """The scene-cut signature of a frame: its grey-level histogram at `HIST_SIDE` px wide."""
    step = max(1, gray.shape[1] // HIST_SIDE)
    return cv2.calcHist([np.ascontiguousarray(gray[::step, ::step])], [0], None, [HIST_BINS], [0, 256])
