"""face2anime convert / export: paste-back geometry, several faces, videos, bad inputs, settings, the model
folder contract with train_gan, ONNX / TorchScript parity, and the SPADE painter through the same path (its
40 points per face, a face it cannot paint as a listed skip, its `conditioning` export). No pipeline outputs
needed: generators are built with random weights into tmp_path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from face2anime.convert.cli import main
from face2anime.convert.export import export_generator
from face2anime.convert.faces import FaceFinder, PhotoFace
from face2anime.convert.inputs import collect
from face2anime.convert.model import read_model
from face2anime.convert.paste import face_mask, paste_faces
from face2anime.convert.run import convert_paths
from face2anime.convert.settings import find_params_file, load_settings
from face2anime.convert.video import decoded_facts
from face2anime.convert.video import has_audio
from face2anime.errors import UserError
from face2anime.demo.character import sample_character
from face2anime.demo.face import FaceState, build_face
from face2anime.demo.geometry import Pose
from face2anime.gan.models import build_generator, generator_record, save_generator
from face2anime.gan.painting import load_painter
from face2anime.landmarks.dlib68 import DlibLandmarker
from face2anime.landmarks.framing import crop_image, square_to_crop_matrix
from face2anime.landmarks.schema import FACE40_LOWER_LIDS, anime_to_face40, dlib_to_face40
from face2anime.params import (AnimeGeneratorParams, CartoonGeneratorParams, ConditioningParams, RoughParams,
                               SpadeGeneratorParams)
from face2anime.photos.files import demo_photos, load_photo
from face2anime.settings import load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
SMALL_G = ("animegan", AnimeGeneratorParams(width=4, blocks=1, expansion=2))   # (model, generator settings)
TINY_SPADE = SpadeGeneratorParams(width=4, blocks=3, hidden=4, noise=True)
COND112 = ConditioningParams(size=112, rough=RoughParams(median_before=3, spatial_radius=8.0, color_radius=30.0,
                                                         median_after=3), fill_dilate=1, fill_radius=3.0, line_width=1,
                             flat_skin=True)
LID_SHIFT = 8.8


def _record() -> dict:
    """What train_gan writes into config.json about the photos' framing (from the repository's params)."""
    f = load_params("framing", PARAMS)
    p = load_params("photo_landmarks", PARAMS)
    return {"framing": {"margin": f["margin"], "y_shift": f["y_shift"]},
            "photo_landmarks": {k: p[k] for k in ("mapping", "detector", "upsample", "det_threshold", "max_side")}}


def _save_model(path: Path, arch: tuple = SMALL_G, record: dict | None = None, seed: int = 0, **config_kw) -> Path:
    torch.manual_seed(seed)
    g = build_generator(arch[1], 112)
    config = {"generator": generator_record(*arch), "variant": "test-random", "image_size": 112, "input_range": [-1, 1],
              "channels": "RGB", **(_record() if record is None else record), **config_kw}
    save_generator(path, g, config)
    return path


def _anime_mean_shape() -> list:
    """40 points of a demo-renderer anime face framed in a 112 px crop: big, low-set eyes."""
    face = build_face(sample_character(np.random.default_rng(3), "c0"), FaceState(Pose(56.0, 47.0, 34.0, 0.0)))
    return anime_to_face40(face.points28, face.contour17).tolist()


def _save_painter(path: Path, seed: int = 0, lid_shift: float | None = LID_SHIFT) -> Path:
    """A tiny random SPADE painter folder at 112 px, as train_gan writes one (framing, photo landmarks with the
    lower-lid shift, the painter record)."""
    torch.manual_seed(seed)
    record = _record()
    if lid_shift is not None:
        record["photo_landmarks"]["lower_lid_shift"] = lid_shift
    config = {"generator": generator_record("spade", TINY_SPADE), "variant": "test-spade", "image_size": 112,
              "input_range": [-1, 1], "channels": "RGB", **record,
              "painter": {"conditioning": COND112.model_dump(), "shape_move": 0.5,
                          "anime_mean_shape": _anime_mean_shape()}}
    save_generator(path, build_generator(TINY_SPADE, 112), config)
    return path


class Constant(nn.Module):
    """A 'generator' that paints every crop one colour: shows where faces were pasted."""

    def __init__(self, rgb: tuple[float, float, float]):
        super().__init__()
        self.register_buffer("colour", torch.tensor(rgb).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.colour.expand_as(x).clone()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("model") / "g")


@pytest.fixture(scope="module")
def painter_dir(tmp_path_factory) -> Path:
    return _save_painter(tmp_path_factory.mktemp("painter") / "spade")


@pytest.fixture(scope="module")
def demo() -> dict[str, np.ndarray]:
    return {p.photo_id: load_photo(p.path, 0) for p in demo_photos()}


def _png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[..., ::-1].copy())
    return path


def _read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def _convert(inputs, out, model_dir, **kw):
    return convert_paths(inputs, out, model_dir, params=PARAMS, progress=False, **kw)


# ---------------------------------------------------------------- paste-back geometry
def _square_diffs(model_dir, pic: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|out - pic| outside the one face's framing square (1 px margin), and in its central 40 %."""
    (face,) = FaceFinder(read_model(model_dir), load_settings(PARAMS)).find(pic)
    x0, y0, side = face.square
    outside = np.ones(pic.shape[:2], bool)
    outside[max(0, int(y0) - 1):int(np.ceil(y0 + side)) + 1, max(0, int(x0) - 1):int(np.ceil(x0 + side)) + 1] = False
    d = np.abs(out.astype(int) - pic.astype(int))
    return d[outside], d[int(y0 + 0.3 * side):int(y0 + 0.7 * side), int(x0 + 0.3 * side):int(x0 + 0.7 * side)]


def test_paste_of_the_unchanged_crop_gives_the_picture_back():
    """A smooth picture, cropped by the framing rule and pasted back untouched: equal outside the square,
    within rounding inside; half a pixel off would be ~10x the error."""
    yy, xx = np.mgrid[0:300, 0:320].astype(np.float64)
    pic = np.stack([128 + 90 * np.sin(xx / 9.0) * np.cos(yy / 11.0), 128 + 90 * np.cos((xx + yy) / 13.0),
                    128 + 60 * np.sin(yy / 7.0)], axis=-1).round().astype(np.uint8)
    square = np.array([80.3, 60.7, 150.4])   # 150 px at 112: no low-pass (rule: only past 1.5x)
    crop = crop_image(pic, square, 112)
    out = paste_faces(pic, crop[None], [square], feather=0.1, shape="square")
    d = np.abs(out.astype(int) - pic.astype(int))
    x0, y0, side = square
    outside = np.ones(pic.shape[:2], bool)
    outside[int(y0) - 1:int(np.ceil(y0 + side)) + 1, int(x0) - 1:int(np.ceil(x0 + side)) + 1] = False
    assert d[outside].max() == 0
    inner = d[int(y0 + 0.2 * side):int(y0 + 0.8 * side), int(x0 + 0.2 * side):int(x0 + 0.8 * side)]
    shifted = paste_faces(pic, crop[None], [square + [0.5, 0, 0]], feather=0.1, shape="square")
    d_shift = np.abs(shifted.astype(int) - pic.astype(int))[int(y0 + 0.2 * side):int(y0 + 0.8 * side),
                                                            int(x0 + 0.2 * side):int(x0 + 0.8 * side)]
    assert inner.mean() < 1.0 and d_shift.mean() > 5 * inner.mean()


def test_small_faces_are_shrunk_before_the_warp():
    pic = np.full((120, 120, 3), 50, np.uint8)
    styled = np.full((1, 112, 112, 3), 200, np.uint8)
    out = paste_faces(pic, styled, [np.array([40.0, 40.0, 30.0])], feather=0.0, shape="square")
    assert (out[45:65, 45:65] == 200).all() and (out[:38] == 50).all() and (out[72:] == 50).all()


def test_mask_is_one_inside_zero_outside_and_smooth():
    m = face_mask(112, 0.15, "ellipse")
    assert m[56, 56] == 1.0 and m[0, 0] == 0.0 and m[56, 0] < 0.01
    row = m[56, :56]
    assert np.all(np.diff(row) >= 0) and 0 < row[8] < 1     # ramp rises monotonically over ~17 px
    sq = face_mask(112, 0.0, "square")
    assert sq.min() == 1.0


def test_identity_generator_returns_the_picture(tmp_path, model_dir, demo):
    """End to end with G = identity: outside the face squares the bytes are the input's; inside, the
    crop-and-paste round trip (112 px and back) costs a few grey levels."""
    src = _png(tmp_path / "in" / "astronaut.png", demo["astronaut"])
    report = _convert([src], tmp_path / "out", model_dir, generator=nn.Identity())
    assert report.exit_code == 0 and report.faces == 1
    out = _read(tmp_path / "out" / "astronaut.png")
    pic = demo["astronaut"]
    outside, inner = _square_diffs(model_dir, pic, out)
    assert outside.max() == 0
    assert 0 < inner.mean() < 5.0


# ---------------------------------------------------------------- faces
def test_find_faces_follows_find_face(demo):
    """The all-faces path is photo_landmarks' path: its largest face is find_face's, also when downscaled."""
    for max_side in (1024, 300):
        lm = DlibLandmarker(max_side=max_side)
        for rgb in demo.values():
            faces = lm.find_faces(rgb)
            one = lm.find_face(rgb)
            assert len(faces) == one.n_faces
            assert np.array_equal(faces[0].points68, one.points68) and faces[0].detection == one.detection


def test_several_faces_in_one_picture_are_all_pasted(tmp_path, model_dir, demo):
    g = demo["grace_hopper"]
    g = cv2.resize(g, (round(g.shape[1] * 512 / g.shape[0]), 512), interpolation=cv2.INTER_AREA)
    both = np.hstack([g, demo["astronaut"]])
    src = _png(tmp_path / "in" / "two.png", both)
    report = _convert([src], tmp_path / "out", model_dir, generator=Constant((-1.0, 1.0, -1.0)))
    assert report.exit_code == 0 and report.faces == 2
    out = _read(tmp_path / "out" / "two.png")
    finder = FaceFinder(read_model(model_dir), load_settings(PARAMS))
    faces = finder.find(both)
    assert len(faces) == 2 and {int(f.square[0] > g.shape[1]) for f in faces} == {0, 1}   # one in each half
    for f in faces:
        cx, cy = (int(f.square[0] + f.square[2] / 2), int(f.square[1] + f.square[2] / 2))
        assert tuple(out[cy, cx]) == (0, 255, 0)
    crops = _convert([src], tmp_path / "crops", model_dir, mode="crops")
    assert crops.faces == 2 and sorted(p.name for p in (tmp_path / "crops").glob("[!.]*")) == ["two_face0.png",
                                                                                            "two_face1.png"]
    assert _read(tmp_path / "crops" / "two_face0.png").shape == (112, 112, 3)


# ---------------------------------------------------------------- videos
def _video(path: Path, frames: list[np.ndarray], fps: float, fourcc: str = "mp4v") -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(np.ascontiguousarray(f[..., ::-1]))
    writer.release()
    return path


def test_video_keeps_frame_count_size_and_rate(tmp_path, model_dir, demo):
    a = demo["astronaut"][:, 16:496]   # 480 x 512: width != height catches swapped sizes
    frames = [np.roll(a, 4 * i, axis=1) for i in range(4)] + [np.full_like(a, 90)]   # last frame: no face
    (tmp_path / "in").mkdir()
    src = _video(tmp_path / "in" / "clip.mp4", frames, fps=10.0)
    report = _convert([src], tmp_path / "out", model_dir, batch_size=3)
    (o,) = report.outcomes
    assert report.exit_code == 0 and o.status == "converted", report.listing()
    assert o.frames == 5 and o.faces == 4 and o.note == "no audio track"
    assert decoded_facts(tmp_path / "out" / "clip.mp4") == (5, 10.0, 480, 512)
    assert "1 video (5 frames, 4 faces; no audio track)" in report.summary()
    assert not [p for p in (tmp_path / "out").rglob("*")   # no temp files left (the outputs' record is not one)
                if p.name.startswith(".") and p.name != ".face2anime-convert.json"]
    crops = _convert([src], tmp_path / "crops", model_dir, mode="crops")
    assert crops.exit_code == 0 and crops.faces == 4
    assert sorted(p.name for p in (tmp_path / "crops" / "clip").iterdir()) == [f"f{i:06d}_face0.png" for i in range(4)]


@pytest.mark.slow
def test_video_audio_track_is_carried_over(tmp_path, model_dir, demo):
    import imageio_ffmpeg

    silent = _video(tmp_path / "silent.mp4", [demo["astronaut"]] * 3, fps=6.0)
    src = tmp_path / "in" / "talk.mkv"
    src.parent.mkdir()
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(silent), "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=0.5", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                    str(src)], check=True)
    report = _convert([src], tmp_path / "out", model_dir)
    assert report.outcomes[0].note == "audio copied"
    assert has_audio(tmp_path / "out" / "talk.mkv")
    assert decoded_facts(tmp_path / "out" / "talk.mkv")[:2] == (3, 6.0)
    dropped = _convert([src], tmp_path / "out2", model_dir, audio="drop")
    assert dropped.outcomes[0].note == "audio dropped" and not has_audio(tmp_path / "out2" / "talk.mkv")


# ---------------------------------------------------------------- bad inputs and the command line
def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", ["corrupt", "no_face", "unknown_ext", "empty_folder", "missing", "bad_video",
                                  "no_face_video"])
def test_bad_input_is_a_listed_skip_and_exit_1(tmp_path, capsys, model_dir, case):
    path = {"corrupt": tmp_path / "broken.jpg", "no_face": tmp_path / "wall.png", "unknown_ext": tmp_path / "notes.txt",
            "empty_folder": tmp_path / "empty", "missing": tmp_path / "nope.png", "bad_video": tmp_path / "clip.mp4",
            "no_face_video": tmp_path / "blank.avi"}[case]
    if case == "corrupt":
        path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 50)
    elif case == "no_face":
        _png(path, np.full((120, 160, 3), 128, np.uint8))
    elif case == "unknown_ext":
        path.write_text("not a picture")
    elif case == "empty_folder":
        path.mkdir()
    elif case == "bad_video":
        path.write_bytes(b"not a video at all")
    elif case == "no_face_video":
        _video(path, [np.full((48, 64, 3), 100, np.uint8)] * 3, fps=5.0, fourcc="MJPG")
    code, out, err = _cli(capsys, "convert", path, "-o", tmp_path / "out", "--model", model_dir,
                          "--params", PARAMS, "-q")
    assert code == 1 and "Traceback" not in out + err
    listed = [line for line in out.splitlines() if str(path) in line]
    assert len(listed) == 1, out
    reasons = {"corrupt": ("truncated picture", "not an image"), "no_face": ("no face",),
               "unknown_ext": ("unknown extension .txt",), "empty_folder": ("empty folder",), "missing": ("not found",),
               "bad_video": ("unreadable video",), "no_face_video": ("no face",)}[case]
    assert any(r in listed[0] for r in reasons), listed[0]
    assert out.splitlines()[-1].startswith("face2anime convert: nothing converted")
    if case in ("no_face", "no_face_video"):   # default no_face: copy -> written unchanged
        assert (tmp_path / "out" / path.name).read_bytes() == path.read_bytes()


def test_mixed_inputs_are_counted(tmp_path, capsys, model_dir, demo):
    folder = tmp_path / "in"
    _png(folder / "face.png", demo["astronaut"])
    _png(folder / "sub" / "wall.png", np.full((80, 80, 3), 200, np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (folder / "readme.md").write_text("x")
    (folder / ".hidden.png").write_bytes(b"")
    code, out, err = _cli(capsys, "convert", folder, "-o", tmp_path / "out", "--model", model_dir,
                          "--params", PARAMS, "-q", "--no-face", "skip")
    assert code == 0 and err == ""
    summary = out.splitlines()[-1]
    assert "converted 1 picture (1 face)" in summary and "1 without a face not written" in summary
    assert "2 skipped" in summary and "0 failed" in summary
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == ["in/face.png"]


def test_model_without_framing_record_is_refused(tmp_path, capsys, demo):
    old = _save_model(tmp_path / "old", record={})
    with pytest.raises(UserError, match="dvc repro"):
        read_model(old)
    src = _png(tmp_path / "a.png", demo["astronaut"])
    code, out, err = _cli(capsys, "convert", src, "-o", tmp_path / "out", "--model", old, "--params", PARAMS)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "re-run `dvc repro`" in err


def test_model_config_with_bad_values_is_one_line(tmp_path):
    """config.json is read back under the rules its settings were trained by: a bad value is one line naming it."""
    bad_size = _save_model(tmp_path / "size", image_size=0)
    with pytest.raises(UserError, match=r"config.json: image_size = 0: must be an integer >= 16 and <= 4096$"):
        read_model(bad_size)
    bad_width = _save_model(tmp_path / "width")
    cfg = json.loads((bad_width / "config.json").read_text())
    (bad_width / "config.json").write_text(json.dumps({**cfg, "generator": {**cfg["generator"], "width": 0}}))
    with pytest.raises(UserError, match=r"config.json: generator.width = 0: must be an integer >= 1$"):
        read_model(bad_width)
    assert read_model(_save_model(tmp_path / "good")).generator == SMALL_G[1]


@pytest.mark.slow
def test_console_command_runs_without_traceback(tmp_path, model_dir):
    (tmp_path / "broken.jpg").write_bytes(b"junk")
    run = subprocess.run([sys.executable, "-m", "face2anime.convert.cli", "convert", str(tmp_path / "broken.jpg"),
                          "-o", str(tmp_path / "out"), "--model", str(model_dir), "--params", str(PARAMS), "-q"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    assert "skipped" in run.stdout and "not an image" in run.stdout


# ---------------------------------------------------------------- settings and inputs
def test_params_section_is_checked(tmp_path):
    base = load_params("convert", PARAMS)
    assert load_settings(PARAMS).batch_size == base["batch_size"]
    for key, value, words in [("feather", 2, "feather"), ("batch_size", 0, "batch_size"), ("mode", "cartoon", "mode"),
                              ("upsample", "x", "upsample"), ("amp", "yes", "amp"), ("video_codec", "h", "video_codec")]:
        with pytest.raises(UserError, match=words):
            load_settings({**base, key: value})
    with pytest.raises(UserError, match="unknown"):
        load_settings({**base, "fether": 0.1})
    with pytest.raises(UserError, match="convert.mask: missing"):
        load_settings({k: v for k, v in base.items() if k != "mask"})
    assert load_settings(PARAMS, {"feather": 0.3}).feather == 0.3


def test_default_params_file_is_the_repository_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_params_file() == PARAMS
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"convert": load_params("convert", PARAMS)}))
    assert find_params_file().resolve() == (tmp_path / "params.yaml").resolve()


def test_inputs_expand_and_get_unique_outputs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"1")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_bytes(b"1")
    (tmp_path / "a" / "out").mkdir()
    (tmp_path / "a" / "out" / "old.jpg").write_bytes(b"1")   # the output folder inside an input is left out
    items, skips = collect([tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.png", tmp_path / "a"], tmp_path / "a" / "out")
    assert [i.rel_out.as_posix() for i in items] == ["x.jpg", "x_2.png", "a/x.jpg"] and not skips


# ---------------------------------------------------------------- the train_gan contract
def test_train_gan_records_what_convert_needs(tmp_path, load_stage, monkeypatch):
    stage = load_stage("train_gan")
    monkeypatch.chdir(ROOT)
    record = stage.photo_framing()
    model = read_model(_save_model(tmp_path / "m", record=record))
    assert model.framing.margin == load_params("framing")["margin"] and model.mapping == record["photo_landmarks"]["mapping"]
    declared = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train_gan"]["params"])
    assert "framing" in declared
    assert {f"photo_landmarks.{k}" for k in record["photo_landmarks"]} <= declared


# ---------------------------------------------------------------- export
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("arch", [SMALL_G, ("cartoongan", CartoonGeneratorParams(width=4, blocks=1, upsample="resize"))],
                         ids=["animegan", "cartoongan"])
def test_onnx_and_torchscript_match_pytorch(tmp_path, arch):
    import onnxruntime as ort

    from face2anime.gan.models import load_generator

    model = read_model(_save_model(tmp_path / "m", arch=arch, seed=1))
    onnx_file = export_generator(model, "onnx", tmp_path / "g.onnx")
    ts_file = export_generator(model, "torchscript", tmp_path / "g.pt")
    g = load_generator(model.path)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["face2anime_config"])["framing"] == model.config["framing"]
    extra = {"config.json": ""}
    scripted = torch.jit.load(str(ts_file), _extra_files=extra)
    assert json.loads(extra["config.json"])["image_size"] == 112
    rng = torch.Generator().manual_seed(0)
    for batch in (1, 3):
        x = torch.rand(batch, 3, 112, 112, generator=rng) * 2 - 1
        with torch.no_grad():
            ref = g(x).numpy()
            ts = scripted(x).numpy()
        onnx_out = session.run(None, {"image": x.numpy()})[0]
        assert onnx_out.shape == ref.shape == ts.shape
        assert np.abs(onnx_out - ref).max() <= 1e-4 and np.abs(ts - ref).max() <= 1e-4


# ---------------------------------------------------------------- the SPADE painter through convert
def test_face_points_are_the_training_photos_points112(painter_dir, model_dir, demo):
    """A face's 40 crop points: dlib's points mapped 68 -> 40 and through the crop's own transform (what the
    crop shows them at), with the recorded lower-lid shift added to the lower lids only."""
    finder = FaceFinder(read_model(painter_dir), load_settings(PARAMS))
    pic = demo["astronaut"]
    (face,) = finder.find(pic)
    (raw,) = finder.landmarker.find_faces(pic)
    m = square_to_crop_matrix(face.square, 112)
    expected = dlib_to_face40(raw.points68, finder.mapping, 0.0) @ m[:, :2].T + m[:, 2]
    d = face.points112 - expected
    lids = list(FACE40_LOWER_LIDS)
    others = [i for i in range(40) if i not in lids]
    assert np.abs(d[others]).max() < 1e-6 and np.abs(d[lids, 0]).max() < 1e-6
    assert np.allclose(d[lids, 1], LID_SHIFT)
    assert (face.points112 > 0).all() and (face.points112 < 112).all()   # the face fills its crop
    study = FaceFinder(read_model(model_dir), load_settings(PARAMS))
    assert study.find(pic)[0].points112 is None   # a study generator records no lid shift and needs no points


def test_painter_converts_a_photo_in_paste_mode(tmp_path, painter_dir, demo):
    """Same path as the study generators: the face's square is repainted, every other pixel keeps its bytes,
    and the pasted face is the painter's own output for that crop and its points."""
    src = _png(tmp_path / "in" / "astronaut.png", demo["astronaut"])
    report = _convert([src], tmp_path / "out", painter_dir, batch_size=4)
    assert report.exit_code == 0 and report.faces == 1 and report.faces_skipped == 0, report.listing()
    out = _read(tmp_path / "out" / "astronaut.png")
    pic = demo["astronaut"]
    outside, inner = _square_diffs(painter_dir, pic, out)
    assert outside.max() == 0
    assert inner.mean() > 20   # a random painter paints something else than the photo
    crops = _convert([src], tmp_path / "crops", painter_dir, mode="crops")
    finder = FaceFinder(read_model(painter_dir), load_settings(PARAMS))
    (face,) = finder.find(pic)
    painter = load_painter(painter_dir, torch.device("cpu"), batch_size=4, threads=1)
    want = painter(finder.crops(pic, [face]), FaceFinder.points([face]))[0]
    assert crops.faces == 1 and np.array_equal(_read(tmp_path / "crops" / "astronaut_face0.png"), want)


def test_a_face_the_painter_cannot_condition_is_a_listed_skip(tmp_path, capsys, painter_dir, demo, monkeypatch):
    """Points far out of the crop: that face is skipped (listed, counted) and left as it was; the picture's
    other face is painted. With every face skipped, the picture is handled as one without a face."""
    g = demo["grace_hopper"]
    g = cv2.resize(g, (round(g.shape[1] * 512 / g.shape[0]), 512), interpolation=cv2.INTER_AREA)
    both = np.hstack([g, demo["astronaut"]])
    src = _png(tmp_path / "in" / "two.png", both)
    find = FaceFinder.find
    bad_faces = {"which": (1,)}

    def find_with_bad_points(self, rgb):
        faces = find(self, rgb)
        return [PhotoFace(f.square, f.score, f.points112 + (400.0, 0.0)) if k in bad_faces["which"] else f
                for k, f in enumerate(faces)]

    monkeypatch.setattr(FaceFinder, "find", find_with_bad_points)
    code, out, err = _cli(capsys, "convert", src, "-o", tmp_path / "out", "--model", painter_dir, "--params", PARAMS,
                          "-q")
    assert code == 0 and err == "" and "Traceback" not in out
    skipped = [line for line in out.splitlines() if line.startswith("  face skipped:")]
    reason = "two.png: face 1: its points cannot condition the painter: 40 points out of the 112x112 frame"
    assert len(skipped) == 1 and reason in skipped[0], out
    assert "converted 1 picture (1 face)" in out and "1 face skipped (not paintable)" in out
    faces = find(FaceFinder(read_model(painter_dir), load_settings(PARAMS)), both)
    pasted = _read(tmp_path / "out" / "two.png").astype(int)
    sq = faces[1].square.astype(int)
    assert np.array_equal(pasted[sq[1]:sq[1] + sq[2], sq[0]:sq[0] + sq[2]],        # skipped face: as it was
                          both[sq[1]:sq[1] + sq[2], sq[0]:sq[0] + sq[2]].astype(int))
    sq = faces[0].square.astype(int)
    assert np.abs(pasted - both)[sq[1]:sq[1] + sq[2], sq[0]:sq[0] + sq[2]].mean() > 10   # painted face changed

    bad_faces["which"] = (0, 1)
    code, out, err = _cli(capsys, "convert", src, "-o", tmp_path / "none", "--model", painter_dir, "--params", PARAMS,
                          "-q")
    assert code == 1 and "Traceback" not in out + err
    assert f"  no face painted: {src} (copied unchanged)" in out and "2 faces skipped (not paintable)" in out
    assert (tmp_path / "none" / "two.png").read_bytes() == src.read_bytes()


def test_painter_without_lid_shift_record_is_refused(tmp_path, capsys, demo):
    old = _save_painter(tmp_path / "old", lid_shift=None)
    src = _png(tmp_path / "a.png", demo["astronaut"])
    code, out, err = _cli(capsys, "convert", src, "-o", tmp_path / "out", "--model", old, "--params", PARAMS)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "does not record photo_landmarks.lower_lid_shift" in err and "re-run `dvc repro`" in err


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_painter_exports_with_a_conditioning_input(tmp_path, painter_dir, demo):
    """ONNX / TorchScript of the painter take `conditioning` (B, 8, 112, 112); fed the conditioning built as
    docs/convert.md says (from the config stored in the file), they give the painter's own output."""
    import onnxruntime as ort

    from face2anime.paint.conditioning import CHANNELS, PHOTO_MARGIN, conditioning, move_shape

    model = read_model(painter_dir)
    onnx_file = export_generator(model, "onnx", tmp_path / "p.onnx")
    ts_file = export_generator(model, "torchscript", tmp_path / "p.pt")
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "conditioning" and inp.shape[1:] == [len(CHANNELS), 112, 112]
    # the recipe of docs/convert.md, from the file alone
    rec = json.loads(session.get_modelmeta().custom_metadata_map["face2anime_config"])["painter"]
    finder = FaceFinder(read_model(painter_dir), load_settings(PARAMS))
    faces = finder.find(demo["astronaut"]) + finder.find(demo["grace_hopper"])
    crops = np.concatenate([finder.crops(demo["astronaut"], faces[:1]), finder.crops(demo["grace_hopper"], faces[1:])])
    c = ConditioningParams.model_validate(rec["conditioning"])
    x = np.stack([conditioning(crop, move_shape(f.points112, np.array(rec["anime_mean_shape"]), rec["shape_move"]),
                               c, margin=PHOTO_MARGIN) for crop, f in zip(crops, faces)])
    painter = load_painter(painter_dir, torch.device("cpu"), batch_size=4, threads=1)
    assert np.array_equal(x, painter.conditioning(crops, FaceFinder.points(faces)))
    with torch.no_grad():
        ref = painter.generator(torch.from_numpy(x)).numpy()
    onnx_out = session.run(None, {"conditioning": x})[0]
    scripted = torch.jit.load(str(ts_file))
    with torch.no_grad():
        ts = scripted(torch.from_numpy(x)).numpy()
    assert onnx_out.shape == ref.shape == ts.shape == (2, 3, 112, 112)
    assert np.abs(onnx_out - ref).max() <= 1e-4 and np.abs(ts - ref).max() <= 1e-4
