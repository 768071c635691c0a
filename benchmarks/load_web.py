"""Load on the web page: N requests at once through `gradio_client`, all answered? latency and peak memory.

Starts `face2anime serve` (the repository's params: queue of `serve.concurrency` conversions at once) in a
subprocess on a free localhost port, converts one photo alone (warm: the generator and dlib loaded), then
submits `--requests` conversions at the same moment (the demo photos in turn, paste mode) and waits for all.
Latency is submit -> answer per request (queueing included); p50 / p95 over the burst; the single warm
request is printed beside them, so p50 / alone is what waiting in the queue costs. Peak memory is the
server process's peak resident set (VmHWM) over its whole life. Local only.

Generator: models/gan/animegan-landmark when trained, else random weights at params.yaml's
gan.animegan.generator size (bench_convert's `prepare_model`; speed does not depend on the weights).
Run: `.venv/bin/python benchmarks/load_web.py [--requests 20]`. `--smoke` (tests/test_benchmarks.py): 3
requests, random weights; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench_convert import prepare_model
from face2anime.photos.files import demo_photos
from face2anime.settings import load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of the process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc (Linux only)")


def start_server(models: Path, port: int, concurrency: int) -> tuple[subprocess.Popen, list[str]]:
    cmd = [sys.executable, "-m", "face2anime.convert.cli", "serve", "--port", str(port), "--device", "cpu",
           "--models", str(models), "--set", "metrics=", "--set", f"concurrency={concurrency}", "--params", str(PARAMS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    ready = threading.Event()
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("face2anime serve: http"):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(300) or proc.poll() is not None:
        proc.kill()
        raise SystemExit("face2anime serve did not start:\n" + "".join(lines[-30:]))
    return proc, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20, help="conversions submitted at once")
    ap.add_argument("--concurrency", type=int, default=None, help="conversions at once (default: serve.concurrency)")
    ap.add_argument("--smoke", action="store_true", help="3 requests, random weights: the code works")
    args = ap.parse_args()
    if args.smoke:
        args.requests = 3
    from gradio_client import Client, handle_file

    serve = load_params("serve", PARAMS)
    concurrency = args.concurrency or serve["concurrency"]
    photos = [str(p.path) for p in demo_photos()]
    with tempfile.TemporaryDirectory(prefix="load_web_") as tmp:
        work = Path(tmp)
        ns = argparse.Namespace(smoke=args.smoke, model=None, width=None, blocks=None)
        model_dir, described = prepare_model(ns, work / "models")
        port = free_port()
        proc, log = start_server(model_dir.parent, port, concurrency)
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(work / "client"))
            name = model_dir.name
            t = time.perf_counter()
            first = client.predict(handle_file(photos[0]), name, "paste", False, api_name="/convert")
            alone_cold = time.perf_counter() - t
            t = time.perf_counter()
            client.predict(handle_file(photos[0]), name, "paste", False, api_name="/convert")
            alone = time.perf_counter() - t
            if "Converted" not in first[3]:
                raise SystemExit(f"the warm-up request was not converted: {first[3]}")

            latency: dict[int, float] = {}
            answers: dict[int, str] = {}
            gate = threading.Barrier(args.requests + 1)

            def one(k: int) -> None:
                gate.wait()
                try:
                    answers[k] = client.predict(handle_file(photos[k % len(photos)]), name, "paste", False,
                                                api_name="/convert")[3]
                except Exception as err:  # noqa: BLE001 - counted as not converted
                    answers[k] = f"error: {err}"
                latency[k] = time.perf_counter() - start

            threads = [threading.Thread(target=one, args=(k,)) for k in range(args.requests)]
            for th in threads:
                th.start()
            start = time.perf_counter()
            gate.wait()
            for th in threads:
                th.join(600)
            burst = time.perf_counter() - start
            if proc.poll() is not None:
                raise SystemExit(f"the server stopped (exit {proc.returncode}):\n" + "".join(log[-30:]))
            peak = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)

    converted = sum("Converted" in a for a in answers.values())
    lat = np.array([latency[k] for k in sorted(latency)])
    p50, p95 = np.percentile(lat, [50, 95])
    print(f"face2anime serve on CPU, generator {described}; queue: concurrency {concurrency}, "
          f"queue_size {serve['queue_size']}")
    print(f"  first request (loads the generator and dlib): {alone_cold:.2f} s; one warm request alone: {alone:.2f} s")
    print(f"  {args.requests} requests submitted at once: all answered after {burst:.2f} s "
          f"({args.requests / burst:.2f} conversions/s); max latency {lat.max():.2f} s")
    bad = [f"request {k}: {a}" for k, a in sorted(answers.items()) if "Converted" not in a]
    for line in bad:
        print(f"  NOT converted: {line}")
    print(f"answered {len(answers)}/{args.requests} ({converted} converted), latency p50 {p50:.2f} s, "
          f"p95 {p95:.2f} s (one alone {alone:.2f} s, p50 / alone {p50 / alone:.2f}x), "
          f"server peak RSS {peak:.1f} MB")
    return 0 if converted == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
