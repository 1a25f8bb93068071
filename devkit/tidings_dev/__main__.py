"""hack/dev-cluster: start, stop or show the local dev cluster.

  python -m tidings_dev up [--node]   # control plane; with --node also a real node (Linux, root)
  python -m tidings_dev down          # stop everything `up` started, the node's leftovers included
  python -m tidings_dev status

`up` writes <state-dir>/kubeconfig; `down` works from <state-dir>/state.json, so it stops a
cluster another process started.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from tidings_dev import node as devnode
from tidings_dev import procs
from tidings_dev.cluster import REPO_ROOT, ControlPlane, ControlPlaneError, stop_from_state
from tidings_dev.procs import ProcessError


def main(argv: list[str] | None = None) -> int:
    """`up [--node]` (start, write the kubeconfig), `down` or `status`; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="dev-cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".dev")
    parser.add_argument(
        "--node",
        action="store_true",
        help="up: also a real node (containerd, kubelet, scheduler, kube-proxy; Linux, root)",
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()

    if args.action == "down":
        node_state = state_dir / "node"
        had_node = (node_state / "state.json").exists()
        if had_node:
            devnode.teardown(node_state)
        pids = stop_from_state(state_dir) + stop_helpers(state_dir)
        if had_node:
            print("node torn down")
        print(f"stopped {len(pids)} processes" if pids else "no control plane running")
        return 0
    if args.action == "status":
        state_file = state_dir / "state.json"
        if not state_file.exists():
            print("no control plane running")
            return 1
        print(state_file.read_text())
        return 0

    if (state_dir / "state.json").exists():
        print(
            f"already running (see {state_dir / 'state.json'}); run `hack/dev-cluster down` first",
            file=sys.stderr,
        )
        return 1
    for stale in ("etcd", "pki", "users", "logs"):
        path = state_dir / stale
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
    started = time.monotonic()
    try:
        if args.node:
            plane = start_with_node(state_dir).plane
        else:
            plane = ControlPlane(state_dir=state_dir)
            plane.start()
    except ProcessError as exc:
        print(f"dev-cluster: {exc}", file=sys.stderr)
        return 1
    what = "control plane and node" if args.node else "control plane"
    print(f"{what} ready in {time.monotonic() - started:.1f}s at {plane.server}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def start_with_node(state_dir: Path) -> devnode.Node:
    """The control plane on the node's bridge, then the node with this checkout's images."""
    reason = devnode.unavailable_reason()
    if reason:
        raise ControlPlaneError(reason)
    images = devnode.build_images()
    devnode.prepare_host(state_dir / "node")
    plane = ControlPlane(state_dir=state_dir, node_ip=devnode.NODE_IP)
    plane.start()
    node = devnode.Node(plane, images=images.archives, sandbox_image=images.pause)
    try:
        node.start()
    except BaseException:
        plane.stop()
        raise
    print(f"renderer image {images.renderer} ({images.renderer_mb} MB as an archive)")
    return node


def stop_helpers(state_dir: Path) -> list[int]:
    """Stop what scripts started beside the cluster and left running for it (hack/cluster-demo's
    SMTP sink): each <state-dir>/*.pid file names one process."""
    stopped: list[int] = []
    for pid_file in sorted(state_dir.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            pid = 0
        if pid > 0 and procs.alive(pid):
            stopped += procs.stop_pids([pid])
        pid_file.unlink()
    return stopped


if __name__ == "__main__":
    raise SystemExit(main())
