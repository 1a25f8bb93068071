"""Generate the ScheduledReport CRD and the API field reference from the pydantic models.

The models are the one source of truth; this module only translates pydantic's JSON Schema into
the structural OpenAPI v3 subset the apiserver accepts: $refs inlined, titles dropped, Optional
(anyOf with null) turned into the plain type, free-form objects marked
x-kubernetes-preserve-unknown-fields, and `additionalProperties: false` removed (structural schemas
forbid it next to `properties`; the apiserver prunes unknown fields instead).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import BaseModel

from tidings import models, validation

CRD_NAME = f"{models.PLURAL}.{models.GROUP}"
DELIVERY_CRD_NAME = f"{models.DELIVERY_PLURAL}.{models.GROUP}"
GROUP_CRD_NAME = f"{models.GROUP_PLURAL}.{models.GROUP}"
KINDS = (models.KIND, models.DELIVERY_KIND, models.GROUP_KIND)  # `tidings crd --kind`

HEADER = (
    "# Generated from operator/tidings/models.py by `tidings crd{option}`: do not edit by hand.\n"
    "# Regenerate with: tidings crd{option} -o crds/{name}.yaml\n"
)

DESCRIPTION = (
    "ScheduledReport renders a report from a data source on a cron schedule and emails it as a "
    "PDF attachment. The operator runs it as a CronJob in the same namespace and writes the "
    "outcome of every run to status."
)

DELIVERY_DESCRIPTION = (
    "ReportDelivery is the record of one finished run of a ScheduledReport: who was sent what, "
    "when, with which Message-ID and outcome. The operator writes one per Job; nobody can change "
    "it. It is not owned by the report, so it outlives it, and is pruned after its retention "
    "(90 days by default). List a report's records with "
    f"`kubectl get reportdeliveries -l {models.GROUP}/report=NAME`."
)

GROUP_DESCRIPTION = (
    "RecipientGroup is a list of addresses a ScheduledReport of the same namespace names as "
    "@NAME in spec.recipients.to, cc or bcc. Each run sends to the members the group has when "
    "it starts, so an edited group reaches the next run without a change to the report. "
    "Adding a member outside the allowed recipient domains needs the `schedule` verb on "
    "recipientgroups."
)

GROUP_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Description", "type": "string", "jsonPath": ".spec.description"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# JSON Schema keys that carry over to the structural schema unchanged.
_KEPT = (
    "type",
    "description",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "required",
    "default",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
)

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Type", "type": "string", "jsonPath": ".spec.reportType"},
    # Derived from spec.delivery and spec.recipients by display.status_fields (operator-written).
    {"name": "Format", "type": "string", "jsonPath": ".status.deliveryFormat"},
    {"name": "Program", "type": "string", "jsonPath": ".spec.program"},
    {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
    # The zone in effect: spec.timeZone or the namespace's default (operator-written).
    {"name": "TZ", "type": "string", "jsonPath": ".status.timeZone"},
    {"name": "Recipients", "type": "string", "jsonPath": ".status.recipientSummary"},
    {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Last Sent", "type": "date", "jsonPath": ".status.lastSentAt"},
    # A date column renders as an age, and the apiserver prints "<invalid>" for a future time:
    # the next run is shown as a wall time in the report's own zone (written by the operator).
    {"name": "Next", "type": "string", "jsonPath": ".status.nextSendLocal"},
    {"name": "Failures", "type": "integer", "jsonPath": ".status.consecutiveFailures"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    # -o wide
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
    {"name": "Last Error", "type": "string", "jsonPath": ".status.lastErrorBrief", "priority": 1},
]


DELIVERY_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Report", "type": "string", "jsonPath": ".spec.report.name"},
    {"name": "Window", "type": "string", "jsonPath": ".spec.window"},
    {"name": "Outcome", "type": "string", "jsonPath": ".spec.outcome"},
    {"name": "Sent To", "type": "integer", "jsonPath": ".spec.recipients.accepted"},
    {"name": "Refused", "type": "integer", "jsonPath": ".spec.recipients.refused"},
    {"name": "Size", "type": "integer", "jsonPath": ".spec.bytes"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    # -o wide
    {"name": "Trigger", "type": "string", "jsonPath": ".spec.trigger", "priority": 1},
    {"name": "Message-ID", "type": "string", "jsonPath": ".spec.messageId", "priority": 1},
]


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema (camelCase names, as on the wire) as a structural schema."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    return _convert(schema, defs)


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, defs)
    out = {key: node[key] for key in _KEPT if key in node}
    if "description" in out:
        # Docstrings wrap lines; kubectl explain re-wraps them anyway.
        out["description"] = " ".join(out["description"].split())
    if "properties" in node:
        out["properties"] = {
            name: _convert(child, defs) for name, child in node["properties"].items()
        }
    elif node.get("type") == "object" and node.get("additionalProperties") not in (None, False):
        # dict[str, Any]: a free-form object the apiserver must keep as is.
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in node:
        out["items"] = _convert(node["items"], defs)
    if out.get("default") is None or isinstance(out.get("default"), dict | list):
        # Only scalar defaults are applied by the apiserver; containers default in the models.
        out.pop("default", None)
    if "required" in out and not out["required"]:
        del out["required"]
    return out


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline $ref and unwrap Optional; keys next to the $ref (description) win."""
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"unions other than Optional have no structural schema: {node}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        node = {**_resolve(variants[0], defs), **rest}
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        node = {**_resolve(target, defs), **rest}
    return node


def openapi_schema() -> dict[str, Any]:
    """The whole object's schema: apiVersion, kind, metadata, spec and status."""
    # No preserve-unknown-fields: the apiserver prunes what the models do not declare, so the
    # copy of the spec an older operator (kopf's diff base) kept in status goes at its next write.
    status = structural_schema(models.ScheduledReportStatus)
    return _object_schema(
        models.KIND, DESCRIPTION, structural_schema(models.ScheduledReportSpec), status
    )


def delivery_openapi_schema() -> dict[str, Any]:
    """A ReportDelivery: a spec only (a record has nothing to observe)."""
    return _object_schema(
        models.DELIVERY_KIND,
        DELIVERY_DESCRIPTION,
        structural_schema(models.ReportDeliverySpec),
    )


def group_openapi_schema() -> dict[str, Any]:
    """A RecipientGroup: a spec only."""
    return _object_schema(
        models.GROUP_KIND, GROUP_DESCRIPTION, structural_schema(models.RecipientGroupSpec)
    )


def _object_schema(
    kind: str, description: str, spec: dict[str, Any], status: dict[str, Any] | None = None
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {
            "type": "string",
            "description": f"Versioned schema of this object: {models.GROUP}/{models.VERSION}.",
        },
        "kind": {"type": "string", "description": f"Always {kind}."},
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    return {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": properties,
    }


def crd(kind: str = models.KIND) -> dict[str, Any]:
    """The CustomResourceDefinition manifest of ScheduledReport, ReportDelivery or
    RecipientGroup."""
    if kind == models.GROUP_KIND:
        return _crd(
            GROUP_CRD_NAME,
            {
                "kind": models.GROUP_KIND,
                "listKind": f"{models.GROUP_KIND}List",
                "plural": models.GROUP_PLURAL,
                "singular": models.GROUP_SINGULAR,
                "shortNames": list(models.GROUP_SHORT_NAMES),
                "categories": list(models.CATEGORIES),
            },
            {
                "name": models.VERSION,
                "served": True,
                "storage": True,
                "additionalPrinterColumns": GROUP_PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": group_openapi_schema()},
            },
        )
    if kind == models.DELIVERY_KIND:
        return _crd(
            DELIVERY_CRD_NAME,
            {
                "kind": models.DELIVERY_KIND,
                "listKind": f"{models.DELIVERY_KIND}List",
                "plural": models.DELIVERY_PLURAL,
                "singular": models.DELIVERY_SINGULAR,
                "shortNames": list(models.DELIVERY_SHORT_NAMES),
                "categories": list(models.CATEGORIES),
            },
            {
                "name": models.VERSION,
                "served": True,
                "storage": True,
                "additionalPrinterColumns": DELIVERY_PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": delivery_openapi_schema()},
            },
        )
    return _crd(
        CRD_NAME,
        {
            "kind": models.KIND,
            "listKind": f"{models.KIND}List",
            "plural": models.PLURAL,
            "singular": models.SINGULAR,
            "shortNames": list(models.SHORT_NAMES),
            "categories": list(models.CATEGORIES),
        },
        {
            "name": models.VERSION,
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": PRINTER_COLUMNS,
            "schema": {"openAPIV3Schema": openapi_schema()},
        },
    )


def _crd(name: str, names: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "tidings", "app.kubernetes.io/part-of": "tidings"},
        },
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": names,
            "versions": [version],
        },
    }


def crd_yaml(kind: str = models.KIND) -> str:
    """The CRD as committed in crds/: stable key order, so a diff shows a real change."""
    option = "" if kind == models.KIND else f" --kind {kind}"
    name = {models.DELIVERY_KIND: DELIVERY_CRD_NAME, models.GROUP_KIND: GROUP_CRD_NAME}.get(
        kind, CRD_NAME
    )
    return HEADER.format(option=option, name=name) + yaml.dump(
        crd(kind), Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=100
    )


class _NoAliasDumper(yaml.SafeDumper):
    """Shared sub-schemas are written out in full: anchors would only confuse readers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# ------------------------------------------------------------------------------ api reference


def api_reference() -> str:
    """docs/api.md: every field of spec and status with type, constraints and description."""
    schema = openapi_schema()
    lines = [
        "# ScheduledReport API reference",
        "",
        "<!-- Generated from operator/tidings/models.py by `tidings crd --docs`: do not edit. -->",
        "",
        f"`apiVersion: {models.GROUP}/{models.VERSION}`, `kind: {models.KIND}`, namespaced, "
        f"short name `{models.SHORT_NAMES[0]}`, category `{models.CATEGORIES[0]}`.",
        "",
        DESCRIPTION,
        "",
        "Every field below is also available from the cluster with "
        "`kubectl explain scheduledreport.<path>`.",
        "",
        "The CRD schema enforces the types, enums, lengths, item counts and rules listed "
        "below, even without the webhook. The validating webhook, the operator (which marks a "
        "report `Invalid`) and `tidings validate FILE` also check:",
        "",
        "| Field | Rule |",
        "|---|---|",
        *[
            f"| `{path}` | {_cell(rule)} |"
            for path, rule in (*validation.ADMISSION_RULES, *validation.SCOPE_RULES)
        ],
        "",
        "## kubectl get columns",
        "",
        *_column_table(PRINTER_COLUMNS),
    ]
    for root in ("spec", "status"):
        lines += ["", f"## {root}", ""]
        lines += _object_section(root, schema["properties"][root])
    lines += _delivery_reference()
    lines += _group_reference()
    return "\n".join(lines) + "\n"


def _delivery_reference() -> list[str]:
    """The ReportDelivery part of docs/api.md (headings one level down)."""
    spec = delivery_openapi_schema()["properties"]["spec"]
    return [
        "",
        "# ReportDelivery API reference",
        "",
        f"`apiVersion: {models.GROUP}/{models.VERSION}`, `kind: {models.DELIVERY_KIND}`, "
        f"namespaced, short name `{models.DELIVERY_SHORT_NAMES[0]}`, category "
        f"`{models.CATEGORIES[0]}`. Retention, labels and the address-list limit: "
        "[records.md](records.md).",
        "",
        DELIVERY_DESCRIPTION,
        "",
        "## kubectl get columns (ReportDelivery)",
        "",
        *_column_table(DELIVERY_PRINTER_COLUMNS),
        "",
        "## ReportDelivery spec",
        "",
        *_object_section("spec", spec),
    ]


def _group_reference() -> list[str]:
    """The RecipientGroup part of docs/api.md."""
    spec = group_openapi_schema()["properties"]["spec"]
    return [
        "",
        "# RecipientGroup API reference",
        "",
        f"`apiVersion: {models.GROUP}/{models.VERSION}`, `kind: {models.GROUP_KIND}`, "
        f"namespaced, short name `{models.GROUP_SHORT_NAMES[0]}`, category "
        f"`{models.CATEGORIES[0]}`. Every field is also available with "
        "`kubectl explain recipientgroup.<path>`.",
        "",
        GROUP_DESCRIPTION,
        "",
        "The webhook also checks each member as a report's recipient (a bare ASCII address, "
        "each once) and refuses a change that would take a report naming the group over 50 "
        "addresses once its groups are expanded.",
        "",
        "## kubectl get columns (RecipientGroup)",
        "",
        *_column_table(GROUP_PRINTER_COLUMNS),
        "",
        "## RecipientGroup spec",
        "",
        *_object_section("spec", spec),
    ]


def _column_table(columns: list[dict[str, Any]]) -> list[str]:
    return [
        "| Column | Source |",
        "|---|---|",
        *[
            f"| {c['name'].upper()} | `{c['jsonPath']}` ({c['type']})"
            f"{', `-o wide` only' if c.get('priority') else ''} |"
            for c in columns
        ],
    ]


def _object_section(path: str, node: dict[str, Any]) -> list[str]:
    """A table for one object, then a section for each nested object, depth first."""
    lines = [node.get("description", ""), ""]
    for rule in node.get("x-kubernetes-validations", []):
        lines.append(f"- Rule: {rule['message']} (CEL `{rule['rule']}`)")
    if node.get("x-kubernetes-validations"):
        lines.append("")
    lines += ["| Field | Type | Required | Default | Constraints | Description |"]
    lines += ["|---|---|---|---|---|---|"]
    nested = []
    required = set(node.get("required", []))
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}"
        lines.append(
            "| `{}` | {} | {} | {} | {} | {} |".format(
                name,
                _type_name(child),
                "yes" if name in required else "",
                _cell(_default_cell(child)),
                _cell(_constraints(child)),
                _cell(child.get("description", "")),
            )
        )
        if "properties" in child:
            nested.append((child_path, child))
        elif "properties" in child.get("items", {}):
            nested.append((f"{child_path}[]", child["items"]))
    for child_path, child in nested:
        lines += ["", f"### {child_path}", ""]
        lines += _object_section(child_path, child)
    return lines


def _type_name(node: dict[str, Any]) -> str:
    if node.get("type") == "array":
        return f"list of {_type_name(node.get('items', {}))}"
    if node.get("type") == "object" and "properties" not in node:
        return "object (free-form)"
    return str(node.get("type", "any"))


def _default_cell(node: dict[str, Any]) -> str:
    return f"`{json.dumps(node['default'], ensure_ascii=False)}`" if "default" in node else ""


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
    ):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    items = node.get("items", {})
    if "maxLength" in items:
        parts.append(f"each at most {items['maxLength']} characters")
    if node.get("x-kubernetes-list-type") == "set":
        parts.append("no duplicates")
    parts += [rule["message"] for rule in node.get("x-kubernetes-validations", [])]
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Markdown table cells: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
