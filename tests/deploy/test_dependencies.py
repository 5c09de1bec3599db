"""Every third-party import is declared in pyproject.toml, and every declared
dependency is pinned in constraints.txt, so that an image built later installs
what the suite tested.

Imports are read with ``ast`` (nothing is executed) and mapped to the
distribution that installed the module's file: namespace packages such as
``google`` belong to several distributions, and only the file tells which.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"taskmesh", "services", "gateway", "launcher", "llm_sim", "tests", "scripts"} | {
    # The scripts' own modules, which they and their tests import from scripts/ on sys.path.
    path.stem
    for path in (ROOT / "scripts").iterdir()
    if path.suffix == ".py" or (path / "__init__.py").exists()
}
RUNTIME_TREES = ("taskmesh", "services", "gateway", "launcher", "llm_sim")
DEV_TREES = ("tests", "scripts")
CONSTRAINTS = ROOT / "constraints.txt"


def canonical(name: str) -> str:
    """PEP 503 normalisation: ``Foo_Bar.baz`` and ``foo-bar-baz`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    assert match, spec
    return canonical(match.group(1))


@cache
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def declared(*, dev: bool) -> set[str]:
    project = pyproject()["project"]
    names = {requirement_name(spec) for spec in project["dependencies"]}
    if dev:
        for specs in project.get("optional-dependencies", {}).values():
            names |= {requirement_name(spec) for spec in specs}
    return names


def imported_modules(trees: tuple[str, ...]) -> dict[str, str]:
    """Absolute imports of third-party modules in the trees: dotted name -> first file."""
    found: dict[str, str] = {}
    for tree in trees:
        for path in sorted((ROOT / tree).rglob("*.py")):
            module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(module):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in FIRST_PARTY:
                        continue
                    found.setdefault(name, str(path.relative_to(ROOT)))
    return found


@cache
def file_owners() -> dict[Path, str]:
    """Every installed file, and every folder holding one, -> its distribution."""
    owners: dict[Path, str] = {}
    for dist in md.distributions():
        name = canonical(dist.metadata["Name"])
        for file in dist.files or ():
            path = Path(dist.locate_file(file)).resolve()
            owners[path] = name
            # A namespace package's folder has no __init__.py: its files tell the owner.
            owners.setdefault(path.parent, name)
    return owners


def distribution_of(module: str) -> str | None:
    """The installed distribution that provides ``module`` (its deepest importable part)."""
    parts = module.split(".")
    for depth in range(len(parts), 0, -1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:depth]))
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        origins = [spec.origin] if spec.origin not in (None, "namespace") else []
        origins += list(spec.submodule_search_locations or ())
        for origin in origins:
            owner = file_owners().get(Path(origin).resolve())
            if owner:
                return owner
    return None


def undeclared(trees: tuple[str, ...], allowed: set[str]) -> list[str]:
    problems = []
    for module, where in sorted(imported_modules(trees).items()):
        dist = distribution_of(module)
        if dist is None and canonical(module.split(".")[0]) in allowed:
            # Declared in an extra this venv does not install (`make bench`'s peer).
            continue
        if dist is None:
            problems.append(f"{module} ({where}): not installed")
        elif dist not in allowed:
            problems.append(f"{module} ({where}): from {dist}, not declared")
    return problems


def test_every_import_of_the_services_is_a_declared_runtime_dependency() -> None:
    assert undeclared(RUNTIME_TREES, declared(dev=False)) == []


def test_every_import_of_tests_and_scripts_is_a_declared_dependency() -> None:
    assert undeclared(DEV_TREES, declared(dev=True)) == []


def pinned() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: not an exact pin: {line!r}"
        pins[canonical(name)] = version.split(";")[0].strip()
    return pins


def test_every_declared_dependency_is_pinned_in_the_constraints_file() -> None:
    missing = sorted(declared(dev=True) - set(pinned()))
    assert missing == [], f"run `make lock` after adding dependencies: {missing}"


def test_the_pinned_versions_satisfy_the_declared_ranges() -> None:
    from packaging.requirements import Requirement

    pins = pinned()
    project = pyproject()["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    conflicts = []
    for spec in specs:
        requirement = Requirement(spec)
        version = pins.get(canonical(requirement.name))
        if version is not None and not requirement.specifier.contains(version, prereleases=True):
            conflicts.append(f"{requirement.name}=={version} outside {requirement.specifier}")
    assert conflicts == []


@pytest.mark.parametrize("command", ["install", "lock"])
def test_the_makefile_installs_and_locks_through_the_constraints_file(command: str) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"^{command}:", makefile, re.MULTILINE)
    assert "constraints.txt" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"pip install[^\n]*-c constraints\.txt", dockerfile)
