"""Modules imported on first use, so that a cold start pays only for the routes it takes."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from typing import Any


class LazyModule:
    """Stands for module ``name`` and imports it on the first attribute read (``dataapi.parse_execute``)."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, {'imported' if self._module is not None else 'imported on first use'}>"


_FROM_IMPORT = re.compile(r"^from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.MULTILINE)


def defer_package_init(name: str) -> None:
    """Let ``name``'s submodules be imported without running the package's ``__init__``, whose imports
    would load every sibling module.

    Powertools' ``event_handler`` package imports all its resolvers (AppSync's pulls in
    ``asyncio``), and ``utilities.data_classes`` every event class (CodePipeline's pulls in
    ``zipfile`` and ``tempfile``): some 100 modules and ~50 ms of a cold start that the REST
    resolver does not use. The package is put in ``sys.modules`` unexecuted; a name its
    ``__init__`` re-exports with ``from .module import Name`` is imported from that module
    when first read, and any other name runs the real ``__init__`` (so nothing is ever
    missing, only deferred). A package already imported is left alone.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.submodule_search_locations:
        return
    try:
        with open(spec.origin, encoding="utf-8") as source:
            text = source.read()
    except OSError:
        return
    exports: dict[str, tuple[str, str]] = {}
    for module, names in _FROM_IMPORT.findall(text):
        for part in names.strip("()").split(","):
            original, _, alias = part.split("#")[0].strip().partition(" as ")
            if original.strip().isidentifier():
                exports[(alias or original).strip()] = (module, original.strip())
    package = importlib.util.module_from_spec(spec)
    executed = False

    def __getattr__(attribute: str) -> Any:  # noqa: N807 - PEP 562
        nonlocal executed
        if attribute in exports and not executed:
            module, original = exports[attribute]
            value = getattr(importlib.import_module(module, name), original)
        elif not executed and not attribute.startswith("__") and importlib.util.find_spec(f"{name}.{attribute}") is not None:
            value = importlib.import_module(f"{name}.{attribute}")  # ``from package import submodule``
        elif not executed and not attribute.startswith("__"):
            executed = True  # a name the sources do not re-export simply: the package as written
            spec.loader.exec_module(package)  # type: ignore[union-attr]
            value = package.__dict__[attribute] if attribute in package.__dict__ else getattr(package, attribute)
        else:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        setattr(package, attribute, value)
        return value

    package.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:  # as the import system would: ``import a.b`` then ``a.b.x``
        setattr(sys.modules[parent], child, package)
