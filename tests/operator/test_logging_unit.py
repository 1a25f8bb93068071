"""JSON log lines carry the object and never a credential."""

from __future__ import annotations

import json
import logging

from tidings.controller.logging import JsonFormatter, redact


def test_redacts_url_passwords_and_authorization_values() -> None:
    text = "connect postgresql+psycopg://app:s3cret@db:5432/x failed; Authorization: Bearer abc"
    cleaned = redact(text)
    assert "s3cret" not in cleaned and "abc" not in cleaned
    assert "postgresql+psycopg://app:***@db:5432/x" in cleaned
    assert redact("password=hunter2 token: t0k") == "password=*** token: ***"
    assert redact("nothing to hide at https://example.com/a") == (
        "nothing to hide at https://example.com/a"
    )


def test_json_line_has_level_message_and_object() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "%s done", ("x",), None)
    record.k8s_ref = {"kind": "ScheduledReport", "namespace": "team", "name": "weekly", "uid": "u"}
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO"
    assert line["message"] == "x done"
    assert line["object"] == {"kind": "ScheduledReport", "namespace": "team", "name": "weekly"}
