"""Shared stage entry point: one-line errors instead of tracebacks, a one-line summary at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from face2anime.errors import UserError


def prepare_outputs(outputs: Iterable[Path | str]) -> None:
    """Before any work: delete temps that killed runs left, and check that every output can be written
    (so a read-only folder fails at once, not after an hour of training)."""
    from face2anime.io import check_writable, clean_stale_temps

    outputs = [Path(p) for p in outputs]
    clean_stale_temps(outputs)
    try:
        check_writable(outputs)
    except OSError as err:
        raise UserError(f"cannot write to {err.filename} ({err.strerror}): make it writable "
                        "(or free space) and run again") from None


def run_stage(name: str, main: Callable[[], str | None], quiet: bool = False,
              outputs: Iterable[Path | str] = ()) -> None:
    """Run a stage's `main`, which returns its one-line summary (None: another process printed it); exit 1
    with one line on UserError.

    `quiet`: no summary and no error line (the other ranks of a several-process run: rank 0 speaks for them).
    `outputs`: the paths the stage writes (its dvc.yaml outs, metrics, plots), checked writable before `main`.
    """
    start = time.perf_counter()
    try:
        prepare_outputs(outputs)
        summary = main()
    except UserError as err:
        if not quiet:
            print(f"{name}: error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; outputs left as they were (checkpoints allow resuming)", file=sys.stderr)
        sys.exit(130)
    if not quiet and summary is not None:
        print(f"{name}: {summary} ({time.perf_counter() - start:.1f} s)")
