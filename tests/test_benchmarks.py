"""Benchmarks cannot rot: every `benchmarks/<name>.py --smoke` runs as a user would run it, and prints its summary.

Smoke mode is the full benchmark's code path at tiny sizes, one repeat and one thread (a few seconds each; the
numbers mean nothing). A new script in benchmarks/ fails here until it has a `--smoke` flag and an entry below.
The selected runs start together, two at a time (each uses one thread), so the file takes about half the sum.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
NUM = r"\d+\.\d+"   # a finite number (no nan / inf)

# script -> the summary its smoke run must print (regexes searched in stdout, ^ and $ at line ends)
SUMMARY = {
    "bench_convert": [rf"^ratio convert / bare generator \(time per face\): {NUM}x$"],
    "bench_cpu_math": [rf"^cost of the portable math \(portable / native, both float32\): DAN {NUM}x, GAN {NUM}x",
                       rf"^portable / native bf16 GAN step: {NUM}x"],
    "bench_dan": [rf"^  ratio achieved / peak: {NUM}$"],
    "bench_demo_time": [rf"^speed-up of the C loader: {NUM}x$",
                        rf"^make_demo stage, \d+ frames: .* same bytes: True\nspeed-up of the worker processes: {NUM}x$",
                        rf"^validation / training epoch, stage 2: {NUM}x$",
                        r"^DAN time saved by val_every \d+ over params.yaml's schedule: \d+ s$"],
    "bench_extract": [rf"^keep_scene_starts=False, .*\n(.*\n){{2}}  ratio +: {NUM} .*CPU-time ratio {NUM}$",
                      rf"^keep_scene_starts=True, .*\n(.*\n){{2}}  ratio +: {NUM} .*CPU-time ratio {NUM}$"],
    "bench_gan_step": [rf"^speed-up before/after: {NUM}x", rf"^landmark-loss overhead: {NUM} "],
    "bench_video": [rf"^warping error tracked / frame-by-frame: faces {NUM}x, whole frame {NUM}x; above the input's "
                    rf"floor \(faces\): -?{NUM}x$",
                    rf"^speed-up tracked / frame-by-frame \(faces per second\): {NUM}x; per CPU second: {NUM}x$"],
    "bench_helen": [rf"^NME 68 points: stage {NUM}  raw dlib {NUM}  ratio {NUM}$",
                    rf"^NME 40 points: stage {NUM}  raw dlib {NUM}  ratio {NUM}$"],
    "bench_landmark_loss": [rf"^\[{clock}\] generator step: .* ratio {NUM} .*\n\[{clock}\] landmark loss per image: "
                            rf".* study / ours = {NUM}x; .* study / ours = {NUM}x$" for clock in ("wall", "cpu")],
    "gpu_check": [rf"^  animegan +64 px landmark-loss overhead: {NUM}x a step$",
                  r"^DDP, 1 process on gloo .*weights finite after the steps: True$",
                  rf"^DAN width 0.25, .* = {NUM} of the matmul peak$",
                  rf"^hysts on cpu \(random weights\), .* {NUM} frames/s; .* {NUM} faces/s"],
    "load_web": [rf"^answered (\d+)/\1 \(\1 converted\), latency p50 {NUM} s, p95 {NUM} s \(one alone {NUM} s, "
                 rf"p50 / alone {NUM}x\), server peak RSS {NUM} MB$"],
}
SCRIPTS = sorted({p.stem for p in (ROOT / "benchmarks").glob("*.py")} | set(SUMMARY))
LONGEST_FIRST = ("bench_cpu_math", "gpu_check")   # started first, so that the two workers finish together


def smoke(name: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, f"benchmarks/{name}.py", "--smoke"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def smoke_runs(request: pytest.FixtureRequest):
    """The smoke runs of the benchmarks this session selected, started at once on two workers."""
    names = {item.callspec.params["name"] for item in request.session.items
             if getattr(item, "originalname", None) == "test_benchmark_smoke" and hasattr(item, "callspec")}
    runnable = sorted((n for n in names if n in SUMMARY and (ROOT / "benchmarks" / f"{n}.py").exists()),
                      key=lambda n: (n not in LONGEST_FIRST, n))
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        yield {n: pool.submit(smoke, n) for n in runnable}


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_smoke(name: str, smoke_runs: dict[str, Future]) -> None:
    script = ROOT / "benchmarks" / f"{name}.py"
    assert script.exists(), f"SUMMARY lists {name}, but benchmarks/{name}.py is gone: drop its entry"
    assert name in SUMMARY, f"benchmarks/{name}.py has no smoke test: give it --smoke and add its summary to SUMMARY"
    run = smoke_runs[name].result()
    code = run.returncode
    assert code == 0, f"{name} --smoke exited {code}:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    for pattern in SUMMARY[name]:
        assert re.search(pattern, run.stdout, re.MULTILINE), \
            f"{name} --smoke printed no line like {pattern!r}:\n{run.stdout}"
