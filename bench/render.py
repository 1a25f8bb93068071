"""Renderer throughput: a changes_summary report over generated rows, against the naive way (one
HTML table of every row through WeasyPrint with default settings) measured in the same run.

    python3 -m bench.render [--sizes 1000,10000,100000] [--baseline-rows 5000] [--no-append]

Each measurement is a fresh child process, so its peak RSS is its own. The rows are served as
JSON from a loopback HTTP server in this process (the report's `http` source; inline rows stop
at 5,000) and the email goes to a real aiosmtpd server on loopback, also in this process.

- "PDF": the child times loading the rows, filtering, the figures, the HTML and the PDF, with
  every row in the PDF table (max_pdf_rows = rows); the baseline child times loading the same
  rows and rendering its table. Interpreter start and imports are left out of both.
- "delivery": `tidings send` as the CronJob runs it (the first 500 rows in the PDF, every row
  in the gzip CSV attachment, or with `attachments: [pdf, xlsx]` in the spreadsheet), timed from
  process start to exit.
- "data file": one child writes every row as gzip CSV, as xlsx (XlsxWriter constant_memory, what
  the renderer uses) or as xlsx through openpyxl's write-only mode (the alternative), with the
  same typed cells; it reports the time, and then in a second pass under tracemalloc the peak
  of the Python memory the writing allocated (the rows are already loaded).
"""

from __future__ import annotations

import argparse
import gzip
import html
import http.server
import io
import json
import random
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, ClassVar

import yaml

from bench.common import ROOT, median, report, run_child, table

AT = "2024-05-13T09:00:00+02:00"  # the Monday 09:00 Berlin run after the week of 6-12 May 2024
WEEK_START = datetime(2024, 5, 5, 22, tzinfo=UTC)  # Monday 00:00 Berlin
COLUMNS = ["id", "title", "status", "completed_at", "team", "assignee", "tags"]

_VERBS = ["Roll out", "Rotate", "Upgrade", "Migrate", "Enable", "Tighten", "Raise", "Reindex"]
_THINGS = [
    "payouts-service",
    "the card-authorisation timeout",
    "PostgreSQL on ledger-db",
    "merchant webhooks to the queue",
    "egress NetworkPolicy for the payments namespace",
    "3-D Secure v2 for EU cards",
    "the settlement batch window",
    "TLS certificates for pay.example.com",
]
_TEAMS = ["payments", "platform", "risk", "web", "search", "data", "identity", "billing"]
_PEOPLE = ["alice", "bob", "chen", "dana", "emeka", "farah", "gita", "hugo", "ines", "jun"]
_EXTRA_TAGS = ["security", "release", "database", "api", "batch", "capacity", "compliance"]


def generate_rows(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Deterministic changes_summary rows, all inside the reported week and tagged `payments`,
    so every row passes the example's filters."""
    rng = random.Random(seed)
    week = 7 * 24 * 3600
    rows = []
    for index in range(count):
        status = rng.choices(["completed", "failed", "rolled_back"], weights=[85, 8, 7])[0]
        moment = WEEK_START + timedelta(seconds=rng.randrange(week))
        rows.append(
            {
                "id": f"CHG-{100000 + index}",
                "title": f"{rng.choice(_VERBS)} {rng.choice(_THINGS)} #{rng.randrange(1, 40)}",
                "status": status,
                "completed_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "team": rng.choice(_TEAMS),
                "assignee": rng.choice(_PEOPLE),
                "tags": ["payments", rng.choice(_EXTRA_TAGS)],
            }
        )
    return rows


def report_object(url: str) -> dict[str, Any]:
    """examples/changes_summary.yaml with its rows served over HTTP."""
    sr = yaml.safe_load((ROOT / "examples/changes_summary.yaml").read_text(encoding="utf-8"))
    sr["metadata"]["uid"] = "bench-uid"
    sr["spec"]["source"] = {"http": {"url": url, "rowsPath": "rows"}}
    sr["spec"]["failurePolicy"] = {"retries": 0, "timeoutSeconds": 600}
    return sr


# ---------------------------------------------------------------------------------- the peers


class _Rows(http.server.BaseHTTPRequestHandler):
    documents: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.documents.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: Any) -> None:
        pass


def serve_rows(sizes: list[int]) -> tuple[http.server.ThreadingHTTPServer, str]:
    """One JSON document per size at /rows/<n>."""
    _Rows.documents = {f"/rows/{n}": json.dumps({"rows": generate_rows(n)}).encode() for n in sizes}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Rows)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class _Inbox:
    """aiosmtpd handler keeping the last message."""

    def __init__(self) -> None:
        self.last: bytes = b""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.last = envelope.content
        return "250 OK"


def data_rows_in(message: bytes) -> int:
    """Data rows in the message's gzip CSV or xlsx attachment (a check that every row arrived)."""
    for part in message_from_bytes(message, policy=policy.default).iter_attachments():
        if part.get_filename("").endswith(".csv.gz"):
            content = gzip.decompress(part.get_content())
            return content.decode().count("\n") - 1
        if part.get_filename("").endswith(".xlsx"):
            with zipfile.ZipFile(io.BytesIO(part.get_content())) as book:
                return book.read("xl/worksheets/sheet1.xml").count(b"<row ") - 1
    raise AssertionError("no CSV or xlsx attachment in the delivered message")


# ----------------------------------------------------------------------------- child processes


def child_tidings_pdf(url: str, rows: int) -> dict[str, Any]:
    """The Tidings pipeline with every row in the PDF table."""
    from tidings.renderer import run as runner
    from tidings.schedule import parse_rfc3339

    sr = runner.parse_report(report_object(url))
    options = runner.Options(max_pdf_rows=rows, retries=0)
    start = time.perf_counter()
    rendered = runner.render(sr, parse_rfc3339(AT), options, time.monotonic() + 600)
    seconds = time.perf_counter() - start
    if rendered.renderer != "pdf" or rendered.report.shown_rows != rows:
        raise AssertionError(f"rendered {rendered.renderer}, {rendered.report.shown_rows} rows")
    return {"seconds": seconds, "bytes": len(rendered.document.content)}


def child_naive_pdf(url: str, rows: int) -> dict[str, Any]:
    """The naive way: fetch the rows, one HTML table of all of them, WeasyPrint defaults."""
    import httpx
    import weasyprint

    start = time.perf_counter()
    data = httpx.get(url, timeout=60).json()["rows"]
    out = io.StringIO()
    out.write("<html><body><h1>Changes</h1><table><tr>")
    out.write("".join(f"<th>{c}</th>" for c in COLUMNS) + "</tr>")
    for row in data:
        cells = (html.escape(", ".join(v) if isinstance(v, list) else str(v)) for v in row.values())
        out.write("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.write("</table></body></html>")
    pdf = weasyprint.HTML(string=out.getvalue()).write_pdf()
    seconds = time.perf_counter() - start
    if len(data) != rows:
        raise AssertionError(f"{len(data)} rows served, {rows} expected")
    return {"seconds": seconds, "bytes": len(pdf)}


def child_data_file(kind: str, rows: int) -> dict[str, Any]:
    """Every row as gzip CSV, or xlsx by XlsxWriter or by openpyxl, with the same cell values."""
    import tracemalloc
    from zoneinfo import ZoneInfo

    from tidings.renderer import datafiles, reports

    data = generate_rows(rows)
    tz = ZoneInfo("Europe/Berlin")
    types = {c.key: c.type for c in reports.KINDS["changes_summary"].schema}

    def write() -> bytes:
        if kind == "csv":
            return datafiles.csv_attachment(data, "rows.csv.gz", tz, COLUMNS).content
        if kind == "xlsx":
            return datafiles.xlsx_attachment(data, "rows.xlsx", tz, COLUMNS, types).content
        return _openpyxl_write_only(data, tz, types)

    start = time.perf_counter()
    content = write()
    seconds = time.perf_counter() - start
    del content
    tracemalloc.start()
    content = write()
    added = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"seconds": seconds, "bytes": len(content), "added_mib": added}


def _openpyxl_write_only(data: list[dict[str, Any]], tz: Any, types: dict[str, str]) -> bytes:
    """The alternative to XlsxWriter: openpyxl's streaming (write-only) workbook."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    from tidings.renderer.datafiles import sheet_value

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Rows")
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for column in COLUMNS:
        cell = WriteOnlyCell(sheet, value=column)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in data:
        sheet.append([sheet_value(row.get(c), types.get(c), tz) for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


CHILDREN = {
    "tidings-pdf": child_tidings_pdf,
    "naive-pdf": child_naive_pdf,
    "data-csv": lambda _url, rows: child_data_file("csv", rows),
    "data-xlsx": lambda _url, rows: child_data_file("xlsx", rows),
    "data-openpyxl": lambda _url, rows: child_data_file("openpyxl", rows),
}


def measure_pdf(kind: str, base: str, rows: int) -> tuple[float, float, int]:
    """(rows/s, peak MiB, PDF bytes) of one fresh child."""
    child = run_child([sys.executable, "-m", "bench.render", "--child", kind, base, str(rows)])
    result = child.json()
    return rows / result["seconds"], child.peak_mib, result["bytes"]


def measure_delivery(
    base: str, rows: int, smtp_port: int, inbox: _Inbox, work: Path, data: str = "csv"
) -> tuple:
    """(seconds, peak MiB, message bytes) of `tidings send` from process start to exit, with
    the PDF and `data` (csv or xlsx) attached."""
    path = work / f"report-{rows}.yaml"
    sr = report_object(f"{base}/rows/{rows}")
    sr["spec"]["delivery"] = {"attachments": ["pdf", data]}
    path.write_text(yaml.safe_dump(sr))
    inbox.last = b""
    child = run_child(
        [
            sys.executable,
            "-m",
            "tidings",
            "send",
            str(path),
            "--at",
            AT,
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(smtp_port),
            "--smtp-from",
            "reports@example.com",
            "--max-bytes",
            str(50 * 1024 * 1024),
        ],
        env={"TIDINGS_MAX_PDF_ROWS": "500"},
    )
    if json.loads(child.stdout.strip().splitlines()[-1])["outcome"] != "Delivered":
        raise AssertionError(child.stdout)
    if data_rows_in(inbox.last) != rows:
        raise AssertionError(f"the {data} attachment does not hold all {rows} rows")
    return child.seconds, child.peak_mib, len(inbox.last)


# ------------------------------------------------------------------------------------- driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--baseline-rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument(
        "--max-table-rows",
        type=int,
        default=10000,
        help="largest full-table PDF to render (WeasyPrint keeps every page in memory)",
    )
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url, rows = args.child
        print(json.dumps(CHILDREN[kind](url, int(rows))))
        return 0

    from aiosmtpd.controller import Controller

    from tidings_dev.procs import free_port

    sizes = [int(n) for n in args.sizes.split(",")]
    server, base = serve_rows(sorted({*sizes, args.baseline_rows}))
    inbox = _Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port, data_size_limit=0)
    smtp.start()

    def pdf(kind: str, rows: int) -> tuple[float, float, int]:
        runs = [measure_pdf(kind, f"{base}/rows/{rows}", rows) for _ in range(args.repeat)]
        return median([r[0] for r in runs]), median([r[1] for r in runs]), runs[0][2]

    n = args.baseline_rows
    naive_rate, naive_mib, _ = pdf("naive-pdf", n)
    lines = [
        ("naive: one HTML table, WeasyPrint defaults", n, f"{naive_rate:,.0f}", "1.0x",
         f"{naive_mib:,.0f}", "1.00")
    ]  # fmt: skip
    for rows in sorted({n, *sizes}):
        if rows > args.max_table_rows:
            lines.append(("Tidings PDF, every row in the table", rows, "not run", "", "", ""))
            continue
        rate, mib, _ = pdf("tidings-pdf", rows)
        lines.append(
            ("Tidings PDF, every row in the table", rows, f"{rate:,.0f}",
             f"{rate / naive_rate:.1f}x", f"{mib:,.0f}", f"{mib / naive_mib:.2f}")
        )  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        for rows in sizes:
            for data, label in (("csv", "gzip CSV"), ("xlsx", "xlsx")):
                runs = [
                    measure_delivery(base, rows, smtp_port, inbox, Path(work), data)
                    for _ in range(args.repeat)
                ]
                seconds, mib = median([r[0] for r in runs]), median([r[1] for r in runs])
                lines.append(
                    (f"delivery: `tidings send`, 500-row PDF + {label} "
                     f"({runs[0][2] / 2**20:.1f} MiB email), {seconds:.1f} s",
                     rows, f"{rows / seconds:,.0f}", f"{rows / seconds / naive_rate:.1f}x",
                     f"{mib:,.0f}", f"{mib / naive_mib:.2f}")
                )  # fmt: skip
    files = []
    for rows in sizes:
        measured = {}
        for kind in ("csv", "xlsx", "openpyxl"):
            runs = [
                run_child([sys.executable, "-m", "bench.render", "--child", f"data-{kind}", "-",
                           str(rows)]).json()
                for _ in range(args.repeat)
            ]  # fmt: skip
            measured[kind] = (
                median([r["seconds"] for r in runs]),
                median([r["added_mib"] for r in runs]),
                runs[0]["bytes"],
            )
        csv_seconds = measured["csv"][0]
        for kind, label in (
            ("csv", "gzip CSV (level 6)"),
            ("xlsx", "xlsx, XlsxWriter constant_memory (used)"),
            ("openpyxl", "xlsx, openpyxl write-only (alternative)"),
        ):
            seconds, added, size = measured[kind]
            files.append(
                (label, rows, f"{seconds:.2f}", f"{seconds / csv_seconds:.1f}x",
                 f"{added:,.1f}", f"{size / 2**20:.1f}")
            )  # fmt: skip
    smtp.stop()
    server.shutdown()
    body = table(
        ["measurement", "rows", "rows/s", "x naive rows/s", "peak RSS MiB", "x naive RSS"], lines
    )
    body += (
        "\n\nData files alone (rows already loaded; memory: the peak Python allocation while "
        "writing, tracemalloc):\n\n"
    )
    body += table(
        ["data file", "rows", "seconds", "x CSV time", "peak allocated MiB", "size MiB"], files
    )
    report("Renderer throughput", body, append=not args.no_append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
