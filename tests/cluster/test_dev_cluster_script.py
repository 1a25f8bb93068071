"""`hack/dev-cluster up` / `down`, run exactly as a developer runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tidings_dev.cluster import REPO_ROOT, default_bin_dir, pinned_versions
from tidings_dev.procs import alive

pytestmark = pytest.mark.cluster


def test_up_serves_the_pinned_version_and_down_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "dev"
    script = str(REPO_ROOT / "hack" / "dev-cluster")
    up = subprocess.run(
        [script, "up", "--state-dir", str(state)], capture_output=True, text=True, timeout=180
    )
    assert up.returncode == 0, up.stderr
    pids = list(json.loads((state / "state.json").read_text())["pids"].values())
    try:
        assert len(pids) == 3 and all(alive(pid) for pid in pids)
        version = subprocess.run(
            [str(default_bin_dir() / "kubectl"), "get", "--raw", "/version"],
            env={**os.environ, "KUBECONFIG": str(state / "kubeconfig")},
            capture_output=True,
            text=True,
            check=True,
        )
        assert (
            yaml.safe_load(version.stdout)["gitVersion"] == pinned_versions()["KUBERNETES_VERSION"]
        )
    finally:
        down = subprocess.run(
            [script, "down", "--state-dir", str(state)], capture_output=True, text=True
        )
    assert down.returncode == 0, down.stderr
    assert "stopped 3 processes" in down.stdout
    assert not any(alive(pid) for pid in pids)
    assert not (state / "state.json").exists()
