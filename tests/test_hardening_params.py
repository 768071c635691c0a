"""Issue 28 (params and export): every bad value is one line and exit 1, never a traceback or a silent fallback.

Numbers are numbers in every params section (`params._Section`): .inf / .nan / 1e400 refused, true/false is
not a number, integers past 2**63 - 1 (or past Python's 4300-digit reading limit) are one line; YAML merge
keys work; documented upper bounds for threads, upsample and convert.batch_size. `face2anime export` refuses
a file it would overwrite (unless --overwrite), a name that is not of the format, and folders it cannot
write, before any work; a write that fails midway (a file-size limit) publishes nothing.
"""

from __future__ import annotations

import copy
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from _params import PARAMS, ROOT

from face2anime.convert.cli import main
from face2anime.errors import UserError
from face2anime.gan.models import build_generator, generator_record, save_generator
from face2anime.params import AnimeGeneratorParams
from face2anime.settings import load_all, load_params, load_settings, read_params_file

BASE = yaml.safe_load(PARAMS.read_text())
INF, NAN = float("inf"), float("nan")


def _set(data: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        data = data[key]
    data[last] = value


def _params_with(tmp_path: Path, dotted: str, value) -> Path:
    data = copy.deepcopy(BASE)
    _set(data, dotted, value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _one_line_error(section: str, path: Path) -> str:
    with pytest.raises(UserError) as err:
        load_settings(section, path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    return msg


# ------------------------------------------------------------------ non-finite floats, booleans, huge integers
NON_FINITE = [
    ("make_demo.duration_s", INF, "make_demo.duration_s = inf: must be a finite number > 0"),
    ("framing.margin", INF, "framing.margin = inf: must be a finite number > 0"),
    ("extract_frames.step_s", INF, "extract_frames.step_s = inf: must be a finite number >= 0"),
    ("convert.det_threshold", -INF, "convert.det_threshold = -inf: must be 'model' or a finite number"),
    ("convert.det_threshold", "1e400", "convert.det_threshold = '1e400': must be 'model' or a finite number"),
    ("photo_landmarks.det_threshold", NAN, "photo_landmarks.det_threshold = nan: must be a finite number"),
    ("dan.lr", [0.002, NAN], "dan.lr[1] = nan: must be a finite number > 0"),
    ("make_demo.shot_len_s", [1.0, INF], "make_demo.shot_len_s[1] = inf: must be a finite number"),
    ("gan.common.dist_timeout_s", INF, "gan.common.dist_timeout_s = inf: must be a finite number > 0"),
    ("photo_landmarks.lower_lid_shift", INF, "photo_landmarks.lower_lid_shift = inf: must be 'auto' or a finite"),
]
BOOLEANS = [
    ("make_demo.fps", True, "make_demo.fps = True: must be an integer, not true/false"),
    ("convert.batch_size", True, "convert.batch_size = True: must be an integer, not true/false"),
    ("framing.margin", True, "framing.margin = True: must be a number, not true/false"),
    ("dan.max_epochs", [True, 5], "dan.max_epochs = [True, 5]: must be an integer, not true/false"),
    ("convert.upsample", False, "convert.upsample = False: must be an integer, not true/false"),
]
TOO_LARGE = "too large: integers here stop at 2**63 - 1"
HUGE = [
    ("make_demo.seed", 2**40, "make_demo.seed = 1099511627776: must be an integer >= 0 and <= 4294967295"),
    ("make_demo.seed", 10**30, f"make_demo.seed = 1000000000000000000000000000000: {TOO_LARGE}"),
    ("dan.batch_size", 10**40, "dan.batch_size = 1" + "0" * 40 + f": {TOO_LARGE}"),
    ("photo_landmarks.max_pixels", 2**63, f"photo_landmarks.max_pixels = 9223372036854775808: {TOO_LARGE}"),
    ("make_demo.duration_s", 10**400, f"make_demo.duration_s = {str(10**400)[:57]}...: {TOO_LARGE}"),
]
BOUNDS = [
    ("convert.threads", 100000, "convert.threads = 100000: must be an integer >= 0 and <= 1024"),
    ("gan.common.threads", 5000, "gan.common.threads = 5000: must be an integer >= 0 and <= 1024"),
    ("convert.upsample", 12, "convert.upsample = 12: must be 'model' or an integer"),
    ("photo_landmarks.upsample", 5, "photo_landmarks.upsample = 5: must be an integer >= 0 and <= 4"),
    ("convert.batch_size", 129, "convert.batch_size = 129: must be an integer >= 1 and <= 128"),
]


@pytest.mark.parametrize(("key", "value", "words"), NON_FINITE + BOOLEANS + HUGE + BOUNDS,
                         ids=[f"{k}={v!r}"[:40] for k, v, _ in NON_FINITE + BOOLEANS + HUGE + BOUNDS])
def test_numbers_are_finite_plain_and_bounded(tmp_path, key, value, words):
    msg = _one_line_error(key.split(".")[0], _params_with(tmp_path, key, value))
    assert words in msg, msg


def test_declared_booleans_and_ordinary_numbers_still_pass(tmp_path):
    """The stricter checks leave what the schema declares alone: the committed file, a bool where a key takes
    one (`channels_last: auto | true | false`), an int for a float key, an exponent PyYAML reads as text."""
    assert set(load_all(PARAMS))
    data = copy.deepcopy(BASE)
    data["gan"]["common"]["channels_last"] = True
    data["framing"]["margin"] = 2
    data["convert"]["feather"] = "1e-1"
    data["convert"]["threads"] = 1024
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    sections = load_all(path)
    assert sections["gan"].common.channels_last is True and sections["framing"].margin == 2.0
    assert sections["convert"].feather == 0.1 and sections["convert"].threads == 1024


def test_a_number_of_5000_digits_in_the_file_is_one_line(tmp_path):
    text = PARAMS.read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("  seed: 2024"))
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  seed: 2024", "  seed: " + "9" * 5000, 1))
    with pytest.raises(UserError) as err:
        read_params_file(path)
    msg = str(err.value)
    assert msg == (f"{path}: line {line}: a number of 5000 digits: too large to read (Python reads integers of up to "
                   f"{sys.get_int_max_str_digits()} digits)")


def test_yaml_merge_keys_work_and_own_duplicates_are_still_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("defaults: &framing {margin: 1.5, y_shift: 0.0}\nframing:\n  <<: *framing\n  y_shift: -0.05\n")
    framing = load_settings("framing", path)
    assert (framing.margin, framing.y_shift) == (1.5, -0.05)
    path.write_text("defaults: &framing {margin: 1.5, y_shift: 0.0}\nframing:\n  <<: *framing\n  y_shift: -0.05\n"
                    "  y_shift: 0.1\n")
    with pytest.raises(UserError, match=r"duplicate key 'y_shift' \(first at line 4\)"):
        read_params_file(path)


@pytest.mark.parametrize(("key", "value"), [("make_demo.duration_s", INF), ("make_demo.fps", True)])
def test_make_demo_stage_refuses_infinite_and_boolean_values(tmp_path, key, value):
    """A real stage process: one line on stderr, exit 1, nothing written (.inf used to run with n_frames = inf)."""
    _params_with(tmp_path, key, value)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "make_demo.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("make_demo: error: params.yaml: ") and key in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


# ------------------------------------------------------------------ the commands: --set, --model, export
def _save_model(path: Path, **config_kw) -> Path:
    """A tiny random animegan generator folder with the records train_gan writes (framing, photo landmarks)."""
    torch.manual_seed(0)
    arch = AnimeGeneratorParams(width=4, blocks=1, expansion=2)
    p = load_params("photo_landmarks", PARAMS)
    config = {"generator": generator_record("animegan", arch), "variant": "test-random", "image_size": 112,
              "input_range": [-1, 1], "channels": "RGB", "framing": load_params("framing", PARAMS),
              "photo_landmarks": {k: p[k] for k in ("mapping", "detector", "upsample", "det_threshold", "max_side")},
              **config_kw}
    save_generator(path, build_generator(arch, 112), config)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return _save_model(tmp_path_factory.mktemp("model") / "g")


def _cli_error(capsys, *argv: str) -> str:
    """Run the command in-process (a traceback would fail the test); exit 1 and one stderr line."""
    assert main(list(argv)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(("option", "words"), [
    ("threads=100000", "convert.threads = 100000: must be an integer >= 0 and <= 1024"),
    ("batch_size=true", "convert.batch_size = True: must be an integer, not true/false"),
    ("det_threshold=-.inf", "convert.det_threshold = -inf: must be 'model' or a finite number"),
    ("feather=1e400", "convert.feather = '1e400': must be a finite number >= 0 and <= 0.5"),
    ("upsample=12", "convert.upsample = 12: must be 'model' or an integer"),
    ("batch_size=" + "9" * 5000, "--set batch_size=...: the value cannot be read"),
])
def test_set_values_are_checked_before_any_work(tmp_path, capsys, model_dir, option, words):
    out = tmp_path / "g.onnx"
    line = _cli_error(capsys, "export", "--model", str(model_dir), "--format", "onnx", "-o", str(out), "--set", option)
    assert line.startswith("face2anime export: error: ") and words in line, line
    assert not out.exists()


def test_convert_batch_size_option_has_an_upper_bound(tmp_path, capsys, model_dir):
    line = _cli_error(capsys, "convert", str(tmp_path), "-o", str(tmp_path / "o"), "--model", str(model_dir),
                      "--batch-size", "4096", "-q")
    assert "convert.batch_size = 4096: must be an integer >= 1 and <= 128" in line, line
    assert not (tmp_path / "o").exists()


def test_model_option_names_what_it_was_given(tmp_path, capsys, model_dir):
    onnx_file = tmp_path / "g.onnx"
    onnx_file.write_bytes(b"onnx")
    line = _cli_error(capsys, "export", "--model", str(onnx_file), "--format", "onnx", "-o", str(tmp_path / "x.onnx"))
    assert "is an exported generator, not a generator folder" in line and "not found" not in line, line
    holder = tmp_path / "models"
    _save_model(holder / "a")
    _save_model(holder / "b")
    line = _cli_error(capsys, "export", "--model", str(holder), "--format", "onnx", "-o", str(tmp_path / "x.onnx"))
    assert f"{holder} holds generator folders (a, b): give one of them, e.g. {holder / 'a'}" in line, line
    init = _save_model(tmp_path / "init", variant="animegan-init")
    cfg = json.loads((init / "config.json").read_text())
    del cfg["framing"], cfg["photo_landmarks"]   # as init_gan writes it
    (init / "config.json").write_text(json.dumps(cfg))
    line = _cli_error(capsys, "export", "--model", str(init), "--format", "onnx", "-o", str(tmp_path / "x.onnx"))
    assert "is an init generator" in line and "dvc repro" not in line, line


@pytest.mark.parametrize("size", [0, "abc", True, 10**30])
def test_generator_config_image_size_is_one_line(tmp_path, capsys, size):
    model = _save_model(tmp_path / "g", image_size=size)
    line = _cli_error(capsys, "export", "--model", str(model), "--format", "onnx", "-o", str(tmp_path / "g.onnx"))
    assert f"{model / 'config.json'}" in line and "image_size" in line, line


@pytest.mark.parametrize("target", ["/proc/g.onnx", "{file}/g.onnx", "{tmp}/pic.jpg", "{tmp}/g.pt"],
                         ids=["proc", "under_a_file", "jpg_name", "torchscript_suffix"])
def test_export_refuses_unwritable_or_misnamed_outputs_before_any_work(tmp_path, capsys, model_dir, target):
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "pic.jpg").write_bytes(b"picture")
    out = target.format(file=tmp_path / "file", tmp=tmp_path)
    line = _cli_error(capsys, "export", "--model", str(model_dir), "--format", "onnx", "-o", out)
    assert line.startswith("face2anime export: error: ") and "Traceback" not in line
    assert (tmp_path / "pic.jpg").read_bytes() == b"picture" and (tmp_path / "file").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "pic.jpg"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_export_refuses_a_read_only_folder(tmp_path, capsys, model_dir):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = _cli_error(capsys, "export", "--model", str(model_dir), "--format", "onnx", "-o", str(ro / "g.onnx"))
    finally:
        ro.chmod(0o755)
    assert f"cannot write {ro / 'g.onnx'}: {ro}: Permission denied" in line, line


def test_export_does_not_overwrite_without_the_option(tmp_path, capsys, model_dir):
    out = tmp_path / "g.onnx"
    out.write_bytes(b"someone's file")
    line = _cli_error(capsys, "export", "--model", str(model_dir), "--format", "onnx", "-o", str(out))
    assert f"export output {out} exists: pass --overwrite to replace it" in line
    assert out.read_bytes() == b"someone's file"
    assert main(["export", "--model", str(model_dir), "--format", "onnx", "-o", str(out), "--overwrite"]) == 0
    assert out.stat().st_size > 1000


def test_export_unsupported_opset_is_one_line_and_writes_nothing(tmp_path, capsys, model_dir):
    out = tmp_path / "g.onnx"
    line = _cli_error(capsys, "export", "--model", str(model_dir), "--format", "onnx", "-o", str(out),
                      "--set", "onnx_opset=99")
    assert "cannot export test-random as onnx" in line and "99" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE as on Linux")
def test_export_under_a_file_size_limit_publishes_nothing(tmp_path, model_dir):
    """`ulimit -f`: the write fails midway (EFBIG); one line, exit 1, no output and no temp left behind."""
    out = tmp_path / "g.onnx"
    code = ("import resource, sys; from face2anime.convert.cli import main; "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
            f"sys.exit(main(['export', '--model', {str(model_dir)!r}, '--format', 'onnx', '-o', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"face2anime export: error: cannot write {out}: File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 20000   # the limit stayed in the child
