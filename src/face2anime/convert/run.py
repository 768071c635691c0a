"""convert_paths: pictures, folders and videos -> anime faces, every face of every picture or frame.

Faces wait until `batch_size` of them (across pictures, or across a video's frames) can go through the
generator in one call; pictures are then finished in input order. A bad input is an outcome with a
reason (skipped), an unexpected error on one input is a failure of that input only: the run goes on.
A face the painter cannot paint (its points cannot condition it) is a listed skip of that face: it is left
as it was (paste) or not written (crops); a picture none of whose faces could be painted is handled as a
picture without a face. Every output file appears whole or not at all (`face2anime.io.atomic_path`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from tqdm import tqdm

from face2anime.convert.faces import FaceFinder, PhotoFace
from face2anime.convert.inputs import Item, collect
from face2anime.convert.model import TrainedModel, read_model
from face2anime.convert.outputs import OutputGuard, keeps_alpha, prepare_out_dir, write_picture
from face2anime.convert.paste import paste_faces
from face2anime.convert.report import CONVERTED, COPIED, FAILED, NO_FACE, SKIPPED, ConvertReport, Outcome
from face2anime.convert.settings import ConvertSettings, load_settings
from face2anime.convert.stylize import FacePainter, make_painter
from face2anime.convert.track import FaceTracker, FlowBlend
from face2anime.convert.video import (Retiming, VideoReader, VideoSink, VideoSkip, VideoWriteError, add_audio,
                                      check_video, container_duration, frame_times, retiming)
from face2anime.device import resolve_device
from face2anime.errors import UserError
from face2anime.io import atomic_path, write_image
from face2anime.photos.files import PhotoExtras, PhotoSkip, load_photo, read_extras
from face2anime.runtime import set_threads

QUALITY_FLAGS = {".jpg": "IMWRITE_JPEG_QUALITY", ".jpeg": "IMWRITE_JPEG_QUALITY", ".webp": "IMWRITE_WEBP_QUALITY"}


@dataclass
class _Picture:
    """A picture (or video frame) waiting for its faces to come back from the generator."""

    key: Any
    rgb: np.ndarray
    faces: list[PhotoFace]
    crops: np.ndarray
    styled: np.ndarray | None = None
    skipped: dict[int, str] = field(default_factory=dict)   # face index -> why the painter could not paint it
    extras: PhotoExtras | None = None   # pictures: alpha, ICC, EXIF, frame count (carried to the output)

    @property
    def painted(self) -> list[int]:
        """Indices of the faces that were painted."""
        return [k for k in range(len(self.faces)) if k not in self.skipped]

    def paste(self, feather: float, mask: str) -> np.ndarray:
        """The picture with its painted faces pasted back (skipped faces stay as they were)."""
        return paste_faces(self.rgb, self.styled[self.painted], [self.faces[k].square for k in self.painted],
                           feather, mask)


class _NoFaceAbort(Exception):
    """Raised inside an atomic write to drop a video that had no face (that could be painted) at all."""

    def __init__(self, face_skips: list[str]):
        super().__init__("no face")
        self.face_skips = face_skips


class FaceBatcher:
    """Gathers pictures until `batch_size` faces (or pictures) wait, stylises them in one call, returns them in order.

    `stylize(crops, points)` -> (styled, {index in the call: why that face was skipped}) (`FacePainter`)."""

    def __init__(self, stylize: FacePainter, batch_size: int, timer):
        self.stylize, self.batch_size, self.timer = stylize, batch_size, timer
        self.waiting: list[_Picture] = []

    def add(self, picture: _Picture) -> list[_Picture]:
        self.waiting.append(picture)
        n_faces = sum(len(p.faces) for p in self.waiting)
        return self.flush() if n_faces >= self.batch_size or len(self.waiting) >= self.batch_size else []

    def flush(self) -> list[_Picture]:
        done, self.waiting = self.waiting, []
        with_faces = [p for p in done if len(p.faces)]
        if with_faces:
            points = [FaceFinder.points(p.faces) for p in with_faces]
            with self.timer("generator"):
                styled, skipped = self.stylize(np.concatenate([p.crops for p in with_faces]),
                                               None if any(q is None for q in points) else np.concatenate(points))
            k = 0
            for p in with_faces:
                n = len(p.faces)
                p.styled = styled[k:k + n]
                p.skipped = {i - k: why for i, why in skipped.items() if k <= i < k + n}
                k += n
        return done


class Converter:
    """One convert run's machinery: the face finder, the generator and the output rules."""

    def __init__(self, model: TrainedModel, settings: ConvertSettings, finder: FaceFinder, stylizer: FacePainter,
                 out_dir: Path, progress: bool = True, guard: OutputGuard | None = None):
        self.model, self.s, self.finder, self.stylize = model, settings, finder, stylizer
        self.out_dir, self.progress = Path(out_dir), progress
        self.guard = guard or OutputGuard(self.out_dir)   # which targets may be written; what this run wrote
        self.timings: dict[str, float] = {}
        # videos: when a list, each frame appends [(track id, square, 68 points)] of its faces (benchmarks)
        self.face_log: list[list[tuple[int, np.ndarray, np.ndarray | None]]] | None = None

    # ------------------------------------------------------------------ bookkeeping
    @contextlib.contextmanager
    def timer(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] = self.timings.get(phase, 0.0) + time.perf_counter() - start

    def run(self, items: list[Item]) -> list[Outcome]:
        """Every item once, in order; pictures batched together, each video on its own."""
        outcomes: dict[int, Outcome] = {}
        batcher = FaceBatcher(self.stylize, self.s.batch_size, self.timer)
        bar = tqdm(items, desc="convert", unit="file", disable=not self.progress, dynamic_ncols=True)
        for index, item in enumerate(bar):
            if item.kind == "video":
                self._finish_pictures(batcher.flush(), outcomes)
                refusal = self._refusal(item)
                outcomes[index] = (Outcome(item.path, item.kind, SKIPPED, note=refusal) if refusal
                                   else self._guarded(item, self._video))
                if outcomes[index].status in (CONVERTED, COPIED) and outcomes[index].out is not None:
                    self.guard.record(outcomes[index].out)
                continue
            picture = self._guarded_read(index, item, outcomes)
            if picture is not None:
                self._finish_pictures(batcher.add(picture), outcomes)
        self._finish_pictures(batcher.flush(), outcomes)
        return [outcomes[i] for i in range(len(items))]

    def _guarded(self, item: Item, work) -> Outcome:
        """`work(item)`, with an unexpected error turned into a failure of this input only."""
        try:
            return work(item)
        except UserError as err:
            return Outcome(item.path, item.kind, FAILED, note=str(err))
        except Exception as err:  # noqa: BLE001 - one bad input must not stop the run
            return Outcome(item.path, item.kind, FAILED, note=_one_line(err))

    # ------------------------------------------------------------------ pictures
    def _guarded_read(self, index: int, item: Item, outcomes: dict[int, Outcome]) -> _Picture | None:
        """The picture with its faces found and cropped, or None with its outcome recorded."""
        if self._overwrites_input(item):
            outcomes[index] = Outcome(item.path, item.kind, SKIPPED, note="the output would overwrite the input")
            return None
        refusal = self._refusal(item)
        if refusal:
            outcomes[index] = Outcome(item.path, item.kind, SKIPPED, note=refusal)
            return None
        try:
            with self.timer("read"):
                rgb = load_photo(item.path, self.s.max_pixels)
                extras = read_extras(item.path)
            with self.timer("detect"):
                faces = self.finder.find(rgb)
            with self.timer("crop"):
                crops = self.finder.crops(rgb, faces)
        except PhotoSkip as skip:
            outcomes[index] = Outcome(item.path, item.kind, SKIPPED, note=_picture_reason(skip))
            return None
        except Exception as err:  # noqa: BLE001
            outcomes[index] = Outcome(item.path, item.kind, FAILED, note=_one_line(err))
            return None
        return _Picture((index, item), rgb, faces, crops, extras=extras)

    def _finish_pictures(self, pictures: list[_Picture], outcomes: dict[int, Outcome]) -> None:
        for p in pictures:
            index, item = p.key
            outcomes[index] = self._guarded(item, lambda it, p=p: self._write_picture(it, p))

    def _write_picture(self, item: Item, p: _Picture) -> Outcome:
        face_skips = [f"face {k}: {why}" for k, why in sorted(p.skipped.items())]
        if not p.painted:
            outcome = self._no_face(item)
            outcome.face_skips = face_skips
            return outcome
        target = self.out_dir / item.rel_out
        names = ([target.with_name(f"{target.stem}_face{k}.png") for k in p.painted] if self.s.mode == "crops"
                 else [target])
        refusal = next(filter(None, map(self.guard.refusal, names)), None)
        if refusal:
            return Outcome(item.path, item.kind, SKIPPED, note=refusal, face_skips=face_skips)
        with self.timer("paste+write"):
            if self.s.mode == "crops":
                for name, k in zip(names, p.painted):
                    write_image(name, p.styled[k][..., ::-1].copy())
                    self.guard.record(name)
            else:   # on the colours under the alpha where the output keeps it: exact outside the faces
                base = p.extras.rgb if keeps_alpha(target, p.extras) else p.rgb
                pasted = paste_faces(base, p.styled[p.painted], [p.faces[k].square for k in p.painted],
                                     self.s.feather, self.s.mask)
                write_picture(target, pasted, p.extras, self._quality(target))
                self.guard.record(target)
        frames = p.extras.frames if p.extras is not None else 1
        note = f"only the first of {frames} frames/pages converted" if frames > 1 else ""
        return Outcome(item.path, item.kind, CONVERTED, out=names[0], faces=len(p.painted), note=note,
                       face_skips=face_skips)

    def _no_face(self, item: Item) -> Outcome:
        """copy: the input's bytes, unchanged, where its output would go; skip: nothing written."""
        if self.s.no_face == "skip":
            return Outcome(item.path, item.kind, NO_FACE)
        target = self.out_dir / item.rel_out
        refusal = self.guard.refusal(target)
        if refusal:
            return Outcome(item.path, item.kind, SKIPPED, note=refusal)
        with atomic_path(target) as tmp:
            shutil.copyfile(item.path, tmp)
        self.guard.record(target)
        return Outcome(item.path, item.kind, COPIED, out=target)

    def _quality(self, path: Path) -> list[int]:
        import cv2

        flag = QUALITY_FLAGS.get(path.suffix.lower())
        return [getattr(cv2, flag), self.s.jpeg_quality] if flag else []

    def _refusal(self, item: Item) -> str | None:
        """Why the item's main output may not be written (an existing folder, a file convert did not write, an
        output of this run), checked before any work on it; None when it may."""
        target = self.out_dir / item.rel_out
        if self.s.mode != "crops":
            return self.guard.refusal(target)
        if item.kind == "video":
            return self.guard.refusal(target.with_suffix(""), folder=True)
        return self.guard.refusal(target.with_name(f"{target.stem}_face0.png"))

    def _overwrites_input(self, item: Item) -> bool:
        return (self.out_dir / item.rel_out).resolve() == item.path.resolve()

    # ------------------------------------------------------------------ videos
    def _video(self, item: Item) -> Outcome:
        if self._overwrites_input(item):
            return Outcome(item.path, item.kind, SKIPPED, note="the output would overwrite the input")
        try:
            reader = VideoReader(item.path)
        except VideoSkip as skip:
            return Outcome(item.path, item.kind, SKIPPED, note=skip.reason)
        crops_mode = self.s.mode == "crops"
        face_skips: list[str] = []
        target = self.out_dir / (item.rel_out.with_suffix("") if crops_mode else item.rel_out)
        try:
            with atomic_path(target, is_dir=crops_mode) as tmp:
                if crops_mode:
                    tmp.mkdir(parents=True, exist_ok=True)
                    frames, faces = self._video_frames(item, reader, face_skips, crops_dir=tmp)
                    note = ""
                else:
                    silent = tmp.with_name(f"silent{tmp.suffix}") if self.s.audio == "copy" else tmp
                    with self.timer("decode"):   # variable frame rate: each frame kept at its own time
                        timing = retiming(frame_times(item.path), reader.info.fps, container_duration(item.path))
                    frames, faces = self._video_frames(item, reader, face_skips, sink_path=silent, timing=timing)
                    written = sum(timing.repeats(i) for i in range(frames)) if timing else frames
                    out_info = dataclasses.replace(reader.info, fps=timing.fps) if timing else reader.info
                    # published only when it decodes back to every frame written, at the size and rate written
                    with self.timer("check"):
                        check_video(silent, written, out_info)
                    with self.timer("audio"):
                        note = (add_audio(silent, item.path, tmp, check=lambda out: check_video(
                            out, written, out_info, "the video with its audio")) if self.s.audio == "copy"
                            else "audio dropped")
                    if timing:
                        note = (f"variable frame rate kept: written at a constant {timing.fps:.4g} fps, each "
                                f"frame repeated until the next one's time; {note}")
        except VideoWriteError as err:   # nothing published, the temp removed
            return Outcome(item.path, item.kind, FAILED, note=err.reason, face_skips=face_skips)
        except _NoFaceAbort as abort:
            outcome = self._no_face(item)
            outcome.frames, outcome.face_skips = reader.info.frames, abort.face_skips
            return outcome
        return Outcome(item.path, item.kind, CONVERTED, out=target, faces=faces, frames=frames, note=note,
                       face_skips=face_skips)

    def _video_frames(self, item: Item, reader: VideoReader, face_skips: list[str], sink_path: Path | None = None,
                      crops_dir: Path | None = None, timing: Retiming | None = None) -> tuple[int, int]:
        """(frames written, faces stylised), skipped faces appended to `face_skips`; raises _NoFaceAbort when
        no frame had a face that could be painted."""
        info = dataclasses.replace(reader.info, fps=timing.fps) if timing else reader.info
        sink = VideoSink(sink_path, info, self.s.video_codec) if sink_path is not None else None
        batcher = FaceBatcher(self.stylize, self.s.batch_size, self.timer)
        tracker = FaceTracker(self.finder, self.s, reader.info.fps) if self.s.video_tracking else None
        blend = FlowBlend(self.s.flow_blend, self.s.scene_cut) if self.s.flow_blend > 0 and sink is not None else None
        frames = faces = 0

        def emit(done: list[_Picture]) -> None:
            nonlocal frames, faces
            with self.timer("paste+write"):
                for p in done:
                    faces += len(p.painted)
                    face_skips.extend(f"frame {p.key} face {k}: {why}" for k, why in sorted(p.skipped.items()))
                    if sink is not None:
                        out = p.paste(self.s.feather, self.s.mask) if p.painted else p.rgb
                        sink.write(out if blend is None else blend(p.rgb, out),
                                   timing.repeats(p.key) if timing else 1)
                    else:
                        for k in p.painted:
                            write_image(crops_dir / f"f{p.key:06d}_face{k}.png", p.styled[k][..., ::-1].copy())
                    frames += 1

        bar = tqdm(total=reader.info.frames or None, desc=item.path.name, unit="frame", leave=False,
                   disable=not self.progress, dynamic_ncols=True)
        try:
            for index, rgb in enumerate(reader.frames()):
                if tracker is None:   # every face of every frame detected anew (video_tracking: false)
                    with self.timer("detect"):
                        found = self.finder.find(rgb)
                    ids = list(range(len(found)))
                else:
                    with self.timer("track"):
                        tracked = tracker.step(rgb)
                    found, ids = [t.face for t in tracked], [t.track_id for t in tracked]
                if self.face_log is not None:
                    self.face_log.append([(i, f.square, f.points68) for i, f in zip(ids, found)])
                with self.timer("crop"):
                    crops = self.finder.crops(rgb, found)
                emit(batcher.add(_Picture(index, rgb, found, crops)))
                bar.update()
            emit(batcher.flush())
        finally:
            bar.close()
            if sink is not None:
                sink.close()
        if faces == 0:
            raise _NoFaceAbort(face_skips)
        return frames, faces


def _picture_reason(skip: PhotoSkip) -> str:
    text = {"not an image": "not an image (corrupt or another format)", "truncated": "truncated picture",
            "unreadable": "unreadable picture"}.get(skip.reason, skip.reason)
    return f"{text}: {skip.detail}" if skip.detail else text


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def convert_paths(inputs: list[Path | str] | Path | str, out_dir: Path | str, model: str | Path | None = None, *,
                  params: Path | str | dict | None = None, generator: nn.Module | None = None,
                  progress: bool = True, overwrite: bool = False, **overrides: Any) -> ConvertReport:
    """Convert pictures, folders and videos into `out_dir`; the Python face of `face2anime convert`.

    `model`: a generator folder or a variant name (default: params' convert.model). `params`: a params.yaml
    path or the `convert` section as a dict (default: ./params.yaml, else the repository's). `overrides`:
    any convert setting (mode='crops', batch_size=4, ...). `generator`: a module to use instead of the
    folder's weights (tests, benchmarks); the folder still says how faces are framed (and, for a painter,
    how its input is made). `overwrite`: replace existing files convert did not write (never folders).
    Bad inputs do not raise: see the returned report's outcomes.
    """
    start = time.perf_counter()
    settings = load_settings(params, {"model": None if model is None else str(model), **overrides})
    trained = read_model(settings.model)
    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not inputs:
        raise UserError("no input given: name pictures, folders or videos")
    device = resolve_device(settings.device, "convert.device")
    set_threads(settings.threads)
    out_dir = prepare_out_dir(out_dir)   # made, probed with a file, stale temps cleaned: before any detection
    guard = OutputGuard(out_dir, overwrite)
    items, skips = collect(inputs, out_dir)
    outcomes_first = [Outcome(s.path, "", SKIPPED, note=s.reason) for s in skips]
    converter = None
    if items:
        painter = make_painter(trained.path, device, settings.batch_size, settings.threads, settings.amp, generator)
        converter = Converter(trained, settings, FaceFinder(trained, settings), FacePainter(painter), out_dir,
                              progress, guard)
        try:
            outcomes = converter.run(items)
        finally:
            guard.save()   # also when interrupted: what was published is known as convert's next time
    else:
        outcomes = []
    return ConvertReport(outcomes_first + outcomes, out_dir, settings.mode, time.perf_counter() - start,
                         converter.timings if converter else {})


def convert_picture(rgb: np.ndarray, finder: FaceFinder, stylize: FacePainter, batch_size: int,
                    timer=None) -> _Picture:
    """One picture already in memory through convert's own steps (find, crop, stylise through `FaceBatcher`):
    the web page's entry (`face2anime serve`), so the page and the command cannot drift apart. The result's
    `paste(feather, mask)`, `styled`, `painted` and `skipped` are what `Converter` writes for a file."""
    timer = timer or (lambda phase: contextlib.nullcontext())
    with timer("detect"):
        faces = finder.find(rgb)
    with timer("crop"):
        crops = finder.crops(rgb, faces)
    batcher = FaceBatcher(stylize, batch_size, timer)
    done = batcher.add(_Picture(0, rgb, faces, crops)) or batcher.flush()
    return done[0]
