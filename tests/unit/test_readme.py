"""README.md stays true: its tables name exactly what the code has, its links and make targets
exist. (The full references, docs/api.md and docs/renderer.md, have their own tests.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tidings import models
from tidings.renderer import reports

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def table_rows(heading: str) -> list[list[str]]:
    """The cells of the first table under `heading` (header and rule rows dropped)."""
    section = README.split(heading, 1)[1]
    lines = re.search(r"(?m)((?:^\|.*\n)+)", section).group(1).splitlines()
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


def test_fields_table_lists_every_spec_field() -> None:
    documented = {row[0].strip("`") for row in table_rows("### The fields")}
    aliases = {f.alias or name for name, f in models.ScheduledReportSpec.model_fields.items()}
    assert documented == aliases


def test_report_types_table_matches_the_renderer() -> None:
    rows = {row[0].strip("`"): row for row in table_rows("### Report types and their rows")}
    assert set(rows) == set(reports.KINDS) == {t.value for t in models.ReportType}
    for name, kind in reports.KINDS.items():
        required = set(re.findall(r"`([a-z_]+)`", rows[name][2]))
        assert required == set(kind.required), name


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\bmake ([a-z][-a-z]*)", README))))
def test_make_targets_exist(target: str) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(rf"(?m)^{re.escape(target)}:", makefile), f"make {target} is in README only"


@pytest.mark.parametrize(
    "link", sorted({m.split("#")[0] for m in re.findall(r"\]\(([^)#:]+[^)]*)\)", README)})
)
def test_relative_links_resolve(link: str) -> None:
    assert (ROOT / link).exists(), link


def _sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.DOTALL)


def test_readme_and_helm_docs_install_upgrade_and_uninstall_alike() -> None:
    """One install namespace, and the same upgrade and uninstall commands, in both places."""
    from tidings.controller.webhook_tls_store import MANAGED_LABELS

    helm_doc = (ROOT / "docs" / "helm.md").read_text(encoding="utf-8")
    for text in (README, helm_doc):
        namespaces = set(
            re.findall(r"helm (?:install|upgrade|uninstall) tidings \S*\s*-n (\S+)", text)
        )
        assert namespaces == {"tidings"}
        assert "tidings-system" not in text
    commands = {
        b for b in _sh_blocks(helm_doc) if b.startswith(("kubectl apply", "helm uninstall"))
    }
    assert len(commands) == 2
    for block in commands:  # the upgrade and the uninstall, word for word
        assert f"```sh\n{block}```" in README
    # The uninstall finds the operator-made TLS Secret by its labels, whatever the release name.
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_LABELS.items())
    assert f"delete secret -l {selector}" in helm_doc


def test_schedule_presets_are_valid_and_fire_when_their_comment_says() -> None:
    import yaml

    from tidings.schedule import compute_window, next_fire_time
    from tidings.validation import schedule_problems

    section = README.split("### Schedule presets", 1)[1].split("\n### ", 1)[0]
    presets = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    assert len(presets) == 3
    after = datetime(2025, 2, 15, 12, tzinfo=UTC)
    fires = {}
    for preset in presets:
        assert schedule_problems(preset["schedule"]) == []
        fire = next_fire_time(preset["schedule"], preset["timeZone"], after)
        local = fire.astimezone(ZoneInfo(preset["timeZone"]))
        window = models.Window.model_validate(preset["filters"]["window"])
        start, end = compute_window(window, fire, preset["timeZone"])
        fires[preset["filters"]["window"]["previous"]] = (local, start, end)
    weekly, monthly, quarterly = fires["week"], fires["month"], fires["quarter"]
    assert (weekly[0].weekday(), weekly[0].hour, weekly[0].day) == (0, 9, 17)
    assert (monthly[0].month, monthly[0].day, monthly[0].hour) == (3, 1, 9)
    assert (quarterly[0].month, quarterly[0].day, quarterly[0].hour) == (4, 1, 9)
    assert (quarterly[1].month, quarterly[2].month) == (1, 4)
