"""validate_spec fuzzed against the renderer's own parsing (hypothesis, bounded).

Specs are grown from a valid one by replacing the fields the renderer parses (window bounds,
time zone, subject, title, SQL query, URL) with text built to hit their edges, and YAML
documents carry tags PyYAML cannot build. The properties:

- nothing raises but the documented errors: validation reports problems, YAML loading a
  YAMLError;
- what validation accepts, the renderer accepts too: the report parses, the window computes,
  the subject formats and goes into a message, the query reads as one statement with known
  parameters, and an inline report renders (text attachment) without an error.
"""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.admission_cases import BASE

from tidings import sqltext
from tidings.documents import load_documents
from tidings.renderer import run as runner
from tidings.renderer.mail import build_message, encode
from tidings.renderer.result import InputError
from tidings.schedule import compute_window, rfc3339
from tidings.validation import SQL_PARAMETERS, validate_spec

FIRE = datetime(2024, 5, 13, 7, tzinfo=UTC)

dates = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.isoformat()
    ),
    st.dates().map(lambda d: d.isoformat()),
    st.builds(
        lambda d, h: f"{d.isoformat()}{h}",
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from(["Z", "+14:00", "-12:00", "+05:30", ""]),
    ),
    st.text(alphabet="0123456789-:T+Z. ", max_size=25),
    st.sampled_from(
        [
            "0001-01-01",
            "0001-01-02",
            "1899-12-31",
            "1900-01-01",
            "9998-12-31",
            "9999-12-31",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "2025-01-01T12:00:00-05:00",
            "2025-01-01T15:00",
            "2025-03-30T02:30",
        ]
    ),
)
zones = st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Kiritimati", "Etc/GMT+12", "Nowhere"])
braces = st.text(alphabet="{}namedtx :!r0-— \r\n", max_size=30)
sql_pieces = st.sampled_from(
    ["SELECT ", "WITH a AS (SELECT 1) ", "1", " ;", ";", "'", "''", '"', "E'", "\\", "$$",
     "$t$", "/*", "*/", "--", "\n", ":window_start", ":status", ":nope", "::int", "\\:",
     " x", "$1", "UPDATE t SET v=1", "a:b"]
)  # fmt: skip
queries = st.lists(sql_pieces, max_size=12).map("".join)
urls = st.sampled_from(
    ["http://169.254.169.254/x", "http://[fe80::1]/x", "https://api.example.com/x?t=1",
     "http://[::ffff:169.254.169.254]/", "http://100.100.100.200/", "file:///etc/passwd",
     "http://example.com:99999/"]
)  # fmt: skip


def report_for(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "tidings.dev/v1alpha1",
        "kind": "ScheduledReport",
        "metadata": {"name": "fuzz", "namespace": "qa", "uid": "u-1"},
        "spec": spec,
    }


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["timeZone"] = draw(zones)
    # Only the window: status and tag filters need columns the fuzzed rows do not have.
    start = draw(dates)
    end = draw(st.one_of(dates, st.just(start[:10].replace("-01-01", "-01-02"))))
    spec["filters"] = {"window": {"from": start, "to": end}}
    spec["title"] = draw(st.one_of(braces, st.just("Weekly")))
    spec["delivery"] = {"subjectTemplate": draw(st.one_of(braces, st.just("{name} {date}")))}
    kind = draw(st.sampled_from(["sql", "http", "inline"]))
    if kind == "sql":
        spec["source"]["sql"]["query"] = draw(queries)
    elif kind == "http":
        spec["source"] = {"http": {"url": draw(urls)}}
    else:
        spec["reportType"] = "custom_query"
        spec["source"] = {"inline": {"rows": [{"a": 1, "time": "2024-05-08T10:00:00Z"}]}}
    return spec


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs())
def test_what_validation_accepts_the_renderer_accepts(spec: dict[str, Any]) -> None:
    result = validate_spec(spec)
    if not result.ok:
        return
    report = runner.parse_report(report_for(spec))  # raises InputError if they disagree
    window = compute_window(report.spec.filters.window, FIRE, report.spec.time_zone)
    for bound in window:
        rfc3339(bound)  # as the result line writes it
    source = report.spec.source
    if source.sql is not None:
        parsed = sqltext.parse(source.sql.query)  # raises unless one reading SELECT
        assert set(parsed.names) <= set(SQL_PARAMETERS)
    if source.inline is not None:
        options = runner.Options(force_text="fuzz", now=lambda: FIRE)
        rendered = runner.render(report, FIRE, options, deadline=float("inf"))
        message = build_message(
            sender="r@example.com", to=["a@example.com"], cc=[], subject=rendered.subject,
            text="t", html="<p>h</p>", attachments=[], msg_id="<i@example.com>", date=FIRE,
        )  # fmt: skip
        assert b"\r\nSubject: " in encode(message)


tags = st.sampled_from(
    ["!!float abc", "!!int abc", "!!timestamp abc", "!!bool maybe", "!!binary ***",
     "!!python/name:os.system", "!!set {a: 1}", "!!omap [a]", "&a [*a]", "!!str 1", "7d", "x"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(value=tags, where=st.sampled_from(["title", "timeZone", "schedule", "window"]))
def test_yaml_tags_never_escape_as_a_traceback(value: str, where: str) -> None:
    field = {
        "title": f"  title: {value}\n",
        "timeZone": f"  timeZone: {value}\n",
        "schedule": f"  schedule: {value}\n",
        "window": f"  filters: {{window: {{from: {value}, to: 2025-01-01}}}}\n",
    }[where]
    text = "apiVersion: tidings.dev/v1alpha1\nkind: ScheduledReport\nmetadata: {name: r}\nspec:\n"
    try:
        documents = load_documents(text + field)
    except yaml.YAMLError:
        return
    spec = documents[0]["spec"]
    validate_spec(spec)  # never raises
    with contextlib.suppress(InputError):  # the one error parse_report may raise
        runner.parse_report(documents[0])
