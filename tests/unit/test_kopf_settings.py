"""The premise of controller.kopf_settings.EventsOnlyDiffBase: every kopf handler the operator
registers is an event handler (or a startup/cleanup/probe activity, or the webhook), so no
handler needs kopf's diff of a body, and building it for every event would be wasted."""

from __future__ import annotations

import importlib

import kopf

from tidings.controller.kopf_settings import EventsOnlyDiffBase, operator_settings


def test_no_change_handler_or_daemon_is_registered() -> None:
    importlib.import_module("tidings.controller.handlers")
    importlib.import_module("tidings.controller.admission")
    registry = kopf.get_default_registry()
    watching = registry._watching.get_all_handlers()
    assert watching, "the event handlers should be registered"
    assert not registry._changing.get_all_handlers(), "a change handler needs kopf's diff base"
    assert not registry._spawning.get_all_handlers(), "a daemon/timer needs kopf's diff base"


def test_the_operator_settings_build_no_diff_base() -> None:
    settings = operator_settings()
    assert isinstance(settings.persistence.diffbase_storage, EventsOnlyDiffBase)
    body = kopf.Body({"metadata": {"name": "r", "annotations": {"a": "b"}}, "spec": {"x": 1}})
    assert settings.persistence.diffbase_storage.build(body=body) == {}
    assert settings.persistence.diffbase_storage.fetch(body=body) is None
