"""The GitOps examples and the kind demo drive the chart with values it must accept: render the
chart with exactly those values, and check what the demo then relies on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from tests.support.chart_tools import container_env, render

ROOT = Path(__file__).resolve().parents[2]


def documents(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((ROOT / "examples" / "gitops" / name).read_text()))


def render_with(values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return render("tidings", "tidings", values_file)


def test_argocd_values_render(tmp_path: Path) -> None:
    app = next(
        d for d in documents("argocd-application.yaml") if d["metadata"]["name"] == "tidings"
    )
    assert app["spec"]["source"]["path"] == "charts/tidings"
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    env = container_env(render_with(app["spec"]["source"]["helm"]["valuesObject"], tmp_path))
    assert env["TIDINGS_SMTP_HOST"] == "smtp.internal.example.com"
    assert env["TIDINGS_ALLOWED_RECIPIENT_DOMAINS"] == "example.com"


def test_flux_values_render(tmp_path: Path) -> None:
    release = next(d for d in documents("flux.yaml") if d["kind"] == "HelmRelease")
    assert release["spec"]["chart"]["spec"]["chart"] == "charts/tidings"
    env = container_env(render_with(release["spec"]["values"], tmp_path))
    assert env["TIDINGS_SMTP_TLS"] == "starttls"


def test_kind_demo_values_render_and_relay_to_its_mailpit_service() -> None:
    script = (ROOT / "hack" / "kind-demo").read_text()
    flags = re.findall(r'--set ([a-zA-Z.]+)=("?[^\s"]*"?)', script)
    assert {"image.repository", "image.pullPolicy", "smtp.host"} <= {k for k, _ in flags}
    sets = [f"{key}={'x' if '$' in value else value.strip(chr(34))}" for key, value in flags]
    env = container_env(render("tidings", "tidings", set_values=tuple(sets)))
    mailpit = list(yaml.safe_load_all((ROOT / "hack" / "kind-demo-mailpit.yaml").read_text()))
    service = next(d for d in mailpit if d["kind"] == "Service")
    port_forward = re.search(r"port-forward svc/(\S+) ", script).group(1)
    assert port_forward == service["metadata"]["name"]
    meta = service["metadata"]
    assert env["TIDINGS_SMTP_HOST"] == f"{meta['name']}.{meta['namespace']}.svc"
    smtp_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "smtp")
    assert env["TIDINGS_SMTP_PORT"] == str(smtp_port)
    assert env["TIDINGS_RENDERER_PULL_POLICY"] == "Never"
