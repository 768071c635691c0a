"""GPU check, measured in one run (ratios and rates printed, nothing written): what the CPU demo cannot tell.

1. A large bf16 matmul first: this GPU's measured peak (TFLOP/s), the yardstick for the rest.
2. The GAN training step (D once, G once: `GANModel.step`) at the paper's size (generator width 64,
   8 blocks; D width 32) at 112 and 256 px with bf16 autocast and channels_last: images/s and peak
   memory (torch.cuda.max_memory_allocated), for CartoonGAN and AnimeGAN, and the landmark-loss overhead
   (step time with the landmark term / without it; a random-weight DAN, `--dan-width`).
3. DDP with 1 process on nccl (`gan/distributed.py`: process group on a free local port, G and D wrapped,
   the share-weighted gradient average): a few steps, time per step against the plain step.
4. DAN inference throughput (width 1.0, both stages, bf16 autocast): images/s, FLOPs per image (torch's
   FlopCounterMode: convolutions and linear layers), achieved TFLOP/s and its ratio to the matmul peak.
5. The hysts backend (YOLOv3 + HRNetV2 from the installed `anime_face_detector` runtime) with random-weight
   copies loaded through the project's own path, on CUDA: detection frames/s and landmark faces/s (random
   weights: the speed is real, the faces are not).

Timings are medians of `--steps` after `--warmup` (CUDA synchronised). Without CUDA (and without
`--device cpu`) it prints one line and exits 0. `--device cpu --steps 1 --size 64` is a smoke run that
builds every model and runs every part once, small (batch 2), so the code is known to work before a GPU
is at hand; its numbers mean nothing. `--smoke` (run by tests/test_benchmarks.py, on any machine) is that CPU
run at tiny sizes (G width 8 x 1 block, D width 8, DAN width 0.25, 1 thread): every part, in seconds.

    .venv/bin/python benchmarks/gpu_check.py                      # on a machine with a GPU
    .venv/bin/python benchmarks/gpu_check.py --device cpu --steps 1 --size 64
    .venv/bin/python benchmarks/gpu_check.py --smoke
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # cuBLAS may then run deterministically, as training does

import torch  # noqa: E402

warnings.filterwarnings("once")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, steps: int, warmup: int) -> float:
    """Median seconds of `fn()` over `steps` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> str:
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else "n/a (CPU)"


def matmul_peak(device: torch.device, n: int, steps: int, warmup: int) -> float:
    """TFLOP/s of an n x n matmul (2 n^3 FLOPs): bf16 on CUDA, float32 on the CPU (no native bf16 there)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, steps, warmup) / 1e12


def random_dan(width: float, device: torch.device):
    """A DAN of `width` with random weights (the cost does not depend on them), frozen as in training."""
    from face2anime.dan.inference import FrozenDAN
    from face2anime.dan.model import DAN, DANConfig

    torch.manual_seed(0)
    dan = DAN(DANConfig(width=width))
    for stage in dan.stages:         # untrained stages output zero offsets: make the points depend on the image
        torch.nn.init.normal_(stage.out.weight, std=0.01)
    dan.set_statistics(torch.rand(40, 2) * 60 + 26, torch.full((112, 112), 0.5), torch.full((112, 112), 0.25))
    return FrozenDAN(dan).to(device)


class Setup:
    """One model at one size: GANModel + a fixed batch (constant features computed once, as the loop does)."""

    def __init__(self, model_name: str, size: int, args, common, backbone, dan, device: torch.device,
                 landmark: bool):
        from face2anime.gan.objectives import Batch, gray3
        from face2anime.gan.train import TrainConfig, build_model
        from face2anime.params import AnimeGanParams, CartoonGanParams, LandmarkLossParams

        gen = {"width": args.width, "blocks": args.blocks}
        arch = (CartoonGanParams.model_validate(
                    {"generator": {**gen, "upsample": "resize"}, "discriminator": {"width": args.d_width},
                     "weights": {"adv": 1.0, "con": 1.0}}) if model_name == "cartoongan" else
                AnimeGanParams.model_validate(
                    {"generator": {**gen, "expansion": 2},
                     "discriminator": {"width": args.d_width, "stages": 3, "spectral_norm": True},
                     "weights": {"adv": 10.0, "con": 1.5, "gram": 20.0, "color": 10.0},
                     "d_weights": {"real": 1.0, "fake": 1.0, "gray": 1.0, "smooth": 0.2}}))
        common = common.model_copy(update={"image_size": size, "amp": True, "channels_last": True,
                                           "device": str(device)})
        cfg = TrainConfig(model_name, "landmark" if landmark else "base", common, arch,
                          LandmarkLossParams(weight=0.5, wing_w=5.0, wing_eps=2.0, reduction="mean"))
        self.model = build_model(cfg, backbone, dan if landmark else None, device)
        g = torch.Generator().manual_seed(0)
        bs = args.batch
        photos, anime = (torch.rand(bs, 3, size, size, generator=g) * 2 - 1 for _ in range(2))
        m = self.model
        with torch.no_grad(), m.autocast():
            photo_feat = m.backbone(m.prepare(photos))
            gray_feat = m.backbone(m.prepare(gray3(anime)))
        self.batch = Batch(m.prepare(photos), photo_feat, (torch.rand(bs, 40, 2, generator=g) * 60 + 26).to(device),
                           m.prepare(anime), m.prepare(anime), m.prepare(gray3(anime)), gray_feat)
        self.model.set_phase("gan")

    def step(self) -> None:
        self.model.step(self.batch, "gan")


def gan_steps(args, common, backbone, dan, device) -> None:
    """Part 2: images/s and peak memory per model and size, and the landmark-loss overhead."""
    print(f"GAN step (D once, G once), G width {args.width} x {args.blocks} blocks, D width {args.d_width}, "
          f"batch {args.batch}, bf16 autocast {'on' if device.type == 'cuda' else 'off (CPU: float32)'}, channels_last")
    for size in args.size:
        for name in ("cartoongan", "animegan"):
            rates = {}
            for landmark in (False, True):
                reset_peak(device)
                setup = Setup(name, size, args, common, backbone, dan, device, landmark)
                seconds = timed(setup.step, device, args.steps, args.warmup)
                rates[landmark] = seconds
                print(f"  {name:10s} {size:3d} px {'+ landmark' if landmark else 'base      '}: "
                      f"{seconds * 1e3:8.1f} ms/step = {args.batch / seconds:8.1f} images/s, peak {peak_gib(device)}")
                del setup
            print(f"  {name:10s} {size:3d} px landmark-loss overhead: {rates[True] / rates[False]:.3f}x a step")


def ddp_check(args, common, backbone, device) -> None:
    """Part 3: one process through the DDP path (nccl on CUDA, gloo on the CPU) against the plain step."""
    from face2anime.gan import distributed

    plain = Setup("animegan", args.size[0], args, common, backbone, None, device, False)
    t_plain = timed(plain.step, device, args.steps, args.warmup)
    del plain
    d = distributed.start(device, 0, 1, 0, f"tcp://127.0.0.1:{distributed.free_port()}", timeout_s=300)
    try:
        wrapped = Setup("animegan", args.size[0], args, common, backbone, None, d.device, False)
        wrapped.model.distribute(lambda m: distributed.wrap(d, m))
        d.share = 1.0
        t_ddp = timed(wrapped.step, d.device, max(args.steps, 3), args.warmup)
        finite = all(torch.isfinite(p).all() for p in wrapped.model.G.parameters())
        backend = torch.distributed.get_backend()
    finally:
        distributed.cleanup(d)
    print(f"DDP, 1 process on {backend} ({d.device}), AnimeGAN {args.size[0]} px: {t_ddp * 1e3:.1f} ms/step vs "
          f"{t_plain * 1e3:.1f} plain ({t_ddp / t_plain:.3f}x), weights finite after the steps: {finite}")


def dan_throughput(args, device, peak: float) -> None:
    """Part 4: DAN inference images/s and achieved FLOP rate against the matmul peak."""
    from torch.utils.flop_counter import FlopCounterMode

    dan = random_dan(args.dan_width, device).dan.eval()
    x = torch.rand(args.dan_batch, 1, 112, 112, device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if device.type == "cuda" else None

    def forward():
        with torch.no_grad():
            if amp is None:
                return dan(x)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return dan(x)

    with FlopCounterMode(display=False) as counter:
        forward()
    flops = counter.get_total_flops()
    seconds = timed(forward, device, args.steps, args.warmup)
    achieved = flops / seconds / 1e12
    print(f"DAN width {args.dan_width}, 2 stages, batch {args.dan_batch}{', bf16 autocast' if amp else ''}: "
          f"{args.dan_batch / seconds:.0f} images/s, {flops / args.dan_batch / 1e9:.2f} GFLOP/image, "
          f"{achieved:.2f} TFLOP/s = {achieved / peak:.3f} of the matmul peak")


def hysts_check(args, device) -> None:
    """Part 5: the hysts runtime on random-weight copies, loaded through detect/hysts.py."""
    try:
        from anime_face_detector._face import YOLOv3FaceDetector
        from anime_face_detector._landmark import LandmarkModel
    except ImportError as err:
        print(f"hysts backend: skipped ({err})")
        return
    import cv2
    import numpy as np
    from safetensors.torch import save_file

    from face2anime.anime.detect.filters import FaceFilter, new_counter
    from face2anime.anime.detect.hysts import HystsBackend
    from face2anime.params import DetectAnimeParams
    from face2anime.settings import load_params, validate

    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, cls in (("yolov3", YOLOv3FaceDetector), ("hrnetv2", LandmarkModel)):
            torch.manual_seed(0)
            paths[name] = Path(tmp) / f"{name}.safetensors"
            save_file({k: v.contiguous() for k, v in cls().state_dict().items()}, str(paths[name]))
        backend = HystsBackend.from_config(validate(DetectAnimeParams, {
            **load_params("detect_anime", Path(__file__).resolve().parents[1] / "params.yaml"), "face_detector": "yolov3", "device": str(device),
            "detector_weights": str(paths["yolov3"]), "landmark_weights": str(paths["hrnetv2"])},
            "gpu_check", "detect_anime"))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    cv2.ellipse(frame, (320, 180), (60, 80), 0, 0, 360, (200, 220, 250), -1)
    boxes = np.array([[80.0 + 120 * i, 100.0, 180.0 + 120 * i, 220.0] for i in range(args.faces)])
    t_det = timed(lambda: backend.detect_boxes(frame), device, args.steps, args.warmup)
    t_lmk = timed(lambda: backend.faces_from_boxes(frame, boxes, np.full(len(boxes), 0.9), 0, FaceFilter(),
                                                   new_counter()), device, args.steps, args.warmup)
    print(f"hysts on {backend.metrics()['device']} (random weights), 640x360 frames: YOLOv3 detection "
          f"{1 / t_det:.1f} frames/s; HRNetV2 landmarks (flip test) {len(boxes) / t_lmk:.1f} faces/s "
          f"({len(boxes)} boxes per call)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) | cuda:N | cpu (smoke run)")
    ap.add_argument("--size", type=int, action="append", help="image side; repeat for several (default 112 and 256)")
    ap.add_argument("--steps", type=int, default=10, help="timed calls per measurement (median)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 3; CPU 0)")
    ap.add_argument("--batch", type=int, default=None, help="GAN batch (default 32; CPU 2)")
    ap.add_argument("--width", type=int, default=64, help="generator width (paper: 64)")
    ap.add_argument("--blocks", type=int, default=8, help="generator blocks (paper: 8)")
    ap.add_argument("--d-width", type=int, default=32, help="discriminator width (CartoonGAN paper: 32)")
    ap.add_argument("--dan-width", type=float, default=1.0, help="DAN width (paper: 1.0)")
    ap.add_argument("--dan-batch", type=int, default=None, help="DAN inference batch (default 256; CPU 4)")
    ap.add_argument("--matmul-n", type=int, default=None, help="matmul side (default 8192; CPU 512)")
    ap.add_argument("--faces", type=int, default=4, help="face boxes per hysts landmark call")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--smoke", action="store_true", help="CPU smoke run, tiny sizes (no GPU needed)")
    args = ap.parse_args()
    if args.smoke:
        args.device, args.steps, args.size, args.threads = "cpu", 1, [64], 1
        args.width, args.blocks, args.d_width, args.dan_width, args.dan_batch = 8, 1, 8, 0.25, 2

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine; nothing measured (use --device cpu for a smoke run)")
        return
    device = torch.device(args.device)
    cpu = device.type == "cpu"
    args.size = args.size or [112, 256]
    args.warmup = (0 if cpu else 3) if args.warmup is None else args.warmup
    args.batch = args.batch or (2 if cpu else 32)
    args.dan_batch = args.dan_batch or (4 if cpu else 256)
    args.matmul_n = args.matmul_n or (512 if cpu else 8192)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not cpu:
        torch.cuda.set_device(device)

    from face2anime.gan.backbone import load_backbone
    from face2anime.settings import load_settings

    common = load_settings("gan").common
    name = torch.cuda.get_device_name(device) if not cpu else "CPU (smoke run: the numbers mean nothing)"
    print(f"gpu_check on {name}; torch {torch.__version__}, CUDA {torch.version.cuda}")
    peak = matmul_peak(device, args.matmul_n, args.steps, args.warmup)
    print(f"matmul peak: {args.matmul_n}^2 {'bf16' if not cpu else 'float32'}: {peak:.1f} TFLOP/s")
    bb = common.backbone
    backbone = load_backbone(bb.name, bb.layer, bb.weights or None, bb.allow_download, device,
                             activation=bb.activation)
    dan = random_dan(args.dan_width, device)
    gan_steps(args, common, backbone, dan, device)
    ddp_check(args, common, backbone, device)
    dan_throughput(args, device, peak)
    hysts_check(args, device)


if __name__ == "__main__":
    sys.exit(main())
