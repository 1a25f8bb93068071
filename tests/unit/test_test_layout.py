"""The tests share code through tests/support only: no module under tests/ imports a test module
(test_*.py) or a conftest, code under tests/ is imported one way (`from tests.support.x import`),
and conftest files hold fixtures and pytest hooks, nothing a test module could import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def module_names(tests: Path) -> dict[str, Path]:
    """Every name under which a file below `tests` can be imported during a test run: from the
    checkout's root (pythonpath "."), and from each directory that is not a package (pytest
    puts a test file's or conftest's non-package directory on sys.path)."""
    names: dict[str, Path] = {}
    for path in tests.rglob("*.py"):
        parts = path.relative_to(tests.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        for start in range(len(parts)):
            directory = tests.parent.joinpath(*parts[:start])
            if start == 0 or not (directory / "__init__.py").exists():
                names[".".join(parts[start:])] = path
    return names


def imported(tree: ast.Module) -> list[tuple[int, str, int]]:
    """(line, module or module.name, relative level) for each import in the module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.append((node.lineno, module, node.level))
            found += [
                (node.lineno, f"{module}.{a.name}".lstrip("."), node.level) for a in node.names
            ]
    return found


def import_problems(source: str, where: str, names: dict[str, Path]) -> list[str]:
    problems = []
    for line, name, level in imported(ast.parse(source)):
        if level:
            problems.append(f"{where}:{line}: relative import; write `from tests.support.x import`")
            continue
        target = names.get(name)
        if target is None:
            continue
        if target.name.startswith("test_") or target.name == "conftest.py":
            problems.append(f"{where}:{line}: imports {name}, a test module or conftest")
        elif not name.startswith("tests.support"):
            problems.append(f"{where}:{line}: imports {name}; write it as tests.support.…")
    return sorted(set(problems))


def _is_fixture(decorator: ast.expr) -> bool:
    call = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(call) in ("pytest.fixture", "fixture")


def conftest_problems(source: str, where: str) -> list[str]:
    """Top-level statements of a conftest other than a docstring, imports, fixtures and hooks."""
    problems = []
    for index, node in enumerate(ast.parse(source).body):
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            node.name.startswith("pytest_") or any(map(_is_fixture, node.decorator_list))
        ):
            continue
        problems.append(
            f"{where}:{node.lineno}: {type(node).__name__} in a conftest; "
            "code fixtures build on belongs in tests/support"
        )
    return problems


def test_no_module_imports_a_test_module_or_a_conftest_and_one_style() -> None:
    names = module_names(TESTS)
    problems = []
    for path in sorted(TESTS.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        problems += import_problems(path.read_text(encoding="utf-8"), where, names)
    assert problems == []


def test_conftest_files_hold_fixtures_and_hooks_only() -> None:
    problems = []
    for path in sorted(TESTS.rglob("conftest.py")):
        where = str(path.relative_to(ROOT))
        problems += conftest_problems(path.read_text(encoding="utf-8"), where)
    assert problems == []


def test_support_package_exists_and_says_what_it_is_for() -> None:
    init = (TESTS / "support" / "__init__.py").read_text(encoding="utf-8")
    assert "never from each other" in init


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from test_smtp import send", "a test module or conftest"),
        ("from tests.renderer.test_smtp import send", "a test module or conftest"),
        ("from tests.renderer import test_smtp", "a test module or conftest"),
        ("import tests.operator.test_status_unit", "a test module or conftest"),
        ("from tests.renderer.conftest import Postgres", "a test module or conftest"),
        ("import conftest", "a test module or conftest"),
        ("from support.pki import Pki", "write it as tests.support"),
        ("from . import helpers", "relative import"),
    ],
)
def test_the_check_catches(tmp_path: Path, source: str, expected: str) -> None:
    """The checks run against a small tree of their own, as the real one could regress."""
    tests = tmp_path / "tests"
    for name in (
        "renderer/test_smtp.py",
        "renderer/conftest.py",
        "operator/test_status_unit.py",
        "support/__init__.py",
        "support/pki.py",
    ):
        (tests / name).parent.mkdir(parents=True, exist_ok=True)
        (tests / name).touch()
    (problem,) = import_problems(source, "tests/x.py", module_names(tests))
    assert expected in problem


def test_the_check_lets_support_imports_and_other_packages_through(tmp_path: Path) -> None:
    (tmp_path / "tests" / "support").mkdir(parents=True)
    (tmp_path / "tests" / "support" / "__init__.py").touch()
    (tmp_path / "tests" / "support" / "pki.py").touch()
    source = (
        "from tests.support.pki import Pki\nfrom tests.support import pki\n"
        "import pytest\nfrom tidings.controller.testsend import test_job\nimport mailbox\n"
    )
    assert import_problems(source, "tests/x.py", module_names(tmp_path / "tests")) == []


def test_the_conftest_check_catches_library_code() -> None:
    source = (
        '"""Doc."""\nimport pytest\n\n\nclass Helper:\n    pass\n\n\n'
        "def helper():\n    pass\n\n\n@pytest.fixture\ndef ok():\n    pass\n\n\n"
        "def pytest_configure(config):\n    pass\n"
    )
    assert [p.split(": ", 1)[1][:11] for p in conftest_problems(source, "c.py")] == [
        "ClassDef in",
        "FunctionDef",
    ]
