"""custom_query: the roll-up against hand-computed values, the chart of a chosen column over
time, header labels, and one number of decimals per column."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tidings import models
from tidings.renderer import reports
from tidings.renderer.result import InputError, MissingColumn

BERLIN = ZoneInfo("Europe/Berlin")
CTX = reports.Context(
    tz=BERLIN, start=datetime(2024, 5, 6, tzinfo=BERLIN), end=datetime(2024, 5, 13, tzinfo=BERLIN)
)
ROWS = [
    {"time": "2024-05-06T10:00:00+02:00", "team": "payments", "ns": "a", "cost": 10.5, "n": 3},
    {"time": "2024-05-06T11:00:00+02:00", "team": "payments", "ns": "b", "cost": 4.25, "n": None},
    {"time": "2024-05-07T10:00:00+02:00", "team": "search", "ns": "c", "cost": 7, "n": 1},
    {"time": "2024-05-08T10:00:00+02:00", "team": "payments", "ns": "a", "cost": 0.75, "n": 2},
    {"time": "2024-05-08T12:00:00+02:00", "team": "search", "ns": "c", "cost": 12, "n": 5},
]


def spec(custom_query: dict[str, Any]) -> models.ScheduledReportSpec:
    return models.ScheduledReportSpec.model_validate(
        {
            "title": "Costs",
            "reportType": "custom_query",
            "source": {"inline": {"rows": []}},
            "recipients": {"to": ["finops@example.com"]},
            "customQuery": custom_query,
        }
    )


def build(custom_query: dict[str, Any], rows: list[dict[str, Any]] = ROWS) -> reports.Report:
    return reports.build_report(
        report_type="custom_query",
        title="Costs",
        name="costs",
        namespace="finops",
        rows=rows,
        ctx=CTX,
        generated_at=datetime(2024, 5, 13, 7, tzinfo=UTC),
        max_table_rows=100,
        spec=spec(custom_query),
    )


ALL_FUNCTIONS = {
    "rollup": {
        "groupBy": ["team"],
        "aggregates": [
            {"function": "sum", "column": "cost"},
            {"function": "avg", "column": "cost"},
            {"function": "min", "column": "cost"},
            {"function": "max", "column": "cost"},
            {"function": "count"},
            {"function": "count", "column": "n"},
            {"function": "avg", "column": "n"},
        ],
    }
}


def test_rollup_matches_hand_computed_values() -> None:
    report = build(ALL_FUNCTIONS)
    by_team = {row["team"]: row for row in report.rows}
    # payments: 10.5 + 4.25 + 0.75 = 15.5 over 3 rows; n has 2 values (3, 2), one empty.
    assert by_team["payments"] == {
        "team": "payments",
        "sum(cost)": 15.5,
        "avg(cost)": pytest.approx(15.5 / 3),
        "min(cost)": 0.75,
        "max(cost)": 10.5,
        "count": 3,
        "count(n)": 2,
        "avg(n)": 2.5,
    }
    # search: 7 + 12 = 19 over 2 rows.
    assert by_team["search"] == {
        "team": "search",
        "sum(cost)": 19,
        "avg(cost)": 9.5,
        "min(cost)": 7,
        "max(cost)": 12,
        "count": 2,
        "count(n)": 2,
        "avg(n)": 3,
    }
    # Largest first by the first aggregate; totals of the additive aggregates as figures.
    assert [row["team"] for row in report.rows] == ["search", "payments"]
    figures = {f.label: f.value for f in report.figures}
    assert figures == {"sum(cost)": "34.5", "count": "5", "count(n)": "4"}  # as its column


def test_rollup_by_two_columns_and_its_table() -> None:
    report = build({"rollup": {"groupBy": ["team", "ns"], "aggregates": [{"function": "count"}]}})
    counts = {(r["team"], r["ns"]): r["count"] for r in report.rows}
    assert counts == {("payments", "a"): 2, ("payments", "b"): 1, ("search", "c"): 2}
    assert [c.label for c in report.columns] == ["team", "ns", "count"]  # as written
    assert report.csv_columns == ["team", "ns", "count"]


def test_header_labels_come_from_the_column_map_and_decimals_are_per_column() -> None:
    report = build(
        {
            "rollup": {"groupBy": ["team"], "aggregates": [{"function": "sum", "column": "cost"}]},
            "columnLabels": [{"column": "sum(cost)", "label": "Cost (EUR)"}],
        }
    )
    assert [c.label for c in report.columns] == ["team", "Cost (EUR)"]
    # 19 and 15.5 read alike: two decimals are not needed, one is, for both.
    assert [row[1].text for row in report.table] == ["19.0", "15.5"]


def test_plain_table_keeps_names_as_written_with_even_decimals_and_no_count_cards() -> None:
    report = build({})
    assert [c.label for c in report.columns] == ["time", "team", "ns", "cost", "n"]
    costs = [row[3].text for row in report.table]
    assert costs == ["10.50", "4.25", "7.00", "0.75", "12.00"]
    assert report.figures == []  # no "5 Rows / 5 Columns" cards


def test_chart_plots_the_chosen_column_per_day() -> None:
    report = build({"chart": {"column": "cost"}})
    labels = re.findall(r">([0-9.,]+)</text>", report.chart_svg)
    # Per day: 6 May 10.5 + 4.25 = 14.75, 7 May 7, 8 May 0.75 + 12 = 12.75 (two decimals each).
    assert [x for x in labels if "." in x and x.count(".") == 1][-3:] == ["14.75", "7.00", "12.75"]
    assert report.chart_title == "sum(cost) per period"
    maxima = build({"chart": {"column": "cost", "function": "max"}})
    assert ">12.0<" in maxima.chart_svg and "14.75" not in maxima.chart_svg


def test_bars_without_a_time_column_are_sorted_largest_first() -> None:
    rows = [{k: v for k, v in r.items() if k != "time"} for r in ROWS]
    report = build({"chart": {"column": "cost"}}, rows)
    names = re.findall(r'text-anchor="end">([a-z]+)</text>', report.chart_svg)
    assert names == ["search", "payments", "search", "payments", "payments"]
    assert report.chart_title == "cost by team"


def test_rollup_errors_name_the_row_and_column() -> None:
    with pytest.raises(MissingColumn, match=r"customQuery\.rollup\.groupBy needs column"):
        build({"rollup": {"groupBy": ["owner"]}})
    bad = [*ROWS, {"time": "2024-05-09", "team": "x", "cost": "lots", "n": 1}]
    with pytest.raises(InputError, match="row 5: cost 'lots' is not a number"):
        build(
            {
                "rollup": {
                    "groupBy": ["team"],
                    "aggregates": [{"function": "sum", "column": "cost"}],
                }
            },
            bad,
        )
