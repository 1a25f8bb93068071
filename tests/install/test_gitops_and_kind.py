"""The GitOps examples and the kind demo drive the chart with values it must accept: render the
chart with exactly those values, and check what the demo then relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tidings"
HELM = shutil.which("helm")
pytestmark = pytest.mark.skipif(HELM is None, reason="helm not on PATH: run via `make test`")


def helm_template(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [HELM, "template", "tidings", str(CHART), "-n", "tidings", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def documents(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((ROOT / "examples" / "gitops" / name).read_text()))


def test_argocd_values_render(tmp_path: Path) -> None:
    app = next(
        d for d in documents("argocd-application.yaml") if d["metadata"]["name"] == "tidings"
    )
    assert app["spec"]["source"]["path"] == "charts/tidings"
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(app["spec"]["source"]["helm"]["valuesObject"]))
    rendered = helm_template("-f", str(values))
    env = operator_env(rendered)
    assert env["TIDINGS_SMTP_HOST"] == "smtp.internal.example.com"
    assert env["TIDINGS_ALLOWED_RECIPIENT_DOMAINS"] == "example.com"


def test_flux_values_render(tmp_path: Path) -> None:
    release = next(d for d in documents("flux.yaml") if d["kind"] == "HelmRelease")
    assert release["spec"]["chart"]["spec"]["chart"] == "charts/tidings"
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(release["spec"]["values"]))
    assert operator_env(helm_template("-f", str(values)))["TIDINGS_SMTP_TLS"] == "starttls"


def test_kind_demo_values_render_and_name_the_mailpit_service() -> None:
    script = (ROOT / "hack" / "kind-demo").read_text()
    flags = re.findall(r'--set ([a-zA-Z.]+)=("?[^\s"]*"?)', script)
    assert {"image.repository", "image.pullPolicy", "mailpit.enabled"} <= {k for k, _ in flags}
    sets = [f"{key}={'x' if '$' in value else value.strip(chr(34))}" for key, value in flags]
    rendered = helm_template(*[arg for s in sets for arg in ("--set", s)])
    services = {d["metadata"]["name"] for d in rendered if d["kind"] == "Service"}
    port_forward = re.search(r"port-forward svc/(\S+) ", script).group(1)
    assert port_forward in services
    env = operator_env(rendered)
    assert env["TIDINGS_SMTP_HOST"].startswith(f"{port_forward}.tidings.svc")
    assert env["TIDINGS_RENDERER_PULL_POLICY"] == "Never"


def operator_env(rendered: list[dict[str, Any]]) -> dict[str, str]:
    deployment = next(
        d for d in rendered if d["kind"] == "Deployment" and "mailpit" not in d["metadata"]["name"]
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}
