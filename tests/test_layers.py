"""The house's floors: a module imports only from its own floor or those below it, at run time, inside functions
and for typing alike (README, "Layout"). The deprecated aliases at old paths sit on the top floor."""

import ast
import tomllib
from pathlib import Path

import pytest

import torchcost

ROOT = Path(torchcost.__file__).parent
FLOORS = [  # lowest first: the top-level names of src/torchcost on each floor
    {"errors", "units", "tensors", "display", "version"},
    {"records"},
    {"params", "prepare", "meta_copies", "step"},
    {"emulate"},
    {"counting"},
    {"profiler"},
    {"sources", "inputs", "from_spec"},
    {"hardware"},
    {"measure"},
    {"predict"},
    {"explain", "analysis", "guidelines"},
    {"peak_memory", "llm", "llm_models", "llm_results", "sweep", "multi_gpu"},
    {"report"},
    {"cli", "cli_args", "__init__", "__main__", "training", "latency", "op_timing", "timing"},
]


def floor(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return next(index for index, names in enumerate(FLOORS) if top in names)


def imported(path: Path) -> list[str]:
    """Every torchcost module a file imports, wherever the import statement is."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "torchcost":
                found += [f"torchcost.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return [name for name in found if name.split(".")[0] == "torchcost"]


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_low_imports_anything_high(path):
    module = ".".join(["torchcost", *path.relative_to(ROOT).with_suffix("").parts])
    upward = [name for name in imported(path) if floor(name) > floor(module)]
    assert upward == [], f"{module} (floor {floor(module)}) imports from above: {upward}"


def test_every_module_has_a_floor():
    tops = {path.relative_to(ROOT).with_suffix("").parts[0] for path in MODULES}
    assert tops <= set().union(*FLOORS), tops - set().union(*FLOORS)


def test_the_version_is_the_release_pyproject_names():
    pyproject = tomllib.loads((ROOT.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert torchcost.__version__ == pyproject["project"]["version"]
