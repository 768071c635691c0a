"""Typed params: the committed params.yaml validates; each bad value is one line naming the key, the value and the rule."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import yaml
from _params import PARAMS, ROOT

from face2anime.errors import UserError
from face2anime.params import SECTIONS
from face2anime.settings import load_all, load_settings

BASE = yaml.safe_load(PARAMS.read_text())


def test_committed_params_validate_every_section(tmp_path):
    sections = load_all(PARAMS)
    assert set(sections) == set(SECTIONS)
    for name in SECTIONS:
        assert load_settings(name, PARAMS) == sections[name]
    # the typed settings carry the given file's values, nested ones included: an edited copy reads back edited
    data = copy.deepcopy(BASE)
    data["gan"]["common"]["threads"] = BASE["gan"]["common"]["threads"] + 1
    data["photo_landmarks"]["max_pixels"] = BASE["photo_landmarks"]["max_pixels"] + 1234
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    edited = load_all(path)
    assert edited["gan"].common.threads == BASE["gan"]["common"]["threads"] + 1
    assert edited["photo_landmarks"].max_pixels == BASE["photo_landmarks"]["max_pixels"] + 1234
    assert {name for name in SECTIONS if edited[name] != sections[name]} == {"photo_landmarks", "gan"}
    assert load_settings("gan", path) == edited["gan"]


def _set(data: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        data = data[key]
    if value is DELETE:
        del data[last]
    else:
        data[last] = value


DELETE = object()
# (section, dotted key, value, words the one-line message must hold)
CASES = [
    ("photo_landmarks", "photo_landmarks.upsample", "two", "photo_landmarks.upsample = 'two': must be an integer >= 0"),
    ("dan", "dan.batch_size", "64a", "dan.batch_size = '64a': must be an integer >= 1"),
    ("dan", "dan.batch_size", 0, "dan.batch_size = 0: must be an integer >= 1"),
    ("dan", "dan.batch_size", -1, "dan.batch_size = -1: must be an integer >= 1"),
    ("gan", "gan.common.epochs", "six", "gan.common.epochs = 'six': must be an integer >= 1"),
    ("dan", "dan.device", "tpu", "dan.device = 'tpu': must be auto, cpu, cuda or cuda:N"),
    ("gan", "gan.cartoongan", DELETE, "gan.cartoongan: missing"),
    ("framing", "framing.margin", -1, "framing.margin = -1: must be a number > 0"),
    ("photo_landmarks", "photo_landmarks.variants", -3, "photo_landmarks.variants = -3: must be an integer >= 0"),
    ("photo_landmarks", "photo_landmarks.test_fraction", 2.0, "photo_landmarks.test_fraction = 2.0: must be a number > 0 and < 1"),
    ("expand_contour", "expand_contour.search", DELETE, "expand_contour.search: missing"),
    ("dan", "dan.foo", 1, "dan.foo: unknown key"),
    ("split", "split.train", 0.9, "split: train + val + test must sum to 1"),
    ("dan", "dan.augment.mirror", "yes", "dan.augment.mirror = 'yes': must be true or false"),
    ("dan", "dan.schedule", "step", "dan.schedule = 'step': must be 'cosine' or 'plateau'"),
    ("dan", "dan.max_epochs", [45], "dan: max_epochs needs one entry per stage"),
    ("dan", "dan.lr", [0.002], "dan: lr needs one entry per stage"),
    ("convert", "convert.upsample", "x", "convert.upsample = 'x': must be 'model' or an integer"),
    ("convert", "convert.max_pixels", -5, "convert.max_pixels = -5: must be an integer >= 0"),
    ("make_demo", "make_demo.shot_len_s", [2.0, 1.0], "make_demo: shot_len_s must be [min, max]"),
    ("prepare_style", "prepare_style.blur", 4, "prepare_style.blur = 4: must be an odd integer"),
    ("eval_gan", "eval_gan.kid", 5, "eval_gan.kid = 5: must be a mapping of keys"),
    ("extract_frames", "extract_frames.source", "dvd", "extract_frames.source = 'dvd': must be 'demo' or 'videos'"),
    ("detect_anime", "detect_anime.threads", -1, "detect_anime.threads = -1: must be an integer >= 0"),
    ("gan", "gan.common.num_threads", 2, "gan.common.num_threads: unknown key"),
    ("eval_dan", "eval_dan.targets.rmse_px", "low", "eval_dan.targets.rmse_px = 'low': must be a number >= 0"),
]


@pytest.mark.parametrize(("section", "key", "value", "words"), CASES, ids=[c[1] for c in CASES])
def test_bad_values_are_one_line_errors(tmp_path, section, key, value, words):
    data = copy.deepcopy(BASE)
    _set(data, key, value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError) as err:
        load_settings(section, path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and words in msg and "\n" not in msg


def test_several_errors_are_listed_on_one_line(tmp_path):
    data = copy.deepcopy(BASE)
    data["dan"]["batch_size"], data["dan"]["lr"] = "64a", [-1, 0.001]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError, match=r"dan\.batch_size = '64a': .*; dan\.lr\[0\] = -1: must be a number > 0"):
        load_settings("dan", path)


def test_yaml_syntax_error_and_missing_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("dan:\n  batch_size: [1\n  lr: 2\n")
    with pytest.raises(UserError, match=r"YAML syntax error at line 3, column \d+"):
        load_settings("dan", path)
    with pytest.raises(UserError, match="not found"):
        load_settings("dan", tmp_path / "nope.yaml")
    path.write_text("{}\n")
    with pytest.raises(UserError, match="dan: missing"):
        load_settings("dan", path)


def test_a_key_given_twice_is_an_error(tmp_path):
    """PyYAML keeps the last of two equal keys silently (DVC refuses the file): the value edited may not be used."""
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  seed: 0\n  train: 0.7\n  seed: 1\n")
    with pytest.raises(UserError, match=r"line 4, column 3: duplicate key 'seed' \(first at line 2\)"):
        load_settings("split", path)


def test_no_param_defaults_in_the_library():
    """Values come from params.yaml only: no `.get(key, default)` on a params section in the package."""
    import re

    pattern = re.compile(r"\b(p|params|cfg\.common|c|common|settings)\.get\(")
    hits = [f"{f.relative_to(ROOT)}:{i}" for f in (ROOT / "src/face2anime").rglob("*.py")
            for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


# At least five run as real stage processes: one line on stderr, exit code 1, nothing written.
STAGE_CASES = [
    ("photo_landmarks", "photo_landmarks.upsample", "two"),
    ("train_dan", "dan.batch_size", "64a"),
    ("train_dan", "dan.device", "tpu"),
    ("crop_anime", "framing.margin", -1),
    ("split", "split.test", 2.0),
    ("expand_contour", "expand_contour.search", DELETE),
    ("make_demo", "make_demo.fps", 0),
]


@pytest.mark.parametrize(("stage", "key", "value"), STAGE_CASES, ids=[f"{s}-{k}" for s, k, _ in STAGE_CASES])
def test_stage_process_gives_one_line_error(tmp_path, stage, key, value):
    data = copy.deepcopy(BASE)
    _set(data, key, value)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / f"{stage}.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"{stage}: error: params.yaml: ") and key.rsplit(".", 1)[0] in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_stage_process_yaml_syntax_error(tmp_path):
    (tmp_path / "params.yaml").write_text("dan:\n  batch_size: [32\n  lr: 0.002\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "train_dan.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("train_dan: error: params.yaml: YAML syntax error at line 3")
