"""Frame extraction: sample videos by time step, number scenes at cuts, drop near-duplicate frames.

Kept close to the speed of plain decoding: frames that are not looked at are only grabbed (decoded,
not converted to BGR); the looked-at ones get one small thumbnail that serves both cut detection and
the perceptual hash. JPEG encoding runs in a small thread pool (OpenCV releases the GIL) while the
calling thread goes on decoding; on machines with 4+ cores thumbnails and hashes go to the pool too
(on 2 cores the extra hand-offs cost more than they win). The calling thread takes every decision
(cut, dedupe, keep) in frame order, so the output does not depend on thread timing.
"""

from __future__ import annotations

import math
import os
from collections import deque
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import os

# ffmpeg's own log lines (e.g. "moov atom not found" for an empty .mp4) would come before the stage's one-line
# error; the stage reports every video it cannot decode itself. Read by OpenCV at its first VideoCapture.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2
import imagehash
import numpy as np
import pandas as pd
from tqdm import tqdm

from face2anime.errors import UserError
from face2anime.imaging.images import to_gray
from face2anime.params import ExtractFramesParams

THUMB_SIDE = 64  # cut detection compares 64x64 grey thumbnails (also the phash input at hash_size 16)
_SQRT2 = math.sqrt(2.0)
INDEX_COLUMNS = ["frame_id", "video", "frame", "time_s", "scene", "width", "height", "path"]
IMAGES_DIR = "images"
_LAG_FRAMES = 8  # decisions trail decoding by this many looked-at frames, so the pool works ahead


def is_sampled(frame: int, fps: float, step_s: float) -> bool:
    """Whether `frame` is on the time grid 0, step_s, 2 step_s, ...

    Each grid time picks the frame whose display interval [t - 1/2fps, t + 1/2fps) contains it, so
    a step shorter than a frame keeps every frame and no frame is taken twice.
    """
    if step_s <= 0 or frame == 0:
        return True

    def bucket(i: int) -> int:
        return math.floor((2 * i + 1) / (2 * fps) / step_s)

    return bucket(frame) > bucket(frame - 1)


def thumbnail(frame_bgr: np.ndarray, side: int) -> np.ndarray:
    """A small grey square of a frame, for cut detection and hashing.

    Bilinear to twice the size then 2x2 area averaging: close to a full area average (robust to codec
    noise) at a fraction of its cost, which matters because every looked-at frame gets one.
    """
    half = cv2.resize(frame_bgr, (2 * side, 2 * side), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(half, (side, side), interpolation=cv2.INTER_AREA)
    return to_gray(small, bgr=True)


def frame_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute grey-level difference of two thumbnails (0-255)."""
    return float(cv2.norm(a, b, cv2.NORM_L1)) / a.size


def thumb_phash(thumb: np.ndarray, hash_size: int) -> imagehash.ImageHash:
    """imagehash's `phash` of a grey thumbnail, computed with OpenCV's DCT (same bits, ~5x cheaper).

    phash: DCT-II of the image at 4 x hash_size a side, low-frequency hash_size^2 block, bits above
    its median. cv2.dct is orthonormal, which scales row 0 and column 0 by 1/sqrt(2) relative to the
    unnormalised DCT that imagehash takes from scipy; undoing that gives the same median split
    (tests check equality with `imagehash.phash`).
    """
    side = 4 * hash_size
    if thumb.shape != (side, side):
        thumb = cv2.resize(thumb, (side, side), interpolation=cv2.INTER_AREA)
    coeffs = cv2.dct(thumb.astype(np.float64))[:hash_size, :hash_size]
    coeffs[0, :] *= _SQRT2
    coeffs[:, 0] *= _SQRT2
    return imagehash.ImageHash(coeffs > np.median(coeffs))


Analysis = tuple[np.ndarray, "imagehash.ImageHash | None"]


def analyse_frame(frame_bgr: np.ndarray, hash_size: int) -> Analysis:
    """(thumbnail, phash or None when hash_size is 0): the per-frame work that can run in a thread."""
    thumb = thumbnail(frame_bgr, THUMB_SIDE)
    return thumb, (thumb_phash(thumb, hash_size) if hash_size else None)


def capped_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) after downscaling so that the larger side is at most `max_side` (0 = no cap)."""
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def write_jpeg(path: Path, frame_bgr: np.ndarray, size: tuple[int, int], quality: int) -> None:
    """Downscale (area averaging) when needed and write one JPEG; runs in the encoder pool."""
    if (frame_bgr.shape[1], frame_bgr.shape[0]) != size:
        frame_bgr = cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path.name}")
    path.write_bytes(buf.tobytes())


@dataclass
class VideoResult:
    """What one video gave: its index rows and counts, or why it failed."""

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    decoded: int = 0
    sampled: int = 0
    scenes: int = 0
    error: str | None = None

    @property
    def kept(self) -> int:
        return len(self.records)


@dataclass
class ExtractResult:
    """The frame index (rows of kept frames, in video then frame order) and the stage metrics."""

    index: pd.DataFrame
    metrics: dict[str, Any]


class _Selector:
    """Takes looked-at frames in order: scene index, sampling, dedupe; hands kept frames to the encoder."""

    def __init__(self, result: VideoResult, stem: str, fps: float, cfg: ExtractFramesParams, out_dir: Path,
                 submit: Callable[[Path, np.ndarray, tuple[int, int]], None]) -> None:
        self.result, self.stem, self.fps, self.cfg = result, stem, fps, cfg
        self.out_dir, self.submit = out_dir, submit
        self._prev_thumb: np.ndarray | None = None
        self._last_hash: imagehash.ImageHash | None = None
        self._scene = 0

    def take(self, index: int, frame: np.ndarray, on_grid: bool, analysis: Analysis) -> None:
        cfg = self.cfg
        thumb, digest = analysis
        cut = self._prev_thumb is not None and frame_difference(thumb, self._prev_thumb) > cfg.scene_threshold
        self._prev_thumb = thumb
        if cut:
            self._scene += 1
        scene_start = cut and cfg.keep_scene_starts
        if not (on_grid or scene_start):
            return
        self.result.sampled += 1
        if digest is None and cfg.dedupe_hamming >= 0:  # a scene start off the grid
            digest = thumb_phash(thumb, cfg.hash_size)
        if (not scene_start and digest is not None and self._last_hash is not None
                and digest - self._last_hash <= cfg.dedupe_hamming):
            return
        self._last_hash = digest
        height, width = frame.shape[:2]
        size = capped_size(width, height, cfg.max_side)
        frame_id = f"{self.stem}_{index:06d}"
        rel = f"{IMAGES_DIR}/{frame_id}.jpg"
        self.submit(self.out_dir / rel, frame, size)
        self.result.records.append({
            "frame_id": frame_id, "video": self.result.name, "frame": index,
            "time_s": index / self.fps, "scene": self._scene,
            "width": size[0], "height": size[1], "path": rel,
        })

    def finish(self) -> None:
        self.result.scenes = self._scene + 1 if self.result.decoded else 0


def claimed_frames(path: Path) -> int:
    """The frame count the container claims (no decoding); 0 when it cannot be opened. For the progress bar."""
    cap = cv2.VideoCapture(str(path))
    try:
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if cap.isOpened() else 0
    finally:
        cap.release()


class WorkerPool:
    """Threads for thumbnails, hashes and JPEG writing; at most 4 JPEGs per worker wait (bounded memory)."""

    def __init__(self, cfg: ExtractFramesParams) -> None:
        self.cfg = cfg
        self.pool = ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="frames")
        self.slots = threading.BoundedSemaphore(4 * cfg.workers)
        self.futures: list[Future[None]] = []

    def analyse(self, frame: np.ndarray, on_grid: bool) -> Future[Analysis]:
        """Thumbnail (and phash, for frames on the step grid) computed in the pool."""
        return self.pool.submit(analyse_frame, frame, _hash_size(self.cfg, on_grid))

    def submit(self, path: Path, frame: np.ndarray, size: tuple[int, int]) -> None:
        self.slots.acquire()
        fut = self.pool.submit(write_jpeg, path, frame, size, self.cfg.jpeg_quality)
        fut.add_done_callback(lambda _f: self.slots.release())
        self.futures.append(fut)

    def drain(self) -> None:
        """Wait for every pending write; re-raise the first failure (e.g. disk full)."""
        futures, self.futures = self.futures, []
        for fut in futures:
            fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _hash_size(cfg: ExtractFramesParams, on_grid: bool) -> int:
    """Hash frames on the step grid up front (0 = no hash; scene starts off the grid are hashed on demand)."""
    return cfg.hash_size if on_grid and cfg.dedupe_hamming >= 0 else 0


def _open_video(path: Path, result: VideoResult) -> tuple[cv2.VideoCapture, float, int] | None:
    """(capture, frame rate, frame count the container claims); None, with `result.error` set, if unusable."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        result.error = "cannot be opened (not a video, or corrupt)"
        return None
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    expected = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    if not (math.isfinite(fps) and fps > 0):
        cap.release()
        result.error = "no frame rate in the container"
        return None
    return cap, fps, expected


def _decode_frames(cap: cv2.VideoCapture, fps: float, selector: _Selector, encoder: WorkerPool,
                   progress: Callable[[int], None] | None, offload: bool) -> None:
    """Decode every frame, hand the looked-at ones to `selector` in order; release the capture and wait for
    the encoder whatever happens."""
    cfg, result = selector.cfg, selector.result
    # Frames neither on the step grid nor needed for cut detection are only grabbed (decoded but not
    # converted to BGR): for small videos the conversion costs more than the decoding itself.
    every_frame = cfg.keep_scene_starts
    waiting: deque[tuple[int, np.ndarray, bool, Future[Analysis]]] = deque()
    pending = 0
    try:
        while cap.grab():
            index = result.decoded
            result.decoded += 1
            pending += 1
            on_grid = is_sampled(index, fps, cfg.step_s)
            if on_grid or every_frame:
                ok, frame = cap.retrieve()
                if not ok:
                    result.error = f"frame {index} could not be decoded"
                    break
                if not offload:
                    selector.take(index, frame, on_grid, analyse_frame(frame, _hash_size(cfg, on_grid)))
                else:
                    waiting.append((index, frame, on_grid, encoder.analyse(frame, on_grid)))
                    if len(waiting) > _LAG_FRAMES:
                        i, f, g, fut = waiting.popleft()
                        selector.take(i, f, g, fut.result())
            if progress is not None and pending >= 32:
                progress(pending)
                pending = 0
        while waiting:
            i, f, g, fut = waiting.popleft()
            selector.take(i, f, g, fut.result())
    finally:
        cap.release()
        if progress is not None and pending:
            progress(pending)
        for *_, analysis in waiting:
            analysis.cancel()
        encoder.drain()


def _reject_incomplete(result: VideoResult, expected: int, truncation_tolerance: float, out_dir: Path) -> None:
    """Set `error` for a video that decoded no frame or ended well before its claimed count; a failed video
    keeps no image and no record."""
    if result.error is None and result.decoded == 0:
        result.error = "no decodable frame"
    elif result.error is None and expected and result.decoded < expected * (1 - truncation_tolerance) - 1:
        result.error = f"truncated or corrupt: decoded {result.decoded} of {expected} frames"
    if result.error is not None:
        for record in result.records:
            (out_dir / record["path"]).unlink(missing_ok=True)
        result.records = []
        result.sampled = 0


def extract_video(path: Path, cfg: ExtractFramesParams, out_dir: Path, encoder: WorkerPool,
                  progress: Callable[[int], None] | None = None, truncation_tolerance: float = 0.05,
                  offload: bool = False) -> VideoResult:
    """Decode one video and write its kept frames into `out_dir/images/`.

    A video that cannot be opened, decodes no frame, or ends well before the frame count its container
    claims (truncated or corrupt; the tolerance absorbs containers that only estimate the count) is
    returned with `error` set and leaves no image behind. `offload` moves thumbnails and hashes to the
    pool (decisions then trail decoding by a few frames); the output is the same either way.
    """
    result = VideoResult(name=path.name)
    opened = _open_video(path, result)
    if opened is None:
        return result
    cap, fps, expected = opened
    selector = _Selector(result, path.stem, fps, cfg, out_dir, encoder.submit)
    _decode_frames(cap, fps, selector, encoder, progress, offload)
    selector.finish()
    _reject_incomplete(result, expected, truncation_tolerance, out_dir)
    return result


def extract_frames(videos: Iterable[Path], out_dir: Path | str, cfg: ExtractFramesParams,
                   show_progress: bool = True, offload: bool | None = None) -> ExtractResult:
    """Extract every video into `out_dir/images/`; return the index and metrics (the caller writes them).

    Failed videos are counted and named, the others go on; no usable video at all -> UserError.
    `offload` (see `extract_video`) defaults to True on machines with 4 or more cores.
    """
    if offload is None:
        offload = (os.cpu_count() or 1) >= 4
    videos = list(videos)
    if not videos:
        raise UserError("no videos to extract frames from")
    out_dir = Path(out_dir)
    (out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    total = sum(claimed_frames(v) for v in videos)
    encoder = WorkerPool(cfg)
    results: list[VideoResult] = []
    with tqdm(total=total or None, unit="frame", desc="extract_frames", disable=not show_progress,
              mininterval=0.5) as bar:
        try:
            for video in videos:
                bar.set_postfix_str(video.name, refresh=False)
                results.append(extract_video(video, cfg, out_dir, encoder, progress=bar.update, offload=offload))
        finally:
            encoder.close()
    failed = [r for r in results if r.error is not None]
    if len(failed) == len(results):
        reasons = "; ".join(f"{r.name}: {r.error}" for r in failed)
        raise UserError(f"no decodable video among {len(results)} ({reasons})")
    rows = [rec for r in results for rec in r.records]
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    metrics = {
        "videos": len(results),
        "videos_failed": len(failed),
        "failed_videos": [r.name for r in failed],
        "failure_reasons": {r.name: r.error for r in failed},
        "frames_decoded": sum(r.decoded for r in results if r.error is None),
        "frames_sampled": sum(r.sampled for r in results),
        "frames_kept": len(rows),
        "dropped_duplicates": sum(r.sampled - r.kept for r in results),
        "scenes": sum(r.scenes for r in results if r.error is None),
    }
    return ExtractResult(index=index, metrics=metrics)
