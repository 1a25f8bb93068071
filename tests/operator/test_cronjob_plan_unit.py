"""The CronJob write plan (controller.cronjob_plan), pure: create, patch or leave, and whether
a patch reverts someone else's edit (the written-generation stamp)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tidings import contract
from tidings.controller.cronjob_plan import Action, plan_cronjob

DESIRED: dict[str, Any] = {
    "metadata": {"name": "r", "annotations": {contract.REPORT_NAME_ANNOTATION: "r"}},
    "spec": {"schedule": "0 9 * * 1", "suspend": False},
}


def served(generation: int, stamped: str | None, **spec: Any) -> dict[str, Any]:
    """The CronJob as the API serves it: defaults added, generation, resourceVersion."""
    annotations = dict(DESIRED["metadata"]["annotations"])
    if stamped is not None:
        annotations[contract.WRITTEN_GENERATION] = stamped
    return {
        "metadata": {
            "name": "r",
            "annotations": annotations,
            "generation": generation,
            "resourceVersion": "42",
        },
        "spec": {**DESIRED["spec"], "concurrencyPolicy": "Allow", **spec},
    }


@pytest.mark.parametrize(
    ("actual", "action", "stamp", "reverts"),
    [
        (None, Action.CREATE, "1", False),
        (served(1, "1"), Action.LEAVE, None, False),
        (served(3, "3", suspend=True), Action.PATCH, "4", False),  # our spec moved on
        (served(2, "1", schedule="*/5 * * * *"), Action.PATCH, "3", True),  # a hand edit
        (served(2, "1"), Action.PATCH, "2", False),  # edited by hand back to ours: re-stamped
        (served(1, None), Action.PATCH, "1", False),  # written before stamps: stamped now
    ],
)
def test_plan_cronjob(
    actual: dict[str, Any] | None, action: Action, stamp: str | None, reverts: bool
) -> None:
    desired = copy.deepcopy(DESIRED)
    plan = plan_cronjob(desired, actual)
    assert desired == DESIRED  # the manifest is not changed in place
    assert (plan.action, plan.reverts_hand_edit) == (action, reverts)
    if stamp is None:
        assert plan.body is None
        return
    assert plan.body is not None
    assert plan.body["metadata"]["annotations"][contract.WRITTEN_GENERATION] == stamp
    if actual is not None:
        assert plan.body["metadata"]["resourceVersion"] == "42"  # conditional on what was read
