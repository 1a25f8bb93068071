"""A real, local Kubernetes control plane for development and tests.

Starts etcd, kube-apiserver and kube-controller-manager (built by hack/build-k8s-binaries from the
pinned upstream releases) on free loopback ports, with TLS, RBAC, client-certificate auth against a
generated CA and service-account signing keys. Alone it has no kubelet and no scheduler: Pods stay
Pending, which is what tests that stand in for a kubelet want. With `node_ip` the apiserver serves
on that address instead (the bridge of a real node, tidings_dev.node) and publishes itself as the
`kubernetes` Service, so pods reach it through kube-proxy.

Used by `hack/dev-cluster up|down` (tidings_dev.__main__) and by the pytest fixtures, so both run
the same code.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tidings import pki
from tidings_dev import procs

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "hack" / "k8s-binaries" / "versions.env"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
# Outside the private ranges (RFC 2544's benchmarking block, like the node's subnet), so a
# ClusterIP can never be mistaken for an address on some other network.
SERVICE_CIDR = "198.18.1.0/24"
KUBERNETES_SERVICE_IP = "198.18.1.1"


class ControlPlaneError(procs.ProcessError):
    """The control plane could not be started; the message says which part and where its log is."""


def pinned_versions() -> dict[str, str]:
    """KUBERNETES_VERSION and ETCD_VERSION from hack/k8s-binaries/versions.env."""
    versions = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key] = value
    return versions


def default_bin_dir() -> Path:
    """Where hack/build-k8s-binaries caches the binaries for the pinned versions."""
    versions = pinned_versions()
    cache = os.environ.get("TIDINGS_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tidings"
    )
    key = f"k8s-{versions['KUBERNETES_VERSION']}-etcd-{versions['ETCD_VERSION']}"
    return Path(cache) / key / "bin"


# ------------------------------------------------------------------------------------ PKI


def _write_key(path: Path, key: PrivateKeyTypes) -> None:
    path.write_bytes(pki.pem_private_key(key))
    path.chmod(0o600)


@dataclass
class CertificateAuthority:
    """A throwaway CA: signs the apiserver's serving cert and every client cert."""

    cert_path: Path
    key_path: Path

    @classmethod
    def create(cls, directory: Path, common_name: str = "tidings-dev-ca") -> CertificateAuthority:
        now = dt.datetime.now(dt.UTC)
        key, cert = pki.self_signed_ca(
            common_name, now - dt.timedelta(minutes=5), now + dt.timedelta(days=365)
        )
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls(directory / f"{common_name}.crt", directory / f"{common_name}.key")
        ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(ca.key_path, key)
        return ca

    def issue(
        self,
        directory: Path,
        name: str,
        common_name: str,
        organizations: tuple[str, ...] = (),
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
    ) -> tuple[Path, Path]:
        """Sign a leaf certificate: a server cert when SANs are given, else a client cert.
        Kubernetes reads the user from CN and the groups from O."""
        ca_cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        ca_key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        key = pki.new_key()
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = dt.datetime.now(dt.UTC)
        server = bool(dns_names or ip_addresses)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        return cert_path, key_path


def write_kubeconfig(
    path: Path, server: str, ca_cert: Path, client_cert: Path, client_key: Path, user: str
) -> Path:
    """A kubeconfig that authenticates with a client certificate (JSON is valid YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "tidings-dev",
                "cluster": {"server": server, "certificate-authority": str(ca_cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(client_cert), "client-key": str(client_key)},
            }
        ],
        "contexts": [{"name": user, "context": {"cluster": "tidings-dev", "user": user}}],
        "current-context": user,
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """One running control plane. `start()` returns when /readyz answers ok."""

    state_dir: Path
    bin_dir: Path = field(default_factory=default_bin_dir)
    die_with_parent: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    apiserver_port: int = 0
    # The address a real node's kubelet and pods reach the apiserver on (tidings_dev.node).
    node_ip: str | None = None
    # Extra compiled time zones (zic output) that kube-apiserver (it validates a CronJob's
    # timeZone) and kube-controller-manager read before the system's: Go's ZONEINFO.
    zoneinfo_dir: Path | None = None

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def host(self) -> str:
        return self.node_ip or "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    @property
    def ca(self) -> CertificateAuthority:
        return CertificateAuthority(self.pki_dir / "ca.crt", self.pki_dir / "ca.key")

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the pinned kubectl against this control plane (admin unless told otherwise)."""
        return subprocess.run(
            [
                str(self.bin_dir / "kubectl"),
                "--kubeconfig",
                str(kubeconfig or self.kubeconfig),
                *args,
            ],
            check=check,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )

    def kubeconfig_for(self, user: str, groups: list[str] | tuple[str, ...] = ()) -> Path:
        """A kubeconfig for any user and groups: a client cert signed by the cluster's CA."""
        users_dir = self.state_dir / "users"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        cert, key = self.ca.issue(users_dir, safe, user, tuple(groups))
        return write_kubeconfig(
            users_dir / f"{safe}.kubeconfig", self.server, self.ca.cert_path, cert, key, user
        )

    def api_client(self, user: str | None = None, groups: list[str] | tuple[str, ...] = ()) -> Any:
        """A kubernetes.client.ApiClient as admin, or as the given user and groups (Any: the
        kubernetes client has no type hints)."""
        from kubernetes import config

        path = self.kubeconfig if user is None else self.kubeconfig_for(user, groups)
        return config.new_client_from_config(config_file=str(path))

    # -- lifecycle

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, crds_dir: Path | None = REPO_ROOT / "crds", timeout: float = 120) -> None:
        missing = [b for b in BINARIES if not (self.bin_dir / b).is_file()]
        if missing:
            raise ControlPlaneError(
                f"missing {', '.join(missing)} in {self.bin_dir}: run hack/build-k8s-binaries first"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        try:
            self._generate_pki()
            self._start_etcd(timeout)
            self._start_apiserver(timeout)
            self._start_controller_manager()
            if crds_dir is not None:
                self.install_crds(crds_dir)
        except BaseException:
            self.stop()
            raise
        self._write_state()

    def _generate_pki(self) -> None:
        pki = self.pki_dir
        ca = CertificateAuthority.create(pki, "ca")
        self.apiserver_port = procs.free_port()
        ca.issue(
            pki,
            "apiserver",
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ip_addresses=tuple(dict.fromkeys(("127.0.0.1", KUBERNETES_SERVICE_IP, self.host))),
        )
        admin_cert, admin_key = ca.issue(pki, "admin", "tidings-admin", ("system:masters",))
        write_kubeconfig(
            self.kubeconfig, self.server, ca.cert_path, admin_cert, admin_key, "tidings-admin"
        )
        kcm_cert, kcm_key = ca.issue(
            pki, "kube-controller-manager", "system:kube-controller-manager"
        )
        write_kubeconfig(
            self.state_dir / "kube-controller-manager.kubeconfig",
            self.server,
            ca.cert_path,
            kcm_cert,
            kcm_key,
            "system:kube-controller-manager",
        )
        if self.node_ip:
            # The apiserver's identity towards kubelets (logs, exec); system:masters passes the
            # kubelet's authorization.
            ca.issue(pki, "apiserver-kubelet-client", "kube-apiserver", ("system:masters",))
        _write_key(pki / "service-account.key", rsa.generate_private_key(65537, 2048))
        sa_key = serialization.load_pem_private_key(
            (pki / "service-account.key").read_bytes(), password=None
        )
        (pki / "service-account.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        env = None
        if self.zoneinfo_dir is not None:
            self.zoneinfo_dir.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "ZONEINFO": str(self.zoneinfo_dir)}
        proc = procs.spawn(
            [str(self.bin_dir / name), *args],
            self.state_dir / "logs" / f"{name}.log",
            tied_to_parent=self.die_with_parent,
            env=env,
        )
        self.processes[name] = proc
        return proc

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float) -> None:
        log_path = self.state_dir / "logs" / f"{name}.log"
        procs.wait_ready(self.processes[name], name, ready, timeout, log_path, ControlPlaneError)

    def _start_etcd(self, timeout: float) -> None:
        client, peer = procs.free_port(), procs.free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            [
                "--name=default",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--log-level=warn",
                # Throwaway data: skipping fsync makes the suite several times faster on slow disks.
                "--unsafe-no-fsync",
            ],
        )
        self._wait("etcd", lambda: procs.http_ok(f"{self.etcd_url}/health"), timeout)

    def _start_apiserver(self, timeout: float) -> None:
        pki = self.pki_dir
        if self.node_ip:
            # Published as the `kubernetes` Service's endpoint, which pods reach via kube-proxy.
            node_args = [
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        else:
            # Loopback cannot be the kubernetes Service's endpoint; without a node nothing needs it.
            node_args = ["--endpoint-reconciler-type=none"]
        self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={self.host}",
                f"--advertise-address={self.host}",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-key-file={pki / 'service-account.pub'}",
                f"--service-account-signing-key-file={pki / 'service-account.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                *node_args,
                "--profiling=false",
                "--v=1",
            ],
        )
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        self._wait(
            "kube-apiserver", lambda: procs.http_ok(f"{self.server}/readyz", context), timeout
        )

    def _start_controller_manager(self) -> None:
        pki = self.pki_dir
        kubeconfig = str(self.state_dir / "kube-controller-manager.kubeconfig")
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={procs.free_port()}",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'service-account.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    def restart_apiserver(self, down: float = 0, timeout: float = 120) -> None:
        """Stop kube-apiserver (SIGTERM), leave it down for `down` seconds, start it again on
        the same port and etcd: every client's watches break and must resume."""
        procs.terminate(self.processes.pop("kube-apiserver"))
        time.sleep(down)
        self._start_apiserver(timeout)
        self._write_state()

    def install_crds(self, crds_dir: Path) -> None:
        """Apply every manifest in crds/ and wait until each CRD is Established."""
        manifests = sorted(p for p in crds_dir.glob("*.yaml"))
        if not manifests:
            return
        for manifest in manifests:
            self.kubectl("apply", "--server-side", "-f", str(manifest))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "pids": {name: proc.pid for name, proc in self.processes.items()},
        }
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        """Stop every process this object started (newest first) and wait for them."""
        for name in reversed(list(self.processes)):
            procs.terminate(self.processes[name])
        self.processes.clear()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "state.json").unlink()


def stop_from_state(state_dir: Path, grace: float = 10) -> list[int]:
    """Stop a control plane started by another process (hack/dev-cluster down). Returns the
    pids that were signalled."""
    state_file = state_dir / "state.json"
    if not state_file.exists():
        return []
    pids = list(json.loads(state_file.read_text())["pids"].values())
    signalled = procs.stop_pids(list(reversed(pids)), grace)
    state_file.unlink()
    return signalled
