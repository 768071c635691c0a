"""Reading `params.yaml`: strict YAML (a key given twice is an error), one section checked against its model
(`params.py`), every failure one line (`param_errors.py`). Stages call `load_settings`; scripts and
benchmarks that want the raw mapping call `load_params`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from face2anime.errors import UserError
from face2anime.param_errors import problems, validate
from face2anime.params import PARAMS_FILE, SECTIONS, _Section

__all__ = ["PARAMS_FILE", "SECTIONS", "load_all", "load_params", "load_settings", "read_params_file", "validate"]


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the last one
    silently, and DVC refuses the file: either way the value a user edited may not be the one used)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping whose own keys are unique; YAML merge keys (`<<: *defaults`) work as in YAML 1.1: the
    mapping's own keys override the merged ones (that is what a merge is for, not a duplicate)."""
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first at line "
                                                    f"{seen[key].start_mark.line + 1})", key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_params_file(path: Path | str = PARAMS_FILE) -> dict[str, Any]:
    """The raw YAML mapping; a missing file, a syntax error or a duplicate key is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found: run stages from the project root")
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path}: YAML syntax error{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from None
    except ValueError as err:   # a value PyYAML's constructors reject: a number of thousands of digits, a bad date
        raise UserError(f"{path}: {_bad_value(path.read_text(), err)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: must be a mapping of sections, got {type(data).__name__}")
    return data


def _bad_value(text: str, err: ValueError) -> str:
    """What a constructor's ValueError means: an integer longer than Python converts (said with its line), else
    the error's own words."""
    limit = sys.get_int_max_str_digits()
    m = re.search(r"[0-9_]{%d,}" % (limit + 1), text) if limit else None
    if m is None:
        return f"a value YAML cannot read: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    return (f"line {text.count(chr(10), 0, m.start()) + 1}: a number of {len(m.group())} digits: too large to read "
            f"(Python reads integers of up to {limit} digits)")


def load_params(section: str | None = None, path: Path | str = PARAMS_FILE) -> Any:
    """The raw (unchecked) file or one section of it: for scripts and benchmarks; stages use load_settings."""
    data = read_params_file(path)
    if section is None:
        return data
    if section not in data:
        raise UserError(f"{path}: {section}: missing")
    return data[section]


def load_settings(section: str, path: Path | str = PARAMS_FILE) -> Any:
    """One section of the params file, checked against its model (e.g. `load_settings("dan") -> DanParams`)."""
    if section not in SECTIONS:
        raise UserError(f"{path}: {section}: unknown section; known: {', '.join(SECTIONS)}")
    data = read_params_file(path)
    if section not in data:
        raise UserError(f"{path}: {section}: missing")
    return validate(SECTIONS[section], data[section], str(path), section)


def load_all(path: Path | str = PARAMS_FILE) -> dict[str, _Section]:
    """Every section of the file checked; unknown sections and every bad key reported in one line."""
    data = read_params_file(path)
    found = [f"{k}: unknown section" for k in data if k not in SECTIONS]
    found += [f"{k}: missing" for k in SECTIONS if k not in data]
    out: dict[str, _Section] = {}
    for name, model in SECTIONS.items():
        if name not in data:
            continue
        try:
            out[name] = model.model_validate(data[name])
        except ValidationError as err:
            found += problems(err, model, name)
    if found:
        raise UserError(f"{path}: " + "; ".join(found))
    return out


