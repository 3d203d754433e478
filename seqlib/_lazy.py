"""Lazy package attributes: a name is imported from its module the first time it is used.

``seqlib``, ``seqlib.viz`` and ``seqlib.widgets`` list their public names in an ``_EXPORTS`` table (name -> module)
and their modules in ``_SUBMODULES``; :func:`lazy_attributes` turns the two tables into the module-level
``__getattr__`` and ``__dir__`` of PEP 562. So ``import seqlib`` imports no layer, and ``seqlib.viz`` imports
matplotlib only when a figure function is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_attributes(package: str, namespace: MutableMapping[str, Any], exports: Mapping[str, str],
                    submodules: set[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: exported names are imported once and kept in ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            namespace[name] = value
            return value
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())) | submodules)

    return __getattr__, __dir__
