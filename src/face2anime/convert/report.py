"""What a convert run did, input by input, and the one-line summary and listing the command prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

CONVERTED, COPIED, NO_FACE, SKIPPED, FAILED = "converted", "copied", "no face", "skipped", "failed"
FACE_SKIPS_LISTED = 5   # per input; a video can skip a face in every frame


@dataclass
class Outcome:
    """One input: its status, where it went, how many faces (and frames, for a video), and why if not converted."""

    path: Path
    kind: str                 # image | video | '' (not recognised)
    status: str               # converted | copied (no face, written unchanged) | no face (not written) | skipped | failed
    out: Path | None = None
    faces: int = 0
    frames: int = 0
    note: str = ""            # the skip / failure reason, or the video's audio note
    face_skips: list[str] = field(default_factory=list)   # faces the painter could not paint: "face k: why"


@dataclass
class ConvertReport:
    outcomes: list[Outcome]
    out_dir: Path
    mode: str
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)   # seconds per phase: read, detect, crop, generator, ...

    def by_status(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def converted(self) -> list[Outcome]:
        return self.by_status(CONVERTED)

    @property
    def faces(self) -> int:
        return sum(o.faces for o in self.converted)

    @property
    def faces_skipped(self) -> int:
        """Faces found but left unpainted (their points could not condition the painter), over all inputs."""
        return sum(len(o.face_skips) for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 when at least one input was converted, else 1."""
        return 0 if self.converted else 1

    def listing(self) -> list[str]:
        """One line per input that was not converted: no face, skipped or failed, with the reason."""
        lines = []
        for o in self.outcomes:
            painted = "no face painted" if o.face_skips else "no face"
            if o.status == COPIED:
                lines.append(f"  {painted}: {o.path} (copied unchanged)")
            elif o.status == NO_FACE:
                lines.append(f"  {painted}: {o.path} (not written)")
            elif o.status in (SKIPPED, FAILED):
                lines.append(f"  {o.status}: {o.path}: {o.note}")
            elif o.status == CONVERTED and o.kind == "image" and o.note:   # e.g. only the first frame of an APNG
                lines.append(f"  note: {o.path}: {o.note}")
            lines += [f"  face skipped: {o.path}: {why}" for why in o.face_skips[:FACE_SKIPS_LISTED]]
            if len(o.face_skips) > FACE_SKIPS_LISTED:
                lines.append(f"  face skipped: {o.path}: ... and {len(o.face_skips) - FACE_SKIPS_LISTED} more")
        return lines

    def summary(self) -> str:
        """One line: what was converted (pictures, videos, faces, frames, audio), copied, skipped and failed."""
        conv = self.converted
        pics = [o for o in conv if o.kind == "image"]
        vids = [o for o in conv if o.kind == "video"]
        parts = []
        if pics:
            parts.append(f"{_n(len(pics), 'picture')} ({_n(sum(o.faces for o in pics), 'face')})")
        if vids:
            audio = Counter(o.note for o in vids if o.note)
            notes = "; " + ", ".join(f"{k}" if len(vids) == 1 else f"{v} {k}" for k, v in audio.items()) if audio else ""
            parts.append(f"{_n(len(vids), 'video')} ({_n(sum(o.frames for o in vids), 'frame')}, "
                         f"{_n(sum(o.faces for o in vids), 'face')}{notes})")
        head = (f"converted {' and '.join(parts)} into {self.out_dir} ({self.mode})" if conv
                else "nothing converted")
        noted = [o for o in pics if o.note]
        tail = [f"{len(self.by_status(COPIED))} without a face copied unchanged" if self.by_status(COPIED) else "",
                f"{len(self.by_status(NO_FACE))} without a face not written" if self.by_status(NO_FACE) else "",
                _n(self.faces_skipped, "face") + " skipped (not paintable)" if self.faces_skipped else "",
                _n(len(noted), "picture") + " with a note (listed)" if noted else "",
                f"{len(self.by_status(SKIPPED))} skipped", f"{len(self.by_status(FAILED))} failed"]
        return "; ".join([head, *[t for t in tail if t]]) + f" ({self.seconds:.1f} s)"


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"
