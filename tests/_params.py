"""The committed params.yaml's sections as typed settings, with a test's overrides checked by the same models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from face2anime.params import SECTIONS, load_params, validate

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def settings(section: str, **overrides: Any) -> Any:
    """`section` of the repository's params.yaml with `overrides` applied (a nested section is replaced whole)."""
    return validate(SECTIONS[section], {**load_params(section, PARAMS), **overrides}, "test params", section)
