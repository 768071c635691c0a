"""Issue 28, pictures and the run as a whole: outputs never overwrite each other, an existing folder or a file
convert did not write is never replaced silently, `-o` inside an input does not nest, duplicates run once,
stale temps of killed runs are cleaned, the output folder is checked before any work, long names work, and
what a picture carries (alpha, ICC, EXIF, frames) is kept or said. Tiny random generators built into tmp_path
(as tests/test_convert.py does); no pipeline outputs needed."""

from __future__ import annotations

import io
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from face2anime.convert.cli import main
from face2anime.convert.faces import FaceFinder
from face2anime.convert.inputs import collect
from face2anime.convert.model import read_model
from face2anime.convert.run import convert_paths
from face2anime.convert.settings import load_settings
from face2anime.gan.models import build_generator, generator_record, save_generator
from face2anime.io import _HOST, atomic_path
from face2anime.params import AnimeGeneratorParams
from face2anime.photos.files import demo_photos, load_photo
from face2anime.settings import load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
MANIFEST = ".face2anime-convert.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random animegan generator folder with the framing record train_gan writes."""
    f, p = load_params("framing", PARAMS), load_params("photo_landmarks", PARAMS)
    torch.manual_seed(0)
    arch = ("animegan", AnimeGeneratorParams(width=4, blocks=1, expansion=2))
    config = {"generator": generator_record(*arch), "variant": "test-random", "image_size": 112,
              "input_range": [-1, 1], "channels": "RGB", "framing": {"margin": f["margin"], "y_shift": f["y_shift"]},
              "photo_landmarks": {k: p[k] for k in ("mapping", "detector", "upsample", "det_threshold", "max_side")}}
    path = tmp_path_factory.mktemp("model") / "g"
    save_generator(path, build_generator(arch[1], 112), config)
    return path


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """A portrait dlib finds one face in (the public-domain demo photo of Eileen Collins)."""
    return {p.photo_id: load_photo(p.path, 0) for p in demo_photos()}["astronaut"]


def _png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def _video(path: Path, frames: list[np.ndarray], fps: float = 5.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    return path


def _convert(inputs, out, model_dir, **kw):
    return convert_paths(inputs, out, model_dir, params=PARAMS, progress=False, **kw)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _outside_faces(model_dir, rgb: np.ndarray) -> np.ndarray:
    """True outside every face's framing square (1 px margin)."""
    outside = np.ones(rgb.shape[:2], bool)
    for f in FaceFinder(read_model(model_dir), load_settings(PARAMS)).find(rgb):
        x0, y0, side = f.square
        outside[max(0, int(y0) - 1):int(np.ceil(y0 + side)) + 1, max(0, int(x0) - 1):int(np.ceil(x0 + side)) + 1] = 0
    return outside


# ---------------------------------------------------------------- item 2: outputs of one run never clash
def test_a_video_crops_folder_does_not_replace_a_folder_of_the_same_name(tmp_path, model_dir, face):
    _png(tmp_path / "clip" / "a.png", face)
    _video(tmp_path / "clip.mp4", [face, face])
    items, _ = collect([tmp_path / "clip", tmp_path / "clip.mp4"], tmp_path / "o")
    assert [i.rel_out.as_posix() for i in items] == ["clip/a.png", "clip_2.mp4"]
    report = _convert([tmp_path / "clip", tmp_path / "clip.mp4"], tmp_path / "o", model_dir, mode="crops")
    assert [o.status for o in report.outcomes] == ["converted", "converted"], report.listing()
    assert (tmp_path / "o" / "clip" / "a_face0.png").is_file()                  # the picture's crop survived
    assert sorted(p.name for p in (tmp_path / "o" / "clip_2").iterdir()) == ["f000000_face0.png", "f000001_face0.png"]


def test_names_are_unique_by_stem_also_against_folders(tmp_path):
    (tmp_path / "d" / "x").mkdir(parents=True)
    (tmp_path / "d" / "x" / "a.jpg").write_bytes(b"1")
    (tmp_path / "d" / "x.mp4").write_bytes(b"1")
    (tmp_path / "x.mp4").write_bytes(b"1")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "b.jpg").write_bytes(b"1")
    items, skips = collect([tmp_path / "d", tmp_path / "x.mp4", tmp_path / "x"], tmp_path / "out")
    assert [i.rel_out.as_posix() for i in items] == ["d/x/a.jpg", "d/x_2.mp4", "x.mp4", "x_2/b.jpg"] and not skips


# ---------------------------------------------------------------- item 3: existing folders and foreign files
def test_a_folder_named_like_an_output_is_never_deleted(tmp_path, capsys, model_dir, face):
    src = _png(tmp_path / "a.png", face)
    (tmp_path / "o" / "a.png").mkdir(parents=True)
    (tmp_path / "o" / "a.png" / "notes").write_text("mine")
    for extra in ([], ["--overwrite"]):
        code, out, err = _cli(capsys, "convert", src, "-o", tmp_path / "o", "--model", model_dir, "-q", *extra)
        assert code == 1 and "Traceback" not in err
        assert "existing folder that convert did not write" in out, out
        assert (tmp_path / "o" / "a.png" / "notes").read_text() == "mine"


def test_a_file_convert_did_not_write_needs_overwrite(tmp_path, capsys, model_dir, face):
    src = _png(tmp_path / "a.png", face)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "a.png").write_bytes(b"my own file")
    code, out, _ = _cli(capsys, "convert", src, "-o", tmp_path / "o", "--model", model_dir, "-q")
    assert code == 1 and "--overwrite replaces it" in out
    assert (tmp_path / "o" / "a.png").read_bytes() == b"my own file"
    code, out, _ = _cli(capsys, "convert", src, "-o", tmp_path / "o", "--model", model_dir, "-q", "--overwrite")
    assert code == 0 and cv2.imread(str(tmp_path / "o" / "a.png")) is not None
    # a re-run replaces convert's own outputs without --overwrite; a changed one is the user's again
    code, out, _ = _cli(capsys, "convert", src, "-o", tmp_path / "o", "--model", model_dir, "-q")
    assert code == 0, out
    (tmp_path / "o" / "a.png").write_bytes(b"edited by hand")
    code, out, _ = _cli(capsys, "convert", src, "-o", tmp_path / "o", "--model", model_dir, "-q")
    assert code == 1 and (tmp_path / "o" / "a.png").read_bytes() == b"edited by hand"


# ---------------------------------------------------------------- item 4: -o inside an input, duplicates, -o ""
def test_output_equal_to_the_input_folder_does_not_nest(tmp_path, model_dir, face):
    d = tmp_path / "d"
    _png(d / "a.png", face)
    for _ in range(3):
        report = _convert([d], d, model_dir)
        assert [o.status for o in report.outcomes] == ["converted"], report.listing()
    files = sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if not p.name.startswith("."))
    assert files == ["a.png", "d", "d/a.png"]


def test_the_same_input_given_three_times_is_converted_once(tmp_path, model_dir, face):
    src = _png(tmp_path / "a.png", face)
    report = _convert([src, src, tmp_path / "." / "a.png"], tmp_path / "o", model_dir)
    assert [o.status for o in report.outcomes] == ["skipped", "skipped", "converted"]
    assert all("converted once" in o.note for o in report.outcomes[:2])
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if not p.name.startswith(".")) == ["a.png"]


def test_empty_output_folder_is_one_line(tmp_path, capsys, model_dir, face, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _png(tmp_path / "a.png", face)
    code, out, err = _cli(capsys, "convert", "a.png", "-o", "", "--model", model_dir, "-q")
    assert code == 1 and err.count("\n") == 1 and "output folder is empty" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


# ---------------------------------------------------------------- item 8: temps, writability, long names
def test_stale_temps_of_killed_runs_are_cleaned(tmp_path, model_dir, face):
    out = tmp_path / "o"
    (out / "sub").mkdir(parents=True)
    dead = 4194304 + 77   # above Linux's largest pid_max: no such process
    stale_dir = out / f".{dead}@{_HOST}.a.png.abcd1234.tmp"
    stale_dir.mkdir()
    (stale_dir / "a.png").write_bytes(b"half")
    stale_file = out / "sub" / f".{dead}@{_HOST}.probe.x1y2z3.tmp"
    stale_file.write_bytes(b"")
    old = time.time() - 3600
    for p in (stale_dir, stale_file):
        os.utime(p, (old, old))
    keep = [out / ".keep", out / f".{dead}@otherhost.a.png.abcd1234.tmp", out / f".{os.getpid()}@{_HOST}.b.tmp"]
    for p in keep:
        p.write_bytes(b"")
        os.utime(p, (old, old))
    _convert([_png(tmp_path / "a.png", face)], out, model_dir)
    assert not stale_dir.exists() and not stale_file.exists()
    assert all(p.exists() for p in keep)   # not ours (other host, not a temp) or a live writer's


def test_unwritable_output_folder_is_found_before_any_work(tmp_path, model_dir, face, monkeypatch):
    import face2anime.convert.run as run

    def no_work(*a, **k):
        raise AssertionError("the generator was loaded before the output folder was checked")

    monkeypatch.setattr(run, "make_painter", no_work)
    (tmp_path / "file").write_text("x")
    with pytest.raises(run.UserError, match="cannot write the output folder"):
        _convert([_png(tmp_path / "a.png", face)], tmp_path / "file" / "out", model_dir)


def test_names_up_to_the_file_system_limit_work(tmp_path, model_dir, face):
    name = "p" * 251 + ".png"   # 255 bytes: NAME_MAX
    report = _convert([_png(tmp_path / name, face)], tmp_path / "o", model_dir)
    assert report.outcomes[0].status == "converted", report.listing()
    assert (tmp_path / "o" / name).is_file()
    with atomic_path(tmp_path / "o" / ("q" * 255), is_dir=True) as work:   # a folder too
        (work / "x").write_bytes(b"1")
    assert (tmp_path / "o" / ("q" * 255) / "x").is_file()


# ---------------------------------------------------------------- item 9: what a picture carries
def test_alpha_is_kept_and_pixels_outside_faces_are_exact_in_png(tmp_path, model_dir, face):
    h, w = face.shape[:2]
    alpha = np.full((h, w), 255, np.uint8)
    alpha[:40] = 0          # a transparent band
    alpha[:, :30] = 128     # and a half-transparent one
    rgba = np.dstack([face, alpha])
    rgba[:40, :, :3] = (10, 200, 30)   # colours under full transparency must survive too
    src = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(src)
    rgb_src = tmp_path / "b.png"
    Image.fromarray(face).save(rgb_src)
    report = _convert([src, rgb_src], tmp_path / "o", model_dir)
    assert [o.status for o in report.outcomes] == ["converted", "converted"], report.listing()
    out = np.asarray(Image.open(tmp_path / "o" / "a.png"))
    assert out.shape == (h, w, 4) and np.array_equal(out[..., 3], alpha)
    outside = _outside_faces(model_dir, face)
    assert np.array_equal(out[..., :3][outside], rgba[..., :3][outside])
    assert not np.array_equal(out[..., :3], rgba[..., :3])   # the face was painted
    out_b = np.asarray(Image.open(tmp_path / "o" / "b.png"))
    assert np.array_equal(out_b[outside], face[outside])


def test_icc_profile_and_exif_are_carried_to_jpeg(tmp_path, model_dir, face):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"     # Make
    exif[0x0112] = 1             # Orientation
    src = tmp_path / "a.jpg"
    Image.fromarray(face).save(src, quality=95, icc_profile=icc, exif=exif.tobytes())
    report = _convert([src], tmp_path / "o", model_dir)
    assert report.outcomes[0].status == "converted", report.listing()
    with Image.open(tmp_path / "o" / "a.jpg") as im:
        assert im.info.get("icc_profile") == icc
        assert im.getexif().get(0x010F) == "TestCam" and 0x0112 not in im.getexif()
        assert im.size == (face.shape[1], face.shape[0])


def test_multi_frame_pictures_are_a_counted_note(tmp_path, capsys, model_dir, face):
    src = tmp_path / "anim.png"
    Image.fromarray(face).save(src, save_all=True, append_images=[Image.fromarray(face[::-1].copy())])
    assert Image.open(src).n_frames == 2
    code, out, _ = _cli(capsys, "convert", src, "-o", tmp_path / "o", "--model", model_dir, "-q")
    assert code == 0 and "note: " in out and "only the first of 2 frames/pages converted" in out
    assert "1 picture with a note" in out


def test_folder_links_and_dangling_links_are_listed(tmp_path, model_dir, face):
    d = tmp_path / "d"
    _png(d / "a.png", face)
    _png(tmp_path / "elsewhere" / "b.png", face)
    (d / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (d / "gone.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nothing.jpg")
    items, skips = collect([d, tmp_path / "dangling.jpg"], tmp_path / "o")
    assert [i.path.name for i in items] == ["a.png"]
    reasons = {s.path.name: s.reason for s in skips}
    assert reasons.keys() == {"linked", "gone.png", "dangling.jpg"}
    assert reasons["linked"].startswith("link to a folder") and reasons["gone.png"].startswith("dangling link")


# ---------------------------------------------------------------- item 1: a broken video is never published
def _demo_model(model_dir: Path) -> Path:
    """The trained demo generator where the pipeline made it, else the tiny random one."""
    trained = ROOT / "models" / "gan" / "animegan-landmark"
    return trained if (trained / "config.json").is_file() else model_dir


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The short test clip with one face in most frames and an audio track (31 frames, 268 KB converted)."""
    from face2anime.photos.clip import MotionClipSpec, make_clip, write_clip
    spec = MotionClipSpec(width=480, height=360).scaled(0.25)
    return write_clip(make_clip(spec), tmp_path_factory.mktemp("clip") / "face.mp4")


def _convert_in_subprocess(argv: list, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "face2anime.convert.cli", "convert", *map(str, argv), "-q"],
                          capture_output=True, text=True, preexec_fn=preexec, timeout=600)


def test_a_file_size_limit_gives_no_output_and_one_failed_line(tmp_path, model_dir, clip):
    """`ulimit -f 40`: OpenCV's writer fails silently; the 40 KB of broken mp4 must not be published."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (40 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    out = tmp_path / "o"
    proc = _convert_in_subprocess([clip, "-o", out, "--model", _demo_model(model_dir)], preexec=limit)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "Traceback" not in text and "WARN" not in text, text
    assert "failed: " in text and "face.mp4: the file-size limit (ulimit -f" in text and "1 failed" in text, text
    assert not (out / "face.mp4").exists()
    assert [p.name for p in out.iterdir() if p.name != MANIFEST] == [], list(out.iterdir())   # no temp left


def test_a_full_disk_gives_no_output_and_one_failed_line(tmp_path, model_dir, clip):
    """A small tmpfs with 64 KB free: the write stops with the reason, no flood of OpenCV warnings."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): " + mount.stderr.decode(errors="replace").strip())
    try:
        st = os.statvfs(disk)
        (disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 64 * 1024))
        out = disk / "o"
        proc = _convert_in_subprocess([clip, "-o", out, "--model", _demo_model(model_dir)])
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0, text
        assert "Traceback" not in text and "WARN" not in text and len(text.splitlines()) <= 3, text
        assert "failed: " in text and "face.mp4: no space left on the output's disk" in text, text
        assert not (out / "face.mp4").exists()
        assert [p.name for p in out.iterdir() if p.name != MANIFEST] == [] if out.exists() else True
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ---------------------------------------------------------------- item 7: variable frame rate keeps its timing
def _ffmpeg_exe() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


def _frame_ids(path: Path) -> list[tuple[float, int]]:
    """(time, id) of each decoded frame: the id is the 4-bit code of the black/white blocks in the top left."""
    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        code = sum(int(bgr[4:20, b * 24 + 4:b * 24 + 20].mean() > 128) << b for b in range(4))
        out.append((cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, code))
    cap.release()
    return out


def _audio_seconds(path: Path) -> float:
    """How long the audio track plays, decoded to the end by ffmpeg."""
    run = subprocess.run([_ffmpeg_exe(), "-i", str(path), "-map", "0:a", "-f", "null", "-"],
                         capture_output=True, text=True)
    h, m, s = re.findall(r"time=(\d+):(\d+):([\d.]+)", run.stderr)[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_variable_frame_rate_keeps_its_timing_and_the_audio_in_sync(tmp_path, capsys, model_dir, face):
    """8 frames of 40 ms then 5 of 400 ms, with a tone: written at the average rate (today's bug) frame 7
    would show at 1.3 s instead of 0.28 s, and the video would end 0.8 s before its audio."""
    small = cv2.resize(face, (256, round(face.shape[0] * 256 / face.shape[1]) // 2 * 2))
    durations = [0.04] * 8 + [0.4] * 5
    lines = []
    for i, d in enumerate(durations):
        frame = small.copy()
        for b in range(4):
            frame[:24, b * 24:(b + 1) * 24] = 255 if (i >> b) & 1 else 0
        _png(tmp_path / f"f{i:02d}.png", frame)
        lines += [f"file 'f{i:02d}.png'", f"duration {d}"]
    lines.append(f"file 'f{len(durations) - 1:02d}.png'")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    src = tmp_path / "vfr.mp4"
    subprocess.run([_ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(tmp_path / "list.txt"),
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={sum(durations)}", "-fps_mode", "vfr",
                    "-c:v", "mpeg4", "-q:v", "3", "-c:a", "aac", "-shortest", str(src)], check=True)
    before = _frame_ids(src)
    assert [i for _, i in before] == list(range(len(durations)))
    assert before[7][0] == pytest.approx(0.28, abs=0.01) and before[8][0] == pytest.approx(0.32, abs=0.01)

    code, out, _ = _cli(capsys, "convert", src, "-o", tmp_path / "o", "--model", _demo_model(model_dir), "-q")
    assert code == 0 and "variable frame rate kept" in out and "audio copied" in out, out
    result = tmp_path / "o" / "vfr.mp4"
    fps = cv2.VideoCapture(str(result)).get(cv2.CAP_PROP_FPS)
    after = _frame_ids(result)
    first: dict[int, float] = {}
    for t, i in after:
        first.setdefault(i, t)
    assert sorted(first) == list(range(len(durations)))   # every frame shown, in order
    assert [i for _, i in after] == sorted(i for _, i in after)
    worst = max(abs(first[i] - t) for t, i in before)
    assert worst <= min(1.0 / fps, 0.1) + 1e-6, (worst, fps)
    video_seconds = after[-1][0] + 1.0 / fps
    assert video_seconds == pytest.approx(sum(durations), abs=1.0 / fps)
    assert _audio_seconds(result) == pytest.approx(video_seconds, abs=0.1)
