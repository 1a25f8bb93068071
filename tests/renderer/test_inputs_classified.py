"""Inputs a user can get wrong end as documented: a clear message and exit 65, never a
traceback or exit 1; and the subject comes out as docs/api.md says."""

from __future__ import annotations

import email
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest
from tests.support.examples import EXAMPLE_AT, load_example
from tests.support.renderer_cli import run_pod, send
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import SmtpServer

from tidings.renderer.result import EX_DATAERR, EX_OK


def test_subject_braces_and_a_date_inside_the_title_come_out_as_documented(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = small_report(
        title="Costs {date} {name} {{x}}",
        delivery={"subjectTemplate": "{{Weekly}} {name} — {date} }}"},
    )
    code, result = send(tmp_path, capsys, smtp, report)
    assert code == EX_OK, result["error"]
    message = email.message_from_bytes(smtp.recorder.messages[0].content, policy=policy.default)
    # `{{`/`}}` are literal braces; the title is inserted as written, never read again.
    assert message["Subject"] == "{Weekly} Costs {date} {name} {{x}} — 2024-05-13 }"


TAGGED = ["!!float abc", "!!int abc", "!!timestamp abc", "!!bool maybe"]


@pytest.mark.parametrize("value", TAGGED)
def test_yaml_tags_that_cannot_be_built_are_a_clear_error_in_every_command(
    value: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text(
        "apiVersion: tidings.dev/v1alpha1\nkind: ScheduledReport\n"
        f"metadata: {{name: r}}\nspec:\n  title: {value}\n"
    )
    tidings = [sys.executable, "-m", "tidings"]
    commands = {
        "validate": [*tidings, "validate", str(path)],
        "render": [*tidings, "render", str(path), "-o", str(tmp_path / "o.pdf")],
        "send": [*tidings, "send", str(path), "--smtp-host", "127.0.0.1",
                 "--smtp-port", str(smtp.port), "--smtp-from", "r@example.com"],
    }  # fmt: skip
    for name, argv in commands.items():
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr + done.stdout, name
        assert "a tagged value cannot be read" in done.stderr + done.stdout, name
        assert done.returncode == EX_DATAERR, name  # validate's too: docs/renderer.md
    pod, result = run_pod(tmp_path, {}, smtp.env(TIDINGS_REPORT_FILE=str(path)))
    assert pod.returncode == EX_DATAERR and "Traceback" not in pod.stderr
    assert result is not None and "a tagged value cannot be read" in result["error"]
    assert smtp.recorder.messages == []


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 'x' * 100000000 }}", "a value over 1,000,000 characters"),
        ("{% for i in range(99999) %}{{ 'y' * 999 }}{% endfor %}", "more than 5,000,000"),
        ("{{ 10 ** 100000000 }}", "an exponent above 64"),
    ],
)
def test_custom_templates_are_bounded_in_output(
    template: str, message: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    directory = tmp_path / "template"
    directory.mkdir()
    (directory / "template.html.j2").write_text(template)
    report = load_example("risk_report")
    report["spec"]["templateRef"] = {"name": "t", "key": "template.html.j2"}
    env = smtp.env(TIDINGS_TEMPLATE_DIR=str(directory), TIDINGS_SCHEDULED_TIME=EXAMPLE_AT)
    done, result = run_pod(tmp_path, report, env)
    assert done.returncode == EX_DATAERR, done.stderr
    assert result is not None and message in result["error"]
    assert smtp.recorder.messages == []


def test_a_runaway_template_stops_at_the_deadline(
    smtp: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "t.html.j2"
    template.write_text(
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    )
    report = small_report(templateRef={"name": "t", "key": "template.html.j2"})
    code, result = send(
        tmp_path, capsys, smtp, report, "--template", str(template), "--timeout", "3"
    )
    assert code == 75
    assert result["error"].startswith("the run reached its deadline while rendering the template")
