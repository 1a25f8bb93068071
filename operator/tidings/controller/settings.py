"""The operator's configuration: every platform default comes from a TIDINGS_* environment
variable, described here (name, default, meaning) and parsed by settings_load only, so the Helm
chart, `tidings operator` and the tests agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields

from tidings import branding

SMTP_TLS_MODES = ("none", "starttls", "tls")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
LOG_FORMATS = ("json", "text")
# A mail domain, optionally with a leading dot meaning "any subdomain of" (docs/permissions.md).
MAIL_DOMAIN = re.compile(r"^\.?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class SettingsError(ValueError):
    """A TIDINGS_* variable has a value the operator cannot use."""


@dataclass(frozen=True)
class Settings:
    """Platform defaults; `doc` metadata is the text of the table in docs/operator.md."""

    renderer_image: str = field(
        default="ghcr.io/tidings-dev/tidings-renderer:0.1.0",
        metadata={"env": "TIDINGS_RENDERER_IMAGE", "doc": "Image the CronJob pods run."},
    )
    image_pull_policy: str = field(
        default="IfNotPresent",
        metadata={"env": "TIDINGS_RENDERER_PULL_POLICY", "doc": "Always, IfNotPresent or Never."},
    )
    smtp_host: str = field(
        default="",
        metadata={"env": "TIDINGS_SMTP_HOST", "doc": "Platform SMTP relay host (no auth)."},
    )
    smtp_port: int = field(
        default=25, metadata={"env": "TIDINGS_SMTP_PORT", "doc": "Platform SMTP relay port."}
    )
    smtp_from: str = field(
        default="", metadata={"env": "TIDINGS_SMTP_FROM", "doc": "From: address of reports."}
    )
    smtp_tls: str = field(
        default="none",
        metadata={"env": "TIDINGS_SMTP_TLS", "doc": "none, starttls (required) or tls."},
    )
    smtp_timeout: int = field(
        default=30,
        metadata={"env": "TIDINGS_SMTP_TIMEOUT", "doc": "SMTP timeout in seconds."},
    )
    cpu_request: str = field(
        default="100m", metadata={"env": "TIDINGS_RENDERER_CPU_REQUEST", "doc": "Pod CPU request."}
    )
    memory_request: str = field(
        default="256Mi",
        metadata={"env": "TIDINGS_RENDERER_MEMORY_REQUEST", "doc": "Pod memory request."},
    )
    cpu_limit: str = field(
        default="1", metadata={"env": "TIDINGS_RENDERER_CPU_LIMIT", "doc": "Pod CPU limit."}
    )
    memory_limit: str = field(
        default="1Gi",
        metadata={"env": "TIDINGS_RENDERER_MEMORY_LIMIT", "doc": "Pod memory limit."},
    )
    run_as_user: int = field(
        default=10001,
        metadata={"env": "TIDINGS_RENDERER_UID", "doc": "Non-root UID (and GID) of the pod."},
    )
    namespaces: tuple[str, ...] = field(
        default=(),
        metadata={
            "env": "TIDINGS_NAMESPACES",
            "doc": "Comma-separated namespaces to serve; empty means cluster-wide.",
        },
    )
    allowed_recipient_domains: tuple[str, ...] = field(
        default=(),
        metadata={
            "env": "TIDINGS_ALLOWED_RECIPIENT_DOMAINS",
            "doc": "Comma-separated internal recipient domains (docs/permissions.md).",
        },
    )
    allowed_channel_hosts: tuple[str, ...] = field(
        default=(),
        metadata={
            "env": "TIDINGS_ALLOWED_CHANNEL_HOSTS",
            "doc": "Comma-separated channel hosts that need no schedule verb (docs/channels.md).",
        },
    )
    starting_deadline_seconds: int = field(
        default=3600,
        metadata={
            "env": "TIDINGS_STARTING_DEADLINE_SECONDS",
            "doc": "A run missed by longer than this (controller down) is skipped.",
        },
    )
    slot_check_seconds: int = field(
        default=15,
        metadata={
            "env": "TIDINGS_SLOT_CHECK_SECONDS",
            "doc": "How often the operator looks for schedule slots a DST spring-forward skipped "
            "(it starts their runs at the first instant after the gap).",
        },
    )
    successful_jobs_history: int = field(
        default=3,
        metadata={"env": "TIDINGS_SUCCESSFUL_JOBS_HISTORY", "doc": "Finished Jobs kept (0-10)."},
    )
    failed_jobs_history: int = field(
        default=3,
        metadata={"env": "TIDINGS_FAILED_JOBS_HISTORY", "doc": "Failed Jobs kept (0-10)."},
    )
    run_start_timeout: int = field(
        default=120,
        metadata={
            "env": "TIDINGS_RUN_START_TIMEOUT",
            "doc": "Seconds a run's pod may take to start before the report shows RunNotStarted.",
        },
    )
    max_runs_per_namespace: int = field(
        default=0,
        metadata={
            "env": "TIDINGS_MAX_CONCURRENT_RUNS_PER_NAMESPACE",
            "doc": "Runs of one namespace started at once; more wait suspended, released in "
            "fire order (0 = no cap).",
        },
    )
    max_runs_cluster: int = field(
        default=0,
        metadata={
            "env": "TIDINGS_MAX_CONCURRENT_RUNS",
            "doc": "Runs started at once across all served namespaces (0 = no cap).",
        },
    )
    start_jitter_seconds: int = field(
        default=0,
        metadata={
            "env": "TIDINGS_START_JITTER_SECONDS",
            "doc": "Scheduled runs of each report start this many seconds at most after their "
            "fire time, a fixed offset per report (0 = off, up to 3600).",
        },
    )
    test_sends_per_hour: int = field(
        default=10,
        metadata={
            "env": "TIDINGS_TEST_SENDS_PER_NAMESPACE_PER_HOUR",
            "doc": "Test sends started per namespace in any hour; more are refused "
            "(TestSendRateLimited).",
        },
    )
    owner_notice_min_interval: int = field(
        default=6 * 3600,
        metadata={
            "env": "TIDINGS_OWNER_NOTICE_MIN_INTERVAL_SECONDS",
            "doc": "Least seconds between two notices to a report's spec.owners (the Disabled "
            "notice always goes); counted from status.ownerNoticeSentAt.",
        },
    )
    owner_notice_token_file: str = field(
        default="/var/run/secrets/tidings.dev/relay/token",
        metadata={
            "env": "TIDINGS_OWNER_NOTICE_TOKEN_FILE",
            "doc": "The operator's own projected service-account token for the relay's "
            "audience: its login for owner notices, read anew for each one.",
        },
    )
    metrics_port: int = field(
        default=9090,
        metadata={"env": "TIDINGS_METRICS_PORT", "doc": "Prometheus /metrics port; 0 = off."},
    )
    health_port: int = field(
        default=8080,
        metadata={"env": "TIDINGS_HEALTH_PORT", "doc": "/healthz port (liveness); 0 = off."},
    )
    peering_name: str = field(
        default="tidings",
        metadata={
            "env": "TIDINGS_PEERING",
            "doc": "KopfPeering object replicas coordinate through (its CRDs must be installed).",
        },
    )
    standalone: bool = field(
        default=False,
        metadata={
            "env": "TIDINGS_STANDALONE",
            "doc": "true = no peering: only for a single replica.",
        },
    )
    shard: str = field(
        default="",
        metadata={
            "env": "TIDINGS_SHARD",
            "doc": "Shard name: serve only TIDINGS_NAMESPACES, peer in one ClusterKopfPeering.",
        },
    )
    webhook_port: int = field(
        default=0,
        metadata={
            "env": "TIDINGS_WEBHOOK_PORT",
            "doc": "Serve the validating admission webhook (HTTPS) on this port; 0 = off.",
        },
    )
    webhook_cert_file: str = field(
        default="",
        metadata={
            "env": "TIDINGS_WEBHOOK_CERT_FILE",
            "doc": "PEM certificate of the webhook server; empty = kopf self-signs.",
        },
    )
    webhook_key_file: str = field(
        default="",
        metadata={"env": "TIDINGS_WEBHOOK_KEY_FILE", "doc": "PEM private key for that cert."},
    )
    webhook_tls_secret: str = field(
        default="",
        metadata={
            "env": "TIDINGS_WEBHOOK_TLS_SECRET",
            "doc": "Secret in the operator's namespace where the operator keeps the webhook's "
            "CA and certificate, issuing and rotating them; empty = not managed.",
        },
    )
    webhook_service: str = field(
        default="",
        metadata={
            "env": "TIDINGS_WEBHOOK_SERVICE",
            "doc": "Service the apiserver reaches the webhook through (the certificate's name).",
        },
    )
    webhook_configuration: str = field(
        default="",
        metadata={
            "env": "TIDINGS_WEBHOOK_CONFIGURATION",
            "doc": "ValidatingWebhookConfiguration whose caBundle the operator keeps current.",
        },
    )
    operator_namespace: str = field(
        default="",
        metadata={
            "env": "TIDINGS_OPERATOR_NAMESPACE",
            "doc": "Namespace the operator runs in (the chart sets it from the pod).",
        },
    )
    smtp_credentials_secret: str = field(
        default="",
        metadata={
            "env": "TIDINGS_SMTP_CREDENTIALS_SECRET",
            "doc": "Without the delivery relay only: Secret name (keys username, password) each "
            "renderer pod reads from its own namespace, if there, to log in to the platform "
            "relay; empty = no login. The relay keeps these in its own namespace instead.",
        },
    )
    # The delivery relay (docs/relay.md): when set, pods submit to it, never to the platform.
    relay_service: str = field(
        default="",
        metadata={
            "env": "TIDINGS_RELAY_SERVICE",
            "doc": "Service of the delivery relay in the operator's namespace; its ClusterIP is "
            "looked up at start-up (no cluster DNS needed). Empty = no relay.",
        },
    )
    relay_host: str = field(
        default="",
        metadata={
            "env": "TIDINGS_RELAY_HOST",
            "doc": "The delivery relay's address, given directly instead of TIDINGS_RELAY_SERVICE.",
        },
    )
    relay_port: int = field(
        default=2525,
        metadata={"env": "TIDINGS_RELAY_PORT", "doc": "The delivery relay's SMTP port."},
    )
    relay_http_port: int = field(
        default=0,
        metadata={
            "env": "TIDINGS_RELAY_HTTP_PORT",
            "doc": "The delivery relay's channel port (docs/channels.md); 0: direct posts.",
        },
    )
    relay_audience: str = field(
        default="tidings.dev/relay",
        metadata={
            "env": "TIDINGS_RELAY_AUDIENCE",
            "doc": "Audience of the pods' projected relay token (the relay checks it).",
        },
    )
    # Branding and mail defaults, handed on to every renderer pod as is (tidings/branding.py):
    # a namespace's ConfigMap tidings-branding overrides them key by key.
    brand_logo: str = field(
        default="",
        metadata={"env": "TIDINGS_BRAND_LOGO", "doc": "Logo as a data: URI (PNG, JPEG, GIF, SVG)."},
    )
    brand_accent_color: str = field(
        default="",
        metadata={"env": "TIDINGS_BRAND_ACCENT_COLOR", "doc": "Accent colour, #rrggbb."},
    )
    brand_footer_text: str = field(
        default="",
        metadata={"env": "TIDINGS_BRAND_FOOTER_TEXT", "doc": "Footer text of PDF and mail."},
    )
    mail_from_name: str = field(
        default="",
        metadata={"env": "TIDINGS_MAIL_FROM_NAME", "doc": "From display name."},
    )
    mail_reply_to: str = field(
        default="", metadata={"env": "TIDINGS_MAIL_REPLY_TO", "doc": "Reply-To address."}
    )
    max_pdf_rows: str = field(
        default="",
        metadata={"env": "TIDINGS_MAX_PDF_ROWS", "doc": "Detail rows in the PDF (default 500)."},
    )
    http_denied_networks: str = field(
        default="",
        metadata={
            "env": "TIDINGS_HTTP_DENIED_NETWORKS",
            "doc": "CIDRs (comma-separated) no http source may reach; empty = link-local and "
            "cloud metadata addresses, `none` = no list. Not overridable per namespace.",
        },
    )
    max_source_bytes: str = field(
        default="",
        metadata={
            "env": "TIDINGS_MAX_SOURCE_BYTES",
            "doc": "Largest http or sql result a run reads, in bytes (default 33554432).",
        },
    )
    max_source_rows: str = field(
        default="",
        metadata={
            "env": "TIDINGS_MAX_SOURCE_ROWS",
            "doc": "Most rows a run reads from any source (default 200000).",
        },
    )
    smtp_ca_pem: str = field(
        default="",
        metadata={
            "env": "TIDINGS_SMTP_CA_PEM",
            "doc": "PEM CA certificate(s) the renderer trusts for the SMTP relay.",
        },
    )
    log_format: str = field(
        default="json", metadata={"env": "TIDINGS_LOG_FORMAT", "doc": "json or text."}
    )
    log_level: str = field(
        default="INFO", metadata={"env": "TIDINGS_LOG_LEVEL", "doc": "DEBUG, INFO, WARNING."}
    )
    delivery_retention_days: int = field(
        default=90,
        metadata={
            "env": "TIDINGS_DELIVERY_RETENTION_DAYS",
            "doc": "Days a ReportDelivery record is kept when its report sets no "
            "spec.delivery.retentionDays.",
        },
    )
    delivery_retention_max_days: int = field(
        default=365,
        metadata={
            "env": "TIDINGS_DELIVERY_RETENTION_MAX_DAYS",
            "doc": "Platform maximum for any record's retention (caps the per-report setting).",
        },
    )
    delivery_records_per_report: int = field(
        default=1000,
        metadata={
            "env": "TIDINGS_DELIVERY_RECORDS_PER_REPORT",
            "doc": "Records kept per report at most; the oldest beyond it are pruned.",
        },
    )
    delivery_prune_interval: int = field(
        default=21600,
        metadata={
            "env": "TIDINGS_DELIVERY_PRUNE_INTERVAL_SECONDS",
            "doc": "Seconds between prunes of expired records (one list call each).",
        },
    )


def run_env(s: Settings) -> dict[str, str]:
    """The platform values each renderer pod gets (branding.PLATFORM_ENV), by variable name."""
    return {
        f.metadata["env"]: str(getattr(s, f.name))
        for f in fields(s)
        if f.metadata["env"] in branding.PLATFORM_ENV
    }


def env_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows for the documentation."""
    rows = []
    for spec in fields(Settings):
        default = spec.default
        if isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = ",".join(default) if isinstance(default, tuple) else str(default)
        rows.append((spec.metadata["env"], shown, spec.metadata["doc"]))
    return rows
