"""The `convert` section of params.yaml: where to find it, and its values checked once, up front.

Every default of `face2anime convert` / `export` lives in that section (the project's rule: a number a
user might tune lives in params.yaml and nowhere else). The package is installed editable, so when the
current folder has no params.yaml with a `convert` section, the one at the repository root is used
(`face2anime generate` finds its `generate` section the same way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml

from face2anime.errors import UserError
from face2anime.params import ConvertParams
from face2anime.settings import read_params_file, validate

REPO_ROOT = Path(__file__).resolve().parents[3]
SECTION = "convert"
FROM_MODEL = "model"   # detection settings: take the value the generator's training photos used
ConvertSettings = ConvertParams   # the checked section; its model declares every type, range and choice


def _choices(key: str) -> tuple[str, ...]:
    return get_args(ConvertParams.model_fields[key].annotation)


MODES, NO_FACE, AUDIO = _choices("mode"), _choices("no_face"), _choices("audio")


def from_section(section: Any, source: str = "params.yaml") -> ConvertParams:
    """Check every key of the section; wrong ones -> a one-line UserError naming them."""
    return validate(ConvertParams, section, source, SECTION)


def with_overrides(settings: ConvertParams, overrides: dict[str, Any], source: str = "options") -> ConvertParams:
    """`settings` with some keys replaced (CLI options, keyword arguments), checked by the same model."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    if not clean:
        return settings
    return from_section({**settings.model_dump(), **clean}, source)


def find_params_file(explicit: Path | str | None = None, section: str = SECTION) -> Path:
    """`explicit`, else ./params.yaml when it has the section (`convert`, or `generate`), else the repository's."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UserError(f"params file {path} not found")
        return path
    for path in (Path("params.yaml"), REPO_ROOT / "params.yaml"):
        if path.is_file() and section in read_params_file(path):
            return path
    raise UserError(f"no params.yaml with a '{section}' section here or at {REPO_ROOT}: pass --params PATH")


def load_settings(params: Path | str | dict | None = None, overrides: dict[str, Any] | None = None
                  ) -> ConvertSettings:
    """Settings from a params file (None = `find_params_file()`), or from a `convert` section given as a dict."""
    if isinstance(params, dict):
        settings = from_section(params, "the convert settings")
    else:
        path = find_params_file(params)
        data = read_params_file(path)
        if SECTION not in data:
            raise UserError(f"{path}: {SECTION}: missing")
        settings = from_section(data[SECTION], str(path))
    return with_overrides(settings, overrides or {})


def parse_assignment(text: str) -> tuple[str, Any]:
    """'key=value' (value read as YAML, so numbers and booleans keep their type) -> (key, value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {text!r}: write KEY=VALUE, e.g. --set feather=0.2")
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {text[:80]!r}: the value is not valid YAML") from None
    except ValueError:   # an integer of thousands of digits (sys.get_int_max_str_digits), a bad date
        raise UserError(f"--set {key.strip()}=...: the value cannot be read (an integer of {len(value.strip())} "
                        "characters?); write a smaller number") from None
