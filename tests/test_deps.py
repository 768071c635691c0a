"""dvc.yaml lists exactly the code each stage runs: its script and the import closure inside src/face2anime.

DVC re-runs a stage only when a listed dep changes, so a module a stage imports but does not list is a
change that silently leaves stale outputs; a listed module it does not import re-runs it for nothing.
Everything is derived from dvc.yaml and the code (no module list here), so moving a module makes this
test name the stages and deps to fix.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "face2anime"
CODE_PREFIX = f"src/{PACKAGE}/"
SCRIPT = re.compile(r"(?<![\w/.-])(stages/[\w/.-]+\.py)\b")


# ---------------------------------------------------------------- dvc.yaml
def dvc_stages() -> dict[str, dict]:
    """Stage name -> {'script', 'deps'}; a foreach/matrix stage counts once (one script for all instances)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)  # foreach keeps the stage under `do`; matrix keeps it in place
        scripts = SCRIPT.findall(body["cmd"])
        assert len(scripts) == 1, f"dvc.yaml stage {name}: expected one stages/*.py script in cmd {body['cmd']!r}"
        deps = [next(iter(d)) if isinstance(d, dict) else d for d in body.get("deps", [])]
        out[name] = {"script": scripts[0], "deps": deps}
    return out


def listed_code(deps: list[str]) -> set[str]:
    """Every .py file under src/face2anime that the deps cover (a listed folder covers all files below it)."""
    files = set()
    for dep in deps:
        if not dep.startswith(CODE_PREFIX) and dep.rstrip("/") != CODE_PREFIX.rstrip("/"):
            continue
        path = ROOT / dep
        if path.is_dir():
            files |= {p.relative_to(ROOT).as_posix() for p in path.rglob("*.py")}
        else:
            files.add(dep)
    return files


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


# ---------------------------------------------------------------- static import closure
def module_file(name: str, src: Path = SRC) -> Path | None:
    """The source file of module `face2anime...` (a package's __init__.py), or None if no such module."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def with_parents(name: str) -> list[str]:
    """`a.b.c` -> [a, a.b, a.b.c]: importing a submodule runs every package __init__ on the way."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_modules(path: Path, module: str | None, src: Path = SRC) -> set[str]:
    """Modules of the package that `path` imports anywhere (functions included), as dotted names.

    `module` is the file's own dotted name (None for a stage script), needed for relative imports.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert module, f"{path}: relative import outside the package"
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            for alias in node.names:  # `from a import b`: b may be a submodule or a name defined in a
                if alias.name != "*" and module_file(f"{base}.{alias.name}", src):
                    found.add(f"{base}.{alias.name}")
    return {parent for name in found for parent in with_parents(name)}


@cache
def closure(script: str, root: Path = ROOT) -> frozenset[str]:
    """Repository paths of every package file that running `script` may import."""
    src = root / "src"
    todo = [(root / script, None)]
    seen: set[str] = set()
    files: set[str] = set()
    while todo:
        path, module = todo.pop()
        for name in imported_modules(path, module, src):
            if name in seen:
                continue
            seen.add(name)
            file = module_file(name, src)
            assert file is not None, f"{path.relative_to(root)} imports {name}, which does not exist in src/"
            files.add(file.relative_to(root).as_posix())
            todo.append((file, name))
    return frozenset(files)


STAGES = dvc_stages()


# ---------------------------------------------------------------- tests
def test_the_closure_follows_every_import_form(tmp_path):
    """The walker on a small tree: absolute, from-submodule, from-name, relative and in-function imports,
    every package __init__ on the way; modules never imported stay out."""
    files = {
        "stages/s.py": "import os\nfrom face2anime.a import b\nfrom face2anime.c.d import NAME\n"
                       "def f():\n    import face2anime.e.f\n",
        "src/face2anime/__init__.py": "",
        "src/face2anime/a/__init__.py": "",
        "src/face2anime/a/b.py": "from . import sib\nfrom ..c import helper\n",
        "src/face2anime/a/sib.py": "",
        "src/face2anime/a/unused.py": "",
        "src/face2anime/c/__init__.py": "from .helper import X\n",
        "src/face2anime/c/helper.py": "X = 1\n",
        "src/face2anime/c/d.py": "NAME = 1\n",
        "src/face2anime/e/__init__.py": "",
        "src/face2anime/e/f.py": "",
        "src/face2anime/never.py": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    got = {f.removeprefix(CODE_PREFIX) for f in closure("stages/s.py", tmp_path)}
    assert got == {"__init__.py", "a/__init__.py", "a/b.py", "a/sib.py", "c/__init__.py", "c/helper.py",
                   "c/d.py", "e/__init__.py", "e/f.py"}
    (tmp_path / "src/face2anime/c/d.py").unlink()  # a moved module: the stage's import no longer resolves
    with pytest.raises(AssertionError, match="imports face2anime.c.d, which does not exist"):
        closure.__wrapped__("stages/s.py", tmp_path)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_list_exactly_the_code_it_imports(name):
    """Missing: imported (directly or not) but not in deps. Extra: in deps (a file, or a .py file inside a
    listed folder) but never imported: list files instead of the folder, or drop the dep."""
    stage = STAGES[name]
    deps = stage["deps"]
    imported = closure(stage["script"])
    missing = sorted(f for f in imported if not covered(f, deps))
    extra = sorted(listed_code(deps) - imported)
    problems = []
    if stage["script"] not in deps:
        problems.append(f"its script {stage['script']} is not a dep")
    if missing:
        problems.append("add to deps: " + ", ".join(missing))
    if extra:
        problems.append("not imported, remove from deps: " + ", ".join(extra))
    for dep in deps:
        if dep.startswith(CODE_PREFIX) and not (ROOT / dep).exists():
            problems.append(f"dep {dep} does not exist")
    assert not problems, f"dvc.yaml stage {name}: " + "; ".join(problems)


def test_every_stage_script_belongs_to_a_stage():
    scripts = {p.relative_to(ROOT).as_posix() for p in (ROOT / "stages").glob("*.py")}
    unused = sorted(scripts - {s["script"] for s in STAGES.values()})
    assert not unused, f"stages/ scripts that no dvc.yaml stage runs: {unused}"


def test_every_stage_reruns_when_params_py_changes__expects_every_stage_to_parse_params_through_it():
    """`dvc status` after touching src/face2anime/params.py must list every stage. With complete deps
    (the test above) that holds exactly when every stage's closure contains params.py.

    Manual check on a clone with the pipeline run: `echo >> src/face2anime/params.py && dvc status`
    lists every stage (then `git checkout src/face2anime/params.py`).
    """
    params_py = f"{CODE_PREFIX}params.py"
    without = sorted(n for n, s in STAGES.items() if params_py not in closure(s["script"]))
    assert not without, f"stages that do not import {params_py} (so do not re-run when it changes): {without}"
