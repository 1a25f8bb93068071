"""README quickstart (b), run as printed in a fresh copy of the checkout: `make cluster-demo`
brings up its own control plane and node, installs the chart, runs the example now and ends with
the delivered subject, attachments and LAST SENT; its SMTP sink outlives the script until `make
dev-down`, which removes everything. One change from README: the sink listens on a free port
(TIDINGS_DEMO_SMTP_PORT) instead of 2525.

The node is machine-wide, so this runs before the session's node cluster starts (conftest orders
it first) and tears its own down before that."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.checkouts import copy_checkout, user_env
from tests.support.node_cluster import unavailable

from tidings_dev import node as devnode
from tidings_dev import procs
from tidings_dev.node import NODE_IP

pytestmark = pytest.mark.timeout(1800)


def make(checkout: Path, target: str, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        ["make", target],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (
        f"make {target} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done.stdout


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((NODE_IP, port)) == 0


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for the copy: the kubelet binds unix sockets under .dev/node, and a
    socket path may not exceed 107 bytes (pytest's tmp_path is too deep)."""
    path = Path(tempfile.mkdtemp(prefix="tcd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_make_cluster_demo_delivers_and_keeps_its_sink_until_dev_down(short_tmp: Path) -> None:
    tmp_path = short_tmp
    if reason := devnode.unavailable_reason() or devnode.running_elsewhere(tmp_path / "node"):
        unavailable(reason)
    checkout = copy_checkout(tmp_path / "c")
    port = procs.free_port()
    env = user_env(TIDINGS_DEMO_SMTP_PORT=str(port))
    try:
        out = make(checkout, "cluster-demo", env, timeout=1500)
        # The delivered message, as the sink saw it, and LAST SENT in `kubectl get sr -A`.
        (line,) = [line for line in out.splitlines() if "; attachments: " in line]
        assert "Payments completed changes" in line, line  # the subject, from the title
        assert ".pdf" in line.split("; attachments: ")[1], line
        table = out[out.index("LAST SENT") - 200 :].splitlines()
        header = next(line for line in table if "LAST SENT" in line)
        row = next(line for line in table if line.startswith("team-payments"))
        last_sent = row[header.index("LAST SENT") :].split()[0]
        assert last_sent not in ("", "<none>"), row
        assert list((checkout / ".dev" / "mail").glob("*.eml")), "no mail saved under .dev/mail"
        # The sink outlives the script, so a later run is delivered too.
        sink_pid = int((checkout / ".dev" / "smtp-sink.pid").read_text())
        assert procs.alive(sink_pid) and listening(port)
    finally:
        down = make(checkout, "dev-down", env, timeout=300)
    assert "node torn down" in down
    assert not listening(port), "the SMTP sink still listens after make dev-down"
    assert not (checkout / ".dev" / "smtp-sink.pid").exists()
    assert devnode.running_elsewhere(tmp_path / "node") is None
