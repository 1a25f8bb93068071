"""spec.delivery.sendWhen, pure: when a run sends, the threshold expression language, each report
type's summary figures, and the digest of a window's rows.

A threshold is a condition over the report's summary figures (its KPI cards), such as
`overdue > 0 and open >= 5`. It is parsed by the small recursive-descent parser below, never by
Python's eval or ast, so admission checks exactly what the renderer evaluates:

    expr       := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expr ")" | comparison
    comparison := operand OP operand      OP: > >= < <= == !=
    operand    := NAME | NUMBER           NUMBER: -?digits[.digits], NAME: [A-Za-z_][A-Za-z0-9_]*

A comparison names at least one figure. A figure without a value in a window (a percentage of
nothing, shown as a dash) makes each comparison it is in false.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALWAYS, NON_EMPTY, EMPTY, CHANGED, THRESHOLD = "always", "nonEmpty", "empty", "changed", "threshold"
MODES = (ALWAYS, NON_EMPTY, EMPTY, CHANGED, THRESHOLD)
MAX_THRESHOLD_CHARS = 512
MAX_DEPTH = 16  # nested parentheses and nots: a bound on the parser's recursion
OPERATORS = (">=", "<=", "==", "!=", ">", "<")
KEYWORDS = frozenset({"and", "or", "not"})
DIGEST_PREFIX = "sha256:"
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


@dataclass(frozen=True)
class Card:
    """A figure a threshold may name: `label` is its KPI card's label in the rendered report."""

    name: str
    label: str
    absent_is_zero: bool = False  # the card is left out when its count is zero


# Every type has `rows` (rows after filters); the rest are its numeric KPI cards. A card shown
# as text (a duration, "3 of 5", a name) is not a figure.
FIGURES: dict[str, tuple[Card, ...]] = {
    "audit_log": (
        Card("events", "Events"),
        Card("actors", "Actors"),
        Card("deniedOrFailed", "Denied or failed"),
    ),
    "audit_report": (
        Card("findings", "Findings"),
        Card("open", "Open"),
        Card("overdue", "Overdue"),
        Card("openCriticalOrHigh", "Open critical or high"),
    ),
    "changes_summary": (
        Card("changes", "Changes"),
        Card("completed", "Completed"),
        Card("failedOrRolledBack", "Failed or rolled back"),
        Card("successRate", "Success rate"),
        Card("teams", "Teams"),
    ),
    "compliance_readiness": (
        Card("readiness", "Readiness"),
        Card("pass", "Pass"),
        Card("fail", "Fail"),
        Card("notApplicable", "Not applicable"),
        Card("unknown", "Unknown status", absent_is_zero=True),
    ),
    "custom_query": (),
    "dora_snapshot": (Card("changeFailureRate", "Change failure rate"),),
    "executive_summary": (
        Card("metrics", "Metrics"),
        Card("onTrack", "On track"),
        Card("atRisk", "At risk"),
        Card("offTrack", "Off track"),
    ),
    "incidents_summary": (
        Card("incidents", "Incidents"),
        Card("critical", "Critical / Sev1"),
        Card("open", "Still open"),
        Card("resolved", "Resolved"),
    ),
    "msp_client_report": (
        Card("clients", "Clients"),
        Card("averagePosture", "Average posture"),
        Card("weakPosture", "Weak posture"),
        Card("openFindings", "Open findings"),
        Card("openRisks", "Open risks"),
        Card("auditDue", "Audit due"),
    ),
    "risk_report": (
        Card("risks", "Risks"),
        Card("critical", "Critical"),
        Card("high", "High"),
        Card("open", "Open"),
        Card("overdue", "Overdue"),
        Card("averageScore", "Average score"),
    ),
}


def figure_names(report_type: str) -> list[str]:
    """The names a threshold of this report type may use, `rows` first."""
    return ["rows", *(card.name for card in FIGURES.get(report_type, ()))]


def figures_doc() -> str:
    """One line per report type listing its figures (for the CRD and docs/api.md)."""
    return "; ".join(f"{kind}: {', '.join(figure_names(kind))}" for kind in sorted(FIGURES))


# ------------------------------------------------------------------------------------- syntax


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Number:
    text: str  # as written, so printing it back gives the same expression

    @property
    def value(self) -> float:
        return float(self.text)


Operand = Name | Number


@dataclass(frozen=True)
class Compare:
    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]  # two or more, none an And


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]  # two or more, none an Or


Node = Compare | Not | And | Or


class ThresholdError(ValueError):
    """A threshold that does not parse; the message says where and why."""


_TOKEN = re.compile(
    r"(?:(?P<number>-?[0-9]+(?:\.[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>>=|<=|==|!=|>|<)|(?P<paren>[()]))"
)


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | keyword | op | paren | end
    text: str
    at: int  # 1-based column, for messages


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            tokens.append(_Token("end", "", position + 1))
            return tokens
        match = _TOKEN.match(text, position)
        if match is None or match.lastgroup is None:
            shown = text[position]
            raise ThresholdError(
                f"unexpected character {shown!r} at column {position + 1}: use figure names, "
                "numbers, comparisons (> >= < <= == !=), and, or, not and parentheses"
            )
        kind, word = match.lastgroup, match.group(match.lastgroup)
        at = match.start(kind) + 1
        if kind == "name" and word in KEYWORDS:
            kind = "keyword"
        tokens.append(_Token(kind, word, at))
        position = match.end()


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.text == word

    def expr(self, depth: int) -> Node:
        items = [self.term(depth)]
        while self.at_keyword("or"):
            self.take()
            items.append(self.term(depth))
        return items[0] if len(items) == 1 else Or(_flat(items, Or))

    def term(self, depth: int) -> Node:
        items = [self.factor(depth)]
        while self.at_keyword("and"):
            self.take()
            items.append(self.factor(depth))
        return items[0] if len(items) == 1 else And(_flat(items, And))

    def factor(self, depth: int) -> Node:
        if depth >= MAX_DEPTH:
            raise ThresholdError(f"nests more than {MAX_DEPTH} levels of parentheses and not")
        token = self.peek()
        if self.at_keyword("not"):
            self.take()
            return Not(self.factor(depth + 1))
        if token.kind == "paren" and token.text == "(":
            self.take()
            inner = self.expr(depth + 1)
            closing = self.take()
            if closing.text != ")":
                raise ThresholdError(f"expected ')' at column {closing.at}, {_found(closing)}")
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        left = self.operand()
        op = self.take()
        if op.kind != "op":
            raise ThresholdError(
                f"expected a comparison (> >= < <= == !=) at column {op.at}, {_found(op)}"
            )
        right = self.operand()
        if isinstance(left, Number) and isinstance(right, Number):
            raise ThresholdError(
                f"compares two numbers at column {op.at}: name a figure on one side"
            )
        return Compare(left, op.text, right)

    def operand(self) -> Operand:
        token = self.take()
        if token.kind == "name":
            return Name(token.text)
        if token.kind == "number":
            return Number(token.text)
        raise ThresholdError(
            f"expected a figure name or a number at column {token.at}, {_found(token)}"
        )


def _found(token: _Token) -> str:
    return "found the end" if token.kind == "end" else f"found {token.text!r}"


def _flat(items: list[Node], kind: type[And] | type[Or]) -> tuple[Node, ...]:
    """`a and (b and c)` is `a and b and c`: one canonical tree per meaning of the text."""
    out: list[Node] = []
    for item in items:
        out.extend(item.items if isinstance(item, kind) else (item,))
    return tuple(out)


def parse(text: str) -> Node:
    """The expression's tree, or ThresholdError saying where it breaks the grammar."""
    if len(text) > MAX_THRESHOLD_CHARS:
        raise ThresholdError(f"is longer than {MAX_THRESHOLD_CHARS} characters")
    parser = _Parser(text)
    if parser.peek().kind == "end":
        raise ThresholdError("is empty: write a condition such as `rows > 0`")
    node = parser.expr(0)
    rest = parser.peek()
    if rest.kind != "end":
        raise ThresholdError(
            f"unexpected {rest.text!r} at column {rest.at}: join conditions with and / or"
        )
    return node


def names(node: Node) -> list[str]:
    """The figure names the expression uses, in order of first use."""
    found: dict[str, None] = {}
    stack: list[Node] = [node]
    while stack:
        item = stack.pop(0)
        if isinstance(item, Compare):
            found.update((o.name, None) for o in (item.left, item.right) if isinstance(o, Name))
        elif isinstance(item, Not):
            stack.insert(0, item.item)
        else:
            stack[:0] = item.items
    return list(found)


def unparse(node: Node) -> str:
    """The expression as text; parse(unparse(tree)) == tree."""
    if isinstance(node, Compare):
        return f"{_operand(node.left)} {node.op} {_operand(node.right)}"
    if isinstance(node, Not):
        inner = unparse(node.item)
        return f"not {inner}" if isinstance(node.item, Compare | Not) else f"not ({inner})"
    if isinstance(node, And):
        return " and ".join(
            f"({unparse(i)})" if isinstance(i, Or) else unparse(i) for i in node.items
        )
    return " or ".join(unparse(i) for i in node.items)


def _operand(operand: Operand) -> str:
    return operand.name if isinstance(operand, Name) else operand.text


def problems(text: str, report_type: str) -> list[str]:
    """Why a threshold cannot be used for this report type; [] when it can."""
    try:
        node = parse(text)
    except ThresholdError as error:
        return [str(error)]
    known = figure_names(report_type)
    unknown = [name for name in names(node) if name not in known]
    if not unknown:
        return []
    return [
        f"{', '.join(unknown)} {'is not a figure' if len(unknown) == 1 else 'are not figures'} "
        f"of reportType {report_type} (its figures: {', '.join(known)})"
    ]


# --------------------------------------------------------------------------------- evaluation


def evaluate(node: Node, figures: Mapping[str, float | None]) -> bool:
    """The expression's truth for these figure values. A figure that is missing or None
    makes each comparison it is in false."""
    if isinstance(node, Compare):
        left, right = _value(node.left, figures), _value(node.right, figures)
        if left is None or right is None:
            return False
        return _compare(left, node.op, right)
    if isinstance(node, Not):
        return not evaluate(node.item, figures)
    if isinstance(node, And):
        return all(evaluate(item, figures) for item in node.items)
    return any(evaluate(item, figures) for item in node.items)


def _value(operand: Operand, figures: Mapping[str, float | None]) -> float | None:
    return figures.get(operand.name) if isinstance(operand, Name) else operand.value


def _compare(left: float, op: str, right: float) -> bool:
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == "==":
        return left == right
    return left != right


_SHOWN_NUMBER = re.compile(r"^-?[\d,]+(?:\.\d+)?%?$")


def figure_value(shown: str) -> float | None:
    """A card's value as a number: "1,234" -> 1234, "85%" -> 85; a dash or text -> None."""
    text = shown.strip()
    if not _SHOWN_NUMBER.match(text):
        return None
    return float(text.rstrip("%").replace(",", ""))


def figure_values(
    report_type: str, rows: int, cards: Iterable[tuple[str, str]]
) -> dict[str, float | None]:
    """The figures of one rendered report from its (label, shown value) KPI cards."""
    shown = dict(cards)
    values: dict[str, float | None] = {"rows": float(rows)}
    for card in FIGURES.get(report_type, ()):
        if card.label in shown:
            values[card.name] = figure_value(shown[card.label])
        else:
            values[card.name] = 0.0 if card.absent_is_zero else None
    return values


def _shown(value: float | None) -> str:
    if value is None:
        return "no value"
    return f"{value:g}"


# ------------------------------------------------------------------------------------ digests


def is_digest(value: object) -> bool:
    """A well-formed rowsDigest (what a pod reports is checked before it is stored)."""
    return isinstance(value, str) and re.fullmatch(DIGEST_PATTERN, value) is not None


def rows_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the rows as canonical JSON, in any order: a source that returns the same
    rows in another order has not changed."""
    lines = sorted(
        json.dumps(row, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
        for row in rows
    )
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return DIGEST_PREFIX + digest.hexdigest()


# ----------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Decision:
    send: bool
    reason: str = ""  # why nothing is sent, for the Skipped result


def decide(
    mode: str,
    *,
    rows: int,
    empty_message: str = "No rows in this window.",
    digest: str = "",
    last_digest: str | None = None,
    threshold: str | None = None,
    figures: Mapping[str, float | None] | None = None,
) -> Decision:
    """Whether a run of this window sends, and if not, why (mode as spec.delivery.sendWhen)."""
    where = f"spec.delivery.sendWhen {mode}"
    if mode == NON_EMPTY and rows == 0:
        return Decision(False, f"{empty_message} ({where})")
    if mode == EMPTY and rows > 0:
        return Decision(False, f"the window has {rows} row(s); only an empty one is sent ({where})")
    if mode == CHANGED and last_digest and digest == last_digest:
        return Decision(False, f"the rows are the same as the last delivered run's ({where})")
    if mode == THRESHOLD:
        node = parse(threshold or "")
        values = figures or {}
        if not evaluate(node, values):
            used = ", ".join(f"{name} {_shown(values.get(name))}" for name in names(node))
            return Decision(False, f"threshold {unparse(node)} is false ({used}) ({where})")
    return Decision(True)
