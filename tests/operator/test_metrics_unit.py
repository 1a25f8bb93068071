"""tidings_reports{phase} counts each report once, in its latest phase, and forgets deleted ones."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tidings.controller import metrics


def count(phase: str) -> float:
    return REGISTRY.get_sample_value("tidings_reports", {"phase": phase}) or 0.0


def test_phase_counts_follow_each_report() -> None:
    before = {phase: count(phase) for phase in ("Active", "Paused", "Unknown")}
    metrics.observe_report("ns-metrics", "a", {"phase": "Active"})
    metrics.observe_report("ns-metrics", "b", {})
    metrics.observe_report("ns-metrics", "a", {"phase": "Active"})  # seen again: no change
    assert count("Active") == before["Active"] + 1
    assert count("Unknown") == before["Unknown"] + 1
    metrics.observe_report("ns-metrics", "a", {"phase": "Paused"})
    assert (count("Active"), count("Paused")) == (before["Active"], before["Paused"] + 1)
    metrics.forget_report("ns-metrics", "a")
    metrics.forget_report("ns-metrics", "b")
    metrics.forget_report("ns-metrics", "never-seen")
    assert {phase: count(phase) for phase in before} == before
