"""The package layers of ``lib/hitcast``: no import runs back up.

Every ``import`` and ``from ... import`` of every module is walked, at module level and inside functions
(a function-level import is still a dependency, only a hidden one). A module may import its own package and
any package of a lower layer; an import of a higher layer fails the test with the file, line and both layers.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO

LIB = REPO / "lib" / "hitcast"

#: Lowest first. A top-level module (``hitcast/config.py``) is its own "package".
LAYERS: list[set[str]] = [
    {"errors", "confyaml", "config", "schemas", "ports", "daemons", "melcodec", "workerprep", "metrics",
     "tables", "spark"},
    {"audio"},
    {"spectrograms", "ingest", "features"},
    {"model"},
    {"evaluation"},
    {"lifecycle"},
    {"scoring"},
    {"sql", "cluster", "dailyrun", "demo", "cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def package_of(module: str) -> str | None:
    """``hitcast.model.bundle`` -> ``model``; ``hitcast`` itself or a non-hitcast module -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "hitcast" and len(parts) > 1 else None


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every hitcast import in ``path`` (``from hitcast import x`` gives ``hitcast.x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("hitcast.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "hitcast":
                found += [(node.lineno, f"hitcast.{a.name}") for a in node.names]
            elif node.module.startswith("hitcast."):
                found.append((node.lineno, node.module))
    return found


def upward_imports(lib: Path) -> list[str]:
    """One line per import of a higher layer: ``file:line: <package> (layer i) imports <module> (layer j)``."""
    bad = []
    for path in sorted(lib.rglob("*.py")):
        rel = path.relative_to(lib)
        own = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if own == "__init__":
            continue
        for line, module in imports(path):
            target = package_of(module)
            if target is None or target == own:
                continue
            if own not in RANK or target not in RANK:
                bad.append(f"{rel}:{line}: {own} or {target} is in no layer (add it to LAYERS)")
            elif RANK[target] > RANK[own]:
                bad.append(f"{rel}:{line}: {own} (layer {RANK[own]}) imports {module} (layer {RANK[target]})")
    return bad


def test_no_import_runs_back_up_the_layers():
    assert upward_imports(LIB) == []


def test_every_package_is_in_a_layer():
    packages = {p.name for p in LIB.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    modules = {p.stem for p in LIB.glob("*.py") if p.stem != "__init__"}
    assert sorted((packages | modules) - set(RANK)) == []


def test_the_walk_sees_function_level_imports(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "__init__.py").write_text("")
    (tmp_path / "model" / "train.py").write_text(
        "from hitcast.config import Config\n\n\ndef run():\n    from hitcast.evaluation.metrics import f1\n"
        "    import hitcast.scoring.stage\n    from hitcast import lifecycle\n")
    assert upward_imports(tmp_path) == [
        "model/train.py:5: model (layer 3) imports hitcast.evaluation.metrics (layer 4)",
        "model/train.py:6: model (layer 3) imports hitcast.scoring.stage (layer 6)",
        "model/train.py:7: model (layer 3) imports hitcast.lifecycle (layer 5)"]


@pytest.mark.parametrize("module", ["hitcast.model.training", "hitcast.evaluation.suite", "hitcast.lifecycle.promote"])
def test_the_layered_modules_import(module):
    __import__(module)
