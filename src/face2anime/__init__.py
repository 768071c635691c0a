"""face2anime: photos of faces to anime faces, with a landmark loss through a frozen anime DAN.

Importing the package pins the CPU math to one instruction set (unless FACE2ANIME_CPU_MATH=native), so
that a CPU run gives the same bytes on any x86-64 machine with AVX2: oneDNN (convolutions), ATen's own
vectorised kernels and MKL otherwise pick the widest instructions the CPU has (AVX-512, AVX-512 BF16,
AMX), and their float results differ. The libraries read these variables at their first computation,
so setting them here, before any stage computes, is enough. `native` lets them use everything (and
lets the GANs autocast to bf16 on CPUs with native bf16: ~1.8x faster, different bytes).
See docs/reproducibility.md.

Package layering (`LAYERS`, checked by tests/test_layers.py): a module may import the core (the top-level
modules: errors, io, params, settings, param_errors, runtime, stage, assets, device, training), its own
package and packages of a LOWER layer, never a higher or same-layer one. The rooms follow the pipeline:
`landmarks` (point layouts, framing, dlib, contour search) and `imaging` (the one grayscale, the one
uint8 <-> tensor pair) are the base; `viz` draws; `anime` (frames, anime detection, the 40-point table,
crops, split, style set) and `photos` (photo files, dlib crop views, the photo set) build the two data
sides; `metrics` evaluates; `dan` and then `gan` train; `convert` and `demo` are applications.
"""

import os

__version__ = "0.1.0"

LAYERS = {"landmarks": 1, "imaging": 1, "viz": 2, "paint": 2, "anime": 3, "photos": 3, "metrics": 4, "dan": 5, "gan": 6,
          "convert": 7, "demo": 7}

PORTABLE_CPU_MATH = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}
CPU_MATH = os.environ.get("FACE2ANIME_CPU_MATH", "portable").strip().lower()
if CPU_MATH not in ("portable", "native"):
    raise SystemExit(f"FACE2ANIME_CPU_MATH is {CPU_MATH!r}; use portable (default) or native")
if CPU_MATH == "portable":
    for _key, _value in PORTABLE_CPU_MATH.items():
        os.environ.setdefault(_key, _value)
