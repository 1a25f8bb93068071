"""The wheel users install holds the product and none of the dev tooling: the dev control plane,
the dev node and their process plumbing live in devkit/ and must never ship."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

from tests.support.checkouts import ROOT, copy_checkout, user_env

# The dev package, its modules by name (cluster, node, procs, ...) and their names before they
# moved out of the product.
DEV_PACKAGE = ROOT / "devkit" / "tidings_dev"
DEV_MODULES = {"tidings_dev", "devcluster", "devnode"} | {
    path.stem for path in DEV_PACKAGE.glob("*.py") if not path.stem.startswith("__")
}


def test_the_wheel_ships_tidings_and_no_dev_cluster_node_or_process_plumbing(
    tmp_path: Path,
) -> None:
    assert {"cluster", "node", "procs"} <= DEV_MODULES  # the names this test guards
    # Built from a copy: setuptools writes build/ and egg-info into the tree it builds.
    checkout = copy_checkout(tmp_path / "checkout")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-w", str(tmp_path / "dist")],
        cwd=checkout,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("tidings-*.whl")
    names = [PurePosixPath(name) for name in zipfile.ZipFile(wheel).namelist()]

    files = {str(name) for name in names}
    assert {
        "tidings/__init__.py",
        "tidings/controller/handlers.py",
        "tidings/renderer/run.py",
    } <= files
    # One package at the top (beside the wheel's metadata): nothing else was swept in.
    assert {name.parts[0] for name in names if not name.parts[0].endswith(".dist-info")} == {
        "tidings"
    }
    dev = sorted(
        str(name)
        for name in names
        if DEV_MODULES & {part.removesuffix(".py") for part in name.parts}
    )
    assert dev == [], f"dev tooling in {wheel.name}: {dev}"
