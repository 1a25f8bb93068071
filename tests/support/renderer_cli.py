"""The renderer as the tests drive it: `tidings send` and `tidings render` in-process, `tidings
run` as the CronJob pod runs it (a subprocess with the pod's environment and files), and what
it produced read back (PDF text, a received mail)."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.examples import EXAMPLE_AT
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import SmtpServer

from tidings.cli import main

# Makes `import weasyprint` raise ImportError in the child, as on a machine without it.
NO_WEASYPRINT = (
    "import sys; sys.modules['weasyprint'] = None; "
    "from tidings.cli import main; raise SystemExit(main())"
)


def write_report(tmp_path: Path, report: dict[str, Any], name: str = "report.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(report, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def python_path() -> dict[str, str]:
    """PYTHONPATH for a child process, when set: a checkout's own sources, not an installed copy."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def pdf_text(data: bytes, tmp_path: Path, name: str = "out") -> str:
    """The PDF's text as pdftotext extracts it (layout kept, pages separated by form feeds)."""
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    )
    return done.stdout


def parse(content: bytes) -> EmailMessage:
    return email.message_from_bytes(content, policy=policy.default)  # type: ignore[return-value]


def send(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    server: SmtpServer | None,
    report: dict[str, Any] | None = None,
    *flags: str,
    port: int | None = None,
) -> tuple[int, dict[str, Any]]:
    """`tidings send` with SMTP flags; returns the exit code and the printed JSON result."""
    path = write_report(tmp_path, report or small_report())
    target = ["--smtp-host", "127.0.0.1", "--smtp-port", str(port or (server and server.port))]
    code = main(
        [
            "send",
            str(path),
            "--at",
            EXAMPLE_AT,
            *target,
            "--smtp-from",
            "Tidings <reports@example.com>",
            "--smtp-timeout",
            "3",
            *flags,
        ]
    )
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def render(
    tmp_path: Path, report: dict[str, Any], secret_dir: Path, *flags: str
) -> tuple[int, Path]:
    """`tidings render` to out.pdf with the source's secret in `secret_dir`; (code, the PDF)."""
    out = tmp_path / "out.pdf"
    path = write_report(tmp_path, report)
    code = main(
        ["render", str(path), "-o", str(out), "--at", EXAMPLE_AT, "--secret-dir", str(secret_dir),
         *flags]
    )  # fmt: skip
    return code, out


def run_pod(
    tmp_path: Path,
    report: dict[str, Any],
    env: dict[str, str],
    *,
    without_weasyprint: bool = False,
    argv: tuple[str, ...] = ("run",),
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Run the renderer like the pod: report file, result file, HOME in a writable dir."""
    report_file = write_report(tmp_path, report)
    result_file = tmp_path / "termination-log"
    base_env = {
        "PATH": "/usr/bin:/bin",
        # The child imports the same tidings as this test (a worktree's, not an installed one).
        "PYTHONPATH": os.pathsep.join(sys.path),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / ".cache"),
        "TIDINGS_REPORT_FILE": str(report_file),
        "TIDINGS_RESULT_PATH": str(result_file),
        "TIDINGS_SOURCE_SECRET_DIR": str(tmp_path / "no-source-secret"),
        "TIDINGS_SMTP_SECRET_DIR": str(tmp_path / "no-smtp-secret"),
        **python_path(),
    }
    code = (
        NO_WEASYPRINT
        if without_weasyprint
        else "from tidings.cli import main; raise SystemExit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env={**base_env, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    return done, result
