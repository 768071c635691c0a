#!/usr/bin/env python
"""Recorded run of issue 15's checks on a real, reproduced project (not a test: it needs the demo outputs).

In a scratch clone of HEAD whose DVC outputs are checked out of this project's cache:
1. `dvc status` after touching src/face2anime/params.py must list every stage;
2. `kill -9` of a real `crop_anime` and `detect_photos` while they write their outputs, then `dvc repro`:
   no temp file may be left in any output, and the pipeline must come back to `dvc status` clean;
3. the bad inputs of the issue, each as a real stage run: exit 1, one stderr line `<stage>: error: ...`,
   no traceback, and the stage's outputs unchanged.
Usage, from the project root after `dvc repro`: .venv/bin/python scripts/hardening_check.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUTPUT_DIRS = ("data", "models", "metrics", "reports", "checkpoints", "dvclive")


def sh(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(cwd / "src")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)


def clone(workdir: Path) -> Path:
    if workdir.exists():
        shutil.rmtree(workdir)
    subprocess.run(["git", "clone", "-q", "--shared", str(ROOT), str(workdir)], check=True)
    for key, value in (("cache.dir", str((ROOT / ".dvc/cache").resolve())), ("cache.type", "copy"),
                       ("core.analytics", "false")):
        sh([str(BIN / "dvc"), "config", "--local", key, value], workdir).check_returncode()
    done = sh([str(BIN / "dvc"), "checkout"], workdir)
    if done.returncode != 0:
        raise SystemExit(f"dvc checkout failed (run `dvc repro` here first): {done.stderr.strip()[-300:]}")
    return workdir


def temps(project: Path) -> list[str]:
    """Temp files inside output folders (the scratch folder is where they belong, so it is not looked at)."""
    found = []
    for top in OUTPUT_DIRS:
        for path in (project / top).rglob("*"):
            if path.name.endswith(".tmp") or ".tmp." in path.name or path.name.startswith(".~"):
                found.append(str(path.relative_to(project)))
    return found


def stages_in_status(project: Path) -> tuple[set[str], set[str]]:
    out = sh([str(BIN / "dvc"), "status"], project).stdout
    listed = {line.rstrip(":").strip() for line in out.splitlines() if line and not line.startswith(("\t", " "))}
    names = set(sh([str(BIN / "dvc"), "stage", "list", "--name-only"], project).stdout.split())
    return listed & names, names


def check_params_touch(project: Path) -> str:
    params_py = project / "src/face2anime/params.py"
    original = params_py.read_bytes()
    params_py.write_bytes(original + b"\n")
    try:
        listed, names = stages_in_status(project)
    finally:
        params_py.write_bytes(original)
    missing = sorted(names - listed)
    return (f"ok: all {len(names)} stages listed" if not missing else f"FAIL: not listed {missing}")


def kill_while_writing(project: Path, stage: str, marker: str) -> str:
    """Start the stage, kill -9 it when its `marker` temp appears in .scratch, then `dvc repro`."""
    scratch = project / ".scratch"
    cmd = yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TQDM_DISABLE": "1",
           "PYTHONPATH": str(project / "src")}
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed, deadline = False, time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if scratch.is_dir() and any(marker in name for name in os.listdir(scratch)):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    proc.wait()
    left_after_kill = temps(project)
    repro = sh([str(BIN / "dvc"), "repro"], project)
    status = sh([str(BIN / "dvc"), "status"], project).stdout.strip()
    clean = "up to date" in status or status == ""
    verdict = "ok" if killed and not left_after_kill and repro.returncode == 0 and clean and not temps(project) \
        else "FAIL"
    return (f"{verdict}: killed while writing: {killed}; temps in outputs after the kill: {left_after_kill or 'none'}; "
            f"dvc repro exit {repro.returncode}; then dvc status: {status.splitlines()[-1] if status else 'clean'}; "
            f"temps left: {temps(project) or 'none'}")


def digest(project: Path) -> str:
    h = hashlib.sha256()
    for top in OUTPUT_DIRS:
        for path in sorted((project / top).rglob("*")):
            if path.is_file():
                h.update(str(path.relative_to(project)).encode() + path.read_bytes())
    return h.hexdigest()


# (label, stage command, edit of params.yaml or of an input file, words the error line must hold)
def _set(section: str, key: str, value):
    def edit(project: Path) -> None:
        path = project / "params.yaml"
        params = yaml.safe_load(path.read_text())
        node = params
        parts = [section, *key.split(".")] if key else [section]
        for p in parts[:-1]:
            node = node[p]
        if value is DELETE:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))
    return edit


def _write(rel: str, data: bytes):
    def edit(project: Path) -> None:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(data)
    return edit


def _replace_with_file(rel: str):
    def edit(project: Path) -> None:
        shutil.rmtree(project / rel)
        (project / rel).write_text("a file where a folder should be")
    return edit


DELETE = object()
CASES = [
    ("photo_landmarks.upsample: two", "python stages/detect_photos.py", _set("photo_landmarks", "upsample", "two"),
     ["photo_landmarks.upsample", "'two'"]),
    ("dan.batch_size: 64a", "python stages/train_dan.py", _set("dan", "batch_size", "64a"), ["dan.batch_size", "64a"]),
    ("dan.batch_size: 0", "python stages/train_dan.py", _set("dan", "batch_size", 0), ["dan.batch_size"]),
    ("dan.batch_size: -1", "python stages/train_dan.py", _set("dan", "batch_size", -1), ["dan.batch_size"]),
    ("gan.common.epochs: six", "python stages/train_gan.py --model cartoongan --init",
     _set("gan", "common.epochs", "six"), ["gan.common.epochs", "six"]),
    ("dan.device: tpu", "python stages/train_dan.py", _set("dan", "device", "tpu"), ["dan.device", "tpu"]),
    ("gan.cartoongan missing", "python stages/train_gan.py --model cartoongan --loss base",
     _set("gan", "cartoongan", DELETE), ["gan.cartoongan", "missing"]),
    ("YAML syntax error", "python stages/split.py", _write("params.yaml", b"split:\n  seed: [0\n  train: 0.7\n"),
     ["YAML syntax error", "line"]),
    ("framing.margin: -1", "python stages/crop_anime.py", _set("framing", "margin", -1), ["framing.margin"]),
    ("photo_landmarks.variants: -3", "python stages/detect_photos.py", _set("photo_landmarks", "variants", -3),
     ["photo_landmarks.variants"]),
    ("photo_landmarks.test_fraction: 2.0", "python stages/photo_landmarks.py",
     _set("photo_landmarks", "test_fraction", 2.0), ["photo_landmarks.test_fraction"]),
    ("expand_contour.search missing", "python stages/expand_contour.py", _set("expand_contour", "search", DELETE),
     ["expand_contour.search", "missing"]),
    ("hysts weights: random bytes", "python stages/detect_anime.py",
     lambda p: (_write("weights/det.safetensors", os.urandom(4096))(p),
                _write("weights/lmk.safetensors", os.urandom(4096))(p),
                _set("detect_anime", "backend", "hysts")(p),
                _set("detect_anime", "detector_weights", "weights/det.safetensors")(p),
                _set("detect_anime", "landmark_weights", "weights/lmk.safetensors")(p)),
     ["weights/", "not a readable weights file"]),
    ("corrupt DAN checkpoint", "python stages/train_dan.py",
     _write("checkpoints/dan/latest/state.json", os.urandom(4096)),
     ["checkpoints/dan/latest/state.json", "delete checkpoints/dan/latest to start over"]),
    ("corrupt GAN generator (init)", "python stages/train_gan.py --model cartoongan --loss base",
     lambda p: (shutil.rmtree(p / "checkpoints/gan/cartoongan-base"),
                _write("models/gan_init/cartoongan/generator.safetensors", os.urandom(4096))(p)),
     ["models/gan_init/cartoongan"]),
    ("empty corrections CSV", "python stages/expand_contour.py", _write("data/corrections/contour.csv", b""),
     ["data/corrections/contour.csv"]),
    ("malformed corrections CSV", "python stages/expand_contour.py",
     _write("data/corrections/contour.csv", b"face_id,point,x,y\nabc,1,zz,3\n"), ["data/corrections/contour.csv"]),
    ("a file where metrics/ should be", "python stages/split.py", _replace_with_file("metrics"),
     ["cannot write", "metrics"]),
]


def run_case(project: Path, label: str, cmd: str, edit, words: list[str]) -> tuple[bool, str]:
    before = digest(project)
    edit(project)
    res = sh(cmd.split(), project, timeout=600)
    err_lines = [line for line in res.stderr.splitlines() if line.strip()]
    stage = cmd.split()[1].split("/")[-1].removesuffix(".py")
    ok = (res.returncode == 1 and len(err_lines) == 1 and ": error: " in err_lines[0]
          and "Traceback" not in res.stdout + res.stderr and all(w in err_lines[0] for w in words))
    # restore the edited inputs, then the outputs must be what they were
    for top in OUTPUT_DIRS:
        if (project / top).is_file():
            (project / top).unlink()
    subprocess.run(["git", "checkout", "-q", "--", "."], cwd=project)
    subprocess.run(["git", "clean", "-qfd", "--", "weights"], cwd=project)
    sh([str(BIN / "dvc"), "checkout", "-q", "--force"], project)
    unchanged = digest(project) == before
    line = err_lines[0] if err_lines else f"(no stderr; exit {res.returncode})"
    return ok and unchanged, f"{'ok  ' if ok and unchanged else 'FAIL'} {label} [{stage}] -> exit {res.returncode}: " \
                             f"{line[:240]}{'' if unchanged else '  (OUTPUTS CHANGED)'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/face2anime-hardening")
    parser.add_argument("--only", default="", help="run only the bad-input cases whose label holds this text")
    args = parser.parse_args()
    project = clone(Path(args.workdir))
    if not args.only:
        print("1. touch src/face2anime/params.py -> dvc status:", check_params_touch(project), flush=True)
        for stage, marker in (("crop_anime", ".crops.npz."), ("detect_photos", ".views.npz.")):
            print(f"2. kill -9 {stage} while writing, then dvc repro:", kill_while_writing(project, stage, marker),
                  flush=True)
    print("3. bad inputs as real stage runs:", flush=True)
    results = [run_case(project, *case) for case in CASES if args.only in case[0]]
    for _, line in results:
        print("   " + line, flush=True)
    failed = sum(not ok for ok, _ in results)
    print(f"hardening_check: {len(results) - failed}/{len(results)} bad inputs ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
