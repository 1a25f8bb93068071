"""Helpers for the chart tests: the pinned helm (hack/install-go-tools) and rendering."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidings_dev.cluster import REPO_ROOT

CHART = REPO_ROOT / "charts" / "tidings"
VALUES_ALL = REPO_ROOT / "tests" / "chart" / "values-all.yaml"


def tool(name: str) -> str:
    """Path of helm or kubeconform: the pinned build if installed, else one on PATH."""
    pinned = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "install-go-tools"), "--print-dir"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    found = shutil.which(name, path=f"{pinned}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} not found: run `bash hack/install-go-tools`")
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, timeout=120)


def render(
    release: str, namespace: str, *values_files: Path, set_values: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """`helm template --include-crds` as a list of objects; fails the test on a helm error."""
    args = ["template", release, str(CHART), "-n", namespace, "--include-crds"]
    for path in values_files:
        args += ["-f", str(path)]
    for value in set_values:
        args += ["--set", value]
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container_env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The operator container's env, name -> value (or valueFrom)."""
    deployment = next(
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-operator")
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def values_table() -> str:
    """The configuration table of docs/helm.md: every leaf of values.schema.json with its
    default from values.yaml and its description. docs/helm.md must contain it verbatim."""
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = ["| Value | Default | Meaning |", "| --- | --- | --- |"]

    def walk(node: dict[str, Any], default: Any, path: str) -> None:
        props = node.get("properties")
        if node.get("type") == "object" and props and node.get("additionalProperties") is False:
            for key, child in props.items():
                walk(child, (default or {}).get(key), f"{path}.{key}" if path else key)
            return
        shown = json.dumps(default) if default not in ("", None) else '""'
        rows.append(f"| `{path}` | `{shown}` | {node['description']} |")

    walk(schema, defaults, "")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(values_table(), end="")
