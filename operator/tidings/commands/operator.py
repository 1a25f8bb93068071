"""`tidings operator`: run the operator against the current kubeconfig (or in-cluster config).

Configuration comes from TIDINGS_* environment variables (docs/operator.md); the flags here
only override where it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tidings.controller.settings import Settings


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="serve only this namespace (repeatable); default TIDINGS_NAMESPACES, else all",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: for a single replica, or when the KopfPeering CRDs are not installed",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG or in-cluster)")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import importlib
    import random

    import kopf

    from tidings.controller import metrics
    from tidings.controller.kopf_settings import operator_settings
    from tidings.controller.logging import configure_logging
    from tidings.controller.settings import SettingsError
    from tidings.controller.settings_load import load_settings

    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        print(f"tidings operator: {exc}", file=sys.stderr)
        return 2
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    configure_logging(settings.log_format, settings.log_level)

    importlib.import_module("tidings.controller.handlers")  # registers the handlers

    if settings.webhook_port:
        # The validating webhook runs in this process; handlers.configure starts its server.
        importlib.import_module("tidings.controller.admission")

    if settings.webhook_tls_secret:
        try:
            settings = _start_webhook_tls(settings)
        except Exception as exc:  # the operator cannot serve the webhook without a certificate
            print(f"tidings operator: webhook certificate: {exc}", file=sys.stderr)
            return 1

    if settings.relay_service and not settings.relay_host:
        try:
            settings = _with_relay_address(settings)
        except Exception as exc:  # pods would mail nowhere: refuse to start, saying why
            print(f"tidings operator: the delivery relay Service: {exc}", file=sys.stderr)
            return 1

    namespaces = args.namespace or list(settings.namespaces)
    standalone = args.standalone or settings.standalone
    if settings.shard and not namespaces:
        # It would serve every namespace: the other shards' reports too.
        print(
            "tidings operator: TIDINGS_SHARD needs the shard's namespaces "
            "(TIDINGS_NAMESPACES or -n)",
            file=sys.stderr,
        )
        return 2
    if settings.shard and not standalone:
        _peer_cluster_wide()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port, peering=not standalone)
    kopf.run(
        settings=operator_settings(),
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=None if standalone else settings.peering_name,
        # Peering is not leader election: equal priorities freeze each other, so pick at random.
        priority=random.randint(1, 2**31 - 1),
        liveness_endpoint=(
            f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
        ),
        # The handlers list what they serve: the namespaces given here, not only the setting.
        memo=kopf.Memo(settings=dataclasses.replace(settings, namespaces=tuple(namespaces))),
    )
    return 0


def _peer_cluster_wide() -> None:
    """A shard serves a list of namespaces, and kopf would then peer through a KopfPeering in
    each one (a keep-alive patch per namespace and replica every minute). One ClusterKopfPeering
    per shard (TIDINGS_PEERING) keeps the standby arrangement at one object. kopf sets the
    peering scope from `clusterwide=` in kopf.run; a startup handler runs after that and before
    the peering starts."""
    import kopf

    @kopf.on.startup(id="shard-peering")
    def shard_peering(settings: kopf.OperatorSettings, **_: object) -> None:
        settings.peering.clusterwide = True


def _with_relay_address(settings: Settings) -> Settings:
    """The relay Service's ClusterIP as the pods' relay address: pods reach it without cluster
    DNS, and a Service keeps its ClusterIP for its lifetime."""
    import dataclasses

    from kubernetes import client

    from tidings.controller.kube import load_api_client

    if not settings.operator_namespace:
        raise ValueError("TIDINGS_OPERATOR_NAMESPACE must name the namespace it is in")
    with load_api_client() as api:
        service = client.CoreV1Api(api).read_namespaced_service(
            settings.relay_service, settings.operator_namespace
        )
    address = service.spec.cluster_ip
    if not address or address == "None":
        raise ValueError(f"{settings.relay_service} has no ClusterIP (a headless Service?)")
    return dataclasses.replace(settings, relay_host=address)


# How long a starting operator waits for its webhook configuration to appear (see below).
PUBLISH_WAIT_SECONDS = 60


def _start_webhook_tls(settings: Settings) -> Settings:
    """Issue or load the webhook certificate (shared by all replicas through its Secret), keep
    it current in a background thread, and point the webhook server at its files."""
    import dataclasses
    import tempfile
    import threading
    import time
    from pathlib import Path

    from tidings.controller.kube import load_api_client
    from tidings.controller.webhook_tls_store import WebhookTLSStore

    store = WebhookTLSStore(
        api=load_api_client(),
        namespace=settings.operator_namespace,
        secret_name=settings.webhook_tls_secret,
        service=settings.webhook_service,
        configuration=settings.webhook_configuration,
        cert_dir=Path(tempfile.mkdtemp(prefix="tidings-webhook-tls-")),
    )
    published = store.ensure()
    # helm creates the webhook configuration after the Deployment. Until its caBundle is
    # published the apiserver cannot call us, so hold the webhook port (the readiness probe)
    # closed for a while rather than report Ready and have the first `kubectl apply` refused.
    deadline = time.monotonic() + PUBLISH_WAIT_SECONDS
    while not published and time.monotonic() < deadline:
        time.sleep(1)
        published = store.ensure()
    # A daemon thread: it holds nothing that needs a clean shutdown.
    stop = threading.Event()
    thread = threading.Thread(
        target=store.run_periodically,
        args=(stop, not published),
        name="webhook-tls",
        daemon=True,
    )
    thread.start()
    return dataclasses.replace(
        settings, webhook_cert_file=str(store.cert_file), webhook_key_file=str(store.key_file)
    )
