"""The CRD and the API reference are generated from the models, and the committed copies agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tidings import crdgen, models

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "scheduledreports.tidings.dev.yaml"
DELIVERY_CRD_FILE = ROOT / "crds" / "reportdeliveries.tidings.dev.yaml"
API_DOC = ROOT / "docs" / "api.md"


def walk(node: dict[str, Any], path: str = ""):
    """Every schema node with its path, depth first."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}" if path else name)
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def test_committed_crd_matches_the_models():
    assert CRD_FILE.read_text(encoding="utf-8") == crdgen.crd_yaml(), (
        "crds/ is stale: run `tidings crd -o crds/scheduledreports.tidings.dev.yaml`"
    )


def test_committed_delivery_crd_matches_the_models():
    assert DELIVERY_CRD_FILE.read_text(encoding="utf-8") == crdgen.crd_yaml("ReportDelivery"), (
        "crds/ is stale: run `tidings crd --kind ReportDelivery "
        "-o crds/reportdeliveries.tidings.dev.yaml`"
    )
    out = subprocess.run(
        [sys.executable, "-m", "tidings", "crd", "--kind", "ReportDelivery"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == crdgen.crd_yaml("ReportDelivery")


def test_delivery_crd_names_columns_and_immutability():
    crd = yaml.safe_load(DELIVERY_CRD_FILE.read_text(encoding="utf-8"))
    assert crd["metadata"]["name"] == "reportdeliveries.tidings.dev"
    names = crd["spec"]["names"]
    assert (names["kind"], names["shortNames"], names["categories"]) == (
        "ReportDelivery",
        ["rd"],
        ["tidings"],
    )
    version = crd["spec"]["versions"][0]
    assert "subresources" not in version  # a record has no status to write
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Report", "Window", "Outcome", "Sent To", "Refused", "Size", "Age"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert {
        "rule": "self == oldSelf",
        "message": spec["x-kubernetes-validations"][0]["message"],
    } in spec["x-kubernetes-validations"]
    bcc = spec["properties"]["recipients"]["properties"]["bcc"]["properties"]
    assert set(bcc) == {"intended", "accepted", "refused"}


def test_api_reference_covers_the_delivery_kind():
    text = crdgen.api_reference()
    assert "# ReportDelivery API reference" in text
    for field in ("messageId", "recipients.bcc", "attachments[]", "retentionDays", "SENT TO"):
        assert field in text, field


def test_committed_api_reference_matches_the_models():
    assert API_DOC.read_text(encoding="utf-8") == crdgen.api_reference(), (
        "docs/api.md is stale: run `tidings crd --docs -o docs/api.md`"
    )


def test_crd_command_prints_the_same_yaml():
    out = subprocess.run(
        [sys.executable, "-m", "tidings", "crd"], capture_output=True, text=True, check=True
    ).stdout
    assert out == crdgen.crd_yaml()


def test_names_scope_and_status_subresource():
    crd = yaml.safe_load(CRD_FILE.read_text(encoding="utf-8"))
    assert crd["metadata"]["name"] == "scheduledreports.tidings.dev"
    spec = crd["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == ["sr"]
    assert spec["names"]["categories"] == ["tidings"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = version["additionalPrinterColumns"]
    assert [c["name"].upper() for c in columns if not c.get("priority")] == [
        "TYPE",
        "FORMAT",
        "PROGRAM",
        "SCHEDULE",
        "TZ",
        "RECIPIENTS",
        "STATUS",
        "LAST SENT",
        "NEXT",
        "FAILURES",
        "AGE",
    ]
    assert [c["name"].upper() for c in columns if c.get("priority")] == [
        "REASON",
        "LAST ERROR",
    ]


def test_schema_is_structural():
    schema = crdgen.openapi_schema()
    for path, node in walk(schema):
        assert "type" in node, f"{path} has no type"
        for key in ("$ref", "anyOf", "oneOf", "allOf", "title", "additionalProperties", "$defs"):
            assert key not in node, f"{path} keeps {key}"
        if node["type"] == "array":
            assert "items" in node, f"{path} is an array without items"
        if node["type"] == "object" and path != "metadata":
            assert "properties" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert node.get("default") is None or not isinstance(node["default"], dict | list), path


def test_every_field_has_a_description_for_kubectl_explain():
    schema = crdgen.openapi_schema()
    missing = [
        path for path, node in walk(schema) if path != "metadata" and not node.get("description")
    ]
    assert missing == []


def test_status_prunes_unknown_fields():
    """Nothing but the declared fields survives in status: no copy of the spec can hide there."""
    status = crdgen.openapi_schema()["properties"]["status"]
    assert "x-kubernetes-preserve-unknown-fields" not in status


def test_everything_cel_touches_is_bounded():
    """The apiserver refuses rules whose estimated cost is unbounded: lists need maxItems and
    their strings maxLength wherever a rule iterates or compares them."""
    schema = crdgen.openapi_schema()
    ruled = [(p, n) for p, n in walk(schema) if n.get("x-kubernetes-validations")]
    assert {p for p, _ in ruled} == {
        "spec",  # program against reportType, customQuery only for custom_query
        "spec.customQuery.rollup.aggregates[]",
        "spec.source",
        "spec.filters.window",
        "spec.schedule",
        "spec.recipients",
        "spec.delivery",  # attachCsv or attachments, not both; skipIfEmpty against sendWhen
        "spec.delivery.sendWhen",  # threshold only, and always, for mode threshold
        "spec.delivery.channels[]",  # exactly one kind per channel
    }
    for path, node in ruled:
        if node["type"] == "string":
            assert "maxLength" in node, path
        for name, child in node.get("properties", {}).items():
            if child["type"] == "array":
                items = child["items"]
                # An object's own strings are checked where a rule touches them.
                bounded = items["type"] == "object" or "maxLength" in items or "enum" in items
                assert "maxItems" in child and bounded, f"{path}.{name}"
            if child["type"] == "string":
                assert "maxLength" in child or "enum" in child, f"{path}.{name}"


def test_recipient_lists_are_sets_and_conditions_a_map():
    spec = crdgen.openapi_schema()["properties"]["spec"]
    for kind in ("to", "cc", "bcc"):
        assert (
            spec["properties"]["recipients"]["properties"][kind]["x-kubernetes-list-type"] == "set"
        )
    conditions = crdgen.openapi_schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_optional_fields_become_plain_types_not_required():
    spec = crdgen.openapi_schema()["properties"]["spec"]
    assert spec["required"] == ["title", "reportType", "source", "recipients"]
    template_ref = spec["properties"]["templateRef"]
    assert template_ref["type"] == "object" and template_ref["required"] == ["name", "key"]
    assert "default" not in template_ref


def test_descriptions_come_from_the_models():
    spec = crdgen.openapi_schema()["properties"]["spec"]
    schedule = spec["properties"]["schedule"]
    assert schedule["description"] == " ".join(
        models.ScheduledReportSpec.model_fields["schedule"].description.split()
    )
    assert spec["properties"]["failurePolicy"]["properties"]["retries"]["maximum"] == 10


def test_api_reference_lists_every_field_and_rule():
    text = crdgen.api_reference()
    for path, _ in walk(crdgen.openapi_schema()):
        name = path.rsplit(".", 1)[-1].removesuffix("[]")
        if path.startswith(("spec.", "status.")) and not path.endswith("[]"):
            assert f"| `{name}` |" in text, path
    assert "### spec.recipients" in text and "### status.history[]" in text
    assert "exactly one of inline, sql or http must be set" in text
    assert "`spec.timeZone` | a zone name from the IANA database" in text
