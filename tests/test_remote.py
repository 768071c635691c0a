"""Sharing results through the project's DVC remote: push, clone, pull, nothing to re-run, then only
the stages whose params changed. Runs the real `dvc` CLI on a two-stage project that uses this
project's own `.dvc/config` (its default remote is a folder beside the project)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))

PIPELINE = {
    "stages": {
        "make": {"cmd": "python -c \"import yaml; p = yaml.safe_load(open('params.yaml'))['make']; "
                        "open('base.txt', 'w').write(str(p['n'] * 2))\"",
                 "params": ["make"], "outs": ["base.txt"]},
        "grow": {"cmd": "python -c \"import yaml; p = yaml.safe_load(open('params.yaml'))['grow']; "
                        "open('grown.txt', 'w').write(open('base.txt').read() * p['times'])\"",
                 "deps": ["base.txt"], "params": ["grow"], "outs": ["grown.txt"]},
    }
}


def _sh(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _git(cwd: Path, *args: str) -> str:
    return _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd)


def test_project_config_names_a_default_folder_remote():
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    default = config["core"]["remote"]
    url = config[f"'remote \"{default}\"'"]["url"]
    assert "://" not in url, "the default remote is a folder, so it works offline on one machine"
    # relative to .dvc/: a folder beside the project, never inside it (outside every DVC output)
    resolved = (ROOT / ".dvc" / url).resolve()
    assert ROOT.resolve() not in resolved.parents and resolved != ROOT.resolve()


@pytest.mark.slow
def test_push_clone_pull_reruns_only_what_changed(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    origin = tmp_path / "projects" / "origin"
    origin.mkdir(parents=True)
    _git(origin, "init", "-q")
    _sh([DVC, "init", "-q"], origin)
    shutil.copy(ROOT / ".dvc" / "config", origin / ".dvc" / "config")   # the project's remote settings
    (origin / "dvc.yaml").write_text(yaml.safe_dump(PIPELINE))
    (origin / "params.yaml").write_text(yaml.safe_dump({"make": {"n": 21}, "grow": {"times": 2}}))
    _sh([DVC, "repro", "-q"], origin)
    _sh([DVC, "push", "-q"], origin)
    _git(origin, "add", "-A")
    _git(origin, "commit", "-q", "-m", "results")
    storage = tmp_path / "projects" / "face2anime-dvc-storage"   # ../../ from .dvc/: beside the project
    assert storage.is_dir() and any(storage.rglob("*")), "dvc push wrote nothing to the folder remote"

    colleague = tmp_path / "projects" / "colleague"
    _git(tmp_path, "clone", "-q", str(origin), str(colleague))
    assert not (colleague / "grown.txt").exists()
    _sh([DVC, "pull", "-q"], colleague)
    assert (colleague / "grown.txt").read_text() == "4242"
    assert "up to date" in _sh([DVC, "status"], colleague).lower()
    assert "Running stage" not in _sh([DVC, "repro"], colleague)

    params = yaml.safe_load((colleague / "params.yaml").read_text())
    params["grow"]["times"] = 3
    (colleague / "params.yaml").write_text(yaml.safe_dump(params))
    out = _sh([DVC, "repro"], colleague)
    assert "Running stage 'grow'" in out and "Running stage 'make'" not in out
    assert (colleague / "grown.txt").read_text() == "424242"
