"""What pyproject.toml declares is what the code imports and what the suite runs with."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def declared(extra: str | None = None) -> list[Requirement]:
    raw = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    return [Requirement(line) for line in raw]


def imported_top_level(folder: Path) -> set[str]:
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_every_third_party_import_of_the_bot_is_declared() -> None:
    providers = metadata.packages_distributions()
    third_party = imported_top_level(ROOT / "bot") - set(sys.stdlib_module_names) - {"bot"}
    names = {normalise(r.name) for r in declared()}
    undeclared = {
        module: providers.get(module, ["?"])
        for module in third_party
        if not any(normalise(dist) in names for dist in providers.get(module, [module]))
    }
    assert not undeclared, f"imported by bot/ but not in [project] dependencies: {undeclared}"


def test_installed_versions_satisfy_the_declared_ranges() -> None:
    for requirement in [*declared(), *declared("dev")]:
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), f"{requirement} but {installed} is installed"
