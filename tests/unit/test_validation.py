"""validate_spec against the shared case table and the rules' edges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.admission_cases import BASE, INVALID, VALID, changed, example_specs

from tidings.validation import (
    Problem,
    address_problem,
    schedule_problems,
    subject_problems,
    time_zone_problem,
    validate_spec,
)


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_case_is_rejected_naming_field_and_rule(case):
    result = validate_spec(case.spec)
    assert not result.ok
    matching = [p for p in result.errors if p.path.startswith(case.path)]
    assert matching, f"no problem at {case.path}: {result.summary()}"
    assert any(case.rule in p.message for p in matching), result.summary()


@pytest.mark.parametrize("case", VALID + example_specs(), ids=lambda c: c.id)
def test_valid_case_is_accepted(case):
    result = validate_spec(case.spec)
    assert result.ok, result.summary()
    if case.warning:
        assert any(case.warning in w for w in result.warnings), result.warnings
    else:
        assert result.warnings == []


def test_case_table_covers_at_least_forty_distinct_rules():
    assert len({c.id for c in INVALID}) == len(INVALID) >= 40
    assert len({(c.path, c.rule) for c in INVALID}) >= 40
    assert len(VALID) >= 10


def test_every_problem_is_listed_not_just_the_first():
    spec = changed(
        {
            "schedule": "0 25 * * 1",
            "timeZone": "Mars/Olympus",
            "recipients.to": ["a@example.com", "Bob <bob@example.com>"],
            "failurePolicy.retries": 99,
        }
    )
    paths = [p.path for p in validate_spec(spec).errors]
    assert paths == [
        "spec.failurePolicy.retries",
        "spec.schedule",
        "spec.timeZone",
        "spec.recipients.to[1]",
    ]


def test_problem_string_is_path_colon_rule():
    assert str(Problem("spec.recipients.to[2]", "is bad")) == "spec.recipients.to[2]: is bad"
    result = validate_spec(changed({"timeZone": "Nowhere"}))
    assert result.summary().startswith("spec.timeZone: must be an IANA time zone name")


def test_a_field_with_the_wrong_type_gets_no_second_derived_complaint():
    result = validate_spec(changed({"recipients.to": "ciso@example.com"}))
    assert [str(p) for p in result.errors] == ["spec.recipients.to: must be a list"]


@pytest.mark.parametrize("spec", [None, [], "spec", 3, ["title"]])
def test_a_spec_that_is_not_an_object(spec):
    assert [str(p) for p in validate_spec(spec).errors] == ["spec: must be an object"]


def test_unquoted_yaml_dates_count_as_the_strings_kubectl_sends():
    import datetime as dt

    spec = changed({"filters.window": {"from": dt.date(2025, 1, 1), "to": dt.date(2025, 2, 1)}})
    assert validate_spec(spec).ok


def test_non_json_values_are_reported_not_raised():
    result = validate_spec(changed({"title": object()}))
    assert [p.path for p in result.errors] == ["spec"]
    assert "JSON" in result.errors[0].message


def test_strict_types_as_in_the_api():
    result = validate_spec(changed({"failurePolicy.retries": "3", "suspend": 1}))
    assert {str(p) for p in result.errors} == {
        "spec.failurePolicy.retries: must be an integer",
        "spec.suspend: must be true or false",
    }


# -- schedule


@pytest.mark.parametrize(
    "schedule",
    ["", "0 9 * * 1", " 0 9 * * 1 ", "0  9 * * 1", "*/5 * * * *", "0 0 1 */3 *", "5/15 * * * *",
     "0 9 * * sun", "0 9 * dec-dec SAT", "59 23 31 12 6", "0 0 1,15 * ?", "@hourly", "@daily",
     "@midnight", "@weekly", " @monthly ", "@yearly", "@annually"],
)  # fmt: skip
def test_schedules_both_croniter_and_cronjob_accept(schedule):
    assert schedule_problems(schedule) == []


@pytest.mark.parametrize(
    ("schedule", "rule"),
    [
        ("TZ=Europe/Berlin 0 9 * * 1", "TZ="),
        ("@every 1h", "macro '@every' is not supported"),
        ("@WEEKLY", "lower-case"),
        ("@fortnightly", "macro '@fortnightly' is not supported"),
        ("@daily 0 9 * * *", "macro '@daily' is not supported"),
        ("0\t9 * * 1", "separated by spaces"),
        ("0 9 * * 1 2025", "exactly five"),
        ("0 9 * * MON-", "day-of-week field"),
        ("0 9 * * ,", "day-of-week field"),
        ("0 9 * * 1/", "day-of-week field"),
        ("0 9 * * \uff15", "separated by spaces"),  # a full-width digit
        ("0 9 31 4,6,9,11 *", "never fires"),
    ],
)
def test_schedule_rules(schedule, rule):
    problems = schedule_problems(schedule)
    assert problems and rule in problems[0]


def test_every_broken_cron_field_is_named():
    problems = schedule_problems("61 25 0 13 8")
    assert [p.split(" field")[0] for p in problems] == [
        "minute",
        "hour",
        "day-of-month",
        "month",
        "day-of-week",
    ]


# -- time zone, addresses, subject


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"])
def test_real_zones(zone):
    assert time_zone_problem(zone) is None


@pytest.mark.parametrize("zone", ["utc ", "Europe/Berlin/", "../etc/passwd", "localtime", "x" * 64])
def test_not_zones(zone):
    assert "IANA" in time_zone_problem(zone)


@pytest.mark.parametrize(
    "address",
    ["ciso@example.com", "first.last+reports@sub.example.co.uk", "o'brien@example.ie",
     "ops@xn--mnchen-3ya.de", "a@b.io"],
)  # fmt: skip
def test_good_addresses(address):
    assert address_problem(address) is None


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("ciso@example.com\n", "header injection"),
        ("ciso@example.com\x00", "header injection"),
        ("ciso@example.com\u2028x", "header injection"),
        ("ciso@münchen.de", "ASCII"),
        ("Ciso <ciso@example.com>", "display name"),
        ("ciso@example.com (CISO)", "comments"),
        ("ciso@example.com;spy@evil.test", "lists"),
        ("ciso @example.com", "spaces"),
        ("ciso@example..com", "not a valid email address"),
        (".ciso@example.com", "not a valid email address"),
        ("ciso@-example.com", "not a valid email address"),
        ("x" * 65 + "@example.com", "not a valid email address"),
        ("ciso@example.invalid", "not a valid email address"),
    ],
)
def test_bad_addresses(address, rule):
    problem = address_problem(address)
    assert problem is not None and rule in problem


def test_duplicates_across_lists_name_both_entries():
    result = validate_spec(
        changed({"recipients": {"to": ["a@example.com"], "cc": ["A@EXAMPLE.COM"]}})
    )
    assert [str(p) for p in result.errors] == [
        "spec.recipients.cc[0]: duplicates spec.recipients.to[0]: an address may appear only "
        "once across to, cc and bcc (compared case-insensitively)"
    ]


def test_total_recipients_counted_across_lists():
    many = {k: [f"{k}{i}@example.com" for i in range(17)] for k in ("to", "cc", "bcc")}
    result = validate_spec(changed({"recipients": many}))
    assert [str(p) for p in result.errors] == [
        "spec.recipients: at most 50 recipients across to, cc and bcc, found 51"
    ]


@pytest.mark.parametrize(
    "template", ["{name} {date}", "{{literal}} {date}", "{date}", "Weekly — {date} — {name}"]
)
def test_good_subjects(template):
    assert subject_problems(template) == []


@pytest.mark.parametrize(
    ("template", "rule"),
    [
        ("{}", "unknown placeholder {}"),
        ("{0} {date}", "unknown placeholder {0}"),
        ("{name!r} {date}", "no format or conversion"),
        ("{date[0]}", "unknown placeholder"),
        ("}{date}", "literal braces"),
        ("{name}\t{date}", "header injection"),
    ],
)
def test_bad_subjects(template, rule):
    problems = subject_problems(template)
    assert problems and rule in problems[0]


def test_missing_date_placeholder_is_a_warning_not_an_error():
    result = validate_spec(changed({"delivery.subjectTemplate": "Weekly {name}"}))
    assert result.ok
    assert result.warnings == [
        "spec.delivery.subjectTemplate: has no {date} or {window} placeholder, so every run "
        "sends the same subject and mail clients may thread the reports together"
    ]


def test_default_subject_has_date_so_no_warning():
    spec = changed({"delivery": {}})
    assert validate_spec(spec).warnings == []


@pytest.mark.parametrize(
    ("query", "ok"),
    [
        ("select 1", True),
        ("/* weekly */ SELECT 1 ;  ", True),
        ("SELECT ';' AS x, \"a;b\" FROM t -- trailing; comment", True),
        ("WITH x AS (SELECT 1) SELECT * FROM x", True),
        ("UPDATE t SET a = 1", False),
        ("-- SELECT\nDROP TABLE t", False),
        ("SELECT 1;; SELECT 2", False),
        ("   ;  ", False),
    ],
)
def test_sql_query_rule(query, ok):
    result = validate_spec(changed({"source.sql.query": query}))
    assert result.ok is ok, result.summary()


# -- tidings validate FILE


def run_validate(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", "validate", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )


def write_report(path: Path, name: str, spec: dict, api_version: str = "tidings.dev/v1alpha1"):
    import yaml

    doc = {"apiVersion": api_version, "kind": "ScheduledReport", "metadata": {"name": name}}
    path.write_text(yaml.safe_dump({**doc, "spec": spec}, allow_unicode=True))


def test_validate_command_exit_codes_and_output(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    write_report(good, "payments-weekly", BASE)
    write_report(bad, "broken", changed({"schedule": "@every 1h", "timeZone": "Berlin"}))

    ok = run_validate(good)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == f"{good}: payments-weekly: valid\n"

    failed = run_validate(good, bad)
    assert failed.returncode == 65  # EX_DATAERR, as docs/renderer.md says
    lines = failed.stdout.splitlines()
    assert lines[0] == f"{good}: payments-weekly: valid"
    assert lines[1].startswith(f"{bad}: broken: spec.schedule: the macro '@every' is not")
    assert lines[2].startswith(f"{bad}: broken: spec.timeZone: must be an IANA time zone name")


def test_validate_command_multi_document_files_and_other_kinds(tmp_path):
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n---\n"
        "apiVersion: tidings.dev/v1beta9\nkind: ScheduledReport\nmetadata: {name: old}\n"
        "spec:\n  title: t\n  reportType: audit_log\n  source: {inline: {rows: []}}\n"
        "  recipients: {to: [a@example.com]}\n"
        "  filters: {window: {from: 2025-01-01, to: 2025-02-01}}\n"
        "  delivery: {subjectTemplate: '{name}'}\n"
    )
    result = run_validate(bundle)
    assert result.returncode == 65
    assert result.stdout.splitlines() == [
        f"{bundle}: old: apiVersion: must be tidings.dev/v1alpha1",
        f"{bundle}: old: warning: spec.delivery.subjectTemplate: has no {{date}} or {{window}} "
        "placeholder, so every run sends the same subject and mail clients may thread the "
        "reports together",
    ]


def test_validate_command_unreadable_inputs(tmp_path):
    empty, broken = tmp_path / "empty.yaml", tmp_path / "broken.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\n")
    broken.write_text("spec: [unclosed\n")
    result = run_validate(empty, broken, tmp_path / "missing.yaml")
    assert result.returncode == 65
    lines = result.stdout.splitlines()
    assert lines[0] == f"{empty}: no ScheduledReport found"
    assert lines[1].startswith(f"{broken}: cannot read:")
    assert lines[2].startswith(f"{tmp_path / 'missing.yaml'}: cannot read:")


# -- the admission handler, called as kopf calls it


def test_admission_handler_rejects_with_422_listing_every_problem():
    import kopf

    from tidings.controller.admission import validate_report

    body = {"spec": changed({"timeZone": "Nowhere", "schedule": "@every 1h"})}
    warnings: list[str] = []
    with pytest.raises(kopf.AdmissionError) as exc:
        validate_report(body=body, old=None, operation="CREATE", warnings=warnings)
    assert exc.value.code == 422
    assert str(exc.value) == (
        "ScheduledReport is invalid: spec.schedule: the macro '@every' is not supported: use one "
        "of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly (lower-case), or "
        "write the five fields, e.g. '0 9 * * 1' for Mondays at 09:00; "
        "spec.timeZone: must be an IANA time zone name, like Europe/Berlin or UTC"
    )


def test_admission_handler_passes_warnings_and_skips_unchanged_specs():
    from tidings.controller.admission import validate_report

    warnings: list[str] = []
    spec = changed({"delivery.subjectTemplate": "{name}"})
    validate_report(body={"spec": spec}, old=None, operation="CREATE", warnings=warnings)
    assert warnings and "no {date} or {window} placeholder" in warnings[0]

    broken = {"spec": changed({"timeZone": "Nowhere"}), "metadata": {"annotations": {"a": "1"}}}
    validate_report(body=broken, old={"spec": broken["spec"]}, operation="UPDATE", warnings=[])


def test_webhook_configuration_appends_the_handler_path():
    from tidings.controller.admission import WEBHOOK_ID, webhook_configuration

    by_url = webhook_configuration("x", {"url": "https://127.0.0.1:9443/", "caBundle": "Q0E="})
    hook = by_url["webhooks"][0]
    assert hook["clientConfig"] == {
        "url": f"https://127.0.0.1:9443/{WEBHOOK_ID}",
        "caBundle": "Q0E=",
    }
    assert "namespaceSelector" not in hook
    by_service = webhook_configuration(
        "x", {"service": {"name": "tidings", "namespace": "tidings-system"}}, namespace="team"
    )
    hook = by_service["webhooks"][0]
    assert hook["clientConfig"]["service"]["path"] == f"/{WEBHOOK_ID}"
    assert hook["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "team"}}
