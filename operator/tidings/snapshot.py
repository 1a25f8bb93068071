"""The report snapshot each run reads: the spec as YAML, carried in the Job's pod template.

One serialisation for the operator (which writes it into the CronJob's pod template annotation)
and for validation (which refuses a spec too big to travel that way), so the limit it names is
the size it measures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from tidings import models

# libyaml's writer where present: the snapshot is written for every report on every change.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(document: Any) -> str:
    return yaml.dump(document, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)


def report_snapshot(report: Mapping[str, Any]) -> str:
    """The report as the renderer reads it: identity, generation and the spec as applied."""
    meta = report["metadata"]
    return dump(
        {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "generation": meta.get("generation"),
            },
            "spec": dict(report.get("spec") or {}),
        }
    )


def spec_size_problem(spec: Mapping[str, Any]) -> str | None:
    """Why the spec is too big to reach its runs, or None."""
    try:
        size = len(dump(dict(spec)).encode())
    except yaml.YAMLError:
        return None  # not a JSON document: the structural check says so

    if size <= models.MAX_SPEC_BYTES:
        return None
    return (
        f"is {size} bytes as YAML; the limit is {models.MAX_SPEC_BYTES} bytes (240 KiB), as each "
        "run carries the spec in its pod template: put larger data behind an sql or http source"
    )
