"""Nothing partial: kills leave no temp inside an output, replaced outputs are never missing or half-built,
outputs that belong together stay together, and broken checkpoints/model files end in one clear line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from face2anime.anime.crops import check_crops_pair
from face2anime.errors import UserError
from face2anime.io import SCRATCH, atomic_group, atomic_path, clean_stale_temps, write_arrays, write_json
from face2anime.stage import prepare_outputs

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.fixture
def project(tiny_project) -> Path:
    """A tmp project: dvc.yaml marks its root (temps go to its scratch folder), params.yaml from the repo."""
    return tiny_project.with_dvc_yaml().root


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(SRC)}


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")] if folder.exists() else []


# ---------------------------------------------------------------------------------- atomic_path itself
KILLED_WRITER = """
import sys, time
from pathlib import Path
from face2anime.io import atomic_path
target, is_dir = Path(sys.argv[1]), sys.argv[2] == "dir"
with atomic_path(target, is_dir=is_dir) as tmp:
    if is_dir:
        (tmp / "a.txt").write_text("new a")
    else:
        tmp.write_text("new, half written")
    print("writing", flush=True)
    time.sleep(60)
"""


def _kill_inside_write(target: Path, is_dir: bool) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), "dir" if is_dir else "file"],
                            stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


@pytest.mark.parametrize("is_dir", [False, True])
def test_kill_inside_a_write_leaves_no_temp_in_the_output_folder_and_the_old_target(project, is_dir):
    out_dir = project / "data" / "photos"
    target = out_dir / ("crops" if is_dir else "crops.npz")
    if is_dir:
        target.mkdir(parents=True)
        (target / "a.txt").write_text("old a")
    else:
        out_dir.mkdir(parents=True)
        target.write_text("old")
    _kill_inside_write(target, is_dir)
    assert _temps(project / "data") == [], "the temp must not live inside (or next to) the output"
    if is_dir:
        assert sorted(p.name for p in target.iterdir()) == ["a.txt"] and (target / "a.txt").read_text() == "old a"
    else:
        assert sorted(p.name for p in out_dir.iterdir()) == ["crops.npz"] and target.read_text() == "old"
    stale = list((project / SCRATCH).iterdir())
    assert len(stale) == 1 and stale[0].name.endswith(".tmp")
    # the next stage start cleans the dead writer's temp, and keeps a live one's
    with atomic_path(project / "metrics" / "x.json") as live:
        live.write_text("{}")
        assert clean_stale_temps([target], root=project) == [stale[0]]
        assert live.parent.exists()
    assert list((project / SCRATCH).iterdir()) == []


def test_outside_a_project_a_killed_write_leaves_a_hidden_sibling_that_the_next_start_removes(tmp_path):
    target = tmp_path / "user" / "out.png"
    target.parent.mkdir()
    target.write_text("old")
    _kill_inside_write(target, is_dir=False)
    assert target.read_text() == "old"
    (left,) = _temps(tmp_path)
    assert left.parent == target.parent and left.name.startswith(".")
    legacy = target.parent / ".out.png.abcd1234.tmp"  # what versions before the scratch folder left behind
    legacy.mkdir()
    assert sorted(clean_stale_temps([target], root=tmp_path)) == sorted([left, legacy])
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]


def test_legacy_temps_inside_a_folder_output_are_removed_at_start(project):
    out = project / "data" / "photos"
    out.mkdir(parents=True)
    (out / "crops.npz").write_text("data")
    junk = out / ".crops.npz.k2j4_9qz.tmp"
    junk.mkdir()
    (junk / "crops.npz").write_bytes(b"\0" * 100)
    os.chdir(project)
    try:
        prepare_outputs([Path("data/photos")])
    finally:
        os.chdir(ROOT)
    assert [p.name for p in out.iterdir()] == ["crops.npz"]


def test_a_replaced_file_or_folder_is_never_missing_nor_half_built(project):
    file_target, dir_target = project / "out" / "table.json", project / "out" / "folder"
    write_json(file_target, {"v": -1})
    with atomic_path(dir_target, is_dir=True) as tmp:
        for name in ("crops.npz", "photos.csv"):
            (tmp / name).write_text("-1")
    stop, seen_files, seen_dirs = threading.Event(), set(), set()

    def writer():
        for v in range(150):
            write_json(file_target, {"v": v, "pad": "x" * 5000})
            with atomic_path(dir_target, is_dir=True) as tmp:
                for name in ("crops.npz", "photos.csv"):
                    (tmp / name).write_text(str(v))
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not stop.is_set():
        seen_files.add(json.loads(file_target.read_text())["v"])  # raises if missing or half written
        # each path lookup finds a whole folder: photos.csv is written last, so its presence means complete
        # (a reader that is still inside the replaced folder may see it emptied: it is deleted after the swap)
        for name in ("photos.csv", "crops.npz"):
            os.stat(dir_target / name)
        seen_dirs.add(os.stat(dir_target).st_ino)
    thread.join()
    assert len(seen_files) > 2 and len(seen_dirs) > 2, "the reader must have seen several versions"
    assert list((project / SCRATCH).iterdir()) == []


def test_folder_publish_is_all_or_nothing(project):
    target = project / "data" / "photos"
    with atomic_path(target, is_dir=True) as tmp:
        write_arrays(tmp / "crops.npz", face_id=np.array(["a"]))
        (tmp / "photos.csv").write_text("photo_id\na\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target, is_dir=True) as tmp:
            write_arrays(tmp / "crops.npz", face_id=np.array(["b", "c"]))
            raise RuntimeError("killed before photos.csv")
    assert sorted(p.name for p in target.iterdir()) == ["crops.npz", "photos.csv"]
    assert (target / "photos.csv").read_text() == "photo_id\na\n"
    assert list((project / SCRATCH).iterdir()) == []


def test_a_group_is_published_only_when_every_member_was_written(tmp_path):
    a, b = tmp_path / "crops.npz", tmp_path / "crops.csv"
    a.write_text("old a")
    b.write_text("old b")
    with pytest.raises(RuntimeError):
        with atomic_group(a, b) as (ta, tb):
            ta.write_text("new a")
            raise RuntimeError("boom before the csv")
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    with atomic_group(a, b) as (ta, tb):
        ta.write_text("new a")
        tb.write_text("new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crops.csv", "crops.npz"]


# ---------------------------------------------------------------------------------- pairs and stages
def _run_stage(stage: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "stages" / f"{stage}.py"), *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess, stage: str) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{stage}: error: "), proc.stderr
    return lines[0]


def _anime_pair(project: Path, npz_ids: list[str], csv_ids: list[str]) -> None:
    (project / "data/anime").mkdir(parents=True, exist_ok=True)
    write_arrays(project / "data/anime/crops.npz", face_id=np.array(npz_ids))
    pd.DataFrame({"face_id": csv_ids, "frame_id": "f", "video": "v", "frame": 0, "shot": range(len(csv_ids)),
                  "character": "c"}).to_csv(project / "data/anime/crops.csv", index=False)


def test_the_reader_of_the_anime_pair_refuses_a_mismatch(project):
    _anime_pair(project, ["a", "b", "c"], ["a", "b", "x"])
    with pytest.raises(UserError, match=r"do not match \(first difference at row 2\).*re-run `dvc repro crop_anime`"):
        check_crops_pair(project / "data/anime/crops.npz", ["a", "b", "x"], project / "data/anime/crops.csv")
    check_crops_pair(project / "data/anime/crops.npz", ["a", "b", "c"], project / "data/anime/crops.csv")
    # the split stage reads the csv: a pair from two runs ends in one line, and nothing is written
    _anime_pair(project, [f"f{i}" for i in range(40)], [f"f{i}" for i in range(39)])
    line = _one_line_error(_run_stage("split", project), "split")
    assert "data/anime/crops.npz (40 faces) and data/anime/crops.csv (39 faces) do not match" in line
    assert not (project / "data/anime/split.csv").exists()


def test_an_unwritable_output_folder_fails_in_one_line_before_any_work(project):
    """A file where the output folder should be: fails for every user, root included."""
    _anime_pair(project, ["a"], ["a"])
    (project / "metrics").write_text("not a folder")
    line = _one_line_error(_run_stage("split", project), "split")
    assert "cannot write to metrics" in line
    assert not (project / "data/anime/split.csv").exists(), "the check comes before the work"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_a_read_only_output_folder_fails_in_one_line_before_any_work(project):
    _anime_pair(project, ["a"], ["a"])
    (project / "data/anime").chmod(0o555)
    try:
        line = _one_line_error(_run_stage("split", project), "split")
    finally:
        (project / "data/anime").chmod(0o755)
    assert "cannot write to data/anime (Permission denied)" in line
    assert not (project / "data/anime/split.csv").exists()


@pytest.mark.slow
def test_kill_9_of_detect_photos_while_it_writes_leaves_the_old_pair_and_no_temp(project):
    """A real detect_photos run (the dlib half of the photo side, demo portraits) killed as soon as its
    views.npz temp appears: the old views.npz + photos.parquet pair stays, no temp is left in an output."""
    out = project / "data/photo_views"
    out.mkdir(parents=True)
    (out / "views.npz").write_text("old npz")
    (out / "photos.parquet").write_text("old table")
    scratch = project / SCRATCH
    proc = subprocess.Popen([sys.executable, str(ROOT / "stages/detect_photos.py")], cwd=project, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if scratch.is_dir() and any(".views.npz." in name for name in os.listdir(scratch)):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        rc = proc.wait(timeout=30)
    assert _temps(project / "data") == [] and _temps(project / "reports") == [] and _temps(project / "metrics") == []
    names = sorted(p.name for p in out.iterdir())
    assert names == ["photos.parquet", "views.npz"]
    if rc == -signal.SIGKILL:  # the usual case: killed while writing -> the old pair, untouched
        assert (out / "views.npz").read_text() == "old npz" and (out / "photos.parquet").read_text() == "old table"
        assert os.listdir(scratch), "the dead run's temp is in the scratch folder, not in the output"
        assert clean_stale_temps([out], root=project) and os.listdir(scratch) == []
    else:  # it finished first: then the new pair, whole and consistent
        assert rc == 0
        table = pd.read_parquet(out / "photos.parquet")
        with np.load(out / "views.npz") as data:
            assert len(data["color112"]) > 0 and len(table) > 0


# ---------------------------------------------------------------------------------- broken checkpoints/models
def _corruptions(path: Path):
    """(label, writer) pairs that break `path` in the ways a user meets: random bytes, empty, truncated."""
    good = path.read_bytes()
    rng = np.random.default_rng(0)
    return [("random bytes", lambda: path.write_bytes(rng.bytes(4096))),
            ("empty", lambda: path.write_bytes(b"")),
            ("truncated", lambda: path.write_bytes(good[: len(good) // 2]))]


def test_a_corrupt_or_foreign_dan_checkpoint_is_named_with_what_to_do(tmp_path):
    from face2anime.dan.data import AnimeData, FaceSet
    from face2anime.dan.train import train_dan
    from face2anime.params import DanParams

    rng = np.random.default_rng(0)
    faces = lambda n: FaceSet(rng.integers(0, 255, (n, 112, 112), dtype=np.uint8),  # noqa: E731
                              rng.uniform(20, 90, (n, 40, 2)).astype(np.float32), np.array([f"f{i}" for i in range(n)]))
    data = AnimeData(splits={"train": faces(4), "val": faces(2), "test": faces(2)}, skipped={}, digest="synthetic")
    params = DanParams.model_validate({
        "device": "cpu", "threads": 0, "width": 0.0625, "dropout": 0.0, "n_stages": 2, "batch_size": 2,
        "lr": [1e-3, 1e-3], "weight_decay": 0.0, "schedule": "plateau", "max_epochs": [1, 1], "lr_final": 0.01,
        "patience": [5, 5], "min_delta": 0.0, "passes": 1, "val_every": 1, "seed": 0, "stage_init": "previous", "mirror_average": True,
        "lr_patience": 1, "lr_factor": 0.5,
        "augment": {"mirror": False, "rotate_deg": 0.0, "scale": 0.0, "translate_px": 0.0, "brightness": 0.0,
                    "contrast": 0.0}})
    resume = lambda: train_dan(data, params, tmp_path / "ck", torch.device("cpu"), stop_after_epochs=0)  # noqa: E731
    train_dan(data, params, tmp_path / "ck", torch.device("cpu"), stop_after_epochs=1)
    latest = tmp_path / "ck" / "latest"
    assert resume().resumed_from == (1, 1)
    for name in ("state.json", "model.safetensors", "best_model.safetensors", "optim.pt"):
        backup = (latest / name).read_bytes()
        for label, corrupt in _corruptions(latest / name):
            corrupt()
            with pytest.raises(UserError, match=rf"checkpoint {re.escape(str(latest / name))} is corrupt") as err:
                resume()
            assert "\n" not in str(err.value) and f"delete {latest} to start over" in str(err.value), (name, label)
        (latest / name).write_bytes(backup)
    # readable files that do not fit this DAN: another model's weights, a progress record from another trainer
    state = json.loads((latest / "state.json").read_text())
    for label, broken in [("no progress", {**state, "progress": None}),
                          ("foreign progress", {**state, "progress": {"epoch": 3}}),
                          ("not an object", [1, 2])]:
        (latest / "state.json").write_text(json.dumps(broken))
        with pytest.raises(UserError, match=rf"checkpoint {re.escape(str(latest))}.* is corrupt or from another model"
                                            r".*to start over") as err:
            resume()
        assert "\n" not in str(err.value), label
    (latest / "state.json").write_text(json.dumps(state))
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(3)}, str(latest / "model.safetensors"))
    with pytest.raises(UserError, match=rf"checkpoint {re.escape(str(latest))} is corrupt or from another model"):
        resume()


def test_a_corrupt_or_foreign_gan_checkpoint_is_named_with_what_to_do(tmp_path):
    from safetensors.torch import save_file

    from face2anime.gan.backbone import load_backbone
    from face2anime.gan.data import StyleSet, TrainPhotos
    from face2anime.gan.models import build_generator
    from face2anime.gan.train import Outputs, TrainConfig, train_gan

    from _params import gan_settings

    g = torch.Generator().manual_seed(0)
    photos = TrainPhotos(np.array(["p0", "p1"]), torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 40, 2) * 112)
    style = StyleSet(*(torch.rand(2, 3, 16, 16, generator=g) * 2 - 1 for _ in range(3)))
    tiny = {"generator": {"width": 4, "blocks": 1, "upsample": "resize"}, "discriminator": {"width": 4},
            "weights": {"adv": 1.0, "con": 1.0}}
    out, backbone = Outputs(tmp_path / "ck", None, None, tmp_path / "model"), load_backbone("hed-vgg16", "conv1_2")

    def run(epochs):
        common = gan_settings("common", image_size=16, batch_size=2, init_batch_size=2, epochs=epochs, init_epochs=1,
                              device="cpu")
        cfg = TrainConfig("cartoongan", "base", common, gan_settings("cartoongan", **tiny), gan_settings("landmark"))
        return train_gan(cfg, photos, style, backbone, out, progress=False)

    run(1)
    assert run(2)["resumed_from"] == 1
    latest = tmp_path / "ck" / "latest"
    backup = (latest / "generator.safetensors").read_bytes()
    anime = gan_settings("animegan").generator
    save_file({k: v.contiguous() for k, v in build_generator(anime, 112).state_dict().items()},
              str(latest / "generator.safetensors"))                                # another model's weights
    with pytest.raises(UserError, match=rf"checkpoint {re.escape(str(latest))} is corrupt or from another model "
                                        r"\(.*CartoonGenerator.*\): delete .*latest to start over") as err:
        run(3)
    assert "\n" not in str(err.value)
    (latest / "generator.safetensors").write_bytes(backup)
    for name in ("generator.safetensors", "discriminator.safetensors", "optim.pt", "state.json"):
        backup = (latest / name).read_bytes()
        for label, corrupt in _corruptions(latest / name):
            corrupt()
            with pytest.raises(UserError, match=rf"checkpoint {re.escape(str(latest / name))} is corrupt") as err:
                run(3)
            assert "\n" not in str(err.value) and "to start over" in str(err.value), (name, label)
        (latest / name).write_bytes(backup)


def test_a_corrupt_or_foreign_model_folder_says_which_stage_to_rerun(tmp_path, tiny_dan):
    from face2anime.dan.model_dir import load_dan, save_dan
    from face2anime.gan.models import build_generator, generator_record, load_generator, save_generator
    from face2anime.params import CartoonGeneratorParams

    save_dan(tmp_path / "dan", tiny_dan(), stages_trained=2)
    save_dan(tmp_path / "wide", tiny_dan(width=0.125), stages_trained=2)
    weights = tmp_path / "dan" / "dan.safetensors"
    shutil.copy(tmp_path / "wide" / "dan.safetensors", weights)  # the wrong model's weights
    with pytest.raises(UserError, match=r"does not match .*config.json .*re-run `dvc repro train_dan`"):
        load_dan(tmp_path / "dan")
    for label, corrupt in _corruptions(weights):
        corrupt()
        with pytest.raises(UserError, match=rf"DAN weights {re.escape(str(weights))} are corrupt.*re-run `dvc repro train_dan`") as err:
            load_dan(tmp_path / "dan")
        assert "\n" not in str(err.value), label
    (tmp_path / "dan" / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=r"DAN config .*config.json is unreadable"):
        load_dan(tmp_path / "dan")
    save_dan(tmp_path / "dan", tiny_dan(), stages_trained=2)
    (tmp_path / "dan" / "config.json").write_text('{"generator": {"model": "cartoongan"}}')  # a GAN's config
    with pytest.raises(UserError, match=r"DAN config .*config.json is not a DAN config .*re-run `dvc repro train_dan`"):
        load_dan(tmp_path / "dan")

    g = CartoonGeneratorParams(width=4, blocks=1, upsample="resize")
    cfg = generator_record("cartoongan", g)
    save_generator(tmp_path / "gen", build_generator(g, 112), {"generator": cfg})
    other = {**cfg, "width": 8}
    (tmp_path / "gen" / "config.json").write_text(json.dumps({"generator": other}))
    with pytest.raises(UserError, match=r"generator.safetensors does not match .*dvc repro train_gan"):
        load_generator(tmp_path / "gen")
    (tmp_path / "gen" / "config.json").write_text(json.dumps({"generator": cfg}))
    gen_weights = tmp_path / "gen" / "generator.safetensors"
    for label, corrupt in _corruptions(gen_weights):
        corrupt()
        with pytest.raises(UserError, match=rf"generator weights {re.escape(str(gen_weights))} are corrupt") as err:
            load_generator(tmp_path / "gen")
        assert "\n" not in str(err.value), label
