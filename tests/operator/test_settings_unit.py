"""TIDINGS_* parsing: defaults, overrides, and refusals that name the variable."""

from __future__ import annotations

import pytest

from tidings.controller.settings import Settings, SettingsError, env_table
from tidings.controller.settings_load import load_settings


def test_defaults_when_nothing_is_set() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.smtp_port == 25
    assert settings.namespaces == ()
    assert not settings.standalone


def test_overrides_are_parsed_and_typed() -> None:
    settings = load_settings(
        {
            "TIDINGS_RENDERER_IMAGE": "registry.local/renderer:1.2",
            "TIDINGS_SMTP_HOST": "relay.mail.svc",
            "TIDINGS_SMTP_PORT": "2525",
            "TIDINGS_SMTP_TLS": "starttls",
            "TIDINGS_NAMESPACES": "team-a, team-b,",
            "TIDINGS_STANDALONE": "true",
            "TIDINGS_RENDERER_MEMORY_LIMIT": "2Gi",
        }
    )
    assert settings.renderer_image == "registry.local/renderer:1.2"
    assert settings.smtp_port == 2525
    assert settings.smtp_tls == "starttls"
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.memory_limit == "2Gi"
    assert settings.standalone


@pytest.mark.parametrize(
    ("env", "value", "rule"),
    [
        ("TIDINGS_SMTP_PORT", "smtp", "must be an integer"),
        ("TIDINGS_SMTP_PORT", "70000", "port number"),
        ("TIDINGS_SMTP_TLS", "ssl", "must be one of"),
        ("TIDINGS_RENDERER_UID", "0", "non-root"),
        ("TIDINGS_RENDERER_CPU_LIMIT", "0.5", "quantity"),
        ("TIDINGS_NAMESPACES", "Team_A", "not a namespace name"),
        ("TIDINGS_LOG_FORMAT", "xml", "must be one of"),
        ("TIDINGS_STANDALONE", "maybe", "must be true or false"),
        ("TIDINGS_SHARD", "Shard_A", "must be a DNS label"),
        ("TIDINGS_FAILED_JOBS_HISTORY", "15", "must be 0-10"),
        ("TIDINGS_DELIVERY_RETENTION_DAYS", "400", "1 to TIDINGS_DELIVERY_RETENTION_MAX_DAYS"),
        ("TIDINGS_DELIVERY_RETENTION_MAX_DAYS", "0", "must be 1-3650"),
        ("TIDINGS_DELIVERY_RECORDS_PER_REPORT", "0", "must be >= 1"),
        ("TIDINGS_DELIVERY_PRUNE_INTERVAL_SECONDS", "5", "must be >= 60"),
        ("TIDINGS_HTTP_DENIED_NETWORKS", "10.0.0.0/8,metadata", "'metadata' is not a network"),
        ("TIDINGS_MAX_SOURCE_BYTES", "32MiB", "whole number of bytes above 0"),
        ("TIDINGS_MAX_SOURCE_BYTES", "0", "whole number of bytes above 0"),
        ("TIDINGS_MAX_SOURCE_ROWS", "lots", "whole number of rows above 0"),
    ],
)
def test_bad_values_name_the_variable_and_rule(env: str, value: str, rule: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({env: value})
    assert str(refused.value).startswith(f"{env}: ")
    assert rule in str(refused.value)


def test_env_table_documents_every_setting() -> None:
    rows = env_table()
    assert len(rows) == len(Settings.__dataclass_fields__)
    assert ("TIDINGS_SMTP_PORT", "25", "Platform SMTP relay port.") in rows
    assert all(name.startswith("TIDINGS_") and doc for name, _, doc in rows)


def test_docs_list_every_variable() -> None:
    from tidings_dev.cluster import REPO_ROOT

    text = (REPO_ROOT / "docs" / "operator.md").read_text()
    missing = [name for name, _, _ in env_table() if f"`{name}`" not in text]
    assert not missing, f"docs/operator.md does not document {missing}"
