"""controller.spec_cache: a report's problems are computed once per generation, never handed
to another spec, and the cache stays bounded."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.support.report_bodies import manifest

from tidings.controller import spec_cache


def report(uid: str, generation: int | None, **spec: Any) -> dict[str, Any]:
    body = manifest("weekly", **spec)
    body["metadata"].update(namespace="team", uid=uid)
    if generation is not None:
        body["metadata"]["generation"] = generation
    return body


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each spec validate_spec saw, with the cache emptied first."""
    monkeypatch.setattr(spec_cache, "_problems", type(spec_cache._problems)())
    seen: list[Any] = []
    real = spec_cache.validation.validate_spec

    def counting(spec: Any) -> Any:
        seen.append(copy.deepcopy(spec))
        return real(spec)

    monkeypatch.setattr(spec_cache.validation, "validate_spec", counting)
    return seen


def test_the_same_generation_is_validated_once(validations: list[Any]) -> None:
    bad = report("u1", 1, schedule="every monday")
    first = spec_cache.spec_problems(bad)
    assert first and "schedule" in first[0]
    assert spec_cache.spec_problems(copy.deepcopy(bad)) == first
    assert len(validations) == 1


def test_a_new_generation_or_another_spec_is_validated_again(validations: list[Any]) -> None:
    assert spec_cache.spec_problems(report("u1", 1)) == []
    fixed_wrong = report("u1", 1, schedule="every monday")  # same uid and generation: a test
    assert spec_cache.spec_problems(fixed_wrong) != []
    assert spec_cache.spec_problems(report("u1", 2)) == []
    assert len(validations) == 3


def test_without_uid_or_generation_nothing_is_cached(validations: list[Any]) -> None:
    for _ in range(2):
        spec_cache.spec_problems(report("u1", None))
    assert len(validations) == 2
    assert not spec_cache._problems


def test_the_cache_is_bounded(validations: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_cache, "MAX_ENTRIES", 3)
    for number in range(5):
        spec_cache.spec_problems(report(f"u{number}", 1))
    assert list(spec_cache._problems) == ["u2", "u3", "u4"]
    spec_cache.spec_problems(report("u0", 1))  # dropped, so validated again
    assert len(validations) == 6
