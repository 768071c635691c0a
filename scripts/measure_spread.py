#!/usr/bin/env python
"""Measure how far the trained stages' metrics move across seeds and CPU instruction sets.

For every (seed, math) pair this makes a scratch clone of HEAD under --workdir, checks the upstream
outputs (anime crops, photos, style sets) out of this project's DVC cache, sets `dan.seed` and
`gan.common.seed` in its params.yaml, and runs the trained stages in dvc.yaml order (train_dan, eval_dan,
init_gan@*, train_gan@*, eval_gan_reference, eval_gan@*) with their exact commands from dvc.lock.
Math `avx2` is the default (portable) CPU math; `native` lets oneDNN/ATen/MKL use everything the CPU
has (AVX-512 here) in float32 (`gan.common.amp: false`, so only the instruction set differs), standing
in for a machine with another CPU. `--regression halved` adds a run with half the DAN's training
length (train_dan and eval_dan only), which the metric comparison must reject.

Writes docs/spread.csv (every compared metric of every run) and the tables between the markers in
docs/reproducibility.md. Stages already run are kept in --workdir and not re-run (delete a run's folder
to redo it). Usage, from the project root after `dvc repro` (or `dvc pull`):
    .venv/bin/python scripts/measure_spread.py --seeds 0 1 2 --math avx2 native --regression halved
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from face2anime.errors import UserError
from ci_compare import Comparison, compare_tree, committed_json, flatten, load_gates

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reproducibility.md"
CSV_OUT = ROOT / "docs" / "spread.csv"
BEGIN, END = "<!-- spread:begin (scripts/measure_spread.py) -->", "<!-- spread:end -->"
# The stages that train or measure through a trained model, in dvc.yaml order (prefix match on the name).
TRAINED = ("train_dan", "eval_dan", "init_gan@", "train_gan@", "init_spade", "train_spade@", "eval_gan_reference",
           "eval_gan@")
CPU_MATH_VARS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "FACE2ANIME_CPU_MATH")
# Headline metrics shown in the short table besides the gated ones (the full list is in docs/spread.csv).
HEADLINE = ("metrics/dan.json:stage1.rmse_px", "metrics/dan.json:stage1.images_with_outlier_pct",
            "metrics/dan.json:final.nme_interocular", "metrics/gan/*.json:style.kid.mean",
            "metrics/gan/*.json:content.*", "metrics/gan/*.json:landmarks.rmse_px")


@dataclass(frozen=True)
class Run:
    seed: int
    math: str                  # avx2 | native
    regression: str = ""       # "" | halved

    @property
    def name(self) -> str:
        return f"seed{self.seed}-{self.math}" + (f"-{self.regression}" if self.regression else "")


def _lock_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]


def trained_stages(lock: dict) -> list[tuple[str, str]]:
    """(name, cmd) of the trained stages, in TRAINED order then dvc.lock order."""
    names = [n for n in lock if n.startswith(TRAINED)]
    names.sort(key=lambda n: next(i for i, p in enumerate(TRAINED) if n.startswith(p)))
    return [(n, lock[n]["cmd"]) for n in names]


def upstream_outputs(lock: dict) -> list[str]:
    """DVC outputs of other stages that the trained stages read: what a scratch clone must check out."""
    trained = {n for n, _ in trained_stages(lock)}
    outs = {o["path"] for n, s in lock.items() if n not in trained for o in s.get("outs", [])}
    deps = {d["path"] for n in trained for d in lock[n].get("deps", [])}
    return sorted(o for o in outs if any(d == o or d.startswith(o.rstrip("/") + "/") for d in deps))


def _set_params(path: Path, run: Run) -> None:
    params = yaml.safe_load(path.read_text())
    params["dan"]["seed"] = run.seed
    params["gan"]["common"]["seed"] = run.seed
    if run.math == "native":
        params["gan"]["common"]["amp"] = False  # float32: only the instruction set differs
    if run.regression == "halved":
        params["dan"]["max_epochs"] = [max(1, e // 2) for e in params["dan"]["max_epochs"]]
        common = params["gan"]["common"]
        common["init_epochs"], common["epochs"] = common["init_epochs"] // 2, common["epochs"] // 2
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _environment(run: Run, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CPU_MATH_VARS}
    if run.math == "native":
        env["FACE2ANIME_CPU_MATH"] = "native"
    # the scratch clone's code, not the editable install's (which points at this work tree)
    env["PYTHONPATH"] = os.pathsep.join([str(scratch / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TQDM_MININTERVAL", "60")
    return env


def prepare(run: Run, workdir: Path, dvc: str) -> Path:
    """A scratch clone of HEAD with the upstream outputs checked out and the run's params set."""
    scratch = workdir / run.name
    if scratch.exists():
        shutil.rmtree(scratch)
    subprocess.run(["git", "clone", "-q", "--shared", str(ROOT), str(scratch)], check=True)
    cache = (ROOT / ".dvc" / "cache").resolve()
    for key, value in (("cache.dir", str(cache)), ("cache.type", "copy"), ("core.analytics", "false")):
        subprocess.run([dvc, "config", "--local", key, value], cwd=scratch, check=True, capture_output=True)
    needed = upstream_outputs(_lock_stages())
    done = subprocess.run([dvc, "checkout", *needed], cwd=scratch, capture_output=True, text=True)
    missing = [p for p in needed if not (scratch / p).exists()]
    if done.returncode != 0 or missing:
        raise UserError(f"cannot check out {missing or needed} from the DVC cache: run `dvc repro` (or "
                        f"`dvc pull`) in {ROOT} first ({(done.stderr or '').strip().splitlines()[-1:]})")
    _set_params(scratch / "params.yaml", run)
    return scratch


def _metric_outs(lock: dict, names: list[str]) -> list[str]:
    return sorted({o["path"] for n in names for o in lock[n].get("outs", [])
                   if o["path"].startswith("metrics/") and o["path"].endswith(".json")})


def execute(run: Run, workdir: Path, dvc: str, only: tuple[str, ...]) -> dict:
    """Run the trained stages of one (seed, math) pair (those starting with `only`); return metrics, timings.

    Stages already run in the scratch clone are not run again, so `--stages dan` then `--stages all`
    continues where the first call ended."""
    scratch = workdir / run.name
    ready, timing_file = scratch / ".spread-ready", scratch / ".spread-seconds.json"
    if not ready.exists():
        prepare(run, workdir, dvc)
        ready.touch()
    seconds: dict[str, float] = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    lock = _lock_stages()
    selected = [(n, c) for n, c in trained_stages(lock) if n.startswith(only)]
    env = _environment(run, scratch)
    with open(scratch / "run.log", "a") as log:
        for name, cmd in selected:
            if name in seconds:
                continue
            print(f"[{run.name}] {name}", flush=True)
            start = time.perf_counter()
            done = subprocess.run(cmd, shell=True, cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                raise UserError(f"{run.name}: stage {name} failed (exit {done.returncode}); see {scratch}/run.log")
            seconds[name] = round(time.perf_counter() - start, 1)
            timing_file.write_text(json.dumps(seconds, indent=1))
    names = [n for n, _ in selected]
    metrics = {p: json.loads((scratch / p).read_text()) for p in _metric_outs(lock, names)}
    print(f"[{run.name}] {len(names)} stages, {sum(seconds[n] for n in names) / 60:.1f} min", flush=True)
    return {"run": run.__dict__, "seconds": {n: seconds[n] for n in names},
            "metrics": {f"{p}:{k}": v for p, m in metrics.items() for k, v in flatten(m).items()}}


def regression_check(run: Run, workdir: Path) -> Comparison:
    """The regression run's metrics against the committed ones, with the committed gates.yaml."""
    return compare_tree(workdir / run.name, "HEAD", load_gates(ROOT / "metrics" / "gates.yaml"))


# ---------------------------------------------------------------- tables
def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def spread_rows(results: list[dict], committed: dict[str, object], gates, committed_seed: int = 0) -> list[dict]:
    """One row per compared numeric metric of the trained stages (ignored ones, e.g. timings, left out).

    A user on another machine runs the committed seed, so `same_seed_dev` (the largest deviation of the runs
    with that seed, i.e. the other instruction set) is what a tolerance must cover; other seeds show
    how much of the spread is the training's own randomness."""
    rows = []
    addresses = sorted({a for r in results for a in r["metrics"]} & set(committed))
    for address in addresses:
        old = committed[address]
        if gates.ignored(address) or not _number(old):
            continue
        # runs limited to the DAN (--dan-only) have no GAN metrics: each metric uses the runs that made it
        nums = [(r["run"], float(r["metrics"][address])) for r in results
                if address in r["metrics"] and _number(r["metrics"][address])]
        if len(nums) < 2:
            continue
        vs = [v for _, v in nums]
        scale = abs(float(old)) if float(old) != 0 else float("nan")
        by_seed: dict[int, list[float]] = {}
        for run, v in nums:
            by_seed.setdefault(run["seed"], []).append(v)
        isa = max([max(v) - min(v) for v in by_seed.values() if len(v) > 1] or [0.0])
        tol = gates.tolerance_for(address)
        dev = max(abs(v - float(old)) for v in vs)
        allowed = tol.abs + tol.rel * abs(float(old)) + 1e-12
        same = [abs(v - float(old)) for run, v in nums if run["seed"] == committed_seed]
        same_dev = max(same or [0.0])
        rows.append({"metric": address, "runs": len(vs), "committed": float(old), "min": min(vs), "max": max(vs),
                     "rel_spread": (max(vs) - min(vs)) / scale, "rel_isa_spread": isa / scale,
                     "max_abs_dev": dev, "rel_max_dev": dev / scale,
                     "same_seed_dev": same_dev, "rel_same_seed_dev": same_dev / scale,
                     "allowed_abs_dev": allowed - 1e-12,
                     "runs_within": sum(abs(v - float(old)) <= allowed for v in vs),
                     "within_tolerance": same_dev <= allowed})
    return rows


def _f(v: float) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "-"
    return f"{v:.4g}"


def _pct(v: float) -> str:
    return "-" if math.isnan(v) else f"{100 * v:.1f} %"


def markdown(rows: list[dict], results: list[dict], gated: set[str], regression: Comparison | None,
             command: str) -> str:
    def table(selected: list[dict]) -> list[str]:
        out = ["| metric | runs | committed | min | max | spread (all runs) | spread (ISA only) | allowed | "
               "same seed within | runs within |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in selected:
            out.append(f"| `{r['metric']}` | {r['runs']} | {_f(r['committed'])} | {_f(r['min'])} | {_f(r['max'])} | "
                       f"{_pct(r['rel_spread'])} | {_pct(r['rel_isa_spread'])} | "
                       f"±{_f(r['allowed_abs_dev'])} | {'yes' if r['within_tolerance'] else '**no**'} | "
                       f"{r['runs_within']}/{r['runs']} |")
        return out

    runs = sorted({r["run"]["seed"] for r in results})
    maths = sorted({r["run"]["math"] for r in results})
    lines = [BEGIN, "", f"Measured with `{command}` ({len(results)} runs: seeds {runs} x math {maths}; "
             "spread = (max - min) / |committed|; ISA only = the largest avx2-vs-native gap at one seed; "
             "allowed = the tolerance of `metrics/gates.yaml` around the committed value; same seed within = "
             "the committed seed's runs (the other CPU) inside it; runs within = how many of all runs are).", ""]
    key_rows = [r for r in rows if r["metric"] in gated or any(fnmatch.fnmatchcase(r["metric"], p) for p in HEADLINE)]
    lines += ["**Gated and headline metrics**", "", *table(key_rows), ""]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        path, key = r["metric"].split(":", 1)
        groups.setdefault(f"{path}:{key.split('.')[0]}", []).append(r)
    lines += ["**By group** (largest relative spread and deviation of any metric in the group; full list in "
              "`docs/spread.csv`)", "", "| group | metrics | max spread | max ISA-only spread | "
              "max deviation, same seed | max deviation, any seed | same seed within tolerance |",
              "|---|---|---|---|---|---|---|"]
    for g, rs in sorted(groups.items()):
        finite = lambda key: [x[key] for x in rs if not math.isnan(x[key])]  # noqa: E731
        lines.append(f"| `{g}` | {len(rs)} | {_pct(max(finite('rel_spread') or [math.nan]))} | "
                     f"{_pct(max(finite('rel_isa_spread') or [math.nan]))} | "
                     f"{_pct(max(finite('rel_same_seed_dev') or [math.nan]))} | "
                     f"{_pct(max(finite('rel_max_dev') or [math.nan]))} | "
                     f"{'yes' if all(x['within_tolerance'] for x in rs) else '**no** (' + str(sum(not x['within_tolerance'] for x in rs)) + ')'} |")
    timing = ", ".join(f"{Run(**r['run']).name} {r['seconds'].get('train_dan', float('nan')) / 60:.1f}" for r in results)
    lines += ["", f"**`train_dan` minutes per run** (2 threads; other jobs shared the 2 cores, so these say little "
              f"about the math): {timing}", ""]
    if regression is not None:
        fails = regression.failures
        gate_fails = [f for f in fails if f.status == "gate-fail"]
        lines += [f"**Deliberately broken change** (`--regression halved`: half the DAN epochs, seed 0, avx2; "
                  f"train_dan and eval_dan re-run): the comparison {'FAILS' if fails else 'PASSES (the tolerances are too loose)'} with "
                  f"{len(fails) - len(gate_fails)} drifts and {len(gate_fails)} broken gates, e.g.:", ""]
        for f in (gate_fails + [f for f in fails if f.status != "gate-fail"])[:8]:
            lines.append(f"- {f.status} `{f.address}`: committed {_f(f.old) if _number(f.old) else f.old}, "
                         f"reproduced {_f(f.new) if _number(f.new) else f.new} ({f.note})")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def suggest_rules(rows: list[dict], margin: float = 1.5) -> list[str]:
    """Tolerance rules per group that cover the committed seed's runs (other CPUs) with `margin` to spare."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        path, key = r["metric"].split(":", 1)
        groups.setdefault(f"{path}:{key.split('.')[0]}*", []).append(r)
    out = []
    for pattern, rs in sorted(groups.items()):
        rel = margin * max([r["same_seed_dev"] / abs(r["committed"]) for r in rs if abs(r["committed"]) >= 1e-3] or [0])
        slack = margin * max(max(0.0, r["same_seed_dev"] - rel * abs(r["committed"])) for r in rs)
        out.append(f"- {{pattern: \"{pattern}\", rel: {rel:.3g}, abs: {slack:.3g}, ints: true}}")
    return out


def write_doc(block: str) -> None:
    text = DOC.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Measured spread\n\n" + block + "\n"
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--math", nargs="+", default=["avx2", "native"], choices=["avx2", "native"])
    parser.add_argument("--regression", choices=["halved"], default=None,
                        help="also run a deliberately broken change and show that the comparison fails")
    parser.add_argument("--workdir", default="/tmp/face2anime-spread", help="scratch clones (outside the project)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each uses the params' thread count)")
    parser.add_argument("--dan-only", nargs="*", default=[], metavar="RUN",
                        help="runs (e.g. seed1-native) that re-run only the DAN stages, to save time")
    parser.add_argument("--skip", nargs="*", default=[], metavar="RUN",
                        help="runs of the seed x math grid to leave out (e.g. seed2-native)")
    parser.add_argument("--stages", choices=["all", "dan"], default="all",
                        help="dan: only train_dan and eval_dan (a quick look at the DAN's spread)")
    parser.add_argument("--no-doc", action="store_true", help="print the tables instead of updating the docs")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    runs = [r for r in (Run(s, m) for m in args.math for s in args.seeds) if r.name not in args.skip]
    only = TRAINED if args.stages == "all" else ("train_dan", "eval_dan")
    extra = [Run(args.seeds[0], "avx2", args.regression)] if args.regression else []
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            dan_stages = ("train_dan", "eval_dan")
            results = list(pool.map(lambda r: execute(r, workdir, dvc, dan_stages if r.name in args.dan_only else only),
                                    runs))
        # the broken change only needs the DAN: its metrics must already fail the comparison
        results += [execute(r, workdir, dvc, ("train_dan", "eval_dan")) for r in extra]
        gates = load_gates(ROOT / "metrics" / "gates.yaml")
        committed = {}
        for path in sorted({a.split(":", 1)[0] for r in results for a in r["metrics"]}):
            data = committed_json(ROOT, "HEAD", path)
            committed.update({f"{path}:{k}": v for k, v in flatten(data or {}).items()})
        regression = regression_check(extra[0], workdir) if extra else None
    except UserError as err:
        print(f"measure_spread: error: {err}", file=sys.stderr)
        return 1
    committed_seed = int(yaml.safe_load((ROOT / "params.yaml").read_text())["dan"]["seed"])
    rows = spread_rows(results[:len(runs)], committed, gates, committed_seed)
    with open(CSV_OUT, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["metric", "committed", *(r.name for r in runs + extra)])
        for row in rows:
            writer.writerow([row["metric"], row["committed"],
                             *(res["metrics"].get(row["metric"]) for res in results)])
    command = "python scripts/measure_spread.py " + " ".join(argv if argv is not None else sys.argv[1:])
    block = markdown(rows, results[:len(runs)], {g.metric for g in gates.gates}, regression, command.strip())
    if args.no_doc:
        print(block)
    else:
        write_doc(block)
    print("suggested tolerance rules (1.5x the largest deviation measured; review before use):")
    print("\n".join(suggest_rules(rows)))
    outside = [r for r in rows if not r["within_tolerance"]]
    print(f"measure_spread: {len(runs)} runs (+{len(extra)} regression), {len(rows)} metrics; "
          f"{len(outside)} outside their tolerance; regression "
          f"{'rejected' if regression is not None and not regression.passed else 'accepted' if regression else 'not run'}"
          f"; tables in {DOC.relative_to(ROOT)} and {CSV_OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
