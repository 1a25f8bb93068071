"""ScheduledReport -> CronJob against the real control plane, with the operator as a subprocess."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from tests.support.operator_harness import Cluster, OperatorProcess, wait_for
from tests.support.report_bodies import manifest

from tidings import contract, models
from tidings.controller import cronjob as cj

pytestmark = pytest.mark.cluster


def _ready(status: dict) -> dict:
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def test_create_edit_restore_pause_and_delete(
    run_operator: OperatorProcess, cluster: Cluster
) -> None:
    created = cluster.create_report(manifest("weekly"))
    uid = created["metadata"]["uid"]
    status = cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    assert _ready(status)["status"] == "True"

    cronjob = cluster.cronjob("weekly")
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == (
        "0 9 * * 1",
        "Europe/Berlin",
        False,
    )
    assert spec["concurrencyPolicy"] == "Forbid"
    (owner,) = cronjob["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("ScheduledReport", uid, True)
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0  # retries live in the pod
    # Each Job carries exactly the spec it was scheduled with, in its pod template.
    template = spec["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
    snapshot = yaml.safe_load(template[contract.SNAPSHOT_ANNOTATION])
    assert snapshot["spec"] == created["spec"]
    assert snapshot["metadata"]["uid"] == uid

    # Edit -> the CronJob follows.
    cluster.patch_report("weekly", {"spec": {"schedule": "30 7 * * 1-5"}})
    wait_for(
        "the new schedule", lambda: cluster.cronjob("weekly")["spec"]["schedule"] == "30 7 * * 1-5"
    )

    # Deleted by hand -> recreated.
    old_uid = cluster.cronjob("weekly")["metadata"]["uid"]
    cluster.batch.delete_namespaced_cron_job("weekly", cluster.ns)
    recreated = wait_for(
        "the CronJob to come back",
        lambda: (c := cluster.cronjob("weekly")) and c["metadata"]["uid"] != old_uid and c,
    )
    assert recreated["spec"]["schedule"] == "30 7 * * 1-5"
    assert wait_for("a Warning", lambda: cluster.events("CronJobRecreated", "weekly"))

    # Edited by hand -> put back, with one Warning.
    cluster.batch.patch_namespaced_cron_job(
        "weekly", cluster.ns, {"spec": {"suspend": True, "schedule": "* * * * *"}}
    )
    wait_for(
        "the hand edit to be reverted",
        lambda: (
            (s := cluster.cronjob("weekly")["spec"])["schedule"] == "30 7 * * 1-5"
            and s["suspend"] is False
        ),
    )
    (reverted,) = wait_for("one Warning", lambda: cluster.events("CronJobReverted", "weekly"))
    assert reverted.type == "Warning"

    # suspend: true -> Paused, CronJob suspended; false again -> Active with a fresh nextSendAt.
    cluster.patch_report("weekly", {"spec": {"suspend": True}})
    status = cluster.wait_status("weekly", "Paused", lambda s: s.get("phase") == "Paused")
    assert "nextSendAt" not in status
    assert _ready(status)["reason"] == "Paused"
    wait_for("the CronJob to be suspended", lambda: cluster.cronjob("weekly")["spec"]["suspend"])
    cluster.patch_report("weekly", {"spec": {"suspend": False}})
    status = cluster.wait_status("weekly", "Active again", lambda s: s.get("phase") == "Active")
    assert status["nextSendAt"] > datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # GitOps: the operator wrote neither spec nor annotations, so only our three edits count.
    report = cluster.report("weekly")
    assert report["metadata"]["generation"] == 4
    assert not report["metadata"].get("annotations")
    assert report["status"]["observedGeneration"] == 4

    # A run exists; deleting the report removes CronJob, ConfigMap, Job and Pod.
    cluster.annotate("weekly", **{contract.RUN_NOW_ANNOTATION: "before-delete"})
    job_name = wait_for("the run-now Job", lambda: [j["metadata"]["name"] for j in cluster.jobs()])[
        0
    ]
    wait_for("its pod", lambda: cluster.pods(job_name))
    cluster.custom.delete_namespaced_custom_object(
        "tidings.dev", "v1alpha1", cluster.ns, "scheduledreports", "weekly"
    )
    wait_for("the CronJob to be collected", lambda: cluster.cronjob("weekly") is None)
    wait_for("the Job to be collected", lambda: cluster.job(job_name) is None)
    wait_for("the Pod to be collected", lambda: not cluster.pods(job_name))
    names = [c.metadata.name for c in cluster.core.list_namespaced_config_map(cluster.ns).items]
    assert names == ["kube-root-ca.crt"]  # nothing else of the namespace was touched


def _warnings(cluster: Cluster, name: str) -> list[str]:
    selector = f"involvedObject.name={name},type=Warning"
    return [
        e.reason
        for e in cluster.core.list_namespaced_event(cluster.ns, field_selector=selector).items
    ]


def test_spec_changes_pause_resume_and_reactivate_post_no_warning(
    run_operator: OperatorProcess, cluster: Cluster
) -> None:
    cluster.create_report(manifest("weekly"))
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    edits = [
        {"spec": {"suspend": True}},
        {"spec": {"suspend": False}},
        {"spec": {"title": "Payments weekly, renamed"}},
    ]
    for number, edit in enumerate(edits, start=2):
        cluster.patch_report("weekly", edit)
        cluster.wait_status(
            "weekly", f"generation {number}", lambda s, n=number: s.get("observedGeneration") == n
        )
    wait_for(
        "the CronJob to carry the new title",
        lambda: "renamed" in json.dumps(cluster.cronjob("weekly")["spec"]["jobTemplate"]),
    )
    cluster.annotate("weekly", **{contract.REACTIVATE_ANNOTATION: "r" * 300})
    cluster.wait_status(
        "weekly",
        "reactivate handled",
        lambda s: s.get("reactivateHandled") == contract.digest("r" * 300),
    )
    # A hand edit afterwards is the first Warning: everything before it was a spec change.
    cluster.batch.patch_namespaced_cron_job(
        "weekly", cluster.ns, {"spec": {"schedule": "* * * * *"}}
    )
    wait_for("the Warning for the hand edit", lambda: _warnings(cluster, "weekly"))
    assert _warnings(cluster, "weekly") == ["CronJobReverted"]


def test_no_copy_of_the_spec_in_status_or_annotations(
    run_operator: OperatorProcess, cluster: Cluster
) -> None:
    marker = "unmistakable-row-value-7f3a"
    body = manifest("weekly", source={"inline": {"rows": [{"id": 1, "title": marker}]}})
    cluster.create_report(body)
    cluster.wait_status("weekly", "Active", lambda s: s.get("phase") == "Active")
    cluster.patch_report("weekly", {"spec": {"title": "Renamed weekly"}})
    cluster.annotate("weekly", **{contract.RUN_NOW_ANNOTATION: "now"})
    cluster.wait_status("weekly", "run-now handled", lambda s: s.get("runNowHandled"))
    report = cluster.report("weekly")
    outside_spec = json.dumps({"metadata": report["metadata"], "status": report["status"]})
    assert marker not in outside_spec
    assert "Renamed weekly" not in outside_spec
    assert set(report["metadata"].get("annotations") or {}) == {contract.RUN_NOW_ANNOTATION}
    declared = {f.alias or name for name, f in models.ScheduledReportStatus.model_fields.items()}
    assert set(report["status"]) <= declared


def test_invalid_spec_is_marked_and_never_runs(
    run_operator: OperatorProcess, cluster: Cluster
) -> None:
    # The CRD schema cannot know IANA zones; the operator's validation does.
    cluster.create_report(manifest("lost", timeZone="Mars/Olympus_Mons"))
    status = cluster.wait_status("lost", "Invalid", lambda s: s.get("phase") == "Invalid")
    ready = _ready(status)
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.timeZone" in ready["message"]
    assert cluster.cronjob("lost") is None
    assert cluster.events("InvalidSpec", "lost")

    cluster.annotate("lost", **{contract.RUN_NOW_ANNOTATION: "please"})
    cluster.wait_status(
        "lost", "run-now handled", lambda s: s.get("runNowHandled") == contract.digest("please")
    )
    assert cluster.jobs() == []
    assert cluster.events("RunNowRefused", "lost")

    cluster.patch_report("lost", {"spec": {"timeZone": "Europe/Berlin"}})
    cluster.wait_status("lost", "Active once fixed", lambda s: s.get("phase") == "Active")
    assert cluster.cronjob("lost")["spec"]["suspend"] is False
    assert cluster.report("lost")["metadata"]["generation"] == 2


def _next_local(month: int, now: datetime) -> datetime:
    """The next 1 <month> 09:00 Europe/Berlin, computed with zoneinfo alone."""
    berlin = ZoneInfo("Europe/Berlin")
    for year in (now.year, now.year + 1):
        moment = datetime(year, month, 1, 9, 0, tzinfo=berlin)
        if moment > now:
            return moment.astimezone(UTC)
    raise AssertionError("unreachable")


def test_next_send_at_follows_berlin_dst(run_operator: OperatorProcess, cluster: Cluster) -> None:
    # 1 March is winter time (UTC+1) and 1 April summer time (UTC+2) in every year.
    cluster.create_report(manifest("winter", schedule="0 9 1 3 *"))
    cluster.create_report(manifest("summer", schedule="0 9 1 4 *"))
    now = datetime.now(UTC)
    winter = cluster.wait_status("winter", "nextSendAt", lambda s: s.get("nextSendAt"))
    summer = cluster.wait_status("summer", "nextSendAt", lambda s: s.get("nextSendAt"))
    expected_winter = _next_local(3, now)
    expected_summer = _next_local(4, now)
    assert winter["nextSendAt"] == expected_winter.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert summer["nextSendAt"] == expected_summer.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (expected_winter.hour, expected_summer.hour) == (8, 7)
    assert cluster.report("winter")["metadata"]["generation"] == 1


def test_manual_report_has_a_suspended_cronjob(
    run_operator: OperatorProcess, cluster: Cluster
) -> None:
    cluster.create_report(manifest("adhoc", schedule=""))
    status = cluster.wait_status("adhoc", "Manual", lambda s: s.get("phase") == "Manual")
    assert "nextSendAt" not in status
    spec = cluster.cronjob("adhoc")["spec"]
    assert (spec["schedule"], spec["suspend"]) == (cj.MANUAL_PLACEHOLDER_SCHEDULE, True)


def test_macro_schedule_reaches_the_cronjob_and_next(
    run_operator: OperatorProcess, cluster: Cluster
) -> None:
    cluster.create_report(manifest("monthly", schedule="@monthly"))
    status = cluster.wait_status("monthly", "nextSendAt", lambda s: s.get("nextSendAt"))
    assert status["phase"] == "Active"
    now = datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin"))
    first = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0)
    first = first.replace(microsecond=0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert status["nextSendAt"] == first.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The real apiserver accepted the macro in the CronJob, as written.
    spec = cluster.cronjob("monthly")["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == (
        "@monthly",
        "Europe/Berlin",
        False,
    )


def test_a_cronjob_deleted_while_the_operator_was_stopped_is_recreated_at_start(
    run_operator: OperatorProcess, cluster: Cluster
) -> None:
    """The operator learns which reports have their CronJob from one list at start-up; a
    report whose CronJob went missing meanwhile gets it back, the others are left alone."""
    for name in ("kept", "lost"):
        cluster.create_report(manifest(name))
        cluster.wait_status(name, "Active", lambda s: s.get("phase") == "Active")
    kept_uid = cluster.cronjob("kept")["metadata"]["uid"]
    lost_uid = cluster.cronjob("lost")["metadata"]["uid"]

    run_operator.stop()
    cluster.batch.delete_namespaced_cron_job(cj.cronjob_name("lost"), cluster.ns)
    wait_for("the CronJob to be gone", lambda: cluster.cronjob("lost") is None)
    run_operator.start()

    recreated = wait_for("the CronJob back", lambda: cluster.cronjob("lost"))
    assert recreated["metadata"]["uid"] != lost_uid
    assert wait_for("a CronJobRecreated Event", lambda: cluster.events("CronJobRecreated", "lost"))
    assert cluster.cronjob("kept")["metadata"]["uid"] == kept_uid
    assert not cluster.events("CronJobRecreated", "kept")
