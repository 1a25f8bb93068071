"""Byte-compiles what Tidings imports, and nothing else, in the image's virtual environment.

pip installs with --no-compile (bytecode for every module of every package would be about 60 MB,
most of it for modules neither the renderer nor the operator ever loads). This imports every
module of the tidings package; every module named by an import statement anywhere in it (the
renderer imports psycopg, httpx and XlsxWriter inside the functions that need them); each
attribute tidings names on an imported module (kubernetes.client loads its API classes on first
access); the top-level packages of its declared dependencies; and renders a small PDF with
WeasyPrint (its font subsetting imports fontTools lazily). Then it writes bytecode for each
loaded module that lives in the environment, and for all of tidings. A module not loaded here
still works in the image: Python compiles it in memory when it is imported (the root filesystem
is read-only), which costs that process some milliseconds.

The bytecode is unchecked-hash (PEP 552): it stays valid whatever the files' timestamps become
on the way into the image (COPY --from, layer export), and the image's files never change.
Run by the Dockerfile's build stage as: python compile-imported.py
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.metadata
import importlib.util
import pkgutil
import py_compile
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import tidings


def compile_to_cache(path: Path) -> None:
    py_compile.compile(
        str(path),
        cfile=importlib.util.cache_from_source(str(path)),
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


package = Path(tidings.__file__).parent
for module in pkgutil.walk_packages(tidings.__path__, "tidings."):
    if not module.name.endswith(".__main__"):  # that one runs the command line
        importlib.import_module(module.name)

# Imports inside functions (and under TYPE_CHECKING) are not run by importing the modules.
named: set[str] = set()
for source in package.rglob("*.py"):
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            named.add(node.module)
# And the top-level packages of each declared dependency (tzdata: zoneinfo loads it by name).
requirements = {
    re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")
    for requirement in importlib.metadata.requires("tidings") or []
    if "extra ==" not in requirement
}
for top, distributions in importlib.metadata.packages_distributions().items():
    wanted = requirements & {d.lower().replace("_", "-") for d in distributions}
    if wanted and not top.startswith("_"):
        named.add(top)
for name in sorted(named - {"tidings.__main__"}):
    importlib.import_module(name)


def lazy_attributes(tree: ast.AST) -> Iterator[tuple[str, str]]:
    """(module, attribute) for each `alias.Name` where alias is a module the file imported."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:  # `import a.b` binds a
                    aliases[alias.name.partition(".")[0]] = alias.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            yield aliases[node.value.id], node.attr


# Packages that load their parts on first attribute access (kubernetes.client: compiling
# CoreV1Api's source alone takes 1.7 s here): the attributes tidings names.
for source in package.rglob("*.py"):
    for module_name, attribute in lazy_attributes(ast.parse(source.read_text(), str(source))):
        module = sys.modules.get(module_name)
        if module is not None and not module_name.startswith("tidings"):
            with contextlib.suppress(AttributeError):
                getattr(module, attribute)

import weasyprint  # noqa: E402  (imported above already; its font subsetting imports lazily)

with tempfile.TemporaryDirectory() as tmp:
    html = "<h1>Tidings</h1><p>Grüße — <b>bold</b> <i>italic</i> <code>mono</code></p>"
    weasyprint.HTML(string=html).write_pdf(Path(tmp) / "warm.pdf")

prefix = Path(sys.prefix).resolve()
loaded = set()
for module in list(sys.modules.values()):
    source = getattr(module, "__file__", None)
    if source and source.endswith(".py") and prefix in Path(source).resolve().parents:
        loaded.add(Path(source).resolve())  # not the standard library: the base has its bytecode
loaded |= set(package.resolve().rglob("*.py"))  # tidings whole (__main__: `python -m tidings`)
for path in sorted(loaded):
    compile_to_cache(path)
print(f"compile-imported: bytecode for {len(loaded)} modules under {prefix}")
