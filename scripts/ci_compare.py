"""Compare reproduced metrics with the committed ones, and check quality gates, for CI.

After `dvc repro`, every `metrics/*.json` and `metrics/gan/*.json` in the work tree is compared leaf by
leaf with its committed version (`git show <rev>:<path>`). Floats may drift within a tolerance
(`|new - old| <= abs + rel * |old|`); counts (ints), flags and strings must match exactly unless a
tolerance rule says `ints: true`. Quality gates are bounds on single metrics. Both live in the
versioned `metrics/gates.yaml`, so loosening a gate is a reviewed change.

Metric addresses are `<file>:<dotted.key>` (list items by index: `a.b.0`); rules match them with
shell-style patterns (fnmatch), first matching rule wins.
"""

from __future__ import annotations

import fnmatch
import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from face2anime.errors import UserError

METRIC_GLOBS = ("metrics/*.json", "metrics/gan/*.json")

Leaf = bool | int | float | str | None


# ---------------------------------------------------------------- gates file
@dataclass(frozen=True)
class Tolerance:
    rel: float = 0.0
    abs: float = 0.0
    ints: bool = False  # also let integer counts drift within rel/abs


@dataclass(frozen=True)
class Rule:
    pattern: str
    tolerance: Tolerance


@dataclass(frozen=True)
class Gate:
    metric: str                 # "<file>:<dotted.key>"
    min: float | None = None
    max: float | None = None
    equals: Leaf = None
    why: str = ""

    def check(self, value: Any) -> bool:
        if self.equals is not None:  # a flag gate wants a flag, not 0 / 1
            return isinstance(value, bool) == isinstance(self.equals, bool) and value == self.equals
        if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        if self.equals is not None:
            return f"== {self.equals}"
        parts = ([f">= {self.min:g}"] if self.min is not None else []) + \
                ([f"<= {self.max:g}"] if self.max is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class Gates:
    default: Tolerance
    rules: tuple[Rule, ...] = ()
    ignore: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = ()

    def tolerance_for(self, address: str) -> Tolerance:
        for rule in self.rules:
            if fnmatch.fnmatchcase(address, rule.pattern):
                return rule.tolerance
        return self.default

    def ignored(self, address: str) -> bool:
        return any(fnmatch.fnmatchcase(address, pattern) for pattern in self.ignore)


def _tolerance(spec: dict[str, Any] | None) -> Tolerance:
    spec = spec or {}
    unknown = set(spec) - {"rel", "abs", "ints", "pattern"}
    if unknown:
        raise UserError(f"gates: unknown tolerance keys {sorted(unknown)} (allowed: rel, abs, ints)")
    return Tolerance(float(spec.get("rel", 0.0)), float(spec.get("abs", 0.0)), bool(spec.get("ints", False)))


def parse_gates(data: dict[str, Any]) -> Gates:
    """Build `Gates` from the YAML mapping (see metrics/gates.yaml for the layout)."""
    data = data or {}
    tol = data.get("tolerance", {}) or {}
    rules = tuple(Rule(str(r["pattern"]), _tolerance(r)) for r in tol.get("rules", []) or [])
    gates = []
    for g in data.get("gates", []) or []:
        if "metric" not in g or ":" not in str(g["metric"]):
            raise UserError(f"gates: each gate needs metric: '<file>:<key>', got {g!r}")
        if all(g.get(k) is None for k in ("min", "max", "equals")):
            raise UserError(f"gates: gate {g['metric']} needs min, max or equals")
        gates.append(Gate(str(g["metric"]), g.get("min"), g.get("max"), g.get("equals"), str(g.get("why", ""))))
    return Gates(_tolerance(tol.get("default")), rules, tuple(str(p) for p in tol.get("ignore", []) or []),
                 tuple(gates))


def load_gates(path: Path | str) -> Gates:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: the quality gates and tolerances file is required")
    try:
        return parse_gates(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: cannot parse ({str(err).splitlines()[0]})") from None


# ---------------------------------------------------------------- flattening and comparing
def flatten(obj: Any, prefix: str = "") -> dict[str, Leaf]:
    """Nested dicts/lists -> {dotted.key: leaf}."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return {prefix: obj}
    out: dict[str, Leaf] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_match(old: Leaf, new: Leaf, tol: Tolerance) -> bool:
    """Exact for bools, strings, None and (unless `tol.ints`) ints; floats within abs + rel * |old|."""
    if isinstance(old, bool) or isinstance(new, bool) or not (_is_number(old) and _is_number(new)):
        return type(old) is type(new) and old == new
    both_int = isinstance(old, int) and isinstance(new, int)
    if both_int and not tol.ints:
        return old == new
    old_f, new_f = float(old), float(new)
    if math.isnan(old_f) or math.isnan(new_f):
        return math.isnan(old_f) and math.isnan(new_f)
    if math.isinf(old_f) or math.isinf(new_f):
        return old_f == new_f
    return abs(new_f - old_f) <= tol.abs + tol.rel * abs(old_f)


@dataclass(frozen=True)
class Row:
    """One compared metric: status is ok, drift, new, missing, ignored, gate-ok or gate-fail."""

    address: str
    old: Leaf
    new: Leaf
    status: str
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in {"drift", "missing", "gate-fail"}


@dataclass
class Comparison:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.failed]

    @property
    def passed(self) -> bool:
        return not self.failures


def compare_files(path: str, old: dict[str, Any] | None, new: dict[str, Any] | None, gates: Gates) -> list[Row]:
    """Leaf-by-leaf comparison of one metrics file (old = committed, new = reproduced)."""
    old_flat = flatten(old) if old is not None else {}
    new_flat = flatten(new) if new is not None else {}
    rows = []
    for key in sorted(set(old_flat) | set(new_flat)):
        address = f"{path}:{key}"
        o, n = old_flat.get(key, _ABSENT), new_flat.get(key, _ABSENT)
        if gates.ignored(address):
            rows.append(Row(address, _show(o), _show(n), "ignored"))
        elif o is _ABSENT:
            rows.append(Row(address, None, n, "new", "not in the committed metrics"))
        elif n is _ABSENT:
            rows.append(Row(address, o, None, "missing", "committed but not reproduced"))
        else:
            tol = gates.tolerance_for(address)
            ok = values_match(o, n, tol)
            note = "" if ok else _drift_note(o, n, tol)
            rows.append(Row(address, o, n, "ok" if ok else "drift", note))
    return rows


class _Absent:
    def __repr__(self) -> str:
        return "-"


_ABSENT: Any = _Absent()


def _show(value: Any) -> Leaf:
    return None if value is _ABSENT else value


def _drift_note(old: Leaf, new: Leaf, tol: Tolerance) -> str:
    if _is_number(old) and _is_number(new) and not isinstance(old, bool) and not isinstance(new, bool):
        if isinstance(old, int) and isinstance(new, int) and not tol.ints:
            return "counts must match exactly"
        return f"|diff| {abs(float(new) - float(old)):.4g} > {tol.abs:g} + {tol.rel:g}*|old|"
    return "value or type changed"


def check_gates(current: dict[str, dict[str, Any]], gates: Gates) -> list[Row]:
    """One row per gate, against the reproduced metrics (`current`: path -> parsed JSON)."""
    rows = []
    for gate in gates.gates:
        path, key = gate.metric.split(":", 1)
        flat = flatten(current[path]) if path in current else {}
        if key not in flat:
            rows.append(Row(gate.metric, None, None, "gate-fail", f"gate {gate.describe()}: metric not found"))
            continue
        value = flat[key]
        ok = gate.check(value)
        rows.append(Row(gate.metric, None, value, "gate-ok" if ok else "gate-fail",
                        f"gate {gate.describe()}" + (f" ({gate.why})" if gate.why else "")))
    return rows


# ---------------------------------------------------------------- reading the work tree and git
def metric_paths(root: Path) -> list[str]:
    """Metrics JSON files in the work tree, as repo-relative POSIX paths."""
    found = {p.relative_to(root).as_posix() for pattern in METRIC_GLOBS for p in root.glob(pattern) if p.is_file()}
    return sorted(found)


def committed_paths(root: Path, rev: str) -> list[str] | None:
    """Metrics JSON files in `rev`, or None when there is no git history to compare with."""
    result = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", "metrics"], cwd=root,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    names = result.stdout.splitlines()
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, g) and n.count("/") == g.count("/")
                                          for g in METRIC_GLOBS))


def committed_json(root: Path, rev: str, path: str) -> dict[str, Any] | None:
    result = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        return None
    return _parse(result.stdout, f"{rev}:{path}")


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{where} is not valid JSON ({err})") from None


def compare_tree(root: Path | str, rev: str, gates: Gates) -> Comparison:
    """Compare every metrics file of the work tree at `root` with `rev`, then check the gates."""
    root = Path(root)
    comparison = Comparison()
    current = {p: _parse((root / p).read_text(), p) for p in metric_paths(root)}
    committed = committed_paths(root, rev)
    if committed is None:
        comparison.notes.append(f"no git revision {rev!r} here: drift not checked, gates only")
        committed = []
    for path in sorted(set(current) | set(committed)):
        old = committed_json(root, rev, path) if path in committed else None
        new = current.get(path)
        if old is None and path in committed:
            comparison.notes.append(f"{rev}:{path} could not be read")
        if new is None:
            comparison.rows.append(Row(f"{path}:*", None, None, "missing", f"in {rev} but not in the work tree"))
            continue
        if old is None:
            comparison.rows.append(Row(f"{path}:*", None, f"{len(flatten(new))} metrics", "new",
                                       f"not committed in {rev}: drift not checked"))
            continue
        comparison.rows.extend(compare_files(path, old, new, gates))
    comparison.rows.extend(check_gates(current, gates))
    return comparison


# ---------------------------------------------------------------- printing
def _fmt(value: Leaf) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = "-" if value is None else str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def format_table(comparison: Comparison, show_all: bool = False) -> str:
    """Plain-text table: every gate, plus the metrics that are not simply 'ok' (all rows with show_all)."""
    shown = [r for r in comparison.rows if show_all or r.status not in {"ok", "ignored"}]
    header = ("status", "metric", "committed", "reproduced", "note")
    table = [header] + [(r.status, r.address, _fmt(r.old), _fmt(r.new), r.note) for r in shown]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip()
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  ----")
    counts: dict[str, int] = {}
    for r in comparison.rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    verdict = "PASS" if comparison.passed else f"FAIL ({len(comparison.failures)} failing)"
    return "\n".join([*lines, "", *(f"note: {n}" for n in comparison.notes), f"{summary}: {verdict}"])


def format_markdown(comparison: Comparison, show_all: bool = False) -> str:
    """The same table as `format_table`, as markdown (for reports/ci.md): gates first, then changes."""
    shown = [r for r in comparison.rows if show_all or r.status not in {"ok", "ignored"}]
    shown.sort(key=lambda r: (not r.failed, not r.status.startswith("gate"), r.address))
    counts: dict[str, int] = {}
    for r in comparison.rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    verdict = "PASS" if comparison.passed else f"FAIL ({len(comparison.failures)} failing)"
    lines = [f"**{verdict}**: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), ""]
    lines += [f"- note: {n}" for n in comparison.notes]
    lines += ["| status | metric | committed | reproduced | note |", "|---|---|---|---|---|"]
    for r in shown:
        status = f"**{r.status}**" if r.failed else r.status
        note = r.note.replace("|", "\\|")
        lines.append(f"| {status} | `{r.address}` | {_fmt(r.old)} | {_fmt(r.new)} | {note} |")
    return "\n".join(lines)
