"""A tiny GAN training run: resuming from the epoch checkpoint equals an uninterrupted run; the landmark
variant trains through the frozen DAN."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from face2anime.errors import UserError
from face2anime.gan.backbone import load_backbone
from face2anime.gan.data import StyleSet, TrainPhotos
from face2anime.gan.train import Outputs, TrainConfig, train_gan

from _params import gan_settings

SIZE = 32


def _data():
    g = torch.Generator().manual_seed(0)
    photos = TrainPhotos(np.array([f"p{i}" for i in range(6)]), torch.rand(6, 3, SIZE, SIZE, generator=g) * 2 - 1,
                      torch.rand(6, 40, 2, generator=g) * 60 + 26)
    style = StyleSet(*(torch.rand(5, 3, SIZE, SIZE, generator=g) * 2 - 1 for _ in range(3)))
    return photos, style


def _common(**kw):
    c = dict(seed=0, image_size=SIZE, batch_size=3, init_batch_size=3, epochs=3, init_epochs=1, lr_g_init=1e-3, lr_g=8e-4,
             lr_d=1.6e-3, betas=[0.5, 0.999], monitor_photos=4, samples=3, device="cpu", amp=True, threads=2,
             channels_last=True, init_weights={"con": 1.5, "pixel": 10.0})
    c.update(kw)
    return gan_settings("common", **c)


CARTOON = {"generator": {"width": 4, "blocks": 1, "upsample": "resize"}, "discriminator": {"width": 4}, "weights": {"adv": 1.0, "con": 1.5}}
ANIME = {"generator": {"width": 4, "blocks": 1, "expansion": 2},
         "discriminator": {"width": 4, "stages": 2, "spectral_norm": True},
         "weights": {"adv": 300.0, "con": 1.5, "gram": 3.0, "color": 10.0},
         "d_weights": {"real": 1.0, "fake": 1.0, "gray": 1.0, "smooth": 0.2}}


def _cfg(model, loss, common, landmark=None):
    """The variant's typed settings: tiny networks, `common` and the repository's (or the given) landmark section."""
    arch = gan_settings(model, **(ANIME if model == "animegan" else CARTOON))
    return TrainConfig(model, loss, common, arch, gan_settings("landmark", **(landmark or {})))


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("hed-vgg16", "conv2_2")


def _outputs(root):
    return Outputs(root / "ck", root / "live", root / "samples", root / "model")


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path, backbone):
    photos, style = _data()
    straight = train_gan(_cfg("cartoongan", "base", _common()), photos, style, backbone,
                         _outputs(tmp_path / "a"), progress=False)
    assert straight["epochs_run"] == 3 and [h["phase"] for h in straight["history"]] == ["init", "gan", "gan"]
    # "killed" after epoch 2: a run with epochs=2 leaves its checkpoint; epochs=3 continues from it
    first = train_gan(_cfg("cartoongan", "base", _common(epochs=2)), photos, style, backbone,
                      _outputs(tmp_path / "b"), progress=False)
    assert first["epochs_run"] == 2
    state = json.loads((tmp_path / "b/ck/latest/state.json").read_text())
    assert state["epoch"] == 1
    resumed = train_gan(_cfg("cartoongan", "base", _common()), photos, style, backbone,
                        _outputs(tmp_path / "b"), progress=False)
    assert resumed["resumed_from"] == 2 and resumed["epochs_run"] == 1
    a = (tmp_path / "a/model/generator.safetensors").read_bytes()
    b = (tmp_path / "b/model/generator.safetensors").read_bytes()
    assert a == b
    assert resumed["history"] == straight["history"]
    assert sorted(p.name for p in (tmp_path / "b/samples").iterdir()) == [f"epoch_00{i}.png" for i in (1, 2, 3)]
    metrics = json.loads((tmp_path / "b/live/metrics.json").read_text())
    assert metrics["step"] == 2 and "g_adv" in metrics
    # a changed training param invalidates the checkpoint: fresh start
    fresh = train_gan(_cfg("cartoongan", "base", _common(lr_g=1e-4)), photos, style, backbone,
                      _outputs(tmp_path / "b"), progress=False)
    assert fresh["resumed_from"] == 0 and fresh["epochs_run"] == 3


def test_a_checkpoint_of_the_other_cpu_math_mode_is_not_resumed(tmp_path, backbone, monkeypatch):
    """Portable and native CPU kernels give different floats: a checkpoint resumes only under the mode that
    wrote it (the mode is part of the run fingerprint), and still resumes under its own mode."""
    import face2anime

    photos, style = _data()

    def run(mode, epochs):
        monkeypatch.setattr(face2anime, "CPU_MATH", mode)
        return train_gan(_cfg("cartoongan", "base", _common(epochs=epochs)), photos, style, backbone,
                         _outputs(tmp_path), progress=False)

    native = run("native", 2)
    portable = run("portable", 3)
    assert portable["fingerprint"] != native["fingerprint"]
    assert portable["resumed_from"] == 0 and portable["epochs_run"] == 3           # refused: a fresh run
    assert run("portable", 4)["resumed_from"] == 3                                # its own mode resumes
    assert run("native", 5)["resumed_from"] == 0                                  # and native refuses it


@pytest.mark.slow
def test_animegan_landmark_variant_runs_through_the_dan(tmp_path, backbone, tiny_dan):
    dan = tiny_dan(width=0.125, frozen=True)
    before = {k: v.clone() for k, v in dan.state_dict().items()}
    photos, style = _data()
    cfg = _cfg("animegan", "landmark", _common(epochs=2),
               {"weight": 0.5, "wing_w": 5.0, "wing_eps": 2.0, "reduction": "study"})
    out = train_gan(cfg, photos, style, backbone, _outputs(tmp_path), dan=dan, progress=False)
    last = out["history"][-1]
    assert {"g_landmark", "g_gram", "g_color", "g_adv", "d_loss"} <= set(last)
    assert np.isfinite(last["g_landmark"]) and last["g_landmark"] > 0
    assert np.isfinite(last["monitor_point_error_px"])
    assert all(torch.equal(before[k], v) for k, v in dan.state_dict().items())
    config = json.loads((tmp_path / "model/config.json").read_text())
    assert config["generator"]["model"] == "animegan" and config["variant"] == "animegan-landmark"


def _tiny_project(project, dan, **common):
    """A project folder with tiny photos, style set and DAN, and params for a 1-epoch init + 1 adversarial epoch."""
    import pandas as pd

    from face2anime.dan.model_dir import save_dan
    from face2anime.io import write_arrays

    root, tmp_path = Path(__file__).resolve().parents[1], project.root
    gan = project.params["gan"]
    gan["common"].update(image_size=SIZE, batch_size=2, epochs=2, init_epochs=1, samples=2, monitor_photos=2,
                         device="cpu", backbone={"name": "hed-vgg16", "layer": "conv2_2", "weights": None,
                                                 "activation": "pre", "allow_download": False})
    gan["common"].update(common)
    gan["cartoongan"] = CARTOON
    project.write_params()   # with framing and photo_landmarks: the adversarial stage records them in config.json
    rng = np.random.default_rng(0)
    ids = np.array(["a_0", "a_1", "a_2", "b_0"])
    write_arrays(tmp_path / "data/photos/crops.npz", photo_id=ids,
                 color112=rng.integers(0, 256, (4, 112, 112, 3), dtype=np.uint8),
                 points112=(rng.random((4, 40, 2)) * 60 + 26).astype(np.float32))
    pd.DataFrame({"photo_id": ids, "path": ids, "status": "ok", "reason": "",
                  "split": ["train", "train", "train", "test"]}).to_csv(tmp_path / "data/photos/photos.csv", index=False)
    anime = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    write_arrays(tmp_path / "data/style/style.npz", face_id=np.array(["x", "y", "z"]), color=anime, smoothed=anime,
                 gray=anime[..., 0])
    save_dan(tmp_path / "models/dan", dan, stages_trained=2)
    return root


@pytest.mark.slow
def test_train_gan_stage_end_to_end(tiny_project, tiny_dan, load_stage, monkeypatch):
    """The stage script on tiny files: outputs where dvc.yaml expects them; a re-run resumes with nothing to do."""
    from face2anime.gan.models import load_generator

    _tiny_project(tiny_project, tiny_dan(width=0.125))
    stage = load_stage("train_gan")
    monkeypatch.chdir(tiny_project.root)
    with pytest.raises(UserError, match="init_gan"):            # the adversarial stage needs the init first
        stage.main("cartoongan", "landmark")
    init = stage.main("cartoongan", None)
    assert "cartoongan-init: 1 epochs" in init and "init pixel MAE" in init
    assert json.loads(Path("models/gan_init/cartoongan/training.json").read_text())["history"][0]["phase"] == "init"
    summary = stage.main("cartoongan", "landmark")
    assert "1 epochs on 3 photos x 3 anime faces" in summary and "DAN point error" in summary
    assert "largest G loss share at the adversarial start" in summary
    v = Path("models/gan/cartoongan-landmark")
    first = (v / "generator.safetensors").read_bytes()
    assert load_generator(v)(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 3, SIZE, SIZE)
    assert (Path("reports/gan/cartoongan-landmark") / "epoch_002.png").exists()
    live = json.loads(Path("dvclive/gan/cartoongan-landmark/metrics.json").read_text())
    assert live["step"] == 1 and {"share_adv", "share_con", "share_landmark"} <= set(live)   # init curve + 1 epoch
    again = stage.main("cartoongan", "landmark")             # e.g. dvc re-runs after models/ was deleted
    assert "0 epochs" in again and "resumed after epoch 2" in again
    assert (v / "generator.safetensors").read_bytes() == first


@pytest.mark.slow
def test_stage_starts_its_own_ranks_and_fails_in_one_line(tiny_project, tiny_dan):
    """gan.common.processes: 2 -> the stage launches 2 DDP ranks of itself (no torchrun in dvc.yaml): one summary
    line from rank 0; a failure is one line too (no launcher traceback or failure report)."""
    import subprocess
    import sys

    root = _tiny_project(tiny_project, tiny_dan(width=0.125), processes=2, batch_size=2, init_batch_size=2)
    tmp_path = tiny_project.root
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "TQDM_DISABLE": "1"}
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [sys.executable, str(root / "stages/train_gan.py"), "--model", "cartoongan"]
    ok = subprocess.run(cmd + ["--init"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and "Traceback" not in ok.stdout + ok.stderr, ok.stderr
    summary = [line for line in ok.stdout.splitlines() if line.startswith("init_gan@cartoongan: ")]
    assert len(summary) == 1 and "x 2 processes" in summary[0], ok.stdout
    (tmp_path / "data/style/style.npz").unlink()
    bad = subprocess.run(cmd + ["--loss", "base"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert bad.returncode == 1 and "Traceback" not in bad.stderr + bad.stdout, bad.stderr
    assert len(lines) == 1 and lines[0].startswith("train_gan@cartoongan-base: error: "), bad.stderr


def _photo_set(n=6):
    """Small real-photo crops (the astronaut, shifted): something a generator can learn to reconstruct."""
    import cv2
    from skimage import data

    img = data.astronaut()
    crops = [cv2.resize(img[20 * i:20 * i + 300, 100 + 10 * i:400 + 10 * i], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
             for i in range(n)]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return TrainPhotos(np.array([f"p{i}" for i in range(n)]), x.contiguous(), torch.rand(n, 40, 2) * 60 + 26)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cartoongan", "animegan"])
def test_short_init_lowers_pixel_mae_and_shares_are_logged(tmp_path, backbone, model):
    from face2anime.gan.records import reconstruction_mae
    from face2anime.gan.train import build_model

    photos, (_, style) = _photo_set(), _data()
    cfg = _cfg(model, "base", _common(epochs=8, init_epochs=6, batch_size=3, lr_g_init=3e-3))
    untrained = reconstruction_mae(build_model(cfg, backbone, None, torch.device("cpu")).G.eval(), photos,
                                   torch.device("cpu"), 3)
    out = train_gan(cfg, photos, style, backbone, _outputs(tmp_path), progress=False)
    t = out["training"]
    assert t["init_pixel_mae"] < 0.85 * untrained, (t["init_pixel_mae"], untrained)
    if model == "cartoongan":       # the pixel term is what brings the photo back: content alone gets less far
        common = _common(epochs=6, init_epochs=6, batch_size=3, lr_g_init=3e-3, init_weights={"con": 1.5, "pixel": 0.0})
        content_only = train_gan(_cfg(model, "base", common), photos, style, backbone,
                                 _outputs(tmp_path / "content_only"), progress=False)["training"]["init_pixel_mae"]
        assert t["init_pixel_mae"] < 0.85 * content_only, (t["init_pixel_mae"], content_only)
    init, first, gan = out["history"][5], out["history"][6], out["history"][-1]   # 6 init + 2 adversarial epochs
    assert init["phase"] == "init" and set(k for k in init if k.startswith("share_")) == {"share_con", "share_pixel"}
    expected = {"adv", "con"} | ({"gram", "color"} if model == "animegan" else set())
    assert {k[len("share_"):] for k in gan if k.startswith("share_")} == expected
    assert sum(v for k, v in gan.items() if k.startswith("share_")) == pytest.approx(1.0)
    shares = lambda h: {k[len("share_"):]: v for k, v in h.items() if k.startswith("share_")}  # noqa: E731
    # the summary's start and end are the first and the last adversarial epoch (two records, two values)
    assert set(t["loss_shares_start"]) == expected and shares(first) != shares(gan)
    assert t["loss_shares_start"] == shares(first) and t["loss_shares_end"] == shares(gan)
    live = json.loads((tmp_path / "live/metrics.json").read_text())
    assert {f"share_{k}" for k in expected} <= set(live)
    saved = json.loads((tmp_path / "model/training.json").read_text())
    assert saved["init_pixel_mae"] == pytest.approx(t["init_pixel_mae"])


SPADE = {"conditioning": {"size": SIZE, "rough": {"median_before": 3, "spatial_radius": 8.0, "color_radius": 40.0,
                                                  "median_after": 3}, "fill_dilate": 1, "fill_radius": 3.0,
                          "line_width": 1, "flat_skin": True},
         "shape_move": 0.5, "max_pairs": 0,
         "generator": {"width": 4, "blocks": 3, "hidden": 4, "noise": True},
         "discriminator": {"width": 4, "scales": 2, "layers": 2},
         "weights": {"adv": 1.0, "fm": 10.0, "con": 1.0, "pixel": 10.0}}


def _pairs():
    """Tiny painter pairs: random 'anime' images with an 8-channel conditioning in [-1, 1]."""
    photos, style = _data()
    g = torch.Generator().manual_seed(1)
    photos.cond = torch.rand(len(photos), 8, SIZE, SIZE, generator=g) * 2 - 1
    return photos, style


@pytest.mark.slow
@pytest.mark.parametrize("model", ["spade", "cartoongan"])
def test_dragan_runs_resume_equals_uninterrupted(tmp_path, backbone, model):
    """Every family trains with the DRAGAN penalty; the painter (layer noise) and the penalty (perturbations)
    draw random numbers, and a resumed run still ends with the uninterrupted run's bytes."""
    reg = {"kind": "dragan", "weight": 10.0, "perturbation": 0.5}
    photos, style = _pairs() if model == "spade" else _data()

    def cfg(epochs):
        arch = gan_settings(model, **(SPADE if model == "spade" else CARTOON))
        return TrainConfig(model, "base", _common(epochs=epochs, d_regularizer=reg, amp=False, channels_last=False),
                           arch, gan_settings("landmark"))

    straight = train_gan(cfg(3), photos, style, backbone, _outputs(tmp_path / "a"), progress=False)
    assert all(np.isfinite(h["g_total"]) for h in straight["history"]) and straight["history"][-1]["d_loss"] > 0
    train_gan(cfg(2), photos, style, backbone, _outputs(tmp_path / "b"), progress=False)
    resumed = train_gan(cfg(3), photos, style, backbone, _outputs(tmp_path / "b"), progress=False)
    assert resumed["resumed_from"] == 2
    assert ((tmp_path / "a/model/generator.safetensors").read_bytes()
            == (tmp_path / "b/model/generator.safetensors").read_bytes())
    if model == "spade":
        assert {"g_fm", "g_pixel", "g_con", "g_adv"} <= set(straight["history"][-1])
