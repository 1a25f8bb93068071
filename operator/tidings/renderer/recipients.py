"""A run's @group recipients: expanded from the ConfigMap the operator keeps for the report
(mounted at /etc/tidings/recipients, tidings.groups), read once when the run starts.

A group the ConfigMap lists as missing (or does not list) ends the run as a permanent input
failure (exit 65) naming it. What is read here only decides whom the renderer addresses: the
delivery relay admits recipients from the live RecipientGroups, not from this file.
"""

from __future__ import annotations

from pathlib import Path

from tidings import groups, models
from tidings.renderer.result import InputError


def resolve(sr: models.ScheduledReport, directory: Path) -> models.ScheduledReport:
    """`sr` with every @name in to, cc and bcc replaced by the group's members."""
    recipients = sr.spec.recipients.model_dump()
    names = groups.named(recipients)
    if not names:
        return sr
    path = directory / groups.CONFIGMAP_KEY
    shown = ", ".join(f"@{n}" for n in names)
    try:
        found, _ = groups.parse_payload(path.read_text(encoding="utf-8"))
    except OSError:
        raise InputError(
            f"spec.recipients: recipient group {shown} cannot be resolved: no {path} "
            "(the operator's ConfigMap is not mounted)"
        ) from None
    except ValueError as error:
        raise InputError(f"spec.recipients: {path} is not a recipient list: {error}") from None
    expansion = groups.expand(recipients, found)
    if expansion.missing:
        raise InputError(groups.missing_text(expansion.missing, sr.metadata.namespace))
    count = len(expansion.addresses)
    if count > models.MAX_RECIPIENTS:
        raise InputError(f"spec.recipients: {groups.too_many_text(count)}")
    if not count:
        raise InputError(f"spec.recipients: recipient group {shown} has no addresses")
    expanded = models.Recipients.model_validate(expansion.lists)
    return sr.model_copy(update={"spec": sr.spec.model_copy(update={"recipients": expanded})})
