"""Two checkouts on one machine: `make demo` and `hack/dev-cluster up/down` in each, neither
touching the other or anything outside them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.support.checkouts import Demo, outside_references, user_env

from tidings_dev.cluster import default_bin_dir
from tidings_dev.procs import alive

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def imports_tidings_from(checkout: Path) -> str:
    done = subprocess.run(
        [
            str(checkout / ".venv" / "bin" / "python"),
            "-c",
            "import tidings; print(tidings.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=user_env(),
        cwd="/",
    )
    return done.stdout.strip()


def dev_cluster(checkout: Path, action: str) -> subprocess.CompletedProcess[str]:
    # Run from elsewhere, as `~/src/b/hack/dev-cluster down` would be.
    return subprocess.run(
        [str(checkout / "hack" / "dev-cluster"), action],
        capture_output=True,
        text=True,
        timeout=180,
        env=user_env(),
        cwd="/",
    )


def pids(checkout: Path) -> list[int]:
    return list(json.loads((checkout / ".dev" / "state.json").read_text())["pids"].values())


def ready(checkout: Path) -> bool:
    done = subprocess.run(
        [str(default_bin_dir() / "kubectl"), "get", "--raw", "/readyz"],
        env=user_env(KUBECONFIG=str(checkout / ".dev" / "kubeconfig")),
        capture_output=True,
        text=True,
    )
    return done.returncode == 0 and done.stdout.strip() == "ok"


def test_make_demo_in_two_checkouts_stays_in_each(demo_checkouts: tuple[Demo, Demo]) -> None:
    a, b = demo_checkouts
    for demo in (a, b):
        assert "Wrote report.pdf" in demo.make_demo.stdout
        assert (demo.path / "report.pdf").stat().st_size > 10_000
        assert imports_tidings_from(demo.path) == str(demo.path / "operator/tidings/__init__.py")
    # b's install did not repoint a's environment, and nothing outside points into either.
    assert imports_tidings_from(a.path) == str(a.path / "operator/tidings/__init__.py")
    assert outside_references([a.path, b.path]) == []


def test_dev_cluster_up_and_down_in_two_checkouts(demo_checkouts: tuple[Demo, Demo]) -> None:
    a, b = demo_checkouts
    started: list[Path] = []
    try:
        for demo in (a, b):
            up = dev_cluster(demo.path, "up")
            assert up.returncode == 0, up.stderr
            started.append(demo.path)
            assert f"export KUBECONFIG={demo.path / '.dev' / 'kubeconfig'}" in up.stdout
        a_pids, b_pids = pids(a.path), pids(b.path)
        assert not set(a_pids) & set(b_pids)
        assert ready(a.path) and ready(b.path)

        down = dev_cluster(b.path, "down")
        assert down.returncode == 0, down.stderr
        assert "stopped 3 processes" in down.stdout
        started.remove(b.path)
        assert not any(alive(pid) for pid in b_pids)  # down returns once they have exited
        assert all(alive(pid) for pid in a_pids)
        assert ready(a.path)
        assert dev_cluster(b.path, "down").stdout.strip() == "no control plane running"

        down = dev_cluster(a.path, "down")
        assert down.returncode == 0, down.stderr
        assert "stopped 3 processes" in down.stdout
        started.remove(a.path)
        assert not any(alive(pid) for pid in a_pids)
    finally:
        for path in started:
            dev_cluster(path, "down")
