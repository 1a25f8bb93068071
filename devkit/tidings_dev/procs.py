"""Process plumbing shared by the dev control plane (cluster) and the dev node (node): free ports,
binaries started with their own log, waiting until a process is ready, and stopping processes for
certain, zombies and processes another run started included."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path


class ProcessError(RuntimeError):
    """A dev process did not start, get ready or stop; the message says which and its log."""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the test process dies, however it dies."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def spawn(
    argv: list[str],
    log_path: Path,
    tied_to_parent: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout and stderr appended to `log_path`. Tied to the parent, it dies
    with this process (tests); otherwise it runs in a session of its own and outlives it
    (hack/dev-cluster up)."""
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=not tied_to_parent,
        preexec_fn=die_with_parent if tied_to_parent else None,
    )
    log.close()
    return proc


def log_tail(path: Path, lines: int = 25) -> str:
    """Where a process's log is and its last lines, for an error message."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return f"log {path}:\n" + "\n".join(text.splitlines()[-lines:])


def wait_ready(
    proc: subprocess.Popen[bytes],
    name: str,
    ready: Callable[[], bool],
    timeout: float,
    log_path: Path,
    error: type[ProcessError] = ProcessError,
) -> None:
    """Poll `ready` until it holds; raise `error` with the log's tail if `proc` exits first or
    `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise error(f"{name} exited with {proc.returncode}; {log_tail(log_path)}")
        if ready():
            return
        time.sleep(0.2)
    raise error(f"{name} not ready after {timeout:.0f}s; {log_tail(log_path)}")


def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """Whether `url` answers 200 within two seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a host tool (ip, iptables, mount, ...) and capture its output as text."""
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout)


def terminate(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM a child, SIGKILL it if it is still running after `grace`, and reap it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_pids(pids: list[int], grace: float = 10) -> list[int]:
    """SIGTERM each pid, SIGKILL what is left after `grace`, and return once all have exited
    (raising if one survives SIGKILL). Returns the pids that were signalled."""
    signalled = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)
    wait_gone(signalled, grace)
    for pid in signalled:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    wait_gone(signalled, 5)
    if survivors := [pid for pid in signalled if alive(pid)]:
        raise ProcessError(f"processes still running after SIGKILL: {survivors}")
    return signalled


def wait_gone(pids: list[int], timeout: float) -> None:
    """Return once none of `pids` is alive, or after `timeout`."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): check /proc for its state.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True
