"""A run's @group recipients: expanded from the ConfigMap the operator keeps for the report
(mounted at /etc/tidings/recipients, tidings.groups), read once when the run starts.

A group the ConfigMap lists as missing (or does not list) ends the run as a permanent input
failure (exit 65) naming it. What is read here only decides whom the renderer addresses: the
delivery relay admits recipients from the live RecipientGroups, not from this file.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tidings import groups, models
from tidings.renderer.result import InputError


def resolve(sr: models.ScheduledReport, directory: Path) -> models.ScheduledReport:
    """`sr` with every @name in to, cc and bcc replaced by the members the mounted ConfigMap
    lists for it."""
    names = groups.named(sr.spec.recipients.model_dump())
    if not names:
        return sr
    path = directory / groups.CONFIGMAP_KEY
    try:
        found, _ = groups.parse_payload(path.read_text(encoding="utf-8"))
    except OSError:
        shown = ", ".join(f"@{n}" for n in names)
        raise InputError(
            f"spec.recipients: recipient group {shown} cannot be resolved: no {path} "
            "(the operator's ConfigMap is not mounted)"
        ) from None
    except ValueError as error:
        raise InputError(f"spec.recipients: {path} is not a recipient list: {error}") from None
    return expanded(sr, found)


def from_file(sr: models.ScheduledReport, path: Path | None) -> models.ScheduledReport:
    """`sr` expanded with the RecipientGroup objects of a YAML file (`kubectl get rg -o yaml`:
    a List, or documents), for `tidings send` outside the cluster."""
    from tidings.documents import load_documents

    names = groups.named(sr.spec.recipients.model_dump())
    if not names:
        return sr
    if path is None:
        shown = ", ".join(f"@{n}" for n in names)
        raise InputError(
            f"spec.recipients names recipient group {shown}: pass --groups FILE with the "
            f"{models.GROUP_KIND} objects (kubectl get rg -o yaml > FILE)"
        )
    try:
        documents = load_documents(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"--groups {path}: {error}") from None
    items = [i for d in documents if isinstance(d, dict) for i in (d.get("items") or [d])]
    found = {
        str((i.get("metadata") or {}).get("name")): groups.members(i)
        for i in items
        if isinstance(i, dict) and i.get("kind", models.GROUP_KIND) == models.GROUP_KIND
    }
    return expanded(sr, found)


def expanded(sr: models.ScheduledReport, found: dict[str, list[str]]) -> models.ScheduledReport:
    """`sr` with its groups replaced by `found` (name -> members); a group not in it ends the
    run (exit 65) naming it."""
    recipients = sr.spec.recipients.model_dump()
    expansion = groups.expand(recipients, found)
    if expansion.missing:
        raise InputError(groups.missing_text(expansion.missing, sr.metadata.namespace))
    count = len(expansion.addresses)
    if count > models.MAX_RECIPIENTS:
        raise InputError(f"spec.recipients: {groups.too_many_text(count)}")
    if not count:
        shown = ", ".join(f"@{n}" for n in groups.named(recipients))
        raise InputError(f"spec.recipients: recipient group {shown} has no addresses")
    lists = models.Recipients.model_validate(expansion.lists)
    return sr.model_copy(update={"spec": sr.spec.model_copy(update={"recipients": lists})})
