"""Pydantic validation errors as one line a user can act on: '<file>: <section>.<key> = <value>: <rule>'."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from face2anime.errors import UserError

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, source: str, prefix: str) -> M:
    """`data` checked against `model`; failures -> one-line UserError '<source>: <prefix>.<key> = <value>: <rule>'."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(f"{source}: " + "; ".join(problems(err, model, prefix))) from None


def problems(err: ValidationError, model: type[BaseModel], prefix: str) -> list[str]:
    """One phrase per bad key; errors of one key from the members of a union are joined with 'or'."""
    by_key: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for e in err.errors(include_url=False):
        key, field = _key(model, e["loc"], prefix)
        if e["type"] == "missing":
            by_key.setdefault(f"{key}: missing", [])
            continue
        if e["type"] == "extra_forbidden":
            by_key.setdefault(f"{key}: unknown key", [])
            continue
        if not e["loc"] or e["type"] == "value_error" and _is_model_level(model, e["loc"]):
            by_key.setdefault(f"{key}: {_message(e, None)}", [])
            continue
        values.setdefault(key, e.get("input"))
        msg = _message(e, field)
        msgs = by_key.setdefault(key, [])
        if msg not in msgs:
            msgs.append(msg)
    lines = []
    for key, msgs in by_key.items():
        if not msgs:
            lines.append(key)
            continue
        text = msgs[0] + "".join(" or " + m.removeprefix("must be ") for m in msgs[1:])
        lines.append(f"{key} = {_show(values.get(key))}: {text}")
    return lines


def _is_model_level(model: type[BaseModel], loc: tuple) -> bool:
    """Whether `loc` ends at a nested model (a model_validator's error), not at a field value."""
    cls: Any = model
    for part in loc:
        fields = getattr(cls, "model_fields", None)
        if not fields or part not in fields:
            return False
        cls = _model_of(fields[part].annotation)
        if cls is None:
            return False
    return True


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _key(model: type[BaseModel], loc: tuple, prefix: str) -> tuple[str, Any]:
    """Dotted key of an error location (union member tags dropped) and the field it ends at."""
    key, cls, field = prefix, model, None
    for part in loc:
        fields = getattr(cls, "model_fields", None) if cls is not None else None
        if isinstance(part, int):
            key += f"[{part}]"
            field, cls = _item_field(field), None
        elif fields and part in fields:
            field = fields[part]
            key = f"{key}.{part}" if key else str(part)
            cls = _model_of(field.annotation)
        elif cls is None or fields:
            if fields is not None and cls is not None and part not in fields:
                key = f"{key}.{part}" if key else str(part)   # an unknown key
                cls = None
            # else: a union member's tag (e.g. 'int', "literal['model']"): not part of the key
    return key, field


def _item_field(field: Any) -> Any:
    """The field of one item of a list field (its type and range), so `lr[0] = -1` says the item's rule."""
    args = get_args(field.annotation) if field is not None and get_origin(field.annotation) is list else ()
    return FieldInfo.from_annotation(args[0]) if args else None


def _bounds(metadata: list) -> str:
    parts = []
    for m in metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(m, getattr(at, attr.capitalize())):
                parts.append(f"{op} {getattr(m, attr)}")
    return " and ".join(parts)


def _base_type(field: Any) -> type | None:
    ann = field.annotation
    if get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    return ann if ann in (int, float) else None


_TYPE_PHRASES = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "text",
                 "list": "a list", "tuple": "a list", "dict": "a mapping of keys", "model": "a mapping of keys"}
_RANGE = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _message(e: dict, field: Any) -> str:
    """'must be ...' for one pydantic error; a plain field's type and range are said together."""
    kind, ctx = e["type"], e.get("ctx", {})
    base = _base_type(field) if field is not None else None
    family = kind.split("_")[0]
    if base is not None and (family in ("int", "float") or kind in _RANGE):
        bounds = _bounds(field.metadata)
        return f"must be {'an integer' if base is int else 'a number'}" + (f" {bounds}" if bounds else "")
    if kind == "finite_number":   # .inf, .nan, 1e400: refused by every section (params._Section)
        bounds = _bounds(field.metadata) if base is not None else ""
        return "must be a finite number" + (f" {bounds}" if bounds else "")
    if kind in _RANGE:
        what = "an integer" if isinstance(e.get("input"), int) else "a number"
        return f"must be {what} {_RANGE[kind]} {next(iter(ctx.values()))}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "value_error":
        return str(ctx.get("error", e["msg"])).removeprefix("Value error, ")
    if kind in ("too_short", "too_long"):
        return e["msg"].replace("Value should", "must").replace("List should", "must").replace(
            "Tuple should", "must")
    if kind == "model_type" or kind == "model_attributes_type" or kind == "dict_type":
        return "must be a mapping of keys"
    for name, phrase in _TYPE_PHRASES.items():
        if kind.startswith(name):
            return f"must be {phrase}"
    return e["msg"][0].lower() + e["msg"][1:]


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:   # an integer of more digits than Python prints (sys.get_int_max_str_digits)
        return "<an integer of thousands of digits>"
    return text if len(text) <= 60 else text[:57] + "..."
