#!/usr/bin/env python
"""CI report: what this run reproduced against the committed results, as markdown a person reads.

Writes reports/ci.md (machine and CPU math, whether the outputs are byte-identical to the committed
dvc.lock, `dvc params diff --md` and `dvc metrics diff --md` against the revision, the metric comparison
with its tolerances and quality gates, and the pipeline's pictures), prints it, and exits 1 when a metric
drifted beyond its tolerance or a gate broke (the same verdict as scripts/compare_metrics.py).
Usage, from the project root after `dvc repro`:
    .venv/bin/python scripts/ci_report.py [--rev HEAD] [--out reports/ci.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import face2anime
from face2anime.errors import UserError
from ci_compare import compare_tree, format_markdown, load_gates

# Pictures worth a look in a CI report, if the pipeline made them (relative to the project root).
PICTURES = ("reports/gan/comparison.png", "reports/dan/worst.png", "reports/anime_sheet.png",
            "reports/mean_shapes.png", "reports/contour_worst.png")


def _run(cmd: list[str], root: Path) -> tuple[int, str]:
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    return done.returncode, (done.stdout.strip() or done.stderr.strip())


def _cpu() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model} ({', '.join(isa) or 'no AVX2'}; {os.cpu_count()} CPUs)"


def _lock_changes(root: Path, rev: str) -> list[str]:
    """Stages of dvc.lock whose recorded outputs or deps differ from `rev` (empty: byte-identical)."""
    import yaml

    code, old_text = _run(["git", "show", f"{rev}:dvc.lock"], root)
    if code != 0 or not (root / "dvc.lock").exists():
        return ["(no committed dvc.lock to compare with)"]
    old = (yaml.safe_load(old_text) or {}).get("stages", {})
    new = (yaml.safe_load((root / "dvc.lock").read_text()) or {}).get("stages", {})
    return sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))


def build_report(root: Path, rev: str, dvc: str) -> tuple[str, bool]:
    comparison = compare_tree(root, rev, load_gates(root / "metrics" / "gates.yaml"))
    _, commit = _run(["git", "rev-parse", "--short", "HEAD"], root)
    changed = _lock_changes(root, rev)
    math_env = ", ".join(f"{k}={os.environ.get(k, '-')}" for k in face2anime.PORTABLE_CPU_MATH)
    lines = [f"# face2anime CI report: {'PASS' if comparison.passed else 'FAIL'}", "",
             f"- commit `{commit}`, compared with `{rev}`, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- CPU: {_cpu()}",
             f"- CPU math: {face2anime.CPU_MATH} ({math_env})",
             "- outputs: " + ("byte-identical to the committed `dvc.lock`" if not changed else
                              f"differ from the committed `dvc.lock` in {len(changed)} stage(s): "
                              + ", ".join(f"`{n}`" for n in changed)), ""]
    code, params = _run([dvc, "params", "diff", rev, "--md"], root)
    lines += ["## Params changed against the committed ones", "",
              (params if code == 0 and params else "none") if code == 0 else f"(dvc params diff failed: {params})", ""]
    code, metrics = _run([dvc, "metrics", "diff", rev, "--md", "--precision", "5"], root)
    lines += ["## Metrics changed (`dvc metrics diff --md`)", "",
              (metrics if metrics else "none: every metric has its committed value") if code == 0
              else f"(dvc metrics diff failed: {metrics})", ""]
    lines += ["## Comparison with tolerances and quality gates (`metrics/gates.yaml`)", "",
              "Drift beyond a tolerance or a broken gate fails CI; tolerances come from the spread measured in "
              "`docs/reproducibility.md`.", "", format_markdown(comparison), ""]
    pictures = [p for p in PICTURES if (root / p).exists()]
    if pictures:
        lines += ["## Pictures", ""]
        lines += [f"![{p}]({os.path.relpath(root / p, root / 'reports')})" for p in pictures]
        lines.append("")
    return "\n".join(lines), comparison.passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root (default: current directory)")
    parser.add_argument("--rev", default="HEAD", help="git revision holding the committed results")
    parser.add_argument("--out", default="reports/ci.md", help="where the report goes (relative to --root)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    try:
        report, passed = build_report(root, args.rev, dvc)
    except UserError as err:
        print(f"ci_report: error: {err}", file=sys.stderr)
        return 1
    out = root / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(report)
    tmp.replace(out)
    print(report)
    print(f"ci_report: {'PASS' if passed else 'FAIL'}; written to {args.out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
