"""Rewrite the code deps of every dvc.yaml stage to exactly its import closure (what tests/test_deps.py checks).

Run after moving or splitting a module: `python scripts/sync_deps.py` (`--check` only reports). Data deps
(anything outside src/face2anime/ and stages/) and the order of the other keys are kept; the code deps are
written sorted, script first.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_deps import CODE_PREFIX, closure, dvc_stages  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say which stages differ")
    args = ap.parse_args()
    text = (ROOT / "dvc.yaml").read_text()
    lines = text.splitlines(keepends=True)
    changed = []
    for name, stage in dvc_stages().items():
        want = [stage["script"], *sorted(closure(stage["script"]))]
        have = [d for d in stage["deps"] if d.startswith(CODE_PREFIX) or d == stage["script"]]
        if have == want:
            continue
        changed.append(name)
        # the stage's block starts at "  <name>:" and its deps list at the first "deps:" after it
        start = next(i for i, ln in enumerate(lines) if re.match(rf"^  {re.escape(name)}:(\s*#.*)?\s*$", ln))
        dep_at = next(i for i in range(start, len(lines)) if lines[i].strip() == "deps:")
        indent = re.match(r"^(\s*)", lines[dep_at + 1]).group(1)
        end = dep_at + 1
        while end < len(lines) and lines[end].startswith(indent + "- "):
            end += 1
        others = [ln for ln in lines[dep_at + 1:end]
                  if not (ln.strip()[2:].startswith(CODE_PREFIX) or ln.strip()[2:] == stage["script"])]
        lines[dep_at + 1:end] = [f"{indent}- {d}\n" for d in want] + others
    if changed and not args.check:
        (ROOT / "dvc.yaml").write_text("".join(lines))
    print(("differ: " if args.check else "rewritten: ") + (", ".join(changed) or "none"))
    return 1 if changed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
