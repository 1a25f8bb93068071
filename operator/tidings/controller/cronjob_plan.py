"""Pure: what to write to make a report's CronJob match the one cronjob.py describes, given the
one that exists. The generation stamp (contract.WRITTEN_GENERATION) tells our own writes from
someone else's: each write stamps the generation it gives the CronJob, so any other generation
means its spec was changed by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tidings.contract import WRITTEN_GENERATION
from tidings.controller.cronjob import drifted


class Action(Enum):
    CREATE = "create"
    PATCH = "patch"  # a conditional merge patch (resourceVersion of the CronJob read)
    LEAVE = "leave"


@dataclass(frozen=True)
class CronJobPlan:
    action: Action
    body: dict[str, Any] | None  # what to create or patch; None to leave it
    reverts_hand_edit: bool = False  # the patch undoes someone else's change to the spec


def owned(child: Mapping[str, Any], report: Mapping[str, Any]) -> bool:
    """Whether the report is the child's controller (owner reference with its uid)."""
    uid = report["metadata"]["uid"]
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in child["metadata"].get("ownerReferences") or ()
    )


def plan_cronjob(desired: Mapping[str, Any], actual: Mapping[str, Any] | None) -> CronJobPlan:
    """Create when there is none; patch when it lacks or changes something desired sets, or its
    spec was edited by hand (stamped generation behind its generation); else leave it."""
    body = copy.deepcopy(dict(desired))
    annotations = body["metadata"]["annotations"]
    if actual is None:
        annotations[WRITTEN_GENERATION] = "1"
        return CronJobPlan(Action.CREATE, body)
    meta = actual["metadata"]
    stamped = (meta.get("annotations") or {}).get(WRITTEN_GENERATION)
    generation = meta.get("generation", 0)
    annotations[WRITTEN_GENERATION] = stamped or ""
    hand_edited = stamped is not None and stamped != str(generation)
    if not drifted(body, actual) and not hand_edited:
        return CronJobPlan(Action.LEAVE, None)
    spec_differs = drifted(body["spec"], actual["spec"])
    # A patch that changes the spec moves the generation by one: stamp what it will be.
    annotations[WRITTEN_GENERATION] = str(generation + spec_differs)
    body["metadata"]["resourceVersion"] = meta["resourceVersion"]
    return CronJobPlan(Action.PATCH, body, reverts_hand_edit=hand_edited and spec_differs)
