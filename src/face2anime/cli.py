"""Shared stage entry point: one-line errors instead of tracebacks, a one-line summary at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from face2anime.errors import UserError


def run_stage(name: str, main: Callable[[], str], quiet: bool = False) -> None:
    """Run a stage's `main`, which returns its one-line summary; exit 1 with one line on UserError.

    `quiet`: no summary (the other ranks of a several-process run: rank 0 speaks for them; errors still print).
    """
    start = time.perf_counter()
    try:
        summary = main()
    except UserError as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; outputs left as they were (checkpoints allow resuming)", file=sys.stderr)
        sys.exit(130)
    if not quiet:
        print(f"{name}: {summary} ({time.perf_counter() - start:.1f} s)")
