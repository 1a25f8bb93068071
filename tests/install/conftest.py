"""Two copies of this checkout, each after `make demo`: for README's commands run as printed and
for checking that checkouts on one machine stay apart."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from tests.support.checkouts import Demo, copy_checkout, user_env


@pytest.fixture(scope="session")
def demo_checkouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Demo, Demo]]:
    """Checkouts a and b, `make demo` run in each (a first)."""
    demos = []
    for name in ("a", "b"):
        path = copy_checkout(tmp_path_factory.mktemp(f"checkout-{name}"))
        done = subprocess.run(
            ["make", "demo"], cwd=path, env=user_env(), capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        demos.append(Demo(path, done))
    yield demos[0], demos[1]
