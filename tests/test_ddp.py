"""DDP training (gan/distributed.py): 2 processes (gloo, CPU, started as torchrun would) against 1 process
on the same global batches, through the real loop and the real GANModel step; and a resume under DDP.

The ranks are spawned with torch.multiprocessing and find each other through torchrun's environment
variables, so the stage's own start-up path (`distributed.from_env`) is what runs.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from face2anime.gan.data import StyleSet, TrainPhotos
import face2anime.gan.train as train_module
from face2anime.gan.train import Outputs, TrainConfig, train_gan
from face2anime.params import GanCommonParams

from _params import gan_settings

SIZE = 32
# 2 ranks against 1. The gradient sums run in another order (per rank, then DDP's average), so the last
# float32 bits differ. Measured (one step of each phase, a 3-row batch split 2/1): every gradient entry
# within 3.3e-6 of the network's largest gradient, each tensor within 4.7e-6 of its own largest entry
# (leaving out tensors whose gradient is below 1e-3 of the network's largest: there the same absolute
# rounding, ~1e-7, is a large share, e.g. a bias that an InstanceNorm cancels, gradient 1e-7 of noise);
# losses within 1.4e-7. Over training Adam turns such rounding-level gradients into whole +-lr steps, so 1
# and 2 ranks move those weights differently without any output noticing: weights are held by their
# distribution (measured after 4 steps: median 0, 99th percentile 3e-8, the cancelled biases up to
# 3.4e-3), epoch losses within 1.7e-7. A broken slice moves gradients by 0.7 of the largest one, losses by 3e-2.
GRAD_TOP, GRAD_RTOL, SMALL = 1e-5, 1e-4, 1e-3
LOSS_RTOL = 1e-5
WEIGHT_MEDIAN, WEIGHT_P99 = 1e-6, 5e-5
CARTOON = {"generator": {"width": 4, "blocks": 1, "upsample": "resize"}, "discriminator": {"width": 4},
           "weights": {"adv": 1.0, "con": 1.5}}
ANIME = {"generator": {"width": 4, "blocks": 1, "expansion": 2},
         "discriminator": {"width": 4, "stages": 2, "spectral_norm": True},   # D buffers: power-iteration vectors
         "weights": {"adv": 10.0, "con": 1.5, "gram": 20.0, "color": 10.0},
         "d_weights": {"real": 1.0, "fake": 1.0, "gray": 1.0, "smooth": 0.2}}
LANDMARK = {"weight": 0.5, "wing_w": 5.0, "wing_eps": 2.0, "reduction": "study"}


def _common(**kw):
    # 7 photos: init batches of 4 and 3 split 2/2 and 2/1 over 2 ranks; adversarial batches of 6 and 1
    # split 3/3 and 1/0 (a rank with nothing steps on one row with share 0)
    c = dict(seed=0, image_size=SIZE, batch_size=6, init_batch_size=4, epochs=2, init_epochs=1, lr_g_init=1e-3,
             lr_g=8e-4, lr_d=1.6e-3, betas=[0.5, 0.999], monitor_photos=4, samples=3, device="cpu", amp=False,
             threads=1, channels_last=True, init_weights={"con": 1.5, "pixel": 10.0})
    c.update(kw)
    return gan_settings("common", **c)


def _cfg(model: str, loss: str, common: GanCommonParams) -> TrainConfig:
    arch = gan_settings(model, **(ANIME if model == "animegan" else CARTOON))
    return TrainConfig(model, loss, common, arch, gan_settings("landmark", **LANDMARK))


def _data(n=7):
    g = torch.Generator().manual_seed(0)
    photos = TrainPhotos(np.array([f"p{i}" for i in range(n)]), torch.rand(n, 3, SIZE, SIZE, generator=g) * 2 - 1,
                      torch.rand(n, 40, 2, generator=g) * 60 + 26)
    style = StyleSet(*(torch.rand(5, 3, SIZE, SIZE, generator=g) * 2 - 1 for _ in range(3)))
    return photos, style


def _dan():
    from conftest import build_tiny_dan   # a plain function (not the fixture): the spawned ranks build one too

    # BatchNorm not calibrated: the offsets stay small (~0.01 px), as when the tolerances above were measured.
    # A calibrated one reads the image by pixels, and the rounding of a 2/1 rank split then reaches 1e-3 of
    # the largest gradient through the DAN's warp and heatmap (both piecewise in the points).
    return build_tiny_dan(width=0.125, calibrate=False, frozen=True)


def _run(root: Path, model: str, loss: str, common: GanCommonParams, dist=None) -> dict:
    """One variant through the real loop; outputs under `root`."""
    from face2anime.gan.backbone import load_backbone

    torch.set_num_threads(1)
    photos, style = _data()
    cfg = _cfg(model, loss, common)
    out = Outputs(root / "ck", root / "live", root / "samples", root / "model")
    return train_gan(cfg, photos, style, load_backbone("hed-vgg16", "conv2_2"), out,
                     dan=_dan() if loss == "landmark" else None, progress=False, dist=dist)


def _rank(rank: int, world: int, port: int, roots: list[str], model: str, loss: str, common: GanCommonParams) -> None:
    """One spawned rank, started from torchrun's variables as the stage is; it leaves its final G and D
    weights and its result beside its outputs (the test checks that only rank 0 wrote outputs)."""
    from safetensors.torch import save_file

    from face2anime.gan import distributed

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    d = distributed.from_env(torch.device("cpu"), timeout_s=120)
    assert d.started and d.world == world and d.is_main == (rank == 0)
    models = []
    real_build = train_module.build_model
    train_module.build_model = lambda *a, **kw: models.append(real_build(*a, **kw)) or models[-1]  # keep it
    try:
        result = _run(Path(roots[rank]), model, loss, common, dist=d)
    finally:
        distributed.cleanup(d)
    m, state = models[-1], Path(roots[rank]).parent / f"rank{rank}"
    state.mkdir(parents=True, exist_ok=True)
    save_file({f"G.{k}": v.contiguous() for k, v in m.G.state_dict().items()}
              | {f"D.{k}": v.contiguous() for k, v in m.D.state_dict().items()}, str(state / "weights.safetensors"))
    (state / "result.json").write_text(json.dumps({k: result[k] for k in ("history", "resumed_from", "epochs_run")}))


def _spawn(roots: list[Path], model: str, loss: str, common: GanCommonParams) -> list[dict]:
    import torch.multiprocessing as mp

    from face2anime.gan.distributed import free_port

    mp.spawn(_rank, args=(2, free_port(), [str(r) for r in roots], model, loss, common), nprocs=2, join=True)
    return [json.loads((r.parent / f"rank{i}" / "result.json").read_text()) for i, r in enumerate(roots)]


def _weights(root: Path) -> dict[str, torch.Tensor]:
    """Final G and D weights: G from the saved generator, D from the last checkpoint."""
    from safetensors.torch import load_file

    w = {f"G.{k}": v for k, v in load_file(str(root / "model/generator.safetensors")).items()}
    return w | {f"D.{k}": v for k, v in load_file(str(root / "ck/latest/discriminator.safetensors")).items()}


def _compare(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> tuple[float, float, float]:
    """Median, 99th percentile and largest |difference| over every G and D weight."""
    assert a.keys() == b.keys()
    d = torch.cat([(a[k].double() - b[k].double()).abs().flatten() for k in a if k[:2] in ("G.", "D.")])
    return float(d.median()), float(torch.quantile(d, 0.99)), float(d.max())


def _compare_history(one: list[dict], two: list[dict]) -> float:
    assert [h.keys() for h in one] == [h.keys() for h in two]
    worst = 0.0
    for h1, h2 in zip(one, two):
        for k, v in h1.items():
            if isinstance(v, float):
                worst = max(worst, abs(v - h2[k]) / max(abs(v), 1e-12))
            else:
                assert v == h2[k], k
    return worst


def _step_grads(d, m: int, out: str | None = None) -> dict:
    """One init step and one adversarial step of the real GANModel.step, each from a fresh model, on a
    global batch of `m` rows (this rank's slice); returns the gradients DDP left and the loss values."""
    from face2anime.gan.backbone import load_backbone
    from face2anime.gan import distributed
    from face2anime.gan.objectives import Batch
    from face2anime.gan.data import ConstantFeatures
    from face2anime.gan.train import build_model

    torch.set_num_threads(1)
    photos, style = _data()
    cfg = _cfg("animegan", "landmark", _common())
    backbone, dan, got = load_backbone("hed-vgg16", "conv2_2").eval(), _dan(), {}
    for phase in ("init", "gan"):
        model = build_model(cfg, backbone, dan, torch.device("cpu"))
        if d.started:
            model.distribute(lambda module: distributed.wrap(d, module))
        model.set_phase(phase)
        mine, count = distributed.local_rows(d, m)
        d.share = count / m
        idx, sidx = torch.arange(m)[mine], (torch.arange(m) % len(style))[mine]
        gray = ConstantFeatures(model, style.gray)
        b = Batch(photo=model.prepare(photos.images[idx]), photo_feat=ConstantFeatures(model, photos.images)(idx),
                  points=photos.points[idx], anime=style.color[sidx], anime_smooth=style.smoothed[sidx],
                  anime_gray=style.gray[sidx], anime_gray_feat=gray(sidx))
        result = model.step(b, phase)
        got |= {f"{phase}.G.{k}": p.grad.clone() for k, p in model.G.named_parameters()}
        if phase == "gan":
            got |= {f"gan.D.{k}": p.grad.clone() for k, p in model.D.named_parameters()}
        losses = {**result.g_raw, **({"d": result.d_loss} if result.d_loss is not None else {})}
        got |= {f"{phase}.loss.{k}": torch.tensor([float(v.detach()) * count]) for k, v in losses.items()}
    if out is not None:
        torch.save(got, out)
    return got


def _step_rank(rank: int, world: int, port: int, m: int, out: str) -> None:
    from face2anime.gan import distributed

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    d = distributed.from_env(torch.device("cpu"), timeout_s=120)
    try:
        _step_grads(d, m, f"{out}.{rank}")
    finally:
        distributed.cleanup(d)


@pytest.mark.slow
def test_one_step_gradients_match_one_process(tmp_path):
    """The gradients DDP averages over 2 ranks holding 2 and 1 rows of a 3-row batch equal the 1-process
    gradients of the whole batch (each rank weighted by its share), and the losses add up."""
    import torch.multiprocessing as mp

    from face2anime.gan.distributed import Dist, free_port

    one = _step_grads(Dist(), 3)
    mp.spawn(_step_rank, args=(2, free_port(), 3, str(tmp_path / "grads")), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"grads.{r}", weights_only=True) for r in (0, 1)]
    grads = [k for k in one if ".loss." not in k]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in grads)    # every rank got the same average
    for phase in ("init", "gan"):
        keys = [k for k in grads if k.startswith(phase)]
        top = max(float(one[k].abs().max()) for k in keys)
        vs_top = max(float((one[k] - ranks[0][k]).abs().max()) for k in keys) / top
        vs_own = max(float((one[k] - ranks[0][k]).abs().max() / one[k].abs().max())
                     for k in keys if float(one[k].abs().max()) >= SMALL * top)
        losses = [k for k in one if k.startswith(f"{phase}.loss.")]
        loss_worst = max(float(abs(one[k] - ranks[0][k] - ranks[1][k]) / one[k].abs()) for k in losses)
        print(f"{phase} step, 2 ranks vs 1: gradients within {vs_top:.1e} of the largest gradient, "
              f"{vs_own:.1e} of each tensor's largest entry; losses {loss_worst:.1e} relative")
        assert vs_top <= GRAD_TOP and vs_own <= GRAD_RTOL and loss_worst <= LOSS_RTOL, (phase, vs_top, vs_own)


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    """AnimeGAN with the landmark loss (every model path: init, D and G steps, spectral norm, gram
    features, the frozen DAN) over even, uneven and empty slices of the global batches."""
    common = _common()
    one = _run(tmp_path / "one", "animegan", "landmark", common)
    two = _spawn([tmp_path / "two", tmp_path / "two_rank1"], "animegan", "landmark", common)
    assert not (tmp_path / "two_rank1").exists()            # rank 1 wrote nothing: rank 0 alone writes
    assert sorted(p.name for p in (tmp_path / "two/samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    median, p99, top = _compare(_weights(tmp_path / "one"), _weights(tmp_path / "two"))
    loss_diff = _compare_history(one["history"], two[0]["history"])
    print(f"2 ranks vs 1 after 4 steps: weights |diff| median {median:.1e}, 99th percentile {p99:.1e}, "
          f"max {top:.1e}; epoch losses {loss_diff:.1e} relative")
    assert median <= WEIGHT_MEDIAN and p99 <= WEIGHT_P99 and loss_diff <= LOSS_RTOL, (median, p99, loss_diff)
    assert two[0]["history"] == two[1]["history"]             # every rank logged the same global numbers
    from safetensors.torch import load_file
    r0, r1 = (load_file(str(tmp_path / f"rank{i}" / "weights.safetensors")) for i in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)         # and holds the same weights, to the bit


@pytest.mark.slow
def test_resume_under_ddp_from_rank_0s_checkpoint(tmp_path):
    """A 1-process run stopped after epoch 2 resumes with 2 processes, where only rank 0 can see the
    checkpoint (as on another node): both continue from it and end where an uninterrupted run ends."""
    straight = _run(tmp_path / "straight", "cartoongan", "base", _common(epochs=3))
    _run(tmp_path / "resumed", "cartoongan", "base", _common(epochs=2))
    results = _spawn([tmp_path / "resumed", tmp_path / "elsewhere"], "cartoongan", "base", _common(epochs=3))
    assert [r["resumed_from"] for r in results] == [2, 2] and [r["epochs_run"] for r in results] == [1, 1]
    assert not (tmp_path / "elsewhere").exists()
    median, p99, top = _compare(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    loss_diff = _compare_history(straight["history"], results[0]["history"])
    print(f"resumed on 2 ranks vs uninterrupted on 1: weights |diff| median {median:.1e}, 99th percentile "
          f"{p99:.1e}, max {top:.1e}; epoch losses {loss_diff:.1e} relative")
    assert median <= WEIGHT_MEDIAN and p99 <= WEIGHT_P99 and loss_diff <= LOSS_RTOL, (median, p99, loss_diff)
    assert results[0]["history"] == results[1]["history"]


def test_batch_slices_cover_every_row_once():
    from face2anime.gan.distributed import Dist, local_rows

    for world in (1, 2, 3, 4):
        for m in range(1, 11):
            got = [local_rows(Dist(rank=r, world=world), m) for r in range(world)]
            rows = [i for sl, count in got for i in range(m)[sl][:count]]
            assert rows == list(range(m)), (world, m)
            counts = [count for _, count in got]
            assert max(counts) - min(counts) <= 1 and all(sl.stop - sl.start >= 1 for sl, _ in got)


def test_global_batch_must_split_evenly(tmp_path):
    from face2anime.errors import UserError
    from face2anime.gan.distributed import Dist

    with pytest.raises(UserError, match="batch_size .*3.* 2 processes"):
        _run(tmp_path, "cartoongan", "base", _common(batch_size=3), dist=Dist(world=2))
