"""A namespace's default time zone (annotation tidings.dev/default-time-zone), on the real
control plane: a report without spec.timeZone runs in it (CronJob, status, the TZ column),
follows a change of it at once, and one that sets its own zone keeps it (controller.zones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support.operator_harness import Cluster, OperatorProcess, wait_for
from tests.support.report_bodies import manifest

from tidings import contract
from tidings_dev.cluster import ControlPlane

pytestmark = pytest.mark.cluster


def _annotate_namespace(cluster: Cluster, value: str) -> None:
    body = {"metadata": {"annotations": {contract.DEFAULT_TIME_ZONE_ANNOTATION: value}}}
    cluster.core.patch_namespace(cluster.ns, body)


def _zone_free(name: str) -> dict:
    body = manifest(name)
    del body["spec"]["timeZone"]
    return body


def _tz_column(plane: ControlPlane, cluster: Cluster, name: str) -> str:
    out = plane.kubectl("get", "sr", name, "-n", cluster.ns, "-o", "json").stdout
    assert json.loads(out)["spec"].get("timeZone") is None  # the spec stays as written
    table = plane.kubectl("get", "sr", name, "-n", cluster.ns).stdout.splitlines()
    header, row = table[0], table[1]
    start = header.index(" TZ ") + 1  # kubectl aligns each column under its header
    end = header.index("RECIPIENTS")
    return row[start:end].strip()


def _cronjob_zone(cluster: Cluster, name: str, zone: str) -> dict:
    return wait_for(
        f"CronJob {name} in {zone}",
        lambda: (c := cluster.cronjob(name)) and c["spec"].get("timeZone") == zone and c,
    )


def test_reports_without_a_zone_follow_the_namespace_default(
    control_plane: ControlPlane,
    report_crd: None,
    namespace: str,
    cluster: Cluster,
    tmp_path: Path,
) -> None:
    # Set before the operator starts: the first reconcile already has it (no flip through UTC).
    _annotate_namespace(cluster, "Europe/Berlin")
    operator = OperatorProcess(control_plane.kubeconfig, namespace, tmp_path / "op.log", {})
    operator.start()
    try:
        cluster.create_report(_zone_free("weekly"))
        cluster.create_report(manifest("tokyo", timeZone="Asia/Tokyo"))
        status = cluster.wait_status("weekly", "in Berlin", lambda s: s.get("timeZone"))
        assert status["timeZone"] == "Europe/Berlin"
        assert status["nextSendAt"].endswith(("T07:00:00Z", "T08:00:00Z"))  # 09:00 CET/CEST
        cronjob = _cronjob_zone(cluster, "weekly", "Europe/Berlin")
        snapshot = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"][
            contract.SNAPSHOT_ANNOTATION
        ]
        assert "Europe/Berlin" in snapshot  # the renderer computes the window in it
        assert _tz_column(control_plane, cluster, "weekly") == "Europe/Berlin"
        generation = cluster.report("weekly")["metadata"]["generation"]
        cluster.wait_status("tokyo", "in Tokyo", lambda s: s.get("timeZone") == "Asia/Tokyo")

        _annotate_namespace(cluster, "America/New_York")
        status = cluster.wait_status(
            "weekly", "in New York", lambda s: s.get("timeZone") == "America/New_York"
        )
        assert status["nextSendAt"].endswith(("T13:00:00Z", "T14:00:00Z"))  # 09:00 EST/EDT
        assert status["nextSendLocal"].endswith(("EST", "EDT"))
        _cronjob_zone(cluster, "weekly", "America/New_York")
        assert _tz_column(control_plane, cluster, "weekly") == "America/New_York"
        assert cluster.report("weekly")["metadata"]["generation"] == generation  # spec untouched
        assert cluster.status("tokyo")["timeZone"] == "Asia/Tokyo"
        assert cluster.cronjob("tokyo")["spec"]["timeZone"] == "Asia/Tokyo"
        assert cluster.events("CronJobReverted", "weekly") == []

        # Not a zone: ignored with a Warning naming the annotation, UTC in effect.
        _annotate_namespace(cluster, "Mars/Olympus")
        cluster.wait_status("weekly", "in UTC", lambda s: s.get("timeZone") == "UTC")
        _cronjob_zone(cluster, "weekly", "UTC")
        (event,) = wait_for(
            "the Warning", lambda: cluster.events("NamespaceTimeZoneIgnored", "weekly")
        )
        assert contract.DEFAULT_TIME_ZONE_ANNOTATION in event.message
        assert "Mars/Olympus" in event.message
    finally:
        operator.stop()
