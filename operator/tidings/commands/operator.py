"""`tidings operator`: run the operator against the current kubeconfig (or in-cluster config).

Configuration comes from TIDINGS_* environment variables (docs/operator.md); the flags here
only override where it runs.
"""

from __future__ import annotations

import argparse
import os
import sys


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
    import importlib
    import random

    import kopf

    from tidings.controller import metrics
    from tidings.controller.logging import configure_logging
    from tidings.controller.settings import SettingsError, load_settings

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
        importlib.import_module("tidings.admission")

    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    namespaces = args.namespace or list(settings.namespaces)
    standalone = args.standalone or settings.standalone
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=standalone,
        peering_name=None if standalone else settings.peering_name,
        # Peering is not leader election: equal priorities freeze each other, so pick at random.
        priority=random.randint(1, 2**31 - 1),
        liveness_endpoint=(
            f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
        ),
        memo=kopf.Memo(settings=settings),
    )
    return 0
