"""README's no-cluster quickstart, run exactly as printed in a fresh copy of the checkout
(`make demo`, the SMTP sink, then the CLI block), with what README promises checked for each
command. The one change: README's port 1025 becomes a free port, so that another SMTP server
listening on 1025 (a local Mailpit, say) neither breaks the test nor receives its mail."""

from __future__ import annotations

import email
import re
import subprocess
from email import policy
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader
from tests.support.checkouts import ROOT, Demo, user_env

from tidings_dev.procs import free_port

pytestmark = pytest.mark.timeout(900)

README = (ROOT / "README.md").read_text(encoding="utf-8")


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.DOTALL)


def quickstart_block() -> str:
    (block,) = [b for b in sh_blocks() if b.startswith(". .venv/bin/activate")]
    return block


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


def sink_block() -> str:
    (block,) = [b for b in sh_blocks() if b.startswith(".venv/bin/python hack/smtp-sink.py")]
    return block


def on_port(block: str, port: int) -> str:
    assert block.count("--port 1025") + block.count("--smtp-port 1025") == 1, block
    return block.replace("port 1025", f"port {port}")


def test_make_demo_is_as_promised(demo_checkouts: tuple[Demo, Demo]) -> None:
    assert "```sh\nmake demo\n```" in README
    a, _ = demo_checkouts
    reader = PdfReader(a.path / "report.pdf")
    assert len(reader.pages) == 2  # "a two-page A4 PDF"
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    text = pdf_text((a.path / "report.pdf").read_bytes())
    assert "Payments completed changes" in text  # the week's figures and the detail table
    assert "6 May 2024" in text


def test_readme_cli_block_runs_as_printed(demo_checkouts: tuple[Demo, Demo]) -> None:
    a, _ = demo_checkouts
    port = free_port()  # README says 1025; see the module docstring
    # The sink as README starts it in a second terminal, with make demo's .venv.
    sink = subprocess.Popen(
        ["bash", "-c", "exec " + on_port(sink_block(), port).split("#")[0]],
        cwd=a.path,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sink.stdout is not None
        ready = sink.stdout.readline()
        assert f"listening on 127.0.0.1:{port}" in ready, ready + sink.stdout.read()
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", on_port(quickstart_block(), port)],
            cwd=a.path,
            env=user_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        sink.terminate()
        sink.wait(timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()

    # render: writes dora.pdf with the DORA figures of the week, and says so.
    assert "wrote dora.pdf" in done.stderr
    dora = pdf_text((a.path / "dora.pdf").read_bytes())
    assert "DORA" in dora

    # validate: every example is valid.
    examples = sorted(Path(a.path, "examples").glob("*.yaml"))
    valid = [line for line in out if line.endswith(": valid")]
    assert len(valid) == len(examples) == 10

    # send: one JSON result line, Delivered, and nothing on stderr besides render's line.
    (result,) = [line for line in out if line.startswith("{")]
    assert '"outcome":"Delivered"' in result
    assert '"windowStart":"2024-05-05T22:00:00Z"' in result  # the week of 6-12 May, Berlin
    assert [line for line in done.stderr.splitlines() if "dora.pdf" not in line] == []
    (saved,) = sorted((a.path / "mail").glob("*.eml"))  # saved by the sink before its 250
    message = email.message_from_bytes(saved.read_bytes(), policy=policy.default)
    assert "Payments completed changes" in message["Subject"]
    (attachment,) = [p for p in message.iter_attachments() if p.get_filename().endswith(".pdf")]
    sent = pdf_text(attachment.get_content())
    assert "6 May 2024" in sent
    assert "No data in this window" not in sent  # with --at the window holds the data

    # kubectl-tidings schedule: the next five Mondays 09:00 Berlin time.
    header = out.index("Next 5 runs of '0 9 * * 1' in Europe/Berlin:")
    runs = out[header + 1 : header + 6]
    assert all(re.match(r"  Mon \d{4}-\d\d-\d\d 09:00 CES?T  \(in ", line) for line in runs), runs
