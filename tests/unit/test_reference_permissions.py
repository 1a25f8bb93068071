"""Which Secrets and ConfigMaps a spec names (every ref field of the models), the review that
asks whether the author may read one, and the refusal text (confused deputy)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tidings import models
from tidings.controller import permissions

USER = {"username": "jane", "groups": ["team", "system:authenticated"], "uid": "u-1"}
EVERY_REF: dict[str, Any] = {
    "source": {
        "sql": {"connectionSecretRef": {"name": "db", "key": "url"}, "query": "SELECT 1"},
        "http": {"url": "https://x.example.com", "authSecretRef": {"name": "token", "key": "t"}},
    },
    "delivery": {"smtpSecretRef": {"name": "smtp"}},
    "templateRef": {"name": "tmpl", "key": "page"},
}


def ref_fields(model: type[BaseModel], path: str = "spec") -> set[str]:
    """Every field path of a ref type in the models, found independently of permissions."""
    found: set[str] = set()
    for name, info in model.model_fields.items():
        key = info.alias or name
        for arg in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if not (isinstance(arg, type) and issubclass(arg, BaseModel)):
                continue
            if arg in permissions.REF_RESOURCES:
                found.add(f"{path}.{key}")
            else:
                found |= ref_fields(arg, f"{path}.{key}")
    return found


def test_every_ref_field_of_the_models_is_found():
    found = permissions.references(EVERY_REF)
    assert {ref.path for ref in found} == ref_fields(models.ScheduledReportSpec)
    assert [(r.path, r.resource, r.name) for r in found] == [
        ("spec.source.sql.connectionSecretRef", "secrets", "db"),
        ("spec.source.http.authSecretRef", "secrets", "token"),
        ("spec.delivery.smtpSecretRef", "secrets", "smtp"),
        ("spec.templateRef", "configmaps", "tmpl"),
    ]


def test_a_spec_without_refs_names_nothing():
    assert permissions.references({"source": {"inline": {"rows": []}}}) == []
    assert permissions.references(None) == []


def test_the_review_asks_for_get_on_that_object_as_the_requesting_user():
    ref = permissions.Reference("spec.templateRef", "configmaps", "tmpl")
    extra = {**USER, "extra": {"scopes.example.com": ["a"]}}
    review = permissions.reference_review(extra, "team-a", ref)
    assert review["spec"] == {
        "user": "jane",
        "groups": ["team", "system:authenticated"],
        "uid": "u-1",
        "extra": {"scopes.example.com": ["a"]},
        "resourceAttributes": {
            "group": "",
            "resource": "configmaps",
            "verb": "get",
            "namespace": "team-a",
            "name": "tmpl",
        },
    }


def test_the_refusal_names_each_reference_and_the_missing_right():
    denied = [
        permissions.Reference("spec.source.http.authSecretRef", "secrets", "api-token"),
        permissions.Reference("spec.templateRef", "configmaps", "tmpl"),
    ]
    message = permissions.reference_refusal(denied, "jane", "team-a")
    assert message.startswith(f"{models.KIND} is forbidden: ")
    assert (
        'spec.source.http.authSecretRef: user "jane" cannot get secrets "api-token" in '
        'namespace "team-a"'
    ) in message
    assert 'spec.templateRef: user "jane" cannot get configmaps "tmpl" in namespace' in message


def test_what_re_authors_the_report_is_checked_and_metadata_alone_is_not():
    spec = {"title": "a", "source": EVERY_REF["source"]}
    old = {"metadata": {"annotations": {}}, "spec": spec}
    assert permissions.references_need_check(None, old)  # create
    assert permissions.references_need_check(old, {**old, "spec": {**spec, "title": "b"}})
    run_now = {"metadata": {"annotations": {"tidings.dev/run-now": "1"}}, "spec": spec}
    assert not permissions.references_need_check(old, run_now)
    test_send = {"metadata": {"annotations": {"tidings.dev/send-test": "me@example.com"}}}
    assert permissions.references_need_check(old, {**test_send, "spec": spec})
    assert not permissions.references_need_check(
        {**test_send, "spec": spec}, {**test_send, "spec": spec}
    )
