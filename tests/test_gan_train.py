"""A tiny GAN training run: resuming from the epoch checkpoint equals an uninterrupted run; the landmark
variant trains through the frozen DAN."""

import json

import numpy as np
import pytest
import torch

from face2anime.dan.inference import FrozenDAN
from face2anime.dan.model import DAN, DANConfig
from face2anime.gan.backbone import load_backbone
from face2anime.gan.data import PhotoSet, StyleSet
from face2anime.gan.train import Outputs, TrainConfig, train_gan

SIZE = 32


def _data():
    g = torch.Generator().manual_seed(0)
    photos = PhotoSet(np.array([f"p{i}" for i in range(6)]), torch.rand(6, 3, SIZE, SIZE, generator=g) * 2 - 1,
                      torch.rand(6, 40, 2, generator=g) * 60 + 26)
    style = StyleSet(*(torch.rand(5, 3, SIZE, SIZE, generator=g) * 2 - 1 for _ in range(3)))
    return photos, style


def _common(**kw):
    c = dict(seed=0, image_size=SIZE, batch_size=3, epochs=3, init_epochs=1, lr_g_init=1e-3, lr_g=8e-4,
             lr_d=1.6e-3, betas=[0.5, 0.999], monitor_photos=4, samples=3, device="cpu", amp=True, num_threads=2)
    c.update(kw)
    return c


CARTOON = {"generator": {"width": 4, "blocks": 1}, "discriminator": {"width": 4}, "weights": {"adv": 1.0, "con": 1.5}}
ANIME = {"generator": {"width": 4, "blocks": 1, "expansion": 2},
         "discriminator": {"width": 4, "stages": 2, "spectral_norm": True},
         "weights": {"adv": 300.0, "con": 1.5, "gram": 3.0, "color": 10.0},
         "d_weights": {"real": 1.0, "fake": 1.0, "gray": 1.0, "smooth": 0.2}}


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("hed-vgg16", "conv2_2")


def _outputs(root):
    return Outputs(root / "ck", root / "live", root / "samples", root / "model")


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path, backbone):
    photos, style = _data()
    straight = train_gan(TrainConfig("cartoongan", "base", _common(), CARTOON), photos, style, backbone,
                         _outputs(tmp_path / "a"), progress=False)
    assert straight["epochs_run"] == 3 and [h["phase"] for h in straight["history"]] == ["init", "gan", "gan"]
    # "killed" after epoch 2: a run with epochs=2 leaves its checkpoint; epochs=3 continues from it
    first = train_gan(TrainConfig("cartoongan", "base", _common(epochs=2), CARTOON), photos, style, backbone,
                      _outputs(tmp_path / "b"), progress=False)
    assert first["epochs_run"] == 2
    state = json.loads((tmp_path / "b/ck/latest/state.json").read_text())
    assert state["epoch"] == 1
    resumed = train_gan(TrainConfig("cartoongan", "base", _common(), CARTOON), photos, style, backbone,
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
    fresh = train_gan(TrainConfig("cartoongan", "base", _common(lr_g=1e-4), CARTOON), photos, style, backbone,
                      _outputs(tmp_path / "b"), progress=False)
    assert fresh["resumed_from"] == 0 and fresh["epochs_run"] == 3


@pytest.mark.slow
def test_animegan_landmark_variant_runs_through_the_dan(tmp_path, backbone):
    torch.manual_seed(0)
    dan = DAN(DANConfig(width=0.125))
    for stage in dan.stages:
        torch.nn.init.normal_(stage.out.weight, std=0.5)
    dan.set_statistics(torch.rand(40, 2) * 60 + 26, torch.full((112, 112), 0.5), torch.full((112, 112), 0.25))
    dan = FrozenDAN(dan)
    before = {k: v.clone() for k, v in dan.state_dict().items()}
    photos, style = _data()
    cfg = TrainConfig("animegan", "landmark", _common(epochs=2), ANIME,
                      {"weight": 0.5, "wing_w": 5.0, "wing_eps": 2.0, "reduction": "study"})
    out = train_gan(cfg, photos, style, backbone, _outputs(tmp_path), dan=dan, progress=False)
    last = out["history"][-1]
    assert {"g_landmark", "g_gram", "g_color", "g_adv", "d_loss"} <= set(last)
    assert np.isfinite(last["g_landmark"]) and last["g_landmark"] > 0
    assert np.isfinite(last["monitor_point_error_px"])
    assert all(torch.equal(before[k], v) for k, v in dan.state_dict().items())
    config = json.loads((tmp_path / "model/config.json").read_text())
    assert config["generator"]["model"] == "animegan" and config["variant"] == "animegan-landmark"


@pytest.mark.slow
def test_train_gan_stage_end_to_end(tmp_path, monkeypatch):
    """The stage script on tiny files: outputs where dvc.yaml expects them; a re-run resumes with nothing to do."""
    import importlib.util
    from pathlib import Path

    import pandas as pd
    import yaml

    from face2anime.dan.export import save_model
    from face2anime.gan.models import load_generator
    from face2anime.io import write_arrays

    root = Path(__file__).resolve().parents[1]
    gan = yaml.safe_load((root / "params.yaml").read_text())["gan"]
    gan["common"].update(image_size=SIZE, batch_size=2, epochs=2, init_epochs=1, samples=2, monitor_photos=2,
                         device="cpu", backbone={"name": "hed-vgg16", "layer": "conv2_2", "weights": None})
    gan["cartoongan"] = CARTOON
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"gan": gan}))
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
    torch.manual_seed(0)
    dan = DAN(DANConfig(width=0.125))
    dan.set_statistics(torch.rand(40, 2) * 60 + 26, torch.full((112, 112), 0.5), torch.full((112, 112), 0.25))
    save_model(tmp_path / "models/dan", dan, stages_trained=2)
    spec = importlib.util.spec_from_file_location("train_gan_stage", root / "stages/train_gan.py")
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    monkeypatch.chdir(tmp_path)
    summary = stage.main("cartoongan", "landmark")
    assert "2 epochs on 3 photos x 3 anime faces" in summary and "DAN point error" in summary
    v = Path("models/gan/cartoongan-landmark")
    first = (v / "generator.safetensors").read_bytes()
    assert load_generator(v)(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 3, SIZE, SIZE)
    assert (Path("reports/gan/cartoongan-landmark") / "epoch_002.png").exists()
    assert json.loads(Path("dvclive/gan/cartoongan-landmark/metrics.json").read_text())["step"] == 1
    again = stage.main("cartoongan", "landmark")             # e.g. dvc re-runs after models/ was deleted
    assert "0 epochs" in again and "resumed after epoch 2" in again
    assert (v / "generator.safetensors").read_bytes() == first
