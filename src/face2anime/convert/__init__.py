"""Apply a trained generator to pictures, folders and videos (`face2anime convert`), export it (`face2anime
export`), or paint new faces with the SPADE painter (`face2anime generate`).

Python: `face2anime.convert.convert_paths(inputs, out_dir, model=...)`,
`face2anime.convert.export_generator(read_model(...), 'onnx', path)` and
`face2anime.convert.generate.generate(n, out_dir, model=...)` (a submodule of that name). Names are
imported on first use, so `face2anime --help` does not wait for torch. Nothing else in the package imports
this one.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "convert_paths": "face2anime.convert.run",
    "ConvertReport": "face2anime.convert.report",
    "export_generator": "face2anime.convert.export",
    "read_model": "face2anime.convert.model",
    "load_settings": "face2anime.convert.settings",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'face2anime.convert' has no attribute {name!r}")
