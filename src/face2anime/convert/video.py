"""Video in and out with OpenCV, frame by frame, and the audio track carried over with ffmpeg when asked.

Every decoded frame is written, at the input's size and frame rate, so the output has the same frame count
(variable-frame-rate inputs come out at their average rate). OpenCV writes no audio: with `audio: copy`
the input's audio track is remuxed into the written video by the ffmpeg binary that imageio-ffmpeg ships
(the video stream is copied, not re-encoded); when that is impossible the video is kept without sound
and the report says so.
"""

from __future__ import annotations

import contextlib
import math
import os
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

AUTO_CODECS = {".webm": "VP80"}   # every other container takes MPEG-4 part 2 ('mp4v')
DEFAULT_CODEC = "mp4v"
FALLBACK_AUDIO = {".webm": "libopus"}   # when the track cannot be copied as is; else AAC


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


class VideoSink:
    """An OpenCV VideoWriter for RGB frames at the input's size and rate; fails loudly if it cannot open."""

    def __init__(self, path: Path, info: VideoInfo, codec: str):
        fourcc = AUTO_CODECS.get(path.suffix.lower(), DEFAULT_CODEC) if codec == "auto" else codec
        with _native_stderr_muted():   # OpenCV prints a harmless fourcc/tag notice for some containers (.webm)
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), info.fps,
                                          (info.width, info.height))
        if not self.writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path.suffix} video with codec {fourcc} "
                               "(set convert.video_codec, e.g. mp4v or MJPG)")
        self.size, self.count = (info.width, info.height), 0

    def write(self, rgb: np.ndarray) -> None:
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise RuntimeError(f"frame {self.count} is {rgb.shape[1]}x{rgb.shape[0]}, "
                               f"the video {self.size[0]}x{self.size[1]}")
        self.writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.count += 1

    def close(self) -> None:
        self.writer.release()


def decoded_facts(path: Path | str) -> tuple[int, float, int, int]:
    """(frames actually decoded, fps, width, height) of a written video: what a check of the output compares
    with its input (the container's frame count can differ from what decodes)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    facts = (n, cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
             int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    return facts


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


def add_audio(video_only: Path, source: Path, out: Path) -> str:
    """Write `out` = the video stream of `video_only` + the audio of `source`; returns a short note.

    When the source has no audio, or the track cannot be carried over, `out` is the silent video.
    """
    audio = has_audio(source)
    if not audio:
        shutil.move(video_only, out)
        return "no ffmpeg to copy audio: silent" if audio is None else "no audio track"
    exe = _ffmpeg()
    for codec in ("copy", FALLBACK_AUDIO.get(out.suffix.lower(), "aac")):
        cmd = [exe, "-v", "error", "-y", "-i", str(video_only), "-i", str(source), "-map", "0:v:0",
               "-map", "1:a", "-c:v", "copy", "-c:a", codec, str(out)]
        if subprocess.run(cmd, capture_output=True).returncode == 0 and out.is_file():
            return "audio copied" if codec == "copy" else f"audio re-encoded ({codec})"
    shutil.move(video_only, out)
    return "audio could not be carried over: silent"
