"""The committed params.yaml's sections as typed settings, with a test's overrides checked by the same models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from face2anime.params import SECTIONS

from face2anime.settings import load_params, validate

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


def settings(section: str, **overrides: Any) -> Any:
    """`section` of the repository's params.yaml with `overrides` applied (a nested section is replaced whole)."""
    return validate(SECTIONS[section], {**load_params(section, PARAMS), **overrides}, "test params", section)


def gan_settings(part: str, **overrides: Any) -> Any:
    """`gan.<part>` (common, cartoongan, animegan or landmark) of the repository's params.yaml as its typed
    settings, with `overrides` applied (a nested section is replaced whole) and checked."""
    model = SECTIONS["gan"].model_fields[part].annotation
    return validate(model, {**load_params("gan", PARAMS)[part], **overrides}, "test params", f"gan.{part}")
