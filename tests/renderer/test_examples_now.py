"""hack/examples-now moves the examples' rows into the window of now: every report keeps the
rows it shows at its documented --at, whenever it is rendered (a run-now in a cluster
mailed "No data in this window")."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import yaml
from tests.support.examples import EXAMPLE_AT, EXAMPLES

from tidings import models
from tidings.renderer import run as runner
from tidings.schedule import parse_rfc3339

SCRIPT = EXAMPLES.parent / "hack" / "examples-now"


def rows_at(report: dict, at: datetime) -> int:
    sr = models.ScheduledReport.model_validate(report)
    options = runner.Options(retries=0)
    return runner.render(sr, at, options, time.monotonic() + 120).report.total_rows


@pytest.mark.parametrize("now", ["2026-12-01T11:47:00Z", "2027-03-29T08:59:00+02:00"])
def test_examples_now_has_the_same_rows_in_the_window_of_now(now: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(EXAMPLES), "--at", now],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    moved = [d for d in yaml.safe_load_all(done.stdout) if d.get("kind") == models.KIND]
    assert len(moved) == len(list(EXAMPLES.glob("*.yaml")))
    for report in moved:
        name = report["metadata"]["name"]
        path = next(p for p in EXAMPLES.glob("*.yaml") if f"name: {name}\n" in p.read_text("utf-8"))
        original = yaml.safe_load(path.read_text("utf-8"))
        text = path.read_text("utf-8")
        at = parse_rfc3339(text.split("--at ", 1)[1].split()[0] if "--at " in text else EXAMPLE_AT)
        expected = rows_at(original, at)
        assert expected > 0, name
        assert rows_at(report, parse_rfc3339(now)) == expected, name


def test_examples_now_default_is_now() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(EXAMPLES / "changes_summary.yaml")],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    (report,) = yaml.safe_load_all(done.stdout)
    original = yaml.safe_load((EXAMPLES / "changes_summary.yaml").read_text("utf-8"))
    assert rows_at(report, datetime.now(UTC)) == rows_at(original, parse_rfc3339(EXAMPLE_AT))


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_as_it_is_renders_today_too(path) -> None:
    """Without hack/examples-now the window of now is empty: "No data", never a crash (the
    custom_query rollup raised IndexError on an empty window)."""
    report = yaml.safe_load(path.read_text("utf-8"))
    assert rows_at(report, parse_rfc3339("2026-12-01T11:47:00Z")) >= 0
