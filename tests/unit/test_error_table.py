"""One table maps every error a client can meet to its problem type: given every module
of the product imported, each subclass of each error root has its own kind (or a
mapped ancestor's), never the fallback by accident."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from api.errors import KIND_BY_ERROR, REFUSALS

PACKAGES = ("write_model", "commands", "queries", "processes", "api", "modelledger")


def every_subclass(root: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    todo = [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


@pytest.fixture(scope="module", autouse=True)
def every_module_imported() -> None:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not module.name.endswith("__main__"):  # (runs the command line)
                importlib.import_module(module.name)


@pytest.mark.parametrize("root", REFUSALS, ids=lambda root: root.__name__)
def test_every_error_under_a_root_has_its_problem_kind(root: type[Exception]) -> None:
    # (a root with subclasses of its own kinds is itself unmapped: never raised alone)
    unmapped = sorted(
        sub.__qualname__
        for sub in every_subclass(root)
        if not any(cls in KIND_BY_ERROR for cls in sub.__mro__)
    )
    assert unmapped == []
