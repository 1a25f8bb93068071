"""Pure: a status write that took a report out of Disabled without reactivating it.

Status is the operator's memory, not an input. Reactivation is the report editor's decision: a
new `tidings.dev/reactivate` value or a spec change, both writes to the report itself. Writing
`scheduledreports/status` is a different permission (no Tidings role grants it: the operator and
cluster admins hold it, or a bespoke role), and a phase written there changes nothing that runs:
the CronJob stays suspended and the counter stays at its limit. So the operator puts Disabled
back at once, with an Event naming the ways to reactivate (docs/operator.md, "Disabled").

The mark it goes by is the one the operator leaves when it disables a report, and clears when it
reactivates one: the Ready condition with reason Disabled. A `phase: Active` patch leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidings import models
from tidings.contract import REACTIVATE_ANNOTATION
from tidings.controller.objects import find_condition

DISABLED_REASON = "Disabled"
EVENT_REASON = "StatusPatchReverted"


def phase_written_over_disabled(status: Mapping[str, Any]) -> bool:
    """Whether status says another phase while the operator's Ready mark still says Disabled."""
    phase = status.get("phase")
    if phase in (None, models.Phase.DISABLED):
        return False
    ready = find_condition(status.get("conditions"), "Ready")
    return ready.get("reason") == DISABLED_REASON and ready.get("status") == "False"


def revert_message(name: str, status: Mapping[str, Any]) -> str:
    """The Event's text: what happened and the ways that do reactivate."""
    return (
        f"status.phase was written as {status.get('phase')!r} on a Disabled report; put back to "
        f"Disabled (a status write reactivates nothing: the CronJob stays suspended). To "
        f"reactivate: kubectl tidings reactivate {name} (sets the annotation "
        f"{REACTIVATE_ANNOTATION}=<new value>), or change the spec."
    )
