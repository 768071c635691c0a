"""A test video with known motion, made offline from the demo photos (no download, same bytes every run).

What a phone video does to a face, in labelled segments: the head still (sensor noise only), a slow pan, a
zoom, a roll, a hard cut to the other photo, then a second face sliding in from the side. The benchmark
(benchmarks/bench_video.py), the tests and scripts/convert_check.py use it: flicker, landmark jitter on the
still part, faces lost or duplicated at the cut and throughput are measured on it. Every frame is the photo
through a known similarity transform plus seeded Gaussian noise (a still camera is never noise-free, and
frame-by-frame detection jitters on exactly this noise).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from face2anime.photos.files import demo_photos, load_photo

SEGMENTS = ("still", "pan", "zoom", "roll", "cut", "enter")


@dataclass(frozen=True)
class MotionClipSpec:
    """Frame size, rate, frames per segment and the noise of the test clip."""

    width: int = 1280         # 720p: the smallest size phones record at
    height: int = 720
    fps: float = 24.0
    frames: dict[str, int] = field(default_factory=lambda: {"still": 24, "pan": 20, "zoom": 20, "roll": 20,
                                                            "cut": 16, "enter": 24})
    noise: float = 2.0        # std of the per-frame Gaussian noise, grey levels
    pan_px: float = 4.0       # pan speed, px per frame
    zoom_to: float = 1.2      # scale at the end of the zoom
    roll_deg: float = 12.0    # roll at the end of the roll
    seed: int = 0

    def scaled(self, factor: float) -> MotionClipSpec:
        """The same clip with every segment `factor` times as long (at least 2 frames each): smoke runs."""
        frames = {k: max(2, round(v * factor)) for k, v in self.frames.items()}
        return MotionClipSpec(self.width, self.height, self.fps, frames, self.noise, self.pan_px, self.zoom_to,
                              self.roll_deg, self.seed)


@dataclass
class MotionClip:
    """The frames (RGB uint8) and where each segment starts; `faces[t]`: how many whole faces frame t shows."""

    frames: list[np.ndarray]
    fps: float
    starts: dict[str, int]
    faces: list[int]

    def segment(self, name: str) -> range:
        """Frame indices of a segment."""
        names = list(self.starts)
        end = self.starts[names[names.index(name) + 1]] if name != names[-1] else len(self.frames)
        return range(self.starts[name], end)

    @property
    def cut(self) -> int:
        """The first frame after the hard cut."""
        return self.starts["cut"]


def _place(photo: np.ndarray, size: tuple[int, int], scale: float, angle: float, shift: tuple[float, float]
           ) -> np.ndarray:
    """The photo, its centre on the frame's centre, scaled to the frame's height x `scale`, rotated, shifted (edge
    pixels repeated where the photo does not reach)."""
    w, h = size
    base = h / photo.shape[0] * scale
    m = cv2.getRotationMatrix2D((photo.shape[1] / 2, photo.shape[0] / 2), angle, base)
    m[:, 2] += np.array([w / 2 + shift[0], h / 2 + shift[1]]) - np.array([photo.shape[1] / 2, photo.shape[0] / 2])
    return cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def make_clip(spec: MotionClipSpec | None = None) -> MotionClip:
    """The test clip's frames: astronaut still / pan / zoom / roll, cut to Grace Hopper, the astronaut enters."""
    spec = spec or MotionClipSpec()
    photos = {p.photo_id: load_photo(p.path, 0) for p in demo_photos()}
    first, second = photos["astronaut"], photos["grace_hopper"]
    size, n = (spec.width, spec.height), spec.frames
    rng = np.random.default_rng(spec.seed)
    frames: list[np.ndarray] = []
    faces: list[int] = []
    starts: dict[str, int] = {}
    # the astronaut's face sits high in her photo: frame it (scale 1.3, shifted down) as a phone would
    unit = spec.height / 360   # offsets below are for a 360 px high frame
    a = dict(scale=1.3, angle=0.0, shift=(0.0, 60.0 * unit))

    def add(image: np.ndarray, n_faces: int) -> None:
        noisy = image.astype(np.float32) + rng.normal(0.0, spec.noise, image.shape).astype(np.float32)
        frames.append(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))
        faces.append(n_faces)

    starts["still"] = len(frames)
    still = _place(first, size, **a)
    for _ in range(n["still"]):
        add(still, 1)
    starts["pan"] = len(frames)
    for k in range(1, n["pan"] + 1):
        add(_place(first, size, a["scale"], 0.0, (a["shift"][0] + spec.pan_px * k, a["shift"][1])), 1)
    pan_end = (a["shift"][0] + spec.pan_px * n["pan"], a["shift"][1])
    starts["zoom"] = len(frames)
    for k in range(1, n["zoom"] + 1):
        s = a["scale"] * (1.0 + (spec.zoom_to - 1.0) * k / n["zoom"])
        add(_place(first, size, s, 0.0, (pan_end[0] * s / a["scale"], pan_end[1] * s / a["scale"])), 1)
    s_end = a["scale"] * spec.zoom_to
    shift_end = (pan_end[0] * spec.zoom_to, pan_end[1] * spec.zoom_to)
    starts["roll"] = len(frames)
    for k in range(1, n["roll"] + 1):
        add(_place(first, size, s_end, spec.roll_deg * k / n["roll"], shift_end), 1)
    starts["cut"] = len(frames)
    b = dict(scale=1.0, angle=0.0, shift=(0.0, 40.0 * unit))
    for k in range(n["cut"]):
        add(_place(second, size, b["scale"], 0.0, (b["shift"][0] - 0.5 * unit * k, b["shift"][1])), 1)
    starts["enter"] = len(frames)
    # the astronaut's face (an elliptical cut-out, 40 % of the frame's height) slides in from the right edge
    patch_h = round(0.45 * spec.height)
    face = cv2.resize(first[40:300, 120:380], (patch_h, patch_h), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:patch_h, 0:patch_h]
    r = np.hypot((xx - patch_h / 2) / (0.46 * patch_h), (yy - patch_h / 2) / (0.5 * patch_h))
    alpha = np.clip((1.0 - r) / 0.1, 0.0, 1.0)[..., None].astype(np.float32)
    background = _place(second, size, b["scale"], 0.0, (b["shift"][0] - 0.5 * unit * n["cut"], b["shift"][1]))
    x_end = spec.width - patch_h - 4
    y0 = (spec.height - patch_h) // 2
    for k in range(1, n["enter"] + 1):
        x0 = round(spec.width - (spec.width - x_end) * min(1.0, k / (0.6 * n["enter"])))
        canvas = background.astype(np.float32)
        visible = spec.width - x0
        region = canvas[y0:y0 + patch_h, x0:x0 + min(patch_h, visible)]
        sub = alpha[:, :region.shape[1]]
        region[:] = region * (1 - sub) + face[:, :region.shape[1]].astype(np.float32) * sub
        add(np.clip(canvas + 0.5, 0, 255).astype(np.uint8), 2 if x0 <= x_end else 1)
    return MotionClip(frames, spec.fps, starts, faces)


def write_clip(clip: MotionClip, path: Path | str, fourcc: str = "mp4v", audio: bool = True) -> Path:
    """The clip as a video file (OpenCV), with a 440 Hz tone as its audio track when `audio` and imageio-ffmpeg's
    ffmpeg is there (else silent)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    silent = path.with_name(f"{path.stem}.silent{path.suffix}") if audio else path
    h, w = clip.frames[0].shape[:2]
    writer = cv2.VideoWriter(str(silent), cv2.VideoWriter_fourcc(*fourcc), clip.fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {silent}")
    for f in clip.frames:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    if not audio:
        return path
    try:
        import imageio_ffmpeg
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - no ffmpeg binary: the clip stays silent
        silent.rename(path)
        return path
    seconds = len(clip.frames) / clip.fps
    subprocess.run([exe, "-v", "error", "-y", "-i", str(silent), "-f", "lavfi", "-i",
                    f"sine=frequency=440:duration={seconds:.3f}", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                    "-c:a", "aac", "-shortest", str(path)], check=True)
    silent.unlink()
    return path
