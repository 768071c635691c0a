"""Package layering of src/face2anime (`face2anime.LAYERS`) and one name per class, read from the source (ast)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from face2anime import LAYERS

SRC = Path(__file__).resolve().parents[1] / "src" / "face2anime"
CORE = "core"   # the top-level modules (errors, io, params, ...): layer 0


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _package(module: str) -> str:
    """'face2anime.gan.train' -> 'gan'; a top-level module ('face2anime.io', 'face2anime') -> core."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else CORE


def _layer(package: str) -> int:
    return 0 if package == CORE else LAYERS[package]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute face2anime module) of every import in the file, function-level ones included."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    here = parts if path.name == "__init__.py" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            # `from face2anime import x` / `from face2anime.gan import losses`: x may be a module
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return [(line, m) for line, m in found if m == "face2anime" or m.startswith("face2anime.")]


def _resolve(name: str) -> str:
    """The module an imported name lives in: 'face2anime.gan.losses.luma' -> 'face2anime.gan.losses'."""
    parts = name.split(".")
    while len(parts) > 1:
        p = SRC.parent.joinpath(*parts)
        if p.with_suffix(".py").exists() or (p / "__init__.py").exists():
            return ".".join(parts)
        parts.pop()
    return "face2anime"


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages == set(LAYERS), f"packages without a layer or layers without a package: {packages ^ set(LAYERS)}"


def test_no_import_goes_up_or_sideways():
    bad = []
    for path in _modules():
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        own = _package(module.removesuffix(".__init__"))
        for line, name in _imports(path):
            target = _package(_resolve(name))
            if target != own and _layer(target) >= _layer(own) and not (own == CORE and target == CORE):
                bad.append(f"{path.relative_to(SRC.parent)}:{line} ({own}, layer {_layer(own)}) imports "
                           f"{name} ({target}, layer {_layer(target)})")
    assert not bad, "imports against face2anime.LAYERS:\n" + "\n".join(bad)


def test_resolver_sees_the_known_edges():
    """The checker is only as good as its import reader: known imports must come out with their packages."""
    got = {(_package(_resolve(n))) for _, n in _imports(SRC / "metrics" / "gan_eval.py")}
    assert {"metrics", "photos", "imaging", CORE} <= got
    got = {_resolve(n) for _, n in _imports(SRC / "anime" / "landmarks40.py")}
    assert {"face2anime.anime.crops", "face2anime.viz.sheets", "face2anime.landmarks.contour"} <= got


def test_class_names_are_unique():
    where = defaultdict(list)
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(str(path.relative_to(SRC)))
    dup = {name: files for name, files in where.items() if len(files) > 1}
    assert not dup, f"class names defined more than once: {dup}"
