"""Jinja2 rendering: the built-in template per report type, or a custom one from a ConfigMap.

All templates run in a sandboxed, autoescaping environment with StrictUndefined: a custom template
cannot reach Python internals, cannot inject markup through row values, and a typo in a variable
name is an error that names it instead of an empty cell.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from jinja2 import ChoiceLoader, DictLoader, PackageLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from tidings.renderer.reports import Report
from tidings.renderer.reports.types import type_templates
from tidings.renderer.result import InputError

CUSTOM_NAME = "custom.html.j2"


def _environment(custom_template: str | None = None) -> SandboxedEnvironment:
    loaders: list[Any] = [PackageLoader("tidings", "templates")]
    loaders.append(type_templates())
    if custom_template is not None:
        loaders.insert(0, DictLoader({CUSTOM_NAME: custom_template}))
    return SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def stylesheet() -> str:
    return resources.files("tidings").joinpath("templates/report.css").read_text(encoding="utf-8")


def context(report: Report, *, logo: str | None, csv_attached: bool) -> dict[str, Any]:
    """What every template sees (documented in docs/renderer.md, "Custom templates")."""
    return {
        "report": report,
        "chart": Markup(report.chart_svg),  # built by charts.py, which escapes every label
        "css": Markup(stylesheet()),
        "logo": logo,
        "csv_attached": csv_attached,
    }


def render_html(
    report: Report, *, custom_template: str | None, logo: str | None, csv_attached: bool
) -> str:
    """The report page as HTML. A broken custom template is an InputError naming the line."""
    env = _environment(custom_template)
    name = CUSTOM_NAME if custom_template is not None else f"{report.report_type}.html.j2"
    values = context(report, logo=logo, csv_attached=csv_attached)
    if custom_template is None:
        return env.get_template(name).render(values)
    try:
        return env.get_template(name).render(values)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InputError(
            f"spec.templateRef: the custom template cannot be rendered{where}: {error}"
        ) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        raise InputError(f"spec.templateRef: the custom template failed: {error}") from None


def render_email_html(report: Report, *, attachment_name: str, csv_attached: bool) -> str:
    values = context(report, logo=None, csv_attached=csv_attached)
    values["attachment_name"] = attachment_name
    return _environment().get_template("email.html.j2").render(values)


def subject(template: str, *, title: str, date: str) -> str:
    """delivery.subjectTemplate with {name} and {date} filled in; no other formatting applies,
    so braces in a title are safe. Line breaks would be header injection: they become spaces."""
    text = template.replace("{name}", title).replace("{date}", date)
    return " ".join(text.split())
