#!/usr/bin/env python
"""CI check: reproduced metrics vs the committed ones, and the quality gates of metrics/gates.yaml.

Usage (from the project root, after `dvc repro`):
    .venv/bin/python scripts/compare_metrics.py [--rev HEAD] [--gates metrics/gates.yaml] [--all]
Exit status 0 when every metric is within tolerance and every gate holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from face2anime.errors import UserError
from ci_compare import compare_tree, format_table, load_gates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project root (default: current directory)")
    parser.add_argument("--rev", default="HEAD", help="git revision holding the reference metrics")
    parser.add_argument("--gates", default="metrics/gates.yaml", help="tolerances and quality gates (YAML)")
    parser.add_argument("--all", action="store_true", help="list every metric, not only changes and gates")
    args = parser.parse_args(argv)
    root = Path(args.root)
    try:
        gates = load_gates(root / args.gates)
        comparison = compare_tree(root, args.rev, gates)
    except UserError as err:
        print(f"compare_metrics: error: {err}", file=sys.stderr)
        return 1
    print(format_table(comparison, show_all=args.all))
    return 0 if comparison.passed else 1


if __name__ == "__main__":
    sys.exit(main())
