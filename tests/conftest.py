"""What several test files share, defined once.

- `load_stage` (fixture) / `import_stage`: the one way a test imports a stage script `stages/<name>.py` as a
  module, to call its `main` in this process. Tests about the process itself (exit status, one-line stderr,
  a DDP launch) run the script as a subprocess instead, and test_bad_inputs.py runs scripts as `__main__`
  (runpy) because the argument parsing and `run_stage` wrapper are what it checks.
- `tiny_dan` (fixture) / `build_tiny_dan`: a small DAN whose points depend on the image.
- `tiny_project` (fixture): a scratch project folder with the repository's params.yaml, edited per test.
- scripts/ is put on sys.path, as it is when a CI script runs: `ci_compare`, `measure_spread` import as modules.

The plain functions are for code that runs outside a test function (a spawned DDP rank imports
`build_tiny_dan` from here); tests take the fixtures.
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
STAGES = ROOT / "stages"
SCRIPTS = ROOT / "scripts"

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """A mark on a helper (a module function pytest does not collect as a test) marks nothing: refuse it
    instead of letting, say, `@pytest.mark.slow` on a project builder silently leave its tests unmarked."""
    modules = {item.module for item in items if getattr(item, "module", None) is not None}
    misplaced = sorted(f"{module.__name__}.{name}" for module in modules for name, obj in vars(module).items()
                       if inspect.isfunction(obj) and obj.__module__ == module.__name__
                       and getattr(obj, "pytestmark", None) and not name.startswith("test"))
    if misplaced:
        raise pytest.UsageError(f"marks on functions that are not tests (they mark nothing): {', '.join(misplaced)}")


# ---------------------------------------------------------------- stage scripts
def import_stage(name: str) -> ModuleType:
    """`stages/<name>.py` as a fresh module (its `__main__` block does not run). Each call executes the
    script again, so a test that patches `face2anime` first gets the patched names."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", STAGES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_stage() -> Callable[[str], ModuleType]:
    return import_stage


# ---------------------------------------------------------------- a tiny DAN
def build_tiny_dan(width: float = 0.0625, n_stages: int = 2, *, out_std: float = 0.5, calibrate: bool = True,
                   seed: int = 0, mirror_average: bool = False, frozen: bool = False):
    """A small DAN with training statistics set (a spread-out mean shape, mean image 0.5, std image 0.25).

    As built, a DAN's output layers are zero, so every stage returns the mean shape whatever the image:
    `out_std` > 0 gives them random weights, so that the points depend on the image and each stage adds its
    own offset. With `calibrate` the BatchNorm running statistics are then those of one batch of random
    images (as built they are mean 0, variance 1, and in eval mode the features, hence the offsets, come out
    near zero: ~0.01 px), so the offsets are several pixels in eval mode too. Returned in eval mode; `frozen` wraps it in `FrozenDAN` (no
    parameter gradients, never back in training mode), as the GAN uses it.
    """
    import torch

    from face2anime.dan.inference import FrozenDAN
    from face2anime.dan.model import DAN, DANConfig

    torch.manual_seed(seed)
    dan = DAN(DANConfig(width=width, n_stages=n_stages, mirror_average=mirror_average))
    if out_std:
        for stage in dan.stages:
            torch.nn.init.normal_(stage.out.weight, std=out_std)
    g = torch.Generator().manual_seed(seed + 1)
    mean_shape = torch.rand(dan.cfg.n_points, 2, generator=g) * 60 + 26   # the similarity fit needs a spread
    size = dan.cfg.size
    dan.set_statistics(mean_shape, torch.full((size, size), 0.5), torch.full((size, size), 0.25))
    if out_std and calibrate:
        norms = [m for m in dan.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for m in norms:
            m.momentum = None                 # a cumulative average: the running statistics of this one batch
        with torch.no_grad():
            dan.train()(torch.rand(8, 1, size, size, generator=g))
        for m in norms:
            m.momentum = 0.1                  # torch's default, as built
    dan.eval()
    return FrozenDAN(dan) if frozen else dan


@pytest.fixture
def tiny_dan() -> Callable[..., Any]:
    return build_tiny_dan


# ---------------------------------------------------------------- a tiny project folder
class TinyProject:
    """A scratch project folder holding the repository's params.yaml (change a section with `set`, or edit
    `params` and call `write_params`) and, on request, its dvc.yaml (it marks the project root for temporary
    files). Tests add the input files their stage reads under `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.params: dict[str, Any] = yaml.safe_load(PARAMS.read_text())
        self.write_params()

    def set(self, section: str, **values: Any) -> TinyProject:
        """Replace keys of one params section (a nested value is replaced whole) and write params.yaml."""
        self.params[section].update(values)
        return self.write_params()

    def write_params(self) -> TinyProject:
        (self.root / "params.yaml").write_text(yaml.safe_dump(self.params, sort_keys=False))
        return self

    def with_dvc_yaml(self) -> TinyProject:
        shutil.copy(ROOT / "dvc.yaml", self.root / "dvc.yaml")
        return self


@pytest.fixture
def tiny_project(tmp_path: Path) -> TinyProject:
    return TinyProject(tmp_path)
