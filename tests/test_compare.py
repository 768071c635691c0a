"""CI metric comparison: drift within tolerance passes, beyond it fails, counts are exact, gates are enforced."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from face2anime.errors import UserError
from ci_compare import (Tolerance, compare_tree, flatten, format_table, load_gates,
                                        parse_gates, values_match)

ROOT = Path(__file__).resolve().parents[1]

GATES = {
    "tolerance": {
        "default": {"rel": 0.01, "abs": 1e-6},
        "rules": [{"pattern": "metrics/gan/*.json:*", "rel": 0.2, "abs": 0.01}],
        "ignore": ["*:*seconds"],
    },
    "gates": [
        {"metric": "metrics/dan.json:test.rmse", "max": 1.62, "why": "study"},
        {"metric": "metrics/gan/animegan-landmark.json:collapse.collapse", "equals": False},
    ],
}

DAN = {"test": {"rmse": 1.5, "outlier_points": 12, "outlier_percent": 2.0}, "seconds": 10.0}
GAN = {"collapse": {"collapse": False, "spread_ratio": 0.8}, "kid": {"mean": 0.05}}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def _write(repo: Path, dan: dict, gan: dict) -> None:
    (repo / "metrics" / "gan").mkdir(parents=True, exist_ok=True)
    (repo / "metrics" / "dan.json").write_text(json.dumps(dan))
    (repo / "metrics" / "gan" / "animegan-landmark.json").write_text(json.dumps(gan))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    _git(tmp_path, "init", "-q")
    _write(tmp_path, DAN, GAN)
    (tmp_path / "metrics" / "gates.yaml").write_text(yaml.safe_dump(GATES))
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "metrics")
    return tmp_path


def _run(repo: Path):
    return compare_tree(repo, "HEAD", load_gates(repo / "metrics" / "gates.yaml"))


def _modified(base: dict, path: str, value) -> dict:
    out = json.loads(json.dumps(base))
    node = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return out


def test_unchanged_tree_passes(repo):
    result = _run(repo)
    assert result.passed, format_table(result)
    assert {r.status for r in result.rows} >= {"ok", "gate-ok", "ignored"}


def test_drift_within_tolerance_passes(repo):
    _write(repo, _modified(DAN, "test.rmse", 1.5 * 1.005), _modified(GAN, "kid.mean", 0.055))
    result = _run(repo)
    assert result.passed, format_table(result)


def test_drift_beyond_tolerance_fails(repo):
    _write(repo, _modified(DAN, "test.rmse", 1.5 * 1.05), GAN)
    result = _run(repo)
    assert not result.passed
    assert [r.address for r in result.failures] == ["metrics/dan.json:test.rmse"]
    assert "FAIL" in format_table(result)


def test_per_file_rule_is_looser_than_default(repo):
    _write(repo, DAN, _modified(GAN, "kid.mean", 0.05 * 1.15))  # 15 % drift: within the GAN rule's 20 %
    assert _run(repo).passed
    _write(repo, DAN, _modified(GAN, "kid.mean", 0.05 * 1.5))
    assert not _run(repo).passed


def test_counts_must_match_exactly(repo):
    _write(repo, _modified(DAN, "test.outlier_points", 13), GAN)
    result = _run(repo)
    assert [r.address for r in result.failures] == ["metrics/dan.json:test.outlier_points"]
    assert "exactly" in result.failures[0].note


def test_ignored_metric_may_change(repo):
    _write(repo, _modified(DAN, "seconds", 99.0), GAN)
    assert _run(repo).passed


def test_gate_breach_fails_even_when_committed_value_breaches_too(repo):
    bad = _modified(DAN, "test.rmse", 1.7)
    _write(repo, bad, GAN)
    _git(repo, "commit", "-q", "-am", "bad rmse committed")
    result = _run(repo)
    assert [(r.address, r.status) for r in result.failures] == [("metrics/dan.json:test.rmse", "gate-fail")]


def test_collapse_flag_gate(repo):
    _write(repo, DAN, _modified(GAN, "collapse.collapse", True))
    statuses = {(r.address, r.status) for r in _run(repo).failures}
    assert ("metrics/gan/animegan-landmark.json:collapse.collapse", "gate-fail") in statuses


def test_missing_metric_file_and_key_fail(repo):
    (repo / "metrics" / "gan" / "animegan-landmark.json").unlink()
    result = _run(repo)
    statuses = {r.status for r in result.failures}
    assert statuses == {"missing", "gate-fail"}  # the file is gone and its gate has nothing to read
    _write(repo, {"test": {"rmse": 1.5, "outlier_points": 12}, "seconds": 1.0}, GAN)
    assert [r.address for r in _run(repo).failures] == ["metrics/dan.json:test.outlier_percent"]


def test_new_metric_is_reported_not_failed(repo):
    _write(repo, _modified(DAN, "test.extra", 1.0), GAN)
    result = _run(repo)
    assert result.passed
    assert any(r.status == "new" for r in result.rows)


def test_values_match_rules():
    tol = Tolerance(rel=0.1, abs=0.0)
    assert values_match(1.0, 1.05, tol) and not values_match(1.0, 1.2, tol)
    assert not values_match(3, 4, tol) and values_match(3, 3, tol)
    assert values_match(10, 11, Tolerance(rel=0.1, ints=True))
    assert not values_match(True, 1, tol) and not values_match(None, 0.0, tol)
    assert values_match(float("nan"), float("nan"), tol) and values_match("a", "a", tol)
    assert values_match(1, 1.05, tol)  # an int that became a float is judged as a float


def test_flatten_lists_and_dicts():
    assert flatten({"a": {"b": [1, {"c": 2}]}, "d": None}) == {"a.b.0": 1, "a.b.1.c": 2, "d": None}


def test_bad_gate_spec_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        parse_gates({"gates": [{"metric": "metrics/dan.json:x"}]})
    with pytest.raises(UserError, match="not found"):
        load_gates(tmp_path / "nope.yaml")


def test_project_gates_file_parses():
    gates = load_gates(ROOT / "metrics" / "gates.yaml")
    assert gates.gates, "the project keeps at least one quality gate"


def test_cli_exit_status(repo):
    script = ROOT / "scripts" / "compare_metrics.py"
    ok = subprocess.run([sys.executable, str(script), "--root", str(repo)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    _write(repo, _modified(DAN, "test.rmse", 1.9), GAN)
    bad = subprocess.run([sys.executable, str(script), "--root", str(repo)], capture_output=True, text=True)
    assert bad.returncode == 1 and "gate-fail" in bad.stdout


def test_ci_report_is_written_printed_and_fails_on_drift(repo):
    script = ROOT / "scripts" / "ci_report.py"
    ok = subprocess.run([sys.executable, str(script), "--root", str(repo)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = (repo / "reports" / "ci.md").read_text()
    assert report.startswith("# face2anime CI report: PASS") and report in ok.stdout
    assert "## Metrics changed" in report and "| gate-ok | `metrics/dan.json:test.rmse` |" in report

    _write(repo, _modified(DAN, "test.outlier_percent", 3.0), GAN)   # 50 % drift, gate still holds
    bad = subprocess.run([sys.executable, str(script), "--root", str(repo)], capture_output=True, text=True)
    assert bad.returncode == 1
    report = (repo / "reports" / "ci.md").read_text()
    assert report.startswith("# face2anime CI report: FAIL")
    assert "| **drift** | `metrics/dan.json:test.outlier_percent` | 2 | 3 |" in report
    assert not list((repo / "reports").glob("*.tmp")), "the report is written atomically"
