"""DAN: connection-layer geometry, the frozen inference module, and resumable deterministic training."""

import math

import numpy as np
import pytest
import torch

from face2anime.dan import geometry
from face2anime.dan.data import AnimeData, Augment, FaceSet, make_batch, training_statistics
from face2anime.dan.inference import FrozenDAN
from face2anime.dan.model import DAN, DANConfig
from face2anime.dan.model_dir import load_dan, save_dan
from face2anime.dan.train import NOT_RECIPE, TrainSettings, cosine_lr, train_dan
from face2anime.landmarks import schema
from face2anime.params import DanParams
from face2anime.training import recipe

torch.set_num_threads(2)


def _similarity(angle_deg, scale, tx, ty, batch=1):
    a = math.radians(angle_deg)
    m = torch.tensor([[scale * math.cos(a), -scale * math.sin(a)], [scale * math.sin(a), scale * math.cos(a)]],
                     dtype=torch.float64).expand(batch, 2, 2)
    t = torch.tensor([tx, ty], dtype=torch.float64).expand(batch, 2)
    return m, t


def test_fit_similarity_recovers_known_transform():
    rng = np.random.default_rng(0)
    src = torch.from_numpy(rng.uniform(10, 100, size=(3, 40, 2)))
    m, t = _similarity(17.0, 1.3, 5.0, -8.0, batch=3)
    dst = geometry.apply_similarity(src, (m, t))
    m_fit, t_fit = geometry.fit_similarity(src, dst)
    torch.testing.assert_close(m_fit, m.contiguous())
    torch.testing.assert_close(t_fit, t.contiguous())
    # A noisy target: the fit is the least-squares optimum (no small perturbation of (a, b, t) does better).
    noisy = dst + torch.from_numpy(rng.normal(0, 2, size=dst.shape))
    m_fit, t_fit = geometry.fit_similarity(src, noisy)
    best = ((geometry.apply_similarity(src, (m_fit, t_fit)) - noisy) ** 2).sum()
    for da, db in ((1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)):
        m2 = m_fit + torch.tensor([[da, -db], [db, da]], dtype=torch.float64)
        assert ((geometry.apply_similarity(src, (m2, t_fit)) - noisy) ** 2).sum() > best


def test_invert_similarity_round_trip():
    pts = torch.rand(2, 40, 2, dtype=torch.float64) * 100
    tr = _similarity(-25.0, 0.8, 3.0, 11.0, batch=2)
    back = geometry.apply_similarity(geometry.apply_similarity(pts, tr), geometry.invert_similarity(tr))
    torch.testing.assert_close(back, pts)


def test_heatmap_formula_on_tiny_grid():
    pts = torch.tensor([[[1.0, 1.0], [3.0, 2.0]]])
    h = geometry.landmark_heatmap(pts, height=3, width=5)
    assert h.shape == (1, 1, 3, 5)
    expect = np.zeros((3, 5))
    for y in range(3):
        for x in range(5):
            d = min(math.hypot(x - 1, y - 1), math.hypot(x - 3, y - 2))
            expect[y, x] = 1.0 / (1.0 + d)  # 1/(1+d), not 1/sqrt(1+d^2)
    np.testing.assert_allclose(h[0, 0].numpy(), expect, atol=1e-5)
    assert h[0, 0, 1, 1] == pytest.approx(1.0) and h[0, 0, 0, 0] == pytest.approx(1 / (1 + math.sqrt(2)), abs=1e-5)


def test_heatmap_is_exact_in_float32_at_full_size():
    """At 112x112 with 40 points the float32 heatmap matches a float64 brute force to 1e-6 (an expanded
    |p|^2 - 2 p.s + |s|^2 distance loses ~1e-2 here near the landmarks)."""
    pts = torch.rand(3, 40, 2, generator=torch.Generator().manual_seed(0)) * 111
    h = geometry.landmark_heatmap(pts, height=112, width=112).numpy()[:, 0]
    ys, xs = np.mgrid[0:112, 0:112]
    p = pts.double().numpy()
    d = np.sqrt((xs[None, None] - p[:, :, 0, None, None]) ** 2 + (ys[None, None] - p[:, :, 1, None, None]) ** 2)
    np.testing.assert_allclose(h, 1.0 / (1.0 + d.min(axis=1)), atol=1e-6)


def _blob(centre, size=112, sigma=2.0):
    ys, xs = np.mgrid[0:size, 0:size]
    return np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))


def _centroid(img):
    ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    return np.array([(xs * img).sum() / img.sum(), (ys * img).sum() / img.sum()])


def test_warp_moves_content_with_the_transform_and_round_trips():
    tr = _similarity(20.0, 1.15, 6.0, -4.0)
    p = torch.tensor([[[40.0, 62.0]]], dtype=torch.float64)
    img = torch.from_numpy(_blob(p[0, 0].numpy()))[None, None]
    warped = geometry.warp_image(img, tr)
    target = geometry.apply_similarity(p, tr)[0, 0].numpy()
    np.testing.assert_allclose(_centroid(warped[0, 0].numpy()), target, atol=0.05)
    # warp then inverse warp: the centre region comes back (smooth image, bilinear resampling twice)
    rng = np.random.default_rng(1)
    smooth = sum(_blob(rng.uniform(30, 80, 2), sigma=8.0) for _ in range(6))
    img = torch.from_numpy(smooth)[None, None]
    m, _ = tr
    c = torch.full((1, 2), 55.5, dtype=torch.float64)
    tr = (m, c + torch.tensor([[3.0, -2.0]], dtype=torch.float64) - torch.einsum("bij,bj->bi", m, c))  # about the centre
    back = geometry.warp_image(geometry.warp_image(img, tr), geometry.invert_similarity(tr))
    np.testing.assert_allclose(back[0, 0, 30:82, 30:82].numpy(), smooth[30:82, 30:82], atol=0.02)


def test_augmentation_keeps_points_on_their_features():
    """Mirror + similarity applied to a picture of dots moves each point onto its own dot."""
    rng = np.random.default_rng(2)
    pts = np.stack([rng.uniform(30, 82, size=(40, 2)) for _ in range(4)]).astype(np.float32)
    gray = np.zeros((4, 112, 112), np.uint8)
    # one dot per face, at point 17 (a brow point that the mirror relabels)
    for i in range(4):
        gray[i] = (255 * _blob(pts[i, 17], sigma=1.5)).astype(np.uint8)
    faces = FaceSet(gray, pts, np.array([f"f{i}" for i in range(4)]))
    gen = torch.Generator().manual_seed(0)
    img, out = make_batch(faces, np.arange(4), Augment(mirror=True, rotate_deg=15.0, scale=0.1, translate_px=4.0, brightness=0.0, contrast=0.0), gen, torch.device("cpu"))
    perm = schema.FACE40.flip_permutation()
    for i in range(4):
        c = _centroid(img[i, 0].numpy())
        # the dot is now under point 17 (no mirror) or under its mirror partner's slot (mirrored)
        d = min(np.linalg.norm(out[i, 17].numpy() - c), np.linalg.norm(out[i, perm[17]].numpy() - c))
        assert d < 0.3


def test_stage2_maps_its_offset_back_through_the_connection_transform(tiny_dan):
    """S2 = T^-1(T(S1) + delta2), T the similarity S1 -> mean shape. An untrained net cannot show this (every
    stage returns the mean shape, T is the identity): stage 1 here moves the points, so the wiring shows."""
    model = tiny_dan()
    torch.nn.init.zeros_(model.stages[1].out.weight)   # stage 2 as built: no offset of its own
    model.eval()
    gray = torch.rand(2, 1, 112, 112, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        s1, s2 = model(gray)
    assert (s1 - model.mean_shape).abs().max() > 2.0   # far from the mean shape, and not a similarity of it
    torch.testing.assert_close(s2, s1, atol=1e-4, rtol=0)    # stage 2 starts as the identity on S1
    # A constant offset d in stage 2's canonical frame moves every point of S1 by the same vector M^-1 d
    # (M: T's linear part): the offset is mapped back, not added in crop pixels, nor to T(S1) or the mean shape.
    d = torch.tensor([3.0, -2.0])
    with torch.no_grad():
        model.stages[1].out.bias.copy_(d.repeat(40))
        _, moved = model(gray)
        m, _ = geometry.fit_similarity(s1, model.mean_shape[None])
    step = torch.linalg.solve(m, d.expand(2, 2))
    assert (step - d).abs().max() > 0.05                       # T rotates/scales: M^-1 d is not d
    torch.testing.assert_close(moved, s1 + step[:, None, :], atol=1e-3, rtol=0)


def test_frozen_dan_passes_gradient_to_image_only(tmp_path, tiny_dan):
    save_dan(tmp_path / "dan", tiny_dan(), stages_trained=2)
    frozen = FrozenDAN.load(tmp_path / "dan")
    assert not frozen.training
    assert all(not p.requires_grad for p in frozen.parameters())
    frozen.train()  # a parent's .train() must not unfreeze BatchNorm/dropout
    assert not frozen.training and not frozen.dan.stages[0].training
    gray = torch.rand(3, 1, 112, 112, requires_grad=True)
    out = frozen(gray)
    assert out.shape == (3, 40, 2)
    out.pow(2).sum().backward()
    assert gray.grad is not None and gray.grad.abs().sum() > 0
    assert all(p.grad is None for p in frozen.parameters())
    # loaded weights reproduce the saved model
    model, _ = load_dan(tmp_path / "dan")
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(gray.detach())[-1], frozen(gray.detach()))


def synthetic_faces(n, seed):
    """Faces as dots: a jittered, rotated mean shape with a bright disc drawn under every point."""
    rng = np.random.default_rng(seed)
    base = np.stack([np.cos(np.linspace(0, 2 * np.pi, 40, endpoint=False)) * 30 + 55.5,
                     np.sin(np.linspace(0, 2 * np.pi, 40, endpoint=False)) * 25 + 55.5], -1)
    gray = np.zeros((n, 112, 112), np.uint8)
    pts = np.zeros((n, 40, 2), np.float32)
    for i in range(n):
        a, s = rng.uniform(-0.3, 0.3), rng.uniform(0.85, 1.15)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * s
        p = (base - 55.5) @ r.T + 55.5 + rng.uniform(-5, 5, 2)
        pts[i] = p
        img = sum(_blob(q, sigma=2.0) for q in p[::4])
        gray[i] = np.clip(255 * img, 0, 255).astype(np.uint8)
    return FaceSet(gray, pts, np.array([f"s{seed}_{i}" for i in range(n)]))


def _settings(**kw) -> tuple[TrainSettings, DanParams]:
    """A small `dan` section (as params.yaml would give it) and the settings the trainer derives from it."""
    p = {"width": 0.0625, "dropout": 0.5, "n_stages": 2, "batch_size": 8, "lr": [1e-3, 1e-3], "weight_decay": 0.0,
         "schedule": "plateau", "max_epochs": [2, 1], "lr_final": 0.01, "patience": [5, 5], "min_delta": 0.0,
         "passes": 1, "val_every": 1, "seed": 3, "stage_init": "previous", "mirror_average": False,
         "lr_patience": 1, "lr_factor": 0.5,
         "augment": {"mirror": True, "rotate_deg": 5.0, "scale": 0.05, "translate_px": 2.0,
                     "brightness": 0.1, "contrast": 0.2}}
    p.update(kw)
    params = DanParams.model_validate({"device": "cpu", "threads": 0, **p})
    return TrainSettings.from_params(params), params


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_training_resumes_from_checkpoint_with_identical_result(tmp_path, schedule):
    data = AnimeData(splits={"train": synthetic_faces(16, 0), "val": synthetic_faces(6, 1),
                             "test": synthetic_faces(2, 2)}, skipped={}, digest="synthetic-v1")
    _, params = _settings(schedule=schedule)
    cpu = torch.device("cpu")
    full = train_dan(data, params, tmp_path / "a", cpu)
    assert full.finished and full.resumed_from is None
    assert [(r["stage"], r["epoch"]) for r in full.history] == [(1, 1), (1, 2), (2, 1)]

    part = train_dan(data, params, tmp_path / "b", cpu, stop_after_epochs=1)  # "killed" after epoch 1
    assert not part.finished and len(part.history) == 1
    assert sorted(p.name for p in (tmp_path / "b" / "latest").iterdir()) == [
        "best_model.safetensors", "model.safetensors", "optim.pt", "state.json"]   # the shared checkpoint format
    rest = train_dan(data, params, tmp_path / "b", cpu, live_dir=tmp_path / "live")
    assert rest.finished and rest.resumed_from == (1, 1)
    assert rest.history == full.history
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, rest.model.state_dict()[k]), k
    # the dvclive curves hold every epoch, the replayed one included
    tsv = (tmp_path / "live" / "plots" / "metrics" / "val_nme.tsv").read_text().splitlines()
    assert len(tsv) == 1 + 3
    # stage 2 is kept only if it beats stage 1 on validation
    assert rest.best_val[2] <= rest.best_val[1] + 1e-6  # (the two scores come from different float paths)

    # changed params invalidate the checkpoint: a fresh start, not a resume
    _, params2 = _settings(schedule=schedule, lr=[5e-4, 5e-4])
    fresh = train_dan(data, params2, tmp_path / "b", cpu, stop_after_epochs=1)
    assert fresh.resumed_from is None


def test_a_checkpoint_of_one_cpu_math_mode_is_not_resumed_under_the_other(tmp_path, monkeypatch):
    """Portable and native kernels give different floats: a run continues only its own mode's checkpoint."""
    import face2anime

    data = AnimeData(splits={"train": synthetic_faces(4, 0), "val": synthetic_faces(2, 1),
                             "test": synthetic_faces(2, 2)}, skipped={}, digest="synthetic-v1")
    _, params = _settings(max_epochs=[2, 1])
    cpu = torch.device("cpu")

    def run(mode, epochs):
        monkeypatch.setattr(face2anime, "CPU_MATH", mode)
        return train_dan(data, params, tmp_path, cpu, stop_after_epochs=epochs)

    assert run("native", 1).resumed_from is None
    assert run("native", 0).resumed_from == (1, 1)     # the same mode resumes it
    assert run("portable", 0).resumed_from is None     # the other mode starts over (and drops the old checkpoint)
    assert run("portable", 1).resumed_from is None     # a fresh portable run ...
    assert run("portable", 0).resumed_from == (1, 1)   # ... is resumed in its own mode ...
    assert run("native", 0).resumed_from is None       # ... and not in the other


def test_cosine_schedule_anneals_to_lr_final_and_runs_every_epoch(tmp_path):
    s, _ = _settings(schedule="cosine", max_epochs=[5, 3], lr_final=0.1, lr=[1e-3, 2.5e-4])
    assert [round(cosine_lr(s, 1, e) / 1e-3, 4) for e in range(5)] == [1.0, 0.8682, 0.55, 0.2318, 0.1]
    # every stage anneals from its own rate
    assert cosine_lr(s, 2, 0) == 2.5e-4 and abs(cosine_lr(s, 2, 2) - 2.5e-5) < 1e-12
    data = AnimeData(splits={"train": synthetic_faces(12, 0), "val": synthetic_faces(4, 1),
                             "test": synthetic_faces(2, 2)}, skipped={}, digest="synthetic-v1")
    # a patience of 1 would stop a plateau run early; cosine ignores it and runs the full length
    s, params = _settings(schedule="cosine", max_epochs=[3, 2], patience=[1, 1])
    result = train_dan(data, params, tmp_path, torch.device("cpu"))
    assert [(r["stage"], r["epoch"]) for r in result.history] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)]
    assert [r["lr"] for r in result.history] == [cosine_lr(s, st, e - 1) for st, e in [(1, 1), (1, 2), (1, 3),
                                                                                        (2, 1), (2, 2)]]
    assert result.best_val[1] == result.history[2]["val_nme"]   # stage 1 keeps its last weights
    assert result.best_val[2] <= result.best_val[1] + 1e-6


def test_validating_every_few_epochs_trains_the_same_weights(tmp_path):
    """Cosine: `val_every` only thins the validation curve. Weights, the kept stage scores and the record are those
    of validating every epoch; the last epoch of every stage is always validated."""
    data = AnimeData(splits={"train": synthetic_faces(12, 0), "val": synthetic_faces(4, 1),
                             "test": synthetic_faces(2, 2)}, skipped={}, digest="synthetic-v1")
    _, every = _settings(schedule="cosine", max_epochs=[3, 2], dropout=0.2)
    _, sparse = _settings(schedule="cosine", max_epochs=[3, 2], dropout=0.2, val_every=2)
    a = train_dan(data, every, tmp_path / "a", torch.device("cpu"))
    b = train_dan(data, sparse, tmp_path / "b", torch.device("cpu"), live_dir=tmp_path / "live")
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert a.best_val == b.best_val
    assert [(r["stage"], r["epoch"]) for r in b.history if "val_nme" in r] == [(1, 2), (1, 3), (2, 2)]
    assert [r["train_nme"] for r in a.history] == [r["train_nme"] for r in b.history]
    tsv = (tmp_path / "live" / "plots" / "metrics" / "val_nme.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in tsv[1:]] == ["1", "2", "4"]   # dvclive steps of the validated epochs
    assert recipe(every, where=NOT_RECIPE) == recipe(sparse, where=NOT_RECIPE)   # models/dan records the same recipe


def test_stage_two_starts_from_stage_one_and_as_the_identity(tiny_dan):
    model = tiny_dan()
    torch.manual_seed(0)
    s1, s2 = model.stages
    torch.nn.init.zeros_(s2.out.weight)   # as built: stage 2's output layer starts at zero
    with torch.no_grad():  # a "trained" stage 1 with a non-zero output layer (small steps: the BatchNorm
        for prm in s1.parameters():   # statistics are those of the unperturbed net)
            prm.add_(0.02 * torch.randn_like(prm))
    model.init_stage_from_previous(2)
    first1, first2 = s1.features[0].weight, s2.features[0].weight
    assert first2.shape[1] == 3 and torch.equal(first2[:, :1], first1)
    assert not first2[:, 1:].any()   # heatmap and feature-image channels start at zero
    for (k, a), b in zip(s1.state_dict().items(), s2.state_dict().values()):
        if k.startswith("out."):
            assert not b.any(), k     # stage 2 still adds nothing at first
        elif k != "features.0.weight":
            assert torch.equal(a, b), k
    model.eval()
    gray = torch.rand(2, 1, 112, 112)
    with torch.no_grad():
        out1, out2 = model(gray)
    torch.testing.assert_close(out2, out1, atol=1e-4, rtol=0)


def test_training_statistics_are_mirror_symmetric():
    faces = synthetic_faces(5, 4)
    mean_shape, mean_image, std_image = training_statistics(faces, mirror=True)
    flipped = schema.flip_points(mean_shape[None], schema.FACE40, 112)[0]
    np.testing.assert_allclose(flipped, mean_shape, atol=1e-4)
    np.testing.assert_allclose(mean_image, mean_image[:, ::-1], atol=1e-6)
    assert (std_image > 0).all()


def test_mirror_averaged_prediction_is_mirror_symmetric_and_the_mean_of_both_readings(tiny_dan):
    raw = tiny_dan(out_std=0.01).eval()   # small offsets: the two batch sizes' float32 rounding stays < 1e-4
    torch.manual_seed(0)
    model = DAN(DANConfig(width=0.0625, n_stages=2, mirror_average=True)).eval()
    model.load_state_dict(raw.state_dict())
    gray = torch.rand(3, 1, 112, 112)
    unflip = lambda p: torch.from_numpy(schema.flip_points(p.numpy(), schema.FACE40, 112)).float()  # noqa: E731
    with torch.no_grad():
        plain, mirrored = raw(gray), raw(gray.flip(-1))
        averaged, of_mirror = model.predict(gray), model.predict(gray.flip(-1))
        assert raw.predict(gray)[-1].equal(plain[-1])  # off: predict is the plain forward
    for k in range(2):
        # the random net is far from symmetric, so this is not true of either reading alone
        assert (unflip(mirrored[k]) - plain[k]).abs().max() > 0.1
        torch.testing.assert_close(averaged[k], 0.5 * (plain[k] + unflip(mirrored[k])), atol=1e-4, rtol=0)
        torch.testing.assert_close(unflip(of_mirror[k]), averaged[k], atol=1e-4, rtol=0)
