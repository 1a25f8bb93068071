"""`tidings relay`: the delivery relay (docs/relay.md). Renderer pods submit to it; it forwards
to the platform relay (TIDINGS_SMTP_*, with the platform credentials) only what each pod's
report admits.

Settings: TIDINGS_RELAY_ADDRESS (0.0.0.0), TIDINGS_RELAY_PORT (2525), TIDINGS_RELAY_AUDIENCE
(tidings.dev/relay), TIDINGS_OPERATOR_NAMESPACE (where the dedupe records live),
TIDINGS_NAMESPACES (served namespaces; empty = all), TIDINGS_RELAY_DEDUPE_TTL_SECONDS,
TIDINGS_RELAY_MAX_BYTES, TIDINGS_RELAY_OPERATOR_ACCOUNT (`namespace:name` of the operator's service
account, whose token sends owner notices), TIDINGS_RELAY_PROBE_INTERVAL_SECONDS (60) and
TIDINGS_RELAY_PROBE_CONFIGMAP (tidings-relay-probe: where the probe of the platform relay is
written, relay/probe.py), TIDINGS_LOG_FORMAT, TIDINGS_LOG_LEVEL; TIDINGS_RELAY_HTTP_PORT (unset:
off) serves the channel front (relay/http_forward.py), with TIDINGS_HTTP_DENIED_NETWORKS as its
guard.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

PRUNE_INTERVAL_SECONDS = 3600


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default $KUBECONFIG or in-cluster)")


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading
    from datetime import timedelta

    from kubernetes import client

    from tidings.contract import RELAY_PROBE_INTERVAL_SECONDS
    from tidings.controller.kube import load_api_client
    from tidings.controller.logging import configure_logging
    from tidings.relay import dedupe, policy, probe
    from tidings.relay.identity import Lookup
    from tidings.relay.server import RelayController, RelayHandler
    from tidings.relay.upstream import UpstreamSession
    from tidings.renderer.mail import platform_values, settings_from_values
    from tidings.renderer.result import InputError

    env = os.environ
    configure_logging(env.get("TIDINGS_LOG_FORMAT") or "json", env.get("TIDINGS_LOG_LEVEL", "INFO"))
    log = logging.getLogger("tidings.relay")
    namespace = env.get("TIDINGS_OPERATOR_NAMESPACE", "")
    try:
        upstream = settings_from_values(platform_values(env))
        port = int(env.get("TIDINGS_RELAY_PORT") or 2525)
        ttl = int(env.get("TIDINGS_RELAY_DEDUPE_TTL_SECONDS") or dedupe.DEFAULT_TTL.total_seconds())
        max_bytes = int(env.get("TIDINGS_RELAY_MAX_BYTES") or 32 * 1024 * 1024)
        probe_interval = int(
            env.get("TIDINGS_RELAY_PROBE_INTERVAL_SECONDS") or RELAY_PROBE_INTERVAL_SECONDS
        )
        if probe_interval < 5:
            raise ValueError(
                f"TIDINGS_RELAY_PROBE_INTERVAL_SECONDS: {probe_interval} is under 5 seconds"
            )
    except (InputError, ValueError) as error:
        print(f"tidings relay: {error}", file=sys.stderr)
        return 2
    if not namespace:
        print("tidings relay: TIDINGS_OPERATOR_NAMESPACE must name its namespace", file=sys.stderr)
        return 2
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    api = load_api_client()
    served = [ns.strip() for ns in (env.get("TIDINGS_NAMESPACES") or "").split(",") if ns.strip()]
    audience = env.get("TIDINGS_RELAY_AUDIENCE") or policy.AUDIENCE
    operator_account = env.get("TIDINGS_RELAY_OPERATOR_ACCOUNT", "")  # namespace:name
    lookup = Lookup(api, audience, served, operator_account)
    store = dedupe.DedupeStore(client.CoreV1Api(api), namespace, timedelta(seconds=ttl))
    handler = RelayHandler(lookup, store, lambda: UpstreamSession(upstream))
    front = RelayController(handler, env.get("TIDINGS_RELAY_ADDRESS") or "0.0.0.0", port, max_bytes)
    front.start()
    log.info("relaying on port %d to %s for audience %s", port, upstream.where, lookup.audience)
    channels = start_channel_front(env, lookup, max_bytes)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    publisher = probe.ProbePublisher(
        client.CoreV1Api(api),
        namespace,
        env.get("TIDINGS_RELAY_PROBE_CONFIGMAP") or "tidings-relay-probe",
        env.get("TIDINGS_RELAY_REPLICA") or env.get("HOSTNAME") or "relay",
        probe_interval,
    )
    threading.Thread(
        target=_probe_loop, args=(probe.probe, upstream, publisher, stop), daemon=True
    ).start()
    while not stop.wait(PRUNE_INTERVAL_SECONDS):
        try:
            log.info("pruned %d expired dedupe record(s)", store.prune())
        except Exception as error:  # the next round tries again; relaying goes on
            log.warning("pruning dedupe records failed: %s", type(error).__name__)
    front.stop()
    if channels is not None:
        channels.stop()
    return 0


def start_channel_front(env: Mapping[str, str], lookup: Any, max_bytes: int) -> Any:
    """The channel front (relay/http_forward.py) when TIDINGS_RELAY_HTTP_PORT is set."""
    import logging

    from tidings import netguard
    from tidings.relay.http_forward import ForwardServer

    port = env.get("TIDINGS_RELAY_HTTP_PORT")
    if not port:
        return None
    denied = netguard.parse_networks(env.get("TIDINGS_HTTP_DENIED_NETWORKS"))
    address = env.get("TIDINGS_RELAY_ADDRESS") or "0.0.0.0"
    from tidings.renderer.channels import slack

    slack_api = slack.api_url(env.get(slack.API_URL_ENV))
    server = ForwardServer(lookup, address, int(port), max_bytes, denied, slack_api)
    server.start()
    logging.getLogger("tidings.relay").info("channel front on port %d", server.port)
    return server


def _probe_loop(probe_fn: Any, upstream: Any, publisher: Any, stop: Any) -> None:
    """Probe the platform relay at once, then every interval, until `stop`; a failed write is
    logged and tried again next round (relaying goes on regardless)."""
    import logging

    log = logging.getLogger("tidings.relay")
    while True:
        found = probe_fn(upstream)
        if not found.ok:
            log.warning("probe of %s failed at %s: %s", found.upstream, found.step, found.detail)
        try:
            publisher.publish(found)
        except Exception as error:
            log.warning("writing the probe result failed: %s", type(error).__name__)
        if stop.wait(publisher.interval):
            return
