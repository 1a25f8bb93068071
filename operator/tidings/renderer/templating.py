"""Jinja2 rendering: the built-in template per report type, or a custom one from a ConfigMap.

All templates run in a sandboxed, autoescaping environment with StrictUndefined: a custom template
cannot reach Python internals, cannot inject markup through row values, and a typo in a variable
name is an error that names it instead of an empty cell.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from importlib import resources
from typing import Any

from jinja2 import ChoiceLoader, DictLoader, PackageLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from tidings.branding import DEFAULT_ACCENT, Branding, css_string
from tidings.renderer.reports import Report
from tidings.renderer.reports.types import type_templates
from tidings.renderer.result import InputError

CUSTOM_NAME = "custom.html.j2"


MAX_CUSTOM_HTML_CHARS = 5_000_000
MAX_VALUE_CHARS = 1_000_000  # one value built by * or ** in a custom template


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus a bound on what `*` and `**` can build: `'x' * 10**9` is refused
    before it exists (the output bound would only see it afterwards)."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _number(left) and _number(right) and abs(right) > 64:
            raise InputError("spec.templateRef: an exponent above 64 is not allowed")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and _number(times)
                if sized and len(seq) * max(0, int(times)) > MAX_VALUE_CHARS:
                    raise InputError(
                        f"spec.templateRef: a value over {MAX_VALUE_CHARS:,} characters"
                    )
        return super().call_binop(context, operator, left, right)


# What a faulty custom template raises besides TemplateError: the template's fault (exit 65).
_TEMPLATE_FAULTS = (
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    RecursionError,
    MemoryError,
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _environment(custom_template: str | None = None) -> SandboxedEnvironment:
    loaders: list[Any] = [PackageLoader("tidings", "templates")]
    loaders.append(type_templates())
    if custom_template is not None:
        loaders.insert(0, DictLoader({CUSTOM_NAME: custom_template}))
    return _BoundedSandbox(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def stylesheet() -> str:
    return resources.files("tidings").joinpath("templates/report.css").read_text(encoding="utf-8")


def context(
    report: Report, *, logo: str | None, data_files: str, brand: Branding | None = None
) -> dict[str, Any]:
    """What every template sees (documented in docs/renderer.md, "Custom templates").
    `csv_attached` stays for custom templates written before xlsx: any full-data file."""
    brand = brand or Branding()
    return {
        "report": report,
        "chart": Markup(report.chart_svg),  # built by charts.py, which escapes every label
        "css": Markup(stylesheet()),
        "brand_css": Markup(brand_css(brand)),
        "brand": brand,
        "logo": logo,
        "data_files": data_files,
        "csv_attached": bool(data_files),
    }


def brand_css(brand: Branding) -> str:
    """The stylesheet's accent colour and footer text replaced by the branding's (the colour is
    validated as #rrggbb, the footer text escaped as a CSS string)."""
    rules = []
    if brand.accent_color.lower() != DEFAULT_ACCENT:
        colour = brand.accent_color
        rules.append(
            f".masthead {{ border-bottom-color: {colour}; }} .masthead .kind {{ color: {colour}; }}"
        )
    if brand.footer_text:
        text = css_string(f" · {brand.footer_text}")
        rules.append(
            f'@page {{ @bottom-left {{ content: "Generated " string(generated) "{text}"; }} }}'
        )
    return "\n".join(rules)


def render_html(
    report: Report,
    *,
    custom_template: str | None,
    logo: str | None,
    data_files: str = "",
    brand: Branding | None = None,
) -> str:
    """The report page as HTML. A broken custom template is an InputError naming the line."""
    env = _environment(custom_template)
    name = CUSTOM_NAME if custom_template is not None else f"{report.report_type}.html.j2"
    values = context(report, logo=logo, data_files=data_files, brand=brand)
    if custom_template is None:
        return env.get_template(name).render(values)
    try:
        return _bounded_output(env.get_template(name).generate(values))
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InputError(
            f"spec.templateRef: the custom template cannot be rendered{where}: {error}"
        ) from None
    except _TEMPLATE_FAULTS as error:
        raise InputError(f"spec.templateRef: the custom template failed: {error}") from None


def _bounded_output(chunks: Iterator[str]) -> str:
    """The custom template's output, refused beyond MAX_CUSTOM_HTML_CHARS (it feeds the PDF
    renderer, whose time and memory grow with it); time is bounded by the run's deadline."""
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_CUSTOM_HTML_CHARS:
            raise InputError(
                f"spec.templateRef: the custom template produced more than "
                f"{MAX_CUSTOM_HTML_CHARS:,} characters of HTML"
            )
        parts.append(chunk)
    return "".join(parts)


def render_email_html(
    report: Report,
    *,
    attachment_name: str | None,
    data_files: str,
    brand: Branding | None = None,
    logo_cid: str | None = None,
) -> str:
    """The HTML mail body, branded like the PDF; the logo is an inline part (`cid:`), which
    mail clients show where they block data: URIs and remote images."""
    values = context(report, logo=f"cid:{logo_cid}" if logo_cid else None, data_files=data_files)
    values["brand"] = brand or Branding()
    values["attachment_name"] = attachment_name
    return _environment().get_template("email.html.j2").render(values)


def subject(template: str, *, title: str, date: str) -> str:
    """delivery.subjectTemplate read as validation reads it (str.format syntax): {name} and
    {date} are filled in, `{{` and `}}` are literal braces. Values are inserted once and never
    read again, so braces or `{date}` inside a title stay as written. Line breaks would be header
    injection: they become spaces."""
    values = {"name": title, "date": date}
    parts = []
    try:
        for literal, field, _, _ in string.Formatter().parse(template):
            parts.append(literal)
            if field is not None:
                parts.append(values[field])
    except (ValueError, KeyError) as error:
        raise InputError(f"spec.delivery.subjectTemplate: cannot be used: {error}") from None
    return " ".join("".join(parts).split())
