"""Jinja2 rendering: the built-in template per report type, or a custom one from a ConfigMap.

All templates run in a sandboxed, autoescaping environment with StrictUndefined: a custom template
cannot reach Python internals, cannot inject markup through row values, and a typo in a variable
name is an error that names it instead of an empty cell.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterator
from importlib import resources
from typing import Any

from jinja2 import ChoiceLoader, DictLoader, PackageLoader, StrictUndefined, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from tidings.branding import DEFAULT_ACCENT, Branding, css_string
from tidings.renderer.reports import Report
from tidings.renderer.reports.types import type_templates
from tidings.renderer.result import InputError

CUSTOM_NAME = "custom.html.j2"


MAX_CUSTOM_HTML_CHARS = 5_000_000
MAX_VALUE_CHARS = 1_000_000  # what one operation or call in a custom template may build


def _refuse(what: str) -> InputError:
    return InputError(
        f"spec.templateRef: {what} would build a value over {MAX_VALUE_CHARS:,} characters"
    )


def _bound(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise _refuse(what)


def _width(value: Any) -> int:
    return int(value) if _number(value) else 0


def _replaced_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(text)
    found = text.count(old) if old else len(text) + 1
    if _number(count) and count >= 0:
        found = min(found, int(count))
    return len(text) + found * max(0, len(new) - len(old))


def _joined_size(separator: str, items: Any) -> int:
    return len(separator) * max(0, len(items) - 1) + sum(len(str(item)) for item in items)


# A str method that can build far more than it is given: the size of what it would build.
_STR_METHODS = {
    "ljust": lambda text, width=0, *_: max(len(text), _width(width)),
    "rjust": lambda text, width=0, *_: max(len(text), _width(width)),
    "center": lambda text, width=0, *_: max(len(text), _width(width)),
    "zfill": lambda text, width=0, *_: max(len(text), _width(width)),
    "expandtabs": lambda text, tabsize=8: len(text) + text.count("\t") * _width(tabsize),
    "replace": _replaced_size,
}

# %-conversions (`%0999999999d`) and format specs (`{:>999999999}`): widths and precisions.
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent(template: str) -> None:
    for match in _PERCENT.finditer(template):
        for number in match.groups():
            if number == "*":
                raise InputError("spec.templateRef: a `*` width or precision is not allowed")
            _bound(int(number or 0), f"the format width or precision {number}")


def _check_format(template: str) -> None:
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format reports it
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            raise InputError("spec.templateRef: a width from an argument ({:{w}}) is not allowed")
        for number in re.findall(r"\d+", spec or ""):
            _bound(int(number), f"the format width or precision {number}")


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus a bound on what one operation or call can build: `'x' * 10**9`,
    `'x'.ljust(10**9)`, `'%0999999999d'|format(1)` are refused before the value exists (the
    output bound would only see it afterwards), and a `~` or `+` that would grow past the
    bound is refused, so a loop cannot double a value into gigabytes."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _number(left) and _number(right) and abs(right) > 64:
            raise InputError("spec.templateRef: an exponent above 64 is not allowed")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and _number(times):
                    _bound(len(seq) * max(0, int(times)), "`*`")
        if operator == "+" and isinstance(left, str | list | tuple) and hasattr(right, "__len__"):
            _bound(len(left) + len(right), "`+`")
        if operator == "%" and isinstance(left, str):
            _check_percent(left)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", "")
        if isinstance(owner, str) and name in _STR_METHODS:
            _bound(_STR_METHODS[name](owner, *args, **kwargs), f"str.{name}()")
        if isinstance(owner, str) and name == "join" and args:
            items = list(args[0])
            _bound(_joined_size(owner, items), "str.join()")
            args = (items, *args[1:])
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format(template)
            return wrapped(*args, **kwargs)

        return checked

    def bounded_concat(self, joined: str) -> str:
        """`a ~ b`: at most twice the bound (each operand is within it), refused past it."""
        _bound(len(joined), "`~`")
        return joined


class _BoundedCodeGenerator(CodeGenerator):
    """`~` checked by the environment's bounded_concat."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


def _bounded_filters() -> dict[str, Any]:
    """The built-in filters that can build more than they are given, each checked first."""
    from jinja2 import filters

    def checked(filter_: Any, size: Any, what: str) -> Any:
        passed = 0 if getattr(filter_, "jinja_pass_arg", None) is None else 1  # eval_ctx, env

        @functools.wraps(filter_)
        def run(*args: Any, **kwargs: Any) -> Any:
            _bound(size(*args[passed:], **kwargs), what)
            return filter_(*args, **kwargs)

        return run

    def percent(value: Any, *_: Any, **__: Any) -> int:
        _check_percent(str(value))
        return 0

    def indent(text: Any, width: Any = 4, *_: Any, **__: Any) -> int:
        text = str(text)
        pad = len(width) if isinstance(width, str) else _width(width)
        return len(text) + (text.count("\n") + 1) * pad

    def join(items: Any, separator: Any = "", *_: Any, **__: Any) -> int:
        return _joined_size(str(separator), items) if hasattr(items, "__len__") else 0

    def wrap(text: Any, width: Any = 79, *_: Any, wrapstring: Any = None, **__: Any) -> int:
        text = str(text)
        return len(text) + (len(text) // max(1, _width(width)) + 1) * len(wrapstring or "\n")

    def parts(_: Any, count: Any = 0, *__: Any, **___: Any) -> int:
        return _width(count)

    return {
        "format": checked(filters.do_format, percent, "|format"),
        "center": checked(filters.do_center, _STR_METHODS["center"], "|center"),
        "indent": checked(filters.do_indent, indent, "|indent"),
        "replace": checked(filters.do_replace, _replaced_size, "|replace"),
        "join": checked(filters.do_join, join, "|join"),
        "wordwrap": checked(filters.do_wordwrap, wrap, "|wordwrap"),
        "batch": checked(filters.do_batch, parts, "|batch"),
        "slice": checked(filters.do_slice, parts, "|slice"),
    }


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
    env = _BoundedSandbox(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.code_generator_class = _BoundedCodeGenerator
    env.filters.update(_bounded_filters())
    env.globals.pop("lipsum", None)  # lipsum(n=10**9): no report needs placeholder text
    return env


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


def subject(template: str, *, title: str, date: str, window: str = "") -> str:
    """delivery.subjectTemplate read as validation reads it (str.format syntax): {name},
    {date} and {window} are filled in, `{{` and `}}` are literal braces. Values are inserted
    once and never read again, so braces or `{date}` inside a title stay as written. Line breaks
    would be header injection: they become spaces."""
    values = {"name": title, "date": date, "window": window}
    parts = []
    try:
        for literal, field, _, _ in string.Formatter().parse(template):
            parts.append(literal)
            if field is not None:
                parts.append(values[field])
    except (ValueError, KeyError) as error:
        raise InputError(f"spec.delivery.subjectTemplate: cannot be used: {error}") from None
    return " ".join("".join(parts).split())
