"""GAN evaluation: KID against a hand computation, the collapse and copy detectors, the Inception path, and the
stages end to end with painters whose right answers are known (anime rate, faithfulness included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from face2anime.imaging.tensors import to_tensor, to_uint8
from face2anime.metrics import gan
from face2anime.metrics.features import InceptionPool3, embed, load_inception


# ---------------------------------------------------------------- KID
def test_mmd2_unbiased_matches_hand_computation():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 0.0]])
    # k(a, b) = (a.b / 2 + 1)^3, d = 2.
    # X pairs: x1.x2 = 0 -> 1, x1.x3 = 1 -> 3.375, x2.x3 = 1 -> 3.375: sum over i != j = 15.5, / (3*2)
    # Y pairs: y1.y2 = 0 -> 1, y1.y3 = 0 -> 1, y2.y3 = 2 -> 8: sum over i != j = 20, / 6
    # X-Y: 1 + 3.375 + 8 + 1 + 8 + 1 + 1 + 15.625 + 8 = 47, mean = 47 / 9
    expected = 15.5 / 6 + 20 / 6 - 2 * 47 / 9
    assert expected == pytest.approx(-163 / 36)
    assert gan.mmd2_unbiased(x, y) == pytest.approx(expected, abs=1e-12)
    # Subsets are capped at half the smaller set, so they differ from draw to draw: a real spread.
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 4)), rng.normal(size=(30, 4)) + 0.5
    k = gan.kid(a, b, subsets=20, subset_size=100, seed=0)
    assert k.subset_size == 15 and k.subsets == 20 and k.std > 0


def test_kid_is_near_zero_for_same_distribution_and_large_for_shifted():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same = gan.kid(a, b, subsets=10, subset_size=100, seed=1)
    shifted = gan.kid(a, b + 1.0, subsets=10, subset_size=100, seed=1)
    assert abs(same.mean) < 0.05 < shifted.mean
    assert gan.kid(a, b, 10, 100, seed=1) == same  # seeded: reproducible


def test_kid_needs_two_samples():
    with pytest.raises(ValueError):
        gan.kid(np.zeros((3, 4)), np.zeros((5, 4)), 2, 4, 0)


# ---------------------------------------------------------------- collapse and copy
def _images(rng, n=8):
    return rng.integers(0, 256, size=(n, 16, 16, 3)).astype(np.uint8) / 255.0


def test_collapse_detector_fires_on_identical_outputs():
    rng = np.random.default_rng(0)
    inputs = _images(rng)
    in_feats = rng.normal(size=(8, 32))
    out_feats = np.repeat(rng.normal(size=(1, 32)), 8, axis=0)
    outputs = np.repeat(_images(rng, 1), 8, axis=0)
    checks = gan.failure_checks(out_feats, in_feats, outputs, inputs, collapse_ratio_below=0.2,
                                copy_distance_below=0.02)
    assert checks.collapse and checks.spread_ratio == pytest.approx(0.0, abs=1e-6)
    assert not checks.copy


def test_copy_detector_fires_on_output_equal_to_input():
    rng = np.random.default_rng(1)
    inputs = _images(rng)
    feats = rng.normal(size=(8, 32))
    checks = gan.failure_checks(feats, feats, inputs.copy(), inputs, 0.2, 0.02)
    assert checks.copy and checks.copy_distance == 0.0
    assert not checks.collapse and checks.spread_ratio == pytest.approx(1.0)


def test_no_flag_on_a_healthy_random_case():
    rng = np.random.default_rng(2)
    checks = gan.failure_checks(rng.normal(size=(8, 32)), rng.normal(size=(8, 32)), _images(rng), _images(rng),
                                0.2, 0.02)
    assert not checks.collapse and not checks.copy
    assert 0.5 < checks.spread_ratio < 2.0 and checks.copy_distance > 0.2


def test_spread_ratio_undefined_for_identical_inputs():
    assert gan.spread_ratio(np.ones((3, 2)), np.zeros((3, 2))) is None


def test_mean_pairwise_distance_by_hand():
    pts = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert gan.mean_pairwise_distance(pts) == pytest.approx((5 + 10 + 5) / 3)


def test_cosine_distance():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0], [0.0, 0.0]])
    assert gan.cosine_distance(a, b) == pytest.approx([0.0, 2.0, 0.0])


# ---------------------------------------------------------------- feature plumbing
def test_tensor_round_trip_and_pooling():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(5, 8, 8, 3)).astype(np.uint8)
    x = to_tensor(images)
    assert x.shape == (5, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(to_uint8(x), images)
    feats, maps = embed(lambda t: t * 2.0, images, batch_size=2)
    assert feats.shape == (5, 3) and maps.shape == (5, 3 * 8 * 8)
    assert np.allclose(feats, (images / 127.5 - 1.0).mean(axis=(1, 2)) * 2.0, atol=1e-5)
    assert np.allclose(maps[1].reshape(3, 8, 8), to_tensor(images[1:2])[0].numpy() * 2.0, atol=1e-6)


@pytest.mark.slow
def test_inception_pool_branches_follow_the_fid_network():
    torch.manual_seed(0)
    net = InceptionPool3().net
    with torch.no_grad():
        x = torch.randn(1, 288, 35, 35)
        conv = net.Mixed_5d.branch_pool
        want = conv(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False))
        torchvision_way = conv(F.avg_pool2d(x, 3, stride=1, padding=1))
        # bypass the hook on the conv by calling its parts
        got = net.Mixed_5d(x)[:, -want.shape[1]:]
        assert torch.allclose(got, F.relu(conv.bn(conv.conv(
            F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)))), atol=1e-5)
        assert not torch.allclose(torchvision_way, want, atol=1e-5)  # the hook made a difference
        x7 = torch.randn(1, 2048, 8, 8)
        conv7 = net.Mixed_7c.branch_pool
        got7 = net.Mixed_7c(x7)[:, -192:]
        assert torch.allclose(got7, F.relu(conv7.bn(conv7.conv(F.max_pool2d(x7, 3, stride=1, padding=1)))),
                              atol=1e-5)


def test_inception_is_null_with_reason_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE2ANIME_CACHE", str(tmp_path))
    net, reason = load_inception()
    assert net is None and "pt_inception" in reason and "\n" not in reason and str(tmp_path) not in reason


@pytest.mark.slow
def test_inception_loads_local_weights(tmp_path):
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    state = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008).state_dict()
    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    net, name = load_inception(path)
    assert net is not None and "inception" in name
    feats = embed(net, np.zeros((2, 112, 112, 3), np.uint8))[0]
    assert feats.shape == (2, 2048)
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    net, reason = load_inception(bad)
    assert net is None and "could not be loaded" in reason


# ---------------------------------------------------------------- the stages end to end, on tiny fakes
def _face_layout() -> np.ndarray:
    """A level, upright 40-point face (FACE40 order) in a 112 px crop, so skin and hair regions exist."""
    t = np.pi - np.arange(17) * np.pi / 16
    contour = np.stack([56 + 30 * np.cos(t), 52 + 36 * np.sin(t)], axis=1)
    rel = [(-24, -14), (-16, -17), (-8, -15), (8, -15), (16, -17), (24, -14),
           (-22, -6), (-15, -9), (-8, -6), (-22, -5), (-15, -2), (-8, -5),
           (8, -6), (15, -9), (22, -6), (8, -5), (15, -2), (22, -5),
           (0, 6), (-9, 16), (0, 14), (9, 16), (0, 19)]
    return np.concatenate([contour, np.array(rel, np.float64) + 56])


def _fake_project(project, dan, n_test=4, n_anime=6, n_train_anime=8):
    """A project folder with random photo crops, anime crops (held out and training), a random DAN and two tiny
    random generators."""
    import pandas as pd

    from face2anime.dan.model_dir import save_dan
    from face2anime.gan.models import build_generator, generator_record, save_generator
    from face2anime.params import AnimeGeneratorParams, CartoonGeneratorParams
    from face2anime.io import write_arrays

    root = project.root
    rng = np.random.default_rng(0)
    n = n_test + 2
    ids = np.array([f"p{i}" for i in range(n)])
    base = _face_layout().astype(np.float32)
    write_arrays(root / "data/photos/crops.npz", photo_id=ids,
                 color112=rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8),
                 points112=(base + rng.normal(0, 2, (n, 40, 2))).astype(np.float32))
    table = pd.DataFrame({"photo_id": list(ids) + ["bad"], "path": "x", "status": ["ok"] * n + ["skipped"],
                          "reason": [""] * n + ["no face"], "split": ["train"] * 2 + ["test"] * n_test + [""]})
    table.to_csv(root / "data/photos/photos.csv", index=False)
    write_arrays(root / "data/style/style_test.npz", color=rng.integers(0, 256, (n_anime, 112, 112, 3), np.uint8))
    # training anime: flat-ish colour fields, unlike the noise photos, so the probe has something to learn
    flat = rng.integers(0, 256, (n_train_anime, 1, 1, 3)) + rng.integers(-8, 9, (n_train_anime, 112, 112, 3))
    write_arrays(root / "data/style/style.npz", color=np.clip(flat, 0, 255).astype(np.uint8))
    save_dan(root / "models/dan", dan, stages_trained=1)
    nets = {"cartoongan": CartoonGeneratorParams(width=8, blocks=1, upsample="transposed"),
            "animegan": AnimeGeneratorParams(width=8, blocks=1, expansion=2)}
    for variant in ("cartoongan-base", "animegan-landmark"):
        model = variant.split("-")[0]
        save_generator(root / "models/gan" / variant, build_generator(nets[model], 112),
                       {"generator": generator_record(model, nets[model])})
    project.set("eval_gan", kid={"subsets": 3, "subset_size": 4})
    project.set("report", variants=["cartoongan-base", "animegan-landmark"], photos=2)


@pytest.fixture
def fake_project(tiny_project, tiny_dan):
    def make(**kw):
        _fake_project(tiny_project, tiny_dan(n_stages=1), **kw)
        return tiny_project.root
    return make


@pytest.fixture
def stage_main(monkeypatch, capsys, load_stage):
    """Run a stage script's main in-process (cwd = root), as `run_stage` would: (exit code, stdout, stderr).
    `replace` swaps names in the script's module (e.g. its `load_painter`)."""
    from face2anime.stage import run_stage

    def run(root, name, *args, env=None, replace=None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(root)
        module = load_stage(name)
        for attr, value in (replace or {}).items():
            monkeypatch.setattr(module, attr, value)
        capsys.readouterr()
        code = 0
        try:
            run_stage(name, lambda: module.main(*args))
        except SystemExit as exc:
            code = int(exc.code)
        out, err = capsys.readouterr()
        return code, out, err
    return run


class _Checkerboard(torch.nn.Module):
    """A 'generator' that paints every photo the same +-1 checkerboard: collapsed, all power at Nyquist."""

    def forward(self, x):
        i = torch.arange(x.shape[-1], device=x.device)
        board = ((i[:, None] + i[None, :]) % 2 * 2 - 1).to(x.dtype)
        return board.expand_as(x).contiguous()


class _RoughOut(torch.nn.Module):
    """A 'spade generator' that hands back the rough channels of its conditioning: the output is the filled
    rough drawn at the painter's moved points."""

    def forward(self, x):
        return x[:, :3]


def _painters(generator=None):
    """`load_painter` stand-ins: a painter around `generator` (photo in), or for *spade* folders a conditioned
    painter around `_RoughOut` with the project's conditioning params and the points moved halfway to a
    shifted mean shape; any other folder loads for real."""
    from face2anime.gan.painting import Painter, load_painter
    from face2anime.settings import load_settings

    def load(model_dir, device, batch_size, threads, amp=False):
        if "spade" in str(model_dir):
            record = {"conditioning": load_settings("gan").spade.conditioning.model_dump(), "shape_move": 0.5,
                      "anime_mean_shape": (_face_layout() * 0.9 + 6.0).tolist()}
            return Painter(_RoughOut(), record, 112, torch.device(device), batch_size, threads)
        if generator is not None:
            return Painter(generator, None, 112, torch.device(device), batch_size, threads)
        return load_painter(model_dir, device, batch_size, threads, amp)
    return load


@pytest.mark.slow
def test_eval_and_report_stages_on_tiny_fakes(fake_project, stage_main):
    import json

    from face2anime.io import read_arrays

    root = fake_project()
    run = lambda *a, **kw: stage_main(root, *a, env={"FACE2ANIME_CACHE": str(root / "cache")},  # noqa: E731
                                      **kw)  # no Inception weights there
    code, out, err = run("eval_gan_reference")
    assert code == 0, err
    assert "anime probe (8 training anime vs 2 training photos)" in out
    refs = read_arrays(root / "data/gan_eval/reference.npz")
    assert refs["probe_w"].shape == refs["probe_mean"].shape == (512,) and int(refs["probe_photos"]) == 2
    # fitted on the training crops: it tells them apart (flat colour fields vs noise)
    assert float(refs["probe_train_anime_rate"]) == 1.0 and float(refs["probe_train_photo_rate"]) == 0.0
    assert 0.0 <= float(refs["anime_rate_photo"]) <= 1.0 and 0.0 <= float(refs["anime_rate_anime"]) <= 1.0
    for variant in ("cartoongan-base", "animegan-landmark"):
        code, out, err = run("eval_gan", variant)
        assert code == 0, err
        assert out.count("\n") == 1 and "landmark RMSE" in out and "anime rate" in out
    m = json.loads((root / "metrics/gan/animegan-landmark.json").read_text())
    assert m["photos"] == 4 and m["anime_faces"] == 6
    assert m["landmarks"]["output"]["images"] == 4 and m["landmarks"]["photo_baseline"]["rmse_px"] > 0
    assert m["style"]["inception_kid"] is None and "not computed" in m["style"]["inception_note"]
    assert "hed-vgg16 conv5_3" in m["style"]["feature_net"] and m["style"]["kid"]["subset_size"] == 2
    assert m["style"]["kid"]["std"] > 0
    assert 0.0 <= m["checkerboard"]["power"] <= 1.0 and m["training"] is None
    assert isinstance(m["collapse"]["collapse"], bool) and isinstance(m["copy"]["copy"], bool)
    assert 0.0 <= m["content"]["feature_cosine_distance"] <= 2.0
    rate = m["anime_rate"]
    assert 0.0 <= rate["output"] <= 1.0 and rate["probe"]["anime_faces"] == 8 and rate["probe"]["photos"] == 2
    assert rate["photo_baseline"] == pytest.approx(float(refs["anime_rate_photo"]))
    assert rate["anime_heldout"] == pytest.approx(float(refs["anime_rate_anime"]))
    # a study generator's target points are the photo's: the target version equals the photo version
    assert m["landmarks"]["output_vs_target"] == m["landmarks"]["output"]
    faith = m["faithfulness"]
    assert faith["point_error_to_target_px"]["images"] == 4
    assert faith["point_error_to_target_px"]["mean"] == pytest.approx(m["landmarks"]["output"]["mean_error_px"])
    for key in ("eye_angle_diff_deg", "skin_delta_e", "hair_delta_e"):
        assert faith[key]["images"] == 4 and faith[key]["median"] > 0
    assert faith["eye_angle_diff_deg"]["median"] <= 180.0
    # same inputs, same bytes
    before = (root / "metrics/gan/animegan-landmark.json").read_bytes()
    assert run("eval_gan", "animegan-landmark")[0] == 0
    assert (root / "metrics/gan/animegan-landmark.json").read_bytes() == before

    # Painters whose right answers are known. One that hands the photo back: every output-side number
    # equals its photo baseline, nothing is lost (content distance 0, colour differences 0), and the copy
    # flag fires.
    assert run("eval_gan", "copy-base", replace={"load_painter": _painters(torch.nn.Identity())})[0] == 0
    c = json.loads((root / "metrics/gan/copy-base.json").read_text())
    assert c["copy"]["copy"] and c["copy"]["pixel_mae"] == 0.0
    assert not c["collapse"]["collapse"] and c["collapse"]["spread_ratio"] == pytest.approx(1.0)
    assert c["content"]["feature_cosine_distance"] == pytest.approx(0.0, abs=1e-6)
    assert c["landmarks"]["output"] == c["landmarks"]["photo_baseline"]
    assert c["style"]["kid"] == pytest.approx(c["style"]["kid_photo_baseline"])
    # the floor: the training anime crops' KID to the held-out ones, the same subsets' formula
    from face2anime.metrics.gan import kid
    floor = kid(refs["anime_train_pooled"], refs["anime_pooled"], 3, 4, 0).as_dict()   # eval_gan.kid as set above
    assert c["style"]["kid_anime_floor"] == pytest.approx(floor)
    assert c["checkerboard"]["power"] == pytest.approx(c["checkerboard"]["photo_baseline"])
    assert c["anime_rate"]["output"] == c["anime_rate"]["photo_baseline"]
    assert c["faithfulness"]["skin_delta_e"]["median"] == 0.0 and c["faithfulness"]["hair_delta_e"]["mean"] == 0.0
    assert c["faithfulness"]["skin_delta_e"]["images"] == 4
    # the output's DAN points are the DAN on the photo: the eye-angle difference is the photo's own
    from face2anime.metrics.faithfulness import angle_difference, eye_line_angle
    targets = read_arrays(root / "data/photos/crops.npz")["points112"][2:]
    photo_diff = np.abs(angle_difference(eye_line_angle(refs["photo_dan_points"]), eye_line_angle(targets)))
    assert c["faithfulness"]["eye_angle_diff_deg"]["median"] == pytest.approx(np.median(photo_diff))
    assert c["faithfulness"]["eye_angle_diff_deg_photo_baseline"] == c["faithfulness"]["eye_angle_diff_deg"]
    # One that paints every photo the same checkerboard: collapsed, all AC power on the period-2 grid.
    assert run("eval_gan", "board-base", replace={"load_painter": _painters(_Checkerboard())})[0] == 0
    b = json.loads((root / "metrics/gan/board-base.json").read_text())
    assert b["collapse"]["collapse"] and b["collapse"]["spread_ratio"] < 1e-4
    assert not b["copy"]["copy"] and b["copy"]["pixel_mae"] > 0.2
    assert b["checkerboard"]["power"] == pytest.approx(1.0) and b["checkerboard"]["photo_baseline"] < 0.1
    assert b["content"]["feature_cosine_distance"] > 0.05

    # A conditioned painter that paints its own rough at the moved points: its target points are not the
    # photo's, and the skin/hair colours survive (the rough keeps a region's colour, measured where each
    # image's face is).
    assert run("eval_gan", "spade-base", replace={"load_painter": _painters()})[0] == 0
    sp = json.loads((root / "metrics/gan/spade-base.json").read_text())
    assert sp["landmarks"]["output_vs_target"] != sp["landmarks"]["output"]
    assert sp["faithfulness"]["skin_delta_e"]["images"] == 4 and sp["faithfulness"]["hair_delta_e"]["images"] == 4

    import yaml
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["report"]["variants"].append("spade-base")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    code, out, err = run("report", replace={"load_painter": _painters()})
    assert code == 0, err
    for name in ("comparison.png", "grid_cartoongan-base.png", "grid_animegan-landmark.png", "grid_spade-base.png",
                 "summary.csv"):
        assert (root / "reports/gan" / name).stat().st_size > 0
    summary = (root / "reports/summary.md").read_text()
    assert "| animegan-landmark |" in summary and "| cartoongan-base |" in summary and "| spade-base |" in summary
    assert "anime rate" in summary and "hair dE" in summary
    import pandas as pd
    table = pd.read_csv(root / "reports/gan/summary.csv")
    assert {"anime_rate", "point_error_to_target_px", "eye_angle_diff_deg", "skin_delta_e", "hair_delta_e"} \
        <= set(table.columns)
    # the comparison has the spade painter's input beside each photo: one more column than photo + 3 variants
    import cv2
    sheet = cv2.imread(str(root / "reports/gan/comparison.png"))
    single = cv2.imread(str(root / "reports/gan/grid_spade-base.png"))  # 3 columns of the same tiles
    assert sheet.shape[1] == (single.shape[1] - 2) // 3 * 5 + 2


def test_missing_variant_and_broken_reference_are_one_line_errors(fake_project, stage_main):
    root = fake_project()
    code, _, err = stage_main(root, "eval_gan", "nope-base")
    assert code == 1 and err.count("\n") == 1 and "models/gan/nope-base" in err
    code, _, err = stage_main(root, "eval_gan", "cartoongan-base")
    assert code == 1 and err.count("\n") == 1 and "eval_gan_reference" in err
    (root / "data/gan_eval").mkdir(parents=True)
    (root / "data/gan_eval/reference.npz").write_bytes(b"truncated")
    code, _, err = stage_main(root, "eval_gan", "cartoongan-base")
    assert code == 1 and err.count("\n") == 1 and "unreadable" in err
    # a reference written before the anime probe existed: asks for a re-run instead of a KeyError
    from face2anime.io import write_arrays
    write_arrays(root / "data/gan_eval/reference.npz", photo_id=np.array(["p2"]), photo_pooled=np.zeros((1, 2)),
                 photo_maps=np.zeros((1, 2)), anime_pooled=np.zeros((1, 2)), photo_dan_points=np.zeros((1, 40, 2)),
                 feature_net=np.array("x"), inception_note=np.array("y"))
    code, _, err = stage_main(root, "eval_gan", "cartoongan-base")
    assert code == 1 and err.count("\n") == 1 and "probe_w" in err and "eval_gan_reference" in err


def test_too_few_held_out_photos_is_a_one_line_error(fake_project, stage_main):
    root = fake_project(n_test=1)
    code, _, err = stage_main(root, "eval_gan_reference")
    assert code == 1 and err.count("\n") == 1 and "at least 2" in err
