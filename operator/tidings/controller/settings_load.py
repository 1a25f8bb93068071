"""Loading the operator's settings from the environment, and the rule each value must meet.

A bad value is refused at start-up with the variable's name and the rule it broke, rather than
turning into a CronJob the apiserver rejects later for every report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields

from tidings import branding, netguard
from tidings.controller.settings import (
    LOG_FORMATS,
    MAIL_DOMAIN,
    PULL_POLICIES,
    SMTP_TLS_MODES,
    Settings,
    SettingsError,
    run_env,
)

# Kubernetes resource quantities in the canonical forms the apiserver keeps as written.
_QUANTITY = re.compile(r"^([0-9]+m|[0-9]+|[0-9]+(Ki|Mi|Gi|Ti))$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from the environment (pass os.environ); unset or empty variables keep defaults."""
    values: dict[str, object] = {}
    for spec in fields(Settings):
        env = spec.metadata["env"]
        raw = environ.get(env, "").strip()
        if not raw:
            continue
        if spec.type in ("int", int):
            try:
                values[spec.name] = int(raw)
            except ValueError:
                raise SettingsError(f"{env}: must be an integer, got {raw!r}") from None
        elif spec.type in ("bool", bool):
            if raw.lower() not in _BOOLEANS:
                raise SettingsError(f"{env}: must be true or false, got {raw!r}")
            values[spec.name] = _BOOLEANS[raw.lower()]
        elif spec.name in ("namespaces", "allowed_recipient_domains", "allowed_channel_hosts"):
            values[spec.name] = tuple(ns.strip() for ns in raw.split(",") if ns.strip())
        else:
            values[spec.name] = raw
    settings = Settings(**values)  # type: ignore[arg-type]
    check(settings)
    return settings


def check(s: Settings) -> None:
    """Raise SettingsError naming the first variable whose value breaks its rule."""
    try:
        branding.check_platform(run_env(s))
    except branding.BrandingError as error:
        raise SettingsError(str(error)) from None
    try:
        netguard.parse_networks(s.http_denied_networks)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    rules: list[tuple[bool, str, str]] = [
        (
            re.fullmatch(r"([1-9][0-9]*)?", s.max_source_bytes) is not None,
            "TIDINGS_MAX_SOURCE_BYTES",
            "must be a whole number of bytes above 0",
        ),
        (
            re.fullmatch(r"([1-9][0-9]*)?", s.max_source_rows) is not None,
            "TIDINGS_MAX_SOURCE_ROWS",
            "must be a whole number of rows above 0",
        ),
        (s.smtp_tls in SMTP_TLS_MODES, "TIDINGS_SMTP_TLS", f"must be one of {SMTP_TLS_MODES}"),
        (1 <= s.smtp_port <= 65535, "TIDINGS_SMTP_PORT", "must be a port number (1-65535)"),
        (s.smtp_timeout > 0, "TIDINGS_SMTP_TIMEOUT", "must be positive"),
        (
            1 <= s.delivery_retention_max_days <= 3650,
            "TIDINGS_DELIVERY_RETENTION_MAX_DAYS",
            "must be 1-3650",
        ),
        (
            1 <= s.delivery_retention_days <= s.delivery_retention_max_days,
            "TIDINGS_DELIVERY_RETENTION_DAYS",
            "must be 1 to TIDINGS_DELIVERY_RETENTION_MAX_DAYS",
        ),
        (s.delivery_records_per_report >= 1, "TIDINGS_DELIVERY_RECORDS_PER_REPORT", "must be >= 1"),
        (
            s.delivery_prune_interval >= 60,
            "TIDINGS_DELIVERY_PRUNE_INTERVAL_SECONDS",
            "must be >= 60",
        ),
        (
            s.image_pull_policy in PULL_POLICIES,
            "TIDINGS_RENDERER_PULL_POLICY",
            f"must be one of {PULL_POLICIES}",
        ),
        (s.run_as_user > 0, "TIDINGS_RENDERER_UID", "must be a non-root UID (> 0)"),
        (s.starting_deadline_seconds >= 10, "TIDINGS_STARTING_DEADLINE_SECONDS", "must be >= 10"),
        (1 <= s.slot_check_seconds <= 60, "TIDINGS_SLOT_CHECK_SECONDS", "must be 1-60"),
        (0 <= s.successful_jobs_history <= 10, "TIDINGS_SUCCESSFUL_JOBS_HISTORY", "must be 0-10"),
        (0 <= s.failed_jobs_history <= 10, "TIDINGS_FAILED_JOBS_HISTORY", "must be 0-10"),
        (s.run_start_timeout >= 1, "TIDINGS_RUN_START_TIMEOUT", "must be >= 1"),
        (
            s.max_runs_per_namespace >= 0,
            "TIDINGS_MAX_CONCURRENT_RUNS_PER_NAMESPACE",
            "must be 0 (no cap) or more",
        ),
        (s.max_runs_cluster >= 0, "TIDINGS_MAX_CONCURRENT_RUNS", "must be 0 (no cap) or more"),
        (0 <= s.start_jitter_seconds <= 3600, "TIDINGS_START_JITTER_SECONDS", "must be 0-3600"),
        (
            s.test_sends_per_hour >= 1,
            "TIDINGS_TEST_SENDS_PER_NAMESPACE_PER_HOUR",
            "must be >= 1",
        ),
        (0 <= s.metrics_port <= 65535, "TIDINGS_METRICS_PORT", "must be 0 or a port number"),
        (0 <= s.health_port <= 65535, "TIDINGS_HEALTH_PORT", "must be 0 or a port number"),
        (0 <= s.webhook_port <= 65535, "TIDINGS_WEBHOOK_PORT", "must be 0 or a port number"),
        (
            bool(s.webhook_cert_file) == bool(s.webhook_key_file),
            "TIDINGS_WEBHOOK_CERT_FILE",
            "must be set together with TIDINGS_WEBHOOK_KEY_FILE",
        ),
        (
            not (s.webhook_tls_secret and s.webhook_cert_file),
            "TIDINGS_WEBHOOK_TLS_SECRET",
            "must not be set together with TIDINGS_WEBHOOK_CERT_FILE (one source of the cert)",
        ),
        *(
            (
                bool(value) or not s.webhook_tls_secret,
                env,
                "must be set with TIDINGS_WEBHOOK_TLS_SECRET",
            )
            for value, env in (
                (s.webhook_port, "TIDINGS_WEBHOOK_PORT"),
                (s.webhook_service, "TIDINGS_WEBHOOK_SERVICE"),
                (s.webhook_configuration, "TIDINGS_WEBHOOK_CONFIGURATION"),
                (s.operator_namespace, "TIDINGS_OPERATOR_NAMESPACE"),
            )
        ),
        (1 <= s.relay_port <= 65535, "TIDINGS_RELAY_PORT", "must be a port number (1-65535)"),
        (
            0 <= s.relay_http_port <= 65535,
            "TIDINGS_RELAY_HTTP_PORT",
            "must be a port number (1-65535), or 0 for none",
        ),
        (bool(s.relay_audience), "TIDINGS_RELAY_AUDIENCE", "must not be empty"),
        (s.log_format in LOG_FORMATS, "TIDINGS_LOG_FORMAT", f"must be one of {LOG_FORMATS}"),
        (
            s.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
            "TIDINGS_LOG_LEVEL",
            "must be DEBUG, INFO, WARNING or ERROR",
        ),
        (bool(s.renderer_image), "TIDINGS_RENDERER_IMAGE", "must not be empty"),
        (_DNS_LABEL.match(s.peering_name) is not None, "TIDINGS_PEERING", "must be a DNS label"),
    ]
    for name in ("cpu_request", "memory_request", "cpu_limit", "memory_limit"):
        env = next(f.metadata["env"] for f in fields(Settings) if f.name == name)
        rules.append(
            (
                bool(_QUANTITY.match(getattr(s, name))),
                env,
                "must be a quantity like 100m, 1, 256Mi or 1Gi",
            )
        )
    rules.extend(
        (bool(_DNS_LABEL.match(ns)), "TIDINGS_NAMESPACES", f"{ns!r} is not a namespace name")
        for ns in s.namespaces
    )
    if s.shard:
        # In a field manager's name (kube.Kube) and the peering object's; `tidings operator`
        # also refuses a shard without namespaces (its -n flags count).
        rules.append((bool(_DNS_LABEL.match(s.shard)), "TIDINGS_SHARD", "must be a DNS label"))
    rules.extend(
        (
            bool(MAIL_DOMAIN.match(d)),
            "TIDINGS_ALLOWED_RECIPIENT_DOMAINS",
            f"{d!r} is not a domain (example.com, or .example.com for its subdomains)",
        )
        for d in s.allowed_recipient_domains
    )
    rules.extend(
        (
            bool(MAIL_DOMAIN.match(h)),
            "TIDINGS_ALLOWED_CHANNEL_HOSTS",
            f"{h!r} is not a host name (hooks.example.com, or .example.com for its subdomains)",
        )
        for h in s.allowed_channel_hosts
    )
    for ok, env, rule in rules:
        if not ok:
            raise SettingsError(f"{env}: {rule}")
