"""docs/channels.md: its copy-paste examples are valid reports, as admission sees them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tidings import models
from tidings.validation import validate_spec

PAGE = Path(__file__).resolve().parents[2] / "docs" / "channels.md"


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)


def test_every_full_report_on_the_page_is_admitted() -> None:
    reports = [
        doc
        for block in yaml_blocks()
        for doc in yaml.safe_load_all(block)
        if isinstance(doc, dict) and doc.get("kind") == models.KIND
    ]
    assert reports, "the page shows a whole ScheduledReport per channel"
    for report in reports:
        assert validate_spec(report["spec"]).ok, validate_spec(report["spec"]).summary()


def test_every_spec_fragment_on_the_page_is_valid_delivery() -> None:
    fragments = [
        doc for block in yaml_blocks() for doc in yaml.safe_load_all(block) if "kind" not in doc
    ]
    assert len(fragments) >= 2
    for fragment in fragments:
        spec = {
            "title": "Docs example",
            "reportType": fragment["spec"].get("reportType", "changes_summary"),
            "source": {"inline": {"rows": []}},
            "recipients": {"to": ["lead@example.com"]},
            "delivery": fragment["spec"]["delivery"],
        }
        assert validate_spec(spec).ok, validate_spec(spec).summary()
