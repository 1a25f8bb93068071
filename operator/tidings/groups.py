"""Recipient groups, pure: `@name` in a report's to, cc or bcc stands for the addresses of the
RecipientGroup `name` in the report's namespace.

The same expansion serves everyone who needs it: admission (at most 50 addresses once
expanded), the operator (the per-report ConfigMap a run reads its groups from), the renderer
(whom to send to) and the delivery relay (whom to let through, from the live groups, never
from what the pod read). An address reached twice (listed and in a group, or in two groups)
is sent to once, in the first list it appears in (to, then cc, then bcc).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tidings import models

PREFIX = "@"
LISTS = ("to", "cc", "bcc")
# The ConfigMap each report with groups gets (owned by the report), and its one key.
CONFIGMAP_PREFIX = "tidings-recipients-"
CONFIGMAP_KEY = "groups.json"
MOUNT_PATH = "/etc/tidings/recipients"
# A Kubernetes object name (RFC 1123 subdomain), as RecipientGroup names are.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def group_name(entry: str) -> str | None:
    """The group an entry names (`@ops` -> `ops`), None for a plain address."""
    return entry[len(PREFIX) :] if entry.startswith(PREFIX) else None


def name_problem(name: str) -> str | None:
    """Rule for the name after @: a RecipientGroup's name."""
    if len(name) > 253 or not _NAME.match(name):
        return (
            "must be @ and a RecipientGroup name: lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters"
        )
    return None


def named(recipients: Mapping[str, Any] | None) -> list[str]:
    """The groups a spec.recipients names, each once, in order."""
    found: dict[str, None] = {}
    for kind in LISTS:
        for entry in (recipients or {}).get(kind) or ():
            if isinstance(entry, str) and (name := group_name(entry)) is not None:
                found.setdefault(name)
    return list(found)


def members(group: Mapping[str, Any] | None) -> list[str]:
    """The addresses of a RecipientGroup object (camelCase, as the API returns it)."""
    addresses = ((group or {}).get("spec") or {}).get("addresses") or ()
    return [str(a) for a in addresses if isinstance(a, str)]


@dataclass
class Expansion:
    """to, cc and bcc with every @name replaced by its members, each address once; `missing`
    the groups named that do not exist."""

    lists: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in LISTS})
    missing: list[str] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [a for kind in LISTS for a in self.lists[kind]]


def expand(recipients: Mapping[str, Any] | None, groups: Mapping[str, Sequence[str]]) -> Expansion:
    """Expand with `groups` (name -> members); a name not in `groups` is missing."""
    out = Expansion()
    seen: set[str] = set()
    for kind in LISTS:
        for entry in (recipients or {}).get(kind) or ():
            if not isinstance(entry, str):
                continue
            name = group_name(entry)
            if name is not None and name not in groups:
                if name not in out.missing:
                    out.missing.append(name)
                continue
            for address in groups[name] if name is not None else (entry,):
                if address.lower() not in seen:
                    seen.add(address.lower())
                    out.lists[kind].append(address)
    return out


def missing_text(names: Iterable[str], namespace: str) -> str:
    """The run's error for groups that do not exist: names every one."""
    shown = ", ".join(f"@{n}" for n in names)
    return (
        f"spec.recipients: recipient group {shown} does not exist in namespace {namespace} "
        f"(create the {models.GROUP_KIND}, or remove it from the report)"
    )


def too_many_text(count: int) -> str:
    return (
        f"at most {models.MAX_RECIPIENTS} recipients across to, cc and bcc once recipient "
        f"groups are expanded, found {count}"
    )


# ------------------------------------------------------------------ the ConfigMap a run reads


def configmap_name(report_name: str) -> str:
    """The report's recipients ConfigMap: `tidings-recipients-NAME`, or for a name too long
    for that its start and a hash (object names are at most 253 characters)."""
    name = f"{CONFIGMAP_PREFIX}{report_name}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(report_name.encode()).hexdigest()[:16]
    return f"{name[: 253 - 17].rstrip('.-')}-{digest}"


def payload(names: Sequence[str], groups: Mapping[str, Sequence[str]]) -> str:
    """What the ConfigMap holds: the members of every group the report names as they are now,
    and the names that do not exist."""
    return json.dumps(
        {
            "groups": {n: list(groups[n]) for n in names if n in groups},
            "missing": [n for n in names if n not in groups],
        },
        sort_keys=True,
    )


def parse_payload(text: str) -> tuple[dict[str, list[str]], list[str]]:
    """(groups, missing) of a payload; ValueError when it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    groups = data.get("groups") or {}
    missing = data.get("missing") or []
    if not isinstance(groups, dict) or not isinstance(missing, list):
        raise ValueError("groups must be an object and missing a list")
    return (
        {str(k): [str(a) for a in v] for k, v in groups.items() if isinstance(v, list)},
        [str(n) for n in missing],
    )
