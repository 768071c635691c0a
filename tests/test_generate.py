"""face2anime generate: new anime faces from sampled layouts through a (tiny, random) SPADE painter.

Layouts (a shape model of demo-renderer anime faces, palettes) and the painter are built into tmp_path; the
settings come from a params file with a `generate` section written there. No pipeline outputs needed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from face2anime.convert.cli import main
from face2anime.convert.generate import (MAX_DRAWS, Layouts, generate, layout_roughs, load_settings, read_layouts,
                                         sample_layouts)
from face2anime.demo.character import sample_character
from face2anime.demo.face import FaceState, build_face
from face2anime.demo.geometry import Pose
from face2anime.errors import UserError
from face2anime.gan.models import build_generator, generator_record, save_generator
from face2anime.gan.painting import load_painter
from face2anime.landmarks.schema import anime_to_face40
from face2anime.paint.conditioning import conditioning_batch, points_problem
from face2anime.paint.layouts import ShapeModel, fit_shape_model
from face2anime.params import (AnimeGeneratorParams, ConditioningParams, GenerateParams, RoughParams,
                               SpadeGeneratorParams)

ROOT = Path(__file__).resolve().parents[1]
TINY = SpadeGeneratorParams(width=4, blocks=2, hidden=4, noise=True)
COND = ConditioningParams(size=32, rough=RoughParams(median_before=3, spatial_radius=6.0, color_radius=30.0,
                                                     median_after=3), fill_dilate=1, fill_radius=2.0, line_width=1,
                          flat_skin=True)


def _anime_shapes(n: int) -> np.ndarray:
    """40 points of `n` demo-renderer anime faces in 112 px crops, in varied poses."""
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        pose = Pose(float(rng.uniform(50, 62)), float(rng.uniform(42, 52)), float(rng.uniform(30, 38)),
                    float(rng.uniform(-8, 8)))
        face = build_face(sample_character(rng, f"c{k}"), FaceState(pose))
        out.append(anime_to_face40(face.points28, face.contour17))
    return np.stack(out)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """A tiny painter folder, a study generator folder, a layouts file and a params file pointing at them."""
    root = tmp_path_factory.mktemp("generate")
    torch.manual_seed(0)
    painter = root / "spade"
    shapes = _anime_shapes(12)
    save_generator(painter, build_generator(TINY, COND.size),
                   {"generator": generator_record("spade", TINY), "variant": "tiny-spade", "image_size": COND.size,
                    "painter": {"conditioning": COND.model_dump(), "shape_move": 0.5,
                                "anime_mean_shape": shapes.mean(axis=0).tolist()}})
    study = root / "study"
    g = AnimeGeneratorParams(width=4, blocks=1, expansion=2)
    save_generator(study, build_generator(g, 32), {"generator": generator_record("animegan", g), "image_size": 32})
    layouts = root / "layouts.npz"
    palettes = np.random.default_rng(1).integers(0, 256, (5, 3, 3), dtype=np.uint8)
    np.savez(layouts, **fit_shape_model(shapes, 4).to_arrays(), palettes=palettes)
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"generate": {"model": str(painter), "seed": 3, "layouts": str(layouts),
                                                   "palette_jitter": 6.0, "batch_size": 2, "device": "cpu"}}))
    return {"painter": painter, "study": study, "layouts": layouts, "params": params}


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_same_command_same_bytes_and_a_sheet(tmp_path, capsys, setup):
    args = ("generate", "-n", 5, "--params", setup["params"])
    code, out, err = _cli(capsys, *args, "-o", tmp_path / "a")
    assert code == 0 and err == "" and len(out.strip().splitlines()) == 1
    assert out.startswith("face2anime generate: painted 5 new faces with spade (seed 3)")
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"face_{k:04d}.png" for k in range(5)] + ["sheet.png"]
    assert _cli(capsys, *args, "-o", tmp_path / "b")[0] == 0
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    faces = [cv2.imread(str(tmp_path / "a" / n)) for n in names[:5]]
    assert all(f.shape == (32, 32, 3) for f in faces)
    assert len({f.tobytes() for f in faces}) == 5                          # five different faces
    sheet = cv2.imread(str(tmp_path / "a" / "sheet.png"))
    assert sheet.shape == (2 + 34, 2 + 5 * 34, 3)                          # one row of 5 tiles, 2 px gaps
    assert _cli(capsys, *args, "-o", tmp_path / "c", "--seed", 4)[0] == 0
    assert (tmp_path / "c" / "face_0000.png").read_bytes() != (tmp_path / "a" / "face_0000.png").read_bytes()


def test_faces_are_the_painter_on_the_layouts_conditioning(tmp_path, setup):
    """The written faces are the painter on the one conditioning function of the drawn rough and shape (at
    the painter's size), not on anything else."""
    result = generate(3, tmp_path, params=setup["params"])
    s = load_settings(setup["params"])
    shapes, palettes = sample_layouts(read_layouts(setup["layouts"]), 3, s.seed, s.palette_jitter)
    painter = load_painter(setup["painter"], torch.device("cpu"), batch_size=3, threads=1)
    cond = conditioning_batch(layout_roughs(shapes, palettes), shapes, painter.cond, threads=1)
    want = painter.paint(torch.from_numpy(cond))
    got = np.stack([cv2.imread(str(p))[..., ::-1] for p in result.files])
    assert np.array_equal(got, want)


def test_layouts_are_seeded_per_face_in_frame_and_jittered(setup):
    layouts = read_layouts(setup["layouts"])
    shapes8, pal8 = sample_layouts(layouts, 8, seed=7, palette_jitter=6.0)
    shapes3, pal3 = sample_layouts(layouts, 3, seed=7, palette_jitter=6.0)
    assert np.array_equal(shapes8[:3], shapes3) and np.array_equal(pal8[:3], pal3)   # face k: (seed, k) only
    assert all(points_problem(s, 112, 112) is None for s in shapes8)
    plain = sample_layouts(layouts, 8, seed=7, palette_jitter=0.0)[1]
    stored = {p.tobytes() for p in layouts.palettes}
    assert all(p.tobytes() in stored for p in plain)                                # no jitter: stored palettes
    offset = np.abs(pal8.astype(int) - plain.astype(int))
    assert 1 <= offset.mean() <= 12 and offset.max() <= 40                           # jitter: a few grey levels
    wild = Layouts(ShapeModel(layouts.shapes.mean, layouts.shapes.components, layouts.shapes.std * 1e4),
                   layouts.palettes)
    with pytest.raises(UserError, match=f"{MAX_DRAWS} shapes drawn .* all leave the 112x112 crop"):
        sample_layouts(wild, 1, seed=0, palette_jitter=0.0)


@pytest.mark.parametrize("case", ["missing_layouts", "not_npz", "study_model", "zero", "negative", "bad_setting"])
def test_bad_input_is_one_line(tmp_path, capsys, setup, case):
    extra = {"missing_layouts": ["--layouts", tmp_path / "nope.npz"],
             "not_npz": ["--layouts", tmp_path / "junk.npz"],
             "study_model": ["--model", setup["study"]],
             "zero": [], "negative": [], "bad_setting": ["--set", "palette_jitter=-1"]}[case]
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    n = {"zero": 0, "negative": -3}.get(case, 2)
    code, out, err = _cli(capsys, "generate", "-n", n, "-o", tmp_path / "out", "--params", setup["params"], *extra)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    words = {"missing_layouts": "nope.npz not found: run `dvc repro prepare_spade`",
             "not_npz": "cannot read layouts file", "study_model": "is not a painter",
             "zero": "-n 0: the number of faces", "negative": "-n -3: the number of faces",
             "bad_setting": "palette_jitter"}[case]
    assert err.startswith("face2anime generate: error: ") and words in err, err
    assert not (tmp_path / "out").exists()


def test_repository_params_have_a_generate_section():
    s = load_settings(ROOT / "params.yaml")
    assert isinstance(s, GenerateParams) and s.palette_jitter >= 0 and s.batch_size >= 1
    with pytest.raises(UserError, match="generate.seed"):
        load_settings(ROOT / "params.yaml", {"seed": -1})
