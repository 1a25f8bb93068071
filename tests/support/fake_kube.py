"""An in-memory stand-in for tidings.controller.kube.Kube, for table tests of the controller.

Objects live by path, as the API serves them: each write gives a new resourceVersion, a spec
change moves metadata.generation, a create of an existing name or a write conditional on a
stale resourceVersion is a 409, a missing object a 404; the status subresource is written
only through `<path>/status`; an object with finalizers is only marked deleted until the last
one goes. The methods are those of Kube, async like them.

Faults, to test what a crash or a second writer does:
- `crash_after(n)`: the write after the n-th one raises Crash (the process died there);
- `before_next_write(match, change)`: `change(kube)` runs once, just before the first write
  whose path contains `match` (another writer got there first);
- `terminating`: namespaces being deleted, where every create is refused as the apiserver's
  NamespaceLifecycle admission refuses it (403, cause NamespaceTerminating).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

_PATH = re.compile(
    r"^(?P<api>/apis/[^/]+/[^/]+|/api/v1)(?:/namespaces/(?P<namespace>[^/]+))?"
    r"/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?P<status>/status)?$"
)
NOW = "2026-12-01T09:00:00Z"


class Crash(Exception):
    """The operator process died at this point (injected)."""


@dataclass(frozen=True)
class Write:
    method: str  # POST | PATCH | DELETE
    path: str
    body: dict[str, Any] | None


def _parse(path: str) -> re.Match[str]:
    match = _PATH.match(path)
    if not match:
        raise ValueError(f"not an API path: {path}")
    return match


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 JSON merge patch, in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _selected(obj: dict[str, Any], selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _error(status: int, reason: str) -> ApiException:
    return ApiException(status=status, reason=reason)


@dataclass
class FakeKube:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    _versions: itertools.count = field(default_factory=lambda: itertools.count(100))
    _uids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _crash_at: int | None = None
    _interference: list[tuple[str, Callable[[FakeKube], None]]] = field(default_factory=list)
    terminating: set[str] = field(default_factory=set)

    async def close(self) -> None:  # Kube.close() at cleanup
        pass

    # ------------------------------------------------------------------------- set-up, faults

    def put(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store an object as if someone else created it (not recorded as a write)."""
        return self._create(collection, body)

    def crash_after(self, writes: int | None) -> None:
        self._crash_at = None if writes is None else len(self.writes) + writes

    def before_next_write(self, match: str, change: Callable[[FakeKube], None]) -> None:
        self._interference.append((match, change))

    def of_kind(self, plural: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for p, o in self.objects.items() if _parse(p)["plural"] == plural]

    def summary(self) -> list[tuple[str, str]]:
        """The writes as (method, what): the resource's plural, or "status"."""
        return [
            (w.method, "status" if w.path.endswith("/status") else _parse(w.path)["plural"])
            for w in self.writes
        ]

    def _write(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        for index, (match, change) in enumerate(self._interference):
            if match in path:
                del self._interference[index]
                change(self)
                break
        if self._crash_at is not None and len(self.writes) >= self._crash_at:
            self._crash_at = None
            raise Crash(f"{method} {path}")
        self.writes.append(Write(method, path, copy.deepcopy(body)))

    def _bump(self, obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))

    def _create(self, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        path = f"{collection}/{meta['name']}"
        if path in self.objects:
            raise _error(409, "AlreadyExists")
        meta.setdefault("namespace", _parse(collection)["namespace"])
        meta.setdefault("uid", f"uid-{next(self._uids):04d}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", NOW)
        self._bump(obj)
        self.objects[path] = obj
        return copy.deepcopy(obj)

    # ------------------------------------------------------------------------ Kube's methods

    async def get(self, path: str) -> dict[str, Any] | None:
        obj = self.objects.get(path)
        return copy.deepcopy(obj) if obj is not None else None

    async def list(self, path: str, label_selector: str) -> list[dict[str, Any]]:
        wanted = _parse(path)
        found = []
        for stored, obj in self.objects.items():
            where = _parse(stored)
            if (where["api"], where["plural"]) != (wanted["api"], wanted["plural"]):
                continue
            if wanted["namespace"] and where["namespace"] != wanted["namespace"]:
                continue
            if _selected(obj, label_selector):
                found.append(copy.deepcopy(obj))
        return found

    async def list_pages(
        self, path: str, label_selector: str, limit: int = 500
    ) -> AsyncIterator[list[dict[str, Any]]]:
        items = await self.list(path, label_selector)
        for start in range(0, max(len(items), 1), limit):
            yield items[start : start + limit]

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._write("POST", path, body)
        namespace = _parse(path)["namespace"]
        if namespace in self.terminating:
            refused = _error(403, "Forbidden")
            refused.body = (
                f'{{"kind":"Status","reason":"Forbidden","message":"unable to create new content '
                f'in namespace {namespace} because it is being terminated","details":{{"causes":'
                '[{"reason":"NamespaceTerminating"}]}}'
            )
            raise refused
        return self._create(path, body)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A metadata.resourceVersion in `body` makes it conditional (409 when stale)."""
        self._write("PATCH", path, body)
        where = _parse(path)
        object_path = path.removesuffix("/status")
        obj = self.objects.get(object_path)
        if obj is None:
            raise _error(404, "NotFound")
        patch = copy.deepcopy(body)
        expected = (patch.get("metadata") or {}).pop("resourceVersion", None)
        if expected is not None and expected != obj["metadata"]["resourceVersion"]:
            raise _error(409, "Conflict")
        if where["status"]:
            patch = {"status": patch.get("status") or {}}
        else:
            patch.pop("status", None)  # the status subresource is written on its own path
        spec_before = copy.deepcopy(obj.get("spec"))
        _merge(obj, patch)
        if obj.get("spec") != spec_before:
            obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
        self._bump(obj)
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            del self.objects[object_path]
        return copy.deepcopy(obj)

    async def delete(self, path: str) -> bool:
        self._write("DELETE", path, None)
        obj = self.objects.get(path)
        if obj is None:
            return False
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = NOW
            self._bump(obj)
        else:
            del self.objects[path]
        return True
