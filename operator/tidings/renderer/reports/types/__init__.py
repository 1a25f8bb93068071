"""The report types, one folder each: its `__init__.py` registers a `KIND` (label, window column,
row schema, table columns, summary, sorting, cell rendering) and `template.html.j2` is its page.
Adding a type means adding a folder here (and its name to models.ReportType)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from jinja2 import FunctionLoader

from tidings.renderer.reports.model import Kind

DIRECTORY = Path(__file__).resolve().parent


def discover() -> dict[str, Kind]:
    """Every type folder's KIND, by name, in alphabetical order of the folders."""
    kinds: dict[str, Kind] = {}
    for module in sorted(pkgutil.iter_modules([str(DIRECTORY)]), key=lambda m: m.name):
        kind = importlib.import_module(f"{__name__}.{module.name}").KIND
        if kind.name != module.name:
            raise RuntimeError(f"report type folder {module.name} registers {kind.name}")
        kinds[kind.name] = kind
    return kinds


def type_templates() -> FunctionLoader:
    """Each type's page by its name, <type>.html.j2, from the type's folder."""

    def load(name: str) -> tuple[str, str, Callable[[], bool]] | None:
        stem = name.removesuffix(".html.j2")
        path = DIRECTORY / stem / "template.html.j2"
        if not name.endswith(".html.j2") or "/" in stem or not path.is_file():
            return None
        return path.read_text(encoding="utf-8"), str(path), lambda: True

    return FunctionLoader(load)
