"""Load an implementation by short name from a registry of import strings, so that optional
libraries (redis, PyKCS11) are imported only where they are selected."""

from __future__ import annotations

from importlib import import_module
from typing import Any


def load_backend(registry: dict[str, str], name: str) -> Any:
    try:
        module_name, _, attribute = registry[name].partition(":")
    except KeyError:
        raise LookupError(f"unknown backend {name!r}; choose one of {sorted(registry)}") from None
    return getattr(import_module(module_name), attribute)
