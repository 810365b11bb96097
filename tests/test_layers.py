"""The package's architecture, checked: layers and independence (import-linter contracts in
pyproject.toml), no import cycle between packages, and Amazon only in the built-in plugin."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "finetunekit"


def test_import_linter_contracts_are_kept():
    from importlinter import api  # noqa: F401 - import-linter is a test dependency
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0, "run `lint-imports` to see which import breaks a contract"


def _packages(graph: grimp.ImportGraph) -> list[str]:
    """finetunekit's subpackages and top-level modules, backends split into their own packages."""
    names = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    out = [f"finetunekit.{n}" for n in sorted(names) if n != "backends"]
    return out + sorted(m for m in graph.modules if m.count(".") == 2 and m.startswith("finetunekit.backends."))


def test_no_import_cycle_between_packages():
    graph = grimp.build_graph("finetunekit", exclude_type_checking_imports=True)
    packages = _packages(graph)
    cycles = [
        (a, b)
        for a, b in itertools.combinations(packages, 2)
        if graph.chain_exists(importer=a, imported=b, as_packages=True)
        and graph.chain_exists(importer=b, imported=a, as_packages=True)
    ]
    assert cycles == []


@pytest.mark.parametrize("path", sorted(p for p in SRC.rglob("*.py") if "builtin" not in p.parts),
                         ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_builtin_plugin_knows_about_amazon(path):
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if re.search("amazon", line, re.IGNORECASE)]
    assert hits == [], f"{path.relative_to(SRC)} mentions Amazon on lines {hits}; it belongs in finetunekit/builtin/"
