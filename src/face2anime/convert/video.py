"""Video in and out with OpenCV, frame by frame, and the audio track carried over with ffmpeg when asked.

Every decoded frame is written, at the input's size and frame rate, so the output has the same frame count.
A variable-frame-rate input (its frames' timestamps stray more than half a frame from a constant rate) is
written at a constant rate fine enough for its shortest frame interval, each frame repeated until the next
one's time, so every frame keeps its time (within one output frame) and the audio stays in sync. OpenCV writes no audio: with `audio: copy`
the input's audio track is remuxed into the written video by the ffmpeg binary that imageio-ffmpeg ships
(the video stream is copied, not re-encoded); when that is impossible the video is kept without sound
and the report says so.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# libav's own messages ("moov atom not found" ...) would interleave with the report, which gives the reason
# in one line; read when OpenCV first opens a video. Set the variable to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

MAX_VFR_FPS = 60.0   # the constant rate a variable-rate input is written at: its shortest interval, at most this
AUTO_CODECS = {".webm": "VP80"}   # every other container takes MPEG-4 part 2 ('mp4v')
DEFAULT_CODEC = "mp4v"
FALLBACK_AUDIO = {".webm": "libopus"}   # when the track cannot be copied as is; else AAC


class VideoWriteError(Exception):
    """The output video could not be written whole; `reason` is the one line the report gives."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class VideoSkip(Exception):
    """The file cannot be read as a video; `reason` is the listed skip reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    frames: int   # the container's estimate (progress bar only): the written count is what was decoded


class VideoReader:
    """Frames of a video as RGB uint8 arrays; opening checks that it decodes at least one frame."""

    def __init__(self, path: Path):
        self.path = path
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise VideoSkip("unreadable video (not a video, or a format this OpenCV cannot decode)")
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise VideoSkip("unreadable video (no frame could be decoded)")
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not math.isfinite(fps) or fps <= 0:
            self.cap.release()
            raise VideoSkip("unreadable video (no frame rate)")
        self._first = first
        self.info = VideoInfo(fps=fps, width=first.shape[1], height=first.shape[0],
                              frames=max(0, int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)))

    def frames(self) -> Iterator[np.ndarray]:
        try:
            frame = self._first
            while frame is not None:
                yield np.ascontiguousarray(frame[..., ::-1])
                ok, frame = self.cap.read()
                frame = frame if ok else None
        finally:
            self.cap.release()


def frame_times(path: Path | str) -> list[float]:
    """Each frame's presentation time in seconds (one decoding pass)."""
    cap = cv2.VideoCapture(str(path))
    times = []
    while cap.grab():
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    cap.release()
    return times


@dataclass(frozen=True)
class Retiming:
    """How a variable-frame-rate input is written at a constant `fps`: frame i fills output frames
    slots[i] .. slots[i+1]-1 (never fewer than one)."""
    fps: float
    slots: tuple[int, ...]

    def repeats(self, index: int) -> int:
        return self.slots[index + 1] - self.slots[index] if index + 1 < len(self.slots) else 1


def container_duration(path: Path | str) -> float | None:
    """The file's duration in seconds as ffmpeg reads it (None: no ffmpeg, or none given)."""
    exe = _ffmpeg()
    if exe is None:
        return None
    probe = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True, errors="replace")
    found = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", probe.stderr)
    return int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3]) if found else None


def retiming(times: list[float], fps: float, duration: float | None = None) -> Retiming | None:
    """None when writing each frame once at `fps` keeps every frame within half a frame of its own time.

    The last frame lasts until `duration` (the file's, so that video and audio end together), else for the
    typical interval."""
    if len(times) < 2 or not all(math.isfinite(t) for t in times):
        return None
    t0 = times[0]
    if max(abs(t - t0 - i / fps) for i, t in enumerate(times)) <= 0.5 / fps:
        return None
    steps = np.diff(np.asarray(times))
    positive = steps[steps > 1e-6]
    if positive.size == 0:
        return None
    rate = max(fps, min(1.0 / float(positive.min()), max(fps, MAX_VFR_FPS)))
    slots: list[int] = []
    for t in times:
        j = round((t - t0) * rate)
        slots.append(max(j, slots[-1] + 1) if slots else 0)
    end = duration - t0 if duration is not None and duration > times[-1] else times[-1] - t0 + np.median(positive)
    slots.append(max(slots[-1] + 1, round(float(end) * rate)))
    return Retiming(rate, tuple(slots))


class VideoSink:
    """An OpenCV VideoWriter for RGB frames at the input's size and rate; fails loudly if it cannot open.

    VideoWriter.write fails silently (a full disk, a file-size limit): each write checks that the file can
    still grow and stops with the reason, and the caller decodes the closed file back (`check_video`).
    """

    def __init__(self, path: Path, info: VideoInfo, codec: str):
        fourcc = AUTO_CODECS.get(path.suffix.lower(), DEFAULT_CODEC) if codec == "auto" else codec
        with _native_stderr_muted():   # OpenCV prints a harmless fourcc/tag notice for some containers (.webm)
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), info.fps,
                                          (info.width, info.height))
        if not self.writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path.suffix} video with codec {fourcc} "
                               "(set convert.video_codec, e.g. mp4v or MJPG)")
        self.path, self.size, self.count = path, (info.width, info.height), 0
        # OpenCV warns once per frame it failed to write ("Failed to write frame"): the report says it once
        self._log_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

    def write(self, rgb: np.ndarray, repeats: int = 1) -> None:
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise RuntimeError(f"frame {self.count} is {rgb.shape[1]}x{rgb.shape[0]}, "
                               f"the video {self.size[0]}x{self.size[1]}")
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        for _ in range(repeats):
            full = write_limit(self.path)
            if full:
                raise VideoWriteError(f"{full} after {self.count} frames")
            self.writer.write(bgr)
            self.count += 1

    def close(self) -> None:
        try:
            self.writer.release()
        finally:
            cv2.utils.logging.setLogLevel(self._log_level)


def write_limit(path: Path) -> str | None:
    """Why `path` cannot grow any more (a file-size limit reached, no space left on its disk), or None."""
    try:
        size = path.stat().st_size if path.exists() else 0
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and size >= soft:
            return f"the file-size limit (ulimit -f, {soft} bytes) was reached"
        disk = os.statvfs(path.parent)
        free = disk.f_bfree if os.geteuid() == 0 else disk.f_bavail   # root may write into reserved blocks
        if free == 0:
            return "no space left on the output's disk"
    except OSError:
        return None
    return None


@dataclass(frozen=True)
class VideoFacts:
    """What a written video decodes to (the container's own counts can differ from what decodes)."""
    frames: int
    fps: float
    width: int
    height: int
    times: tuple[float, ...]   # each decoded frame's presentation time, seconds


def video_facts(path: Path | str) -> VideoFacts:
    cap = cv2.VideoCapture(str(path))
    times = []
    while cap.read()[0]:
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    facts = VideoFacts(len(times), cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                       int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), tuple(times))
    cap.release()
    return facts


def check_video(path: Path, frames: int, info: VideoInfo, what: str = "the written video") -> None:
    """Raise VideoWriteError unless `path` decodes to `frames` frames at the size and rate of `info`."""
    got = video_facts(path)
    problem = None
    if got.frames != frames:
        problem = f"{what} decodes to {got.frames} of {frames} frames"
    elif (got.width, got.height) != (info.width, info.height):
        problem = f"{what} is {got.width}x{got.height}, not {info.width}x{info.height}"
    elif not math.isfinite(got.fps) or abs(got.fps - info.fps) > 0.01 * info.fps:
        problem = f"{what} plays at {got.fps:g} fps, not {info.fps:g}"
    elif frames and abs(got.times[-1] - (frames - 1) / info.fps) > 1.0 / info.fps:
        problem = f"{what} lasts {got.times[-1] + 1 / info.fps:.2f} s, not {frames / info.fps:.2f} s"
    if problem:
        full = write_limit(path)
        raise VideoWriteError(f"{full}: {problem}" if full else problem)


def decoded_facts(path: Path | str) -> tuple[int, float, int, int]:
    """(frames actually decoded, fps, width, height) of a written video: what a check of the output compares
    with its input (the container's frame count can differ from what decodes)."""
    f = video_facts(path)
    return f.frames, f.fps, f.width, f.height


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Silence what native code writes to file descriptor 2 (the writer's failure is reported by isOpened)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - not installed, or no binary for this platform
        return None


def has_audio(path: Path) -> bool | None:
    """Whether `path` has an audio stream (None: no ffmpeg to tell)."""
    exe = _ffmpeg()
    if exe is None:
        return None
    probe = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True, errors="replace")
    return any("Audio:" in line for line in probe.stderr.splitlines() if "Stream #" in line)


def add_audio(video_only: Path, source: Path, out: Path, check=None) -> str:
    """Write `out` = the video stream of `video_only` + the audio of `source`; returns a short note.

    When the source has no audio, or the track cannot be carried over, `out` is the silent video. `check(out)`
    (raising VideoWriteError) is run on each remuxed file: a remux that wrote a broken file is not kept.
    """
    audio = has_audio(source)
    if not audio:
        shutil.move(video_only, out)
        return "no ffmpeg to copy audio: silent" if audio is None else "no audio track"
    exe = _ffmpeg()
    why = ""
    for codec in ("copy", FALLBACK_AUDIO.get(out.suffix.lower(), "aac")):
        cmd = [exe, "-v", "error", "-y", "-i", str(video_only), "-i", str(source), "-map", "0:v:0",
               "-map", "1:a", "-c:v", "copy", "-c:a", codec, str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if done.returncode == 0 and out.is_file():
            try:
                if check is not None:
                    check(out)
                return "audio copied" if codec == "copy" else f"audio re-encoded ({codec})"
            except VideoWriteError as err:
                why = err.reason
        full = write_limit(out)
        out.unlink(missing_ok=True)
        if full:   # the disk or the file-size limit: another codec does not help
            why = why if why.startswith(full) else full
            break
    shutil.move(video_only, out)
    return f"audio could not be carried over ({why}): silent" if why else "audio could not be carried over: silent"
