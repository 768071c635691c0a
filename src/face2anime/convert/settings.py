"""The `convert` section of params.yaml: where to find it, and its values checked once, up front.

Every default of `face2anime convert` / `export` lives in that section (the project's rule: a number a
user might tune lives in params.yaml and nowhere else). The package is installed editable, so when the
current folder has no params.yaml with a `convert` section, the one at the repository root is used.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from face2anime.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[3]
SECTION = "convert"
MODES = ("paste", "crops")
NO_FACE = ("copy", "skip")
MASKS = ("ellipse", "square")
AUDIO = ("copy", "drop")
DETECTORS = ("hog", "cnn")
FROM_MODEL = "model"   # detection settings: take the value the generator's training photos used


@dataclass(frozen=True)
class ConvertSettings:
    """The checked `convert` section (see params.yaml for what each key does)."""

    model: str
    mode: str
    no_face: str
    batch_size: int
    device: str
    amp: bool
    threads: int
    detector: str
    upsample: int | str
    det_threshold: float | str
    max_side: int | str
    max_pixels: int
    mask: str
    feather: float
    jpeg_quality: int
    video_codec: str
    audio: str
    onnx_opset: int
    predictor_path: str
    cnn_path: str

    @classmethod
    def from_section(cls, section: dict[str, Any], source: str = "params.yaml") -> ConvertSettings:
        """Check every key of the section; a wrong one is a one-line UserError naming it."""
        if not isinstance(section, dict):
            raise UserError(f"{source}: '{SECTION}' must be a mapping of settings")
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in section]
        unknown = [k for k in section if k not in names]
        if missing:
            raise UserError(f"{source}: {SECTION} lacks {', '.join(missing)} (see the repository's params.yaml)")
        if unknown:
            raise UserError(f"{source}: unknown {SECTION} setting(s) {', '.join(map(str, unknown))}; "
                            f"known: {', '.join(names)}")
        s = section
        return cls(
            model=_text(s, "model", source, allow_empty=False),
            mode=_choice(s, "mode", MODES, source),
            no_face=_choice(s, "no_face", NO_FACE, source),
            batch_size=_int(s, "batch_size", source, lo=1),
            device=_text(s, "device", source, allow_empty=False),
            amp=_bool(s, "amp", source),
            threads=_int(s, "threads", source, lo=0),
            detector=_choice(s, "detector", (FROM_MODEL, *DETECTORS), source),
            upsample=_int_or_model(s, "upsample", source, lo=0),
            det_threshold=_float_or_model(s, "det_threshold", source),
            max_side=_int_or_model(s, "max_side", source, lo=64),
            max_pixels=_int(s, "max_pixels", source, lo=0),
            mask=_choice(s, "mask", MASKS, source),
            feather=_float(s, "feather", source, lo=0.0, hi=0.5),
            jpeg_quality=_int(s, "jpeg_quality", source, lo=1, hi=100),
            video_codec=_codec(s, source),
            audio=_choice(s, "audio", AUDIO, source),
            onnx_opset=_int(s, "onnx_opset", source, lo=9),
            predictor_path=_text(s, "predictor_path", source),
            cnn_path=_text(s, "cnn_path", source),
        )

    def with_overrides(self, overrides: dict[str, Any], source: str = "options") -> ConvertSettings:
        """These settings with some keys replaced (CLI options, keyword arguments), checked the same way."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        if not clean:
            return self
        merged = {**{f.name: getattr(self, f.name) for f in fields(self)}, **clean}
        checked = ConvertSettings.from_section(merged, source)
        return replace(self, **{k: getattr(checked, k) for k in clean})


def find_params_file(explicit: Path | str | None = None) -> Path:
    """`explicit`, else ./params.yaml when it has a `convert` section, else the repository's params.yaml."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UserError(f"params file {path} not found")
        return path
    for path in (Path("params.yaml"), REPO_ROOT / "params.yaml"):
        if path.is_file() and SECTION in _read_yaml(path):
            return path
    raise UserError(f"no params.yaml with a '{SECTION}' section here or at {REPO_ROOT}: pass --params PATH")


def load_settings(params: Path | str | dict | None = None, overrides: dict[str, Any] | None = None
                  ) -> ConvertSettings:
    """Settings from a params file (None = `find_params_file()`), or from a `convert` section given as a dict."""
    if isinstance(params, dict):
        settings = ConvertSettings.from_section(params, "the convert settings")
    else:
        path = find_params_file(params)
        data = _read_yaml(path)
        if SECTION not in data:
            raise UserError(f"{path} has no '{SECTION}' section")
        settings = ConvertSettings.from_section(data[SECTION], str(path))
    return settings.with_overrides(overrides or {})


def parse_assignment(text: str) -> tuple[str, Any]:
    """'key=value' (value read as YAML, so numbers and booleans keep their type) -> (key, value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set {text!r}: write KEY=VALUE, e.g. --set feather=0.2")
    try:
        return key.strip(), yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {text!r}: the value is not valid YAML") from None


# ------------------------------------------------------------------------------------------ checks
def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"cannot read {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a mapping of sections")
    return data


def _where(source: str, key: str) -> str:
    return f"{source}: {SECTION}.{key}"


def _choice(s: dict, key: str, choices: tuple[str, ...], source: str) -> str:
    value = s[key]
    if value not in choices:
        raise UserError(f"{_where(source, key)} is {value!r}; choose one of {', '.join(choices)}")
    return str(value)


def _text(s: dict, key: str, source: str, allow_empty: bool = True) -> str:
    value = "" if s[key] is None else s[key]
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise UserError(f"{_where(source, key)} is {value!r}; expected {'a' if allow_empty else 'a non-empty'} text")
    return value


def _bool(s: dict, key: str, source: str) -> bool:
    value = s[key]
    if not isinstance(value, bool):
        raise UserError(f"{_where(source, key)} is {value!r}; expected true or false")
    return value


def _int(s: dict, key: str, source: str, lo: int | None = None, hi: int | None = None) -> int:
    value = s[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{_where(source, key)} is {value!r}; expected a whole number")
    _check_range(value, key, source, lo, hi)
    return value


def _float(s: dict, key: str, source: str, lo: float | None = None, hi: float | None = None) -> float:
    value = s[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{_where(source, key)} is {value!r}; expected a number")
    _check_range(float(value), key, source, lo, hi)
    return float(value)


def _int_or_model(s: dict, key: str, source: str, lo: int) -> int | str:
    if s[key] == FROM_MODEL:
        return FROM_MODEL
    if isinstance(s[key], bool) or not isinstance(s[key], int):
        raise UserError(f"{_where(source, key)} is {s[key]!r}; expected a whole number or '{FROM_MODEL}'")
    return _int(s, key, source, lo=lo)


def _float_or_model(s: dict, key: str, source: str) -> float | str:
    if s[key] == FROM_MODEL:
        return FROM_MODEL
    if isinstance(s[key], bool) or not isinstance(s[key], (int, float)):
        raise UserError(f"{_where(source, key)} is {s[key]!r}; expected a number or '{FROM_MODEL}'")
    return float(s[key])


def _codec(s: dict, source: str) -> str:
    value = s["video_codec"]
    if not isinstance(value, str) or (value != "auto" and len(value) != 4):
        raise UserError(f"{_where(source, 'video_codec')} is {value!r}; expected auto or a four-letter fourcc "
                        "such as mp4v, MJPG, VP80")
    return value


def _check_range(value: float, key: str, source: str, lo: float | None, hi: float | None) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise UserError(f"{_where(source, key)} is {value!r}; expected a value {bounds}")
