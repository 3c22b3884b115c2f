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


def imported_top_level(path: Path) -> set[str]:
    names: set[str] = set()
    for file in [path] if path.is_file() else path.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# The inference service's package may use the `serve` extra; nothing else in bot/ may.
SERVICE_PACKAGE = ROOT / "bot" / "adapters" / "inference_server"


def undeclared_imports(files: list[Path], requirements: list[Requirement]) -> dict[str, list[str]]:
    providers = metadata.packages_distributions()
    third_party = set().union(*(imported_top_level(path) for path in files)) - set(sys.stdlib_module_names) - {"bot"}
    names = {normalise(r.name) for r in requirements}
    return {
        module: providers.get(module, ["?"])
        for module in third_party
        if not any(normalise(dist) in names for dist in providers.get(module, [module]))
    }


def test_every_third_party_import_of_the_bot_is_declared() -> None:
    outside = [p for p in (ROOT / "bot").rglob("*.py") if SERVICE_PACKAGE not in p.parents]
    undeclared = undeclared_imports(outside, declared())
    assert not undeclared, f"imported by bot/ but not in [project] dependencies: {undeclared}"
    service = undeclared_imports(list(SERVICE_PACKAGE.rglob("*.py")), declared() + declared("serve"))
    assert not service, f"imported by the inference service but in neither the dependencies nor the serve extra: {service}"


def test_installed_versions_satisfy_the_declared_ranges() -> None:
    for requirement in [*declared(), *declared("dev")]:
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), f"{requirement} but {installed} is installed"
