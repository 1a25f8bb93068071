"""A real Kubernetes node beside the local control plane (tidings_dev.cluster), for development and
the tests in tests/node: containerd 2.x with runc, a CNI bridge, kubelet, kube-scheduler and
kube-proxy, running images built from this repository by hack/build-images (no registry).

Containment: the node lives on one bridge, `tidings0`, with the host at 198.18.0.1/24 (RFC 2544's
benchmarking block, kept apart from private ranges). Pods get an address on it and two routes: the
subnet itself and the Service range via the host, where kube-proxy's DNAT sends them on to the
apiserver. There is no default route, no masquerade for pods and ip_forward stays 0, so a pod can
reach the host's bridge address and nothing else.

Needs Linux and root (network namespaces, mounts, cgroups). Several paths are machine-wide
(`/run/containerd/s`, `/var/run/netns`, the `kubepods` cgroups, iptables), so one node per machine
at a time; `teardown()` removes everything `start()` made and returns when the processes are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tidings_dev import procs
from tidings_dev.cluster import (
    REPO_ROOT,
    SERVICE_CIDR,
    ControlPlane,
    ControlPlaneError,
    default_bin_dir,
    pinned_versions,
    write_kubeconfig,
)

NODE_NAME = "tidings-node"
BRIDGE = "tidings0"
NODE_IP = "198.18.0.1"
POD_SUBNET = "198.18.0.0/24"
POD_RANGE = ("198.18.0.16", "198.18.0.254")
NODE_BINARIES = ("kubelet", "kube-scheduler", "kube-proxy")
RUNTIME_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr", "crictl")
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
# containerd's own state is kept under our name; the shims' sockets stay under /run/containerd/s.
CONTAINERD_STATE = Path("/run/tidings-node/containerd")
# Which node owns this machine: its state dir (a later teardown finds its mounts there) and the
# pid of the process that brought it up. Another node refuses to start while either lives.
STATE_MARKER = CONTAINERD_STATE.parent / "owner.json"
CGROUP_ROOT = Path("/sys/fs/cgroup")
HOST_TOOLS = ("runc", "iptables", "ip", "mount", "umount")


class NodeError(ControlPlaneError):
    """The node could not be started or torn down; the message says which part and its log."""


def runtime_bin_dir() -> Path:
    """Where hack/build-node-binaries caches containerd, its shim, ctr and crictl."""
    v = pinned_versions()
    return (
        default_bin_dir().parents[1]
        / f"node-containerd-{v['CONTAINERD_VERSION']}-crictl-{v['CRICTL_VERSION']}"
        / "bin"
    )


def unavailable_reason(k8s_bin: Path | None = None, runtime_bin: Path | None = None) -> str | None:
    """Why a node cannot run on this machine, or None when it can."""
    if os.uname().sysname != "Linux":
        return "a node needs Linux (namespaces, cgroups, overlayfs)"
    if os.geteuid() != 0:
        return "a node needs root (network namespaces, mounts, cgroups, iptables)"
    k8s_bin = k8s_bin or default_bin_dir()
    runtime_bin = runtime_bin or runtime_bin_dir()
    missing = [str(k8s_bin / b) for b in NODE_BINARIES if not (k8s_bin / b).is_file()]
    missing += [str(runtime_bin / b) for b in RUNTIME_BINARIES if not (runtime_bin / b).is_file()]
    missing += [t for t in HOST_TOOLS if shutil.which(t) is None]
    if not (CNI_BIN_DIR / "bridge").is_file():
        missing.append(str(CNI_BIN_DIR / "bridge"))
    if missing:
        return (
            f"missing {', '.join(missing)}: run hack/install-deps --test, "
            "hack/build-k8s-binaries and hack/build-node-binaries"
        )
    return None


@dataclass(frozen=True)
class Images:
    """What hack/build-images made: image refs and the archives containerd imports."""

    renderer: str
    pause: str
    archives: list[Path]
    renderer_mb: int


def build_images() -> Images:
    """hack/build-images (cached by input hash: seconds when nothing changed)."""
    done = subprocess.run(
        [str(REPO_ROOT / "hack" / "build-images")], capture_output=True, text=True, timeout=3000
    )
    if done.returncode != 0:
        raise NodeError(f"hack/build-images failed:\n{done.stderr[-3000:]}")
    out = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return Images(
        out["RENDERER_IMAGE"],
        out["PAUSE_IMAGE"],
        [Path(out["PAUSE_ARCHIVE"]), Path(out["RENDERER_ARCHIVE"])],
        int(out["RENDERER_ARCHIVE_MB"]),
    )


# ------------------------------------------------------------------------------- network


def running_elsewhere(state_dir: Path) -> str | None:
    """Why another live node owns this machine (its starter or its processes are alive), or
    None when the machine is free or holds only what a killed run left behind."""
    try:
        owner = json.loads(STATE_MARKER.read_text())
    except (OSError, ValueError):
        return None
    other = Path(owner["state_dir"])
    if other == state_dir:
        return None
    pids = [owner["pid"]]
    with contextlib.suppress(OSError, ValueError, KeyError):
        pids += json.loads((other / "state.json").read_text())["pids"].values()
    if any(procs.alive(pid) for pid in pids):
        return (
            f"another node is running on this machine (state {other}, started by pid "
            f"{owner['pid']}); stop it first, e.g. hack/dev-cluster down --state-dir {other.parent}"
        )
    return None


def prepare_host(state_dir: Path) -> None:
    """Claim the machine, clean up after any earlier node (a killed run leaves pods, mounts and
    namespaces behind), then make the bridge. Comes first: the apiserver binds the bridge."""
    busy = running_elsewhere(state_dir)
    if busy:
        raise NodeError(busy)
    teardown(state_dir)
    STATE_MARKER.parent.mkdir(parents=True, exist_ok=True)
    STATE_MARKER.write_text(json.dumps({"state_dir": str(state_dir), "pid": os.getpid()}))
    create_bridge()


def create_bridge() -> None:
    """The bridge with the host's address."""
    if procs.run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        procs.run("ip", "link", "add", BRIDGE, "type", "bridge")
    procs.run("ip", "addr", "replace", f"{NODE_IP}/24", "dev", BRIDGE)
    procs.run("ip", "link", "set", BRIDGE, "up")
    # ClusterIPs stay on the bridge even before kube-proxy has a rule for them: without this
    # route they would follow the default route off the machine.
    procs.run("ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)


def cni_config(state_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "tidings",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                # The host is not the pods' gateway: no default route, no masquerade.
                "isGateway": False,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [
                        [
                            {
                                "subnet": POD_SUBNET,
                                "rangeStart": POD_RANGE[0],
                                "rangeEnd": POD_RANGE[1],
                            }
                        ]
                    ],
                    # The subnet is on-link; only Services need the host as a hop.
                    "routes": [{"dst": SERVICE_CIDR, "gw": NODE_IP}],
                    "dataDir": str(state_dir / "cni" / "ipam"),
                },
            }
        ],
    }


# ------------------------------------------------------------------------------ configs


def containerd_config(state_dir: Path, sandbox_image: str) -> str:
    cni_conf = state_dir / "cni" / "net.d"
    return f"""version = 3
root = "{state_dir / "containerd" / "root"}"
state = "{CONTAINERD_STATE}"

[grpc]
  address = "{CONTAINERD_STATE / "containerd.sock"}"

[ttrpc]
  address = "{CONTAINERD_STATE / "containerd.sock.ttrpc"}"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

# No registry is reachable: the sandbox image is built locally and imported (hack/build-images).
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "{sandbox_image}"

[plugins.'io.containerd.cri.v1.runtime']
  # The VM lacks CAP_SYS_RESOURCE: never try to lower a container's OOM score below ours.
  restrict_oom_score_adj = true

[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["{CNI_BIN_DIR}"]
  conf_dir = "{cni_conf}"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = "{shutil.which("runc")}"
  SystemdCgroup = false
"""


def kubelet_config(state_dir: Path, ca_file: Path, port: int) -> dict[str, Any]:
    loose = "1%"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_STATE / 'containerd.sock'}",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # cgroup v1 hosts (this CI's) are deprecated for kubelet 1.35+; opt in explicitly.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        # No CAP_SYS_RESOURCE on the VM.
        "oomScoreAdj": 0,
        # Pods resolve nothing: they talk to the host by address only.
        "resolvConf": str(state_dir / "resolv.conf"),
        "makeIPTablesUtilChains": False,
        "podLogsDir": str(state_dir / "pod-logs"),
        "nodeStatusUpdateFrequency": "5s",
        "evictionHard": {
            "memory.available": loose,
            "nodefs.available": loose,
            "imagefs.available": loose,
            "nodefs.inodesFree": loose,
        },
        # Imported images can never be pulled again: never collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "maxPods": 40,
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "mode": "iptables",
        # Traffic from outside the pod subnet (the host itself) to a Service is masqueraded to
        # the bridge address, so replies come back on the bridge.
        "clusterCIDR": POD_SUBNET,
        "healthzBindAddress": f"127.0.0.1:{procs.free_port()}",
        "metricsBindAddress": f"127.0.0.1:{procs.free_port()}",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # Leave the host's conntrack and route_localnet sysctls alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
        "iptables": {"localhostNodePorts": False},
    }


# ------------------------------------------------------------------------------- the node


@dataclass
class Node:
    """kubelet, scheduler, kube-proxy and containerd joined to `plane` (started with
    node_ip=NODE_IP after prepare_host())."""

    plane: ControlPlane
    images: list[Path] = field(default_factory=list)
    sandbox_image: str = ""
    k8s_bin: Path = field(default_factory=default_bin_dir)
    runtime_bin: Path = field(default_factory=runtime_bin_dir)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.plane.state_dir / "node"

    @property
    def containerd_socket(self) -> Path:
        return CONTAINERD_STATE / "containerd.sock"

    def start(self, timeout: float = 120) -> None:
        reason = unavailable_reason(self.k8s_bin, self.runtime_bin)
        if reason:
            raise NodeError(reason)
        if self.plane.node_ip != NODE_IP:
            raise NodeError(f"the control plane must be started with node_ip={NODE_IP}")
        busy = running_elsewhere(self.state_dir)
        if busy:
            raise NodeError(busy)
        create_bridge()
        for sub in ("logs", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "pki"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.state_dir / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        try:
            self._start_containerd(timeout)
            self._import_images()
            self._start_kubelet()
            self._start_scheduler()
            self._start_kube_proxy()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self._write_state()

    def _kubeconfig(self, name: str, user: str, groups: tuple[str, ...] = ()) -> Path:
        ca = self.plane.ca
        cert, key = ca.issue(self.state_dir / "pki", name, user, groups)
        return write_kubeconfig(
            self.state_dir / f"{name}.kubeconfig", self.plane.server, ca.cert_path, cert, key, user
        )

    def _spawn(self, name: str, binary: Path, args: list[str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PATH": f"{self.runtime_bin}:{CNI_BIN_DIR}:{os.environ['PATH']}"}
        proc = procs.spawn(
            [str(binary), *args],
            self.state_dir / "logs" / f"{name}.log",
            tied_to_parent=self.plane.die_with_parent,
            env=env,
        )
        self.processes[name] = proc
        return proc

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        log_path = self.state_dir / "logs" / f"{name}.log"
        procs.wait_ready(self.processes[name], name, ready, timeout, log_path, NodeError)

    def log_tail(self, name: str, lines: int = 25) -> str:
        return procs.log_tail(self.state_dir / "logs" / f"{name}.log", lines)

    def ctr(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return procs.run(
            str(self.runtime_bin / "ctr"),
            "--address",
            str(self.containerd_socket),
            "--namespace",
            "k8s.io",
            *args,
            timeout=timeout,
        )

    def crictl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return procs.run(
            str(self.runtime_bin / "crictl"),
            "--runtime-endpoint",
            f"unix://{self.containerd_socket}",
            "--timeout",
            "30s",
            *args,
            check=check,
            timeout=120,
        )

    def _start_containerd(self, timeout: float) -> None:
        config = self.state_dir / "containerd.toml"
        config.write_text(containerd_config(self.state_dir, self.sandbox_image))
        (self.state_dir / "cni" / "net.d" / "10-tidings.conflist").write_text(
            json.dumps(cni_config(self.state_dir), indent=2)
        )
        self._spawn("containerd", self.runtime_bin / "containerd", ["--config", str(config)])
        self._wait(
            "containerd",
            lambda: self.containerd_socket.exists() and self.ctr("version").returncode == 0,
            timeout,
        )

    def _import_images(self) -> None:
        """Load the docker-archives hack/build-images wrote, unless containerd has them."""
        present = set(self.ctr("images", "list", "--quiet").stdout.split())
        for archive in self.images:
            ref = archive_ref(archive)
            if ref not in present:
                self.ctr("images", "import", "--no-unpack=false", str(archive))

    def _start_kubelet(self) -> None:
        kubeconfig = self._kubeconfig("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",))
        config = self.state_dir / "kubelet.yaml"
        config.write_text(
            json.dumps(kubelet_config(self.state_dir, self.plane.ca.cert_path, procs.free_port()))
        )
        self._spawn(
            "kubelet",
            self.k8s_bin / "kubelet",
            [
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--root-dir={self.state_dir / 'kubelet'}",
                f"--cert-dir={self.state_dir / 'kubelet' / 'pki'}",
                "--v=1",
            ],
        )

    def _start_scheduler(self) -> None:
        kubeconfig = str(self._kubeconfig("kube-scheduler", "system:kube-scheduler"))
        self._spawn(
            "kube-scheduler",
            self.k8s_bin / "kube-scheduler",
            [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={procs.free_port()}",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    def _start_kube_proxy(self) -> None:
        kubeconfig = self._kubeconfig("kube-proxy", "system:kube-proxy")
        config = self.state_dir / "kube-proxy.yaml"
        config.write_text(json.dumps(kube_proxy_config(kubeconfig)))
        self._spawn("kube-proxy", self.k8s_bin / "kube-proxy", [f"--config={config}", "--v=1"])

    def _wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            for name in ("kubelet", "kube-scheduler", "kube-proxy"):
                if self.processes[name].poll() is not None:
                    raise NodeError(f"{name} exited; {self.log_tail(name)}")
            out = self.plane.kubectl(
                "get",
                "node",
                NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
            return out.stdout.strip() == "True"

        self._wait("kubelet", ready, timeout)

    def _write_state(self) -> None:
        state = {"pids": {name: proc.pid for name, proc in self.processes.items()}}
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        """Remove every pod (CNI DEL), stop the node's processes and undo what start() made."""
        if self.containerd_socket.exists() and "containerd" in self.processes:
            self.crictl("rmp", "--all", "--force", check=False)
        for name in ("kube-proxy", "kube-scheduler", "kubelet", "containerd"):
            if name in self.processes:
                procs.terminate(self.processes.pop(name))
        teardown(self.state_dir, self.k8s_bin)


def archive_ref(archive: Path) -> str:
    """The image in a hack/build-images archive: tidings-<key>.tar holds localhost/tidings:<key>."""
    name, _, key = archive.stem.rpartition("-")
    return f"localhost/{name}:{key}"


# ------------------------------------------------------------------------------ teardown


def _mounts_under(prefixes: tuple[str, ...]) -> list[str]:
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefixes):
            mounts.append(point)
    return sorted(set(mounts), key=len, reverse=True)


def shim_pids() -> list[int]:
    """containerd-shim-runc-v2 processes serving our containerd."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if cmdline[0].endswith(b"containerd-shim-runc-v2") and str(
                CONTAINERD_STATE
            ).encode() in b" ".join(cmdline):
                pids.append(int(proc.name))
    return pids


def kubepods_cgroups() -> list[Path]:
    """The kubelet's `kubepods` hierarchy in every cgroup v1 controller (v2: the one tree),
    deepest first."""
    dirs: list[Path] = []
    for root in [*CGROUP_ROOT.glob("*/kubepods"), *CGROUP_ROOT.glob("kubepods*")]:
        # os.walk skips a cgroup the kubelet removes while we look (rglob raised on it).
        dirs += [Path(top) for top, _, _ in os.walk(root)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def _kill_pods_processes() -> None:
    """Containers outlive a killed shim (they are reparented): kill what is left in kubepods."""
    pids = set()
    for cgroup in kubepods_cgroups():
        with contextlib.suppress(OSError):
            pids |= {int(pid) for pid in (cgroup / "cgroup.procs").read_text().split()}
    if pids:
        procs.stop_pids(sorted(pids), grace=5)


def _remove_cgroups() -> None:
    for cgroup in kubepods_cgroups():
        with contextlib.suppress(OSError):
            cgroup.rmdir()


def teardown(state_dir: Path, k8s_bin: Path | None = None, grace: float = 15) -> None:
    """Undo everything a node made, whether or not the process that made it is alive: stop
    processes recorded in state.json and leftover shims, unmount, delete the pods' network
    namespaces, kube-proxy's iptables chains, the kubepods cgroups and the bridge. Idempotent."""
    state_file = state_dir / "state.json"
    pids: list[int] = []
    if state_file.exists():
        pids = list(json.loads(state_file.read_text())["pids"].values())
    pids += shim_pids()
    procs.stop_pids(pids, grace)
    _kill_pods_processes()

    # The bridge plugin's veths go with their pods' namespaces.
    for netns in our_netns():
        procs.run("ip", "netns", "delete", netns, check=False)
    state_dirs = {str(state_dir)}
    with contextlib.suppress(OSError, ValueError, KeyError):
        state_dirs.add(json.loads(STATE_MARKER.read_text())["state_dir"])
    for point in _mounts_under((*state_dirs, str(CONTAINERD_STATE))):
        if procs.run("umount", point, check=False).returncode != 0:
            procs.run("umount", "-l", point, check=False)
    k8s_bin = k8s_bin or default_bin_dir()
    if (k8s_bin / "kube-proxy").is_file():
        procs.run(str(k8s_bin / "kube-proxy"), "--cleanup", check=False)
    _remove_cgroups()
    procs.run("ip", "link", "delete", BRIDGE, check=False)
    shutil.rmtree(CONTAINERD_STATE.parent, ignore_errors=True)
    for directory in state_dirs:
        for sub in ("kubelet", "cni", "pod-logs", "containerd"):
            shutil.rmtree(Path(directory) / sub, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        state_file.unlink()


def our_netns() -> list[str]:
    """Named network namespaces (containerd names them cni-<uuid>) holding an address on our
    pod subnet: another runtime's namespaces on this machine are left alone."""
    ours = []
    for line in procs.run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split(" ")[0]
        if not name.startswith("cni-"):
            continue
        addrs = procs.run("ip", "-n", name, "-o", "-4", "addr", "show", check=False).stdout
        if f" {POD_SUBNET.rsplit('.', 1)[0]}." in addrs:
            ours.append(name)
    return ours


def main(argv: list[str] | None = None) -> int:
    """`python -m tidings_dev.node teardown [--state-dir DIR]`: clean up after a killed node."""
    import argparse

    parser = argparse.ArgumentParser(prog="devnode", description=__doc__)
    parser.add_argument("action", choices=["teardown", "check"])
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".dev" / "node")
    args = parser.parse_args(argv)
    if args.action == "check":
        reason = unavailable_reason()
        print(reason or "a node can run here")
        return 1 if reason else 0
    teardown(args.state_dir.resolve())
    print("node torn down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
