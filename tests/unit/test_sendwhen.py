"""spec.delivery.sendWhen, pure: the threshold parser (properties and examples), the decision
per mode, the rows digest, and the admission rules in tidings.validation."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.admission_cases import BASE

from tidings import sendwhen
from tidings.sendwhen import And, Compare, Name, Not, Number, Or, ThresholdError
from tidings.validation import validate_spec

NAMES = st.sampled_from(["rows", "open", "overdue", "critical", "x_1", "A"])
NUMBERS = st.from_regex(r"\A-?[0-9]{1,6}(\.[0-9]{1,3})?\Z", fullmatch=True).map(Number)
OPERANDS = st.one_of(NAMES.map(Name), NUMBERS)
COMPARES = st.builds(
    Compare, NAMES.map(Name), st.sampled_from(sendwhen.OPERATORS), OPERANDS
) | st.builds(Compare, NUMBERS, st.sampled_from(sendwhen.OPERATORS), NAMES.map(Name))


def _joined(kind, items):
    """And/Or as the parser builds them: two or more items, none of the same kind."""
    flat = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


TREES = st.recursive(
    COMPARES,
    lambda inner: st.one_of(
        inner.map(Not),
        st.lists(inner, min_size=2, max_size=4).map(lambda xs: _joined(And, xs)),
        st.lists(inner, min_size=2, max_size=4).map(lambda xs: _joined(Or, xs)),
    ),
    max_leaves=12,
)
FIGURES = st.dictionaries(
    NAMES,
    st.one_of(st.none(), st.integers(-1000, 1000).map(float), st.floats(-1e6, 1e6)),
)


def depth(node) -> int:
    if isinstance(node, Compare):
        return 0
    if isinstance(node, Not):
        return 1 + depth(node.item)
    return 1 + max(depth(i) for i in node.items)


def reference(node, figures) -> bool:
    """What the tree means, written independently of sendwhen.evaluate."""
    if isinstance(node, Compare):
        values = []
        for operand in (node.left, node.right):
            values.append(
                float(operand.text) if isinstance(operand, Number) else figures.get(operand.name)
            )
        a, b = values
        if a is None or b is None:
            return False
        return {
            ">": a > b,
            ">=": a >= b,
            "<": a < b,
            "<=": a <= b,
            "==": a == b,
            "!=": a != b,
        }[node.op]
    if isinstance(node, Not):
        return not reference(node.item, figures)
    results = [reference(i, figures) for i in node.items]
    return all(results) if isinstance(node, And) else any(results)


@settings(deadline=None, max_examples=300)
@given(TREES)
def test_printing_a_tree_and_parsing_it_gives_the_same_tree(tree):
    if depth(tree) >= sendwhen.MAX_DEPTH:
        return
    assert sendwhen.parse(sendwhen.unparse(tree)) == tree


@settings(deadline=None, max_examples=300)
@given(TREES, FIGURES)
def test_evaluation_means_what_the_tree_says(tree, figures):
    if depth(tree) >= sendwhen.MAX_DEPTH:
        return
    parsed = sendwhen.parse(sendwhen.unparse(tree))
    assert sendwhen.evaluate(parsed, figures) is reference(tree, figures)


@settings(deadline=None, max_examples=200)
@given(TREES, st.sampled_from(["", " ", "  ", "\t", "\n"]))
def test_spacing_never_changes_the_tree(tree, gap):
    if depth(tree) >= sendwhen.MAX_DEPTH:
        return
    text = sendwhen.unparse(tree)
    spaced = gap + text.replace("(", f"({gap}").replace(")", f"{gap})") + gap
    assert sendwhen.parse(spaced) == tree


@settings(deadline=None, max_examples=500)
@given(st.text(max_size=80))
def test_any_text_parses_or_gets_a_threshold_error(text):
    try:
        tree = sendwhen.parse(text)
    except ThresholdError as error:
        assert str(error)
        assert "; " not in str(error)  # admission's summary splits problems on "; "
    else:
        assert sendwhen.parse(sendwhen.unparse(tree)) == tree


@settings(deadline=None, max_examples=200)
@given(st.text(alphabet="()notandor <>=!0123456789abc", max_size=60))
def test_operator_soup_parses_or_gets_a_threshold_error(text):
    try:
        tree = sendwhen.parse(text)
    except ThresholdError as error:
        assert "column" in str(error) or "empty" in str(error) or "nests" in str(error)
    else:
        assert sendwhen.parse(sendwhen.unparse(tree)) == tree


def test_python_code_is_not_an_expression():
    for text in (
        "__import__('os').system('id')",
        "open.__class__ > 0",
        "rows > 0; rows < 1",
        "rows > 0 if 1 else 0",
        "lambda: 1",
        "rows > 1e3",
        "rows > 0x10",
        "rows",
        "rows > ",
        "(rows > 0",
        "rows > 0)",
        "rows > 0 and",
        "not",
        "1 > 0",
        "",
        "   ",
    ):
        with pytest.raises(ThresholdError):
            sendwhen.parse(text)


def test_nesting_and_length_are_bounded():
    deep = "(" * sendwhen.MAX_DEPTH + "rows > 0" + ")" * sendwhen.MAX_DEPTH
    with pytest.raises(ThresholdError, match="nests more than"):
        sendwhen.parse(deep)
    shallow = "(" * (sendwhen.MAX_DEPTH - 1) + "rows > 0" + ")" * (sendwhen.MAX_DEPTH - 1)
    assert sendwhen.parse(shallow) == Compare(Name("rows"), ">", Number("0"))
    with pytest.raises(ThresholdError, match="longer than"):
        sendwhen.parse("rows > 0 or " * 60 + "rows > 0")


def test_precedence_and_binds_tighter_than_or_and_not_tighter_than_and():
    tree = sendwhen.parse("not a > 1 and b < 2 or c == 3")
    assert tree == Or(
        (
            And((Not(Compare(Name("a"), ">", Number("1"))), Compare(Name("b"), "<", Number("2")))),
            Compare(Name("c"), "==", Number("3")),
        )
    )
    assert sendwhen.evaluate(tree, {"a": 0, "b": 1, "c": 0}) is True
    assert sendwhen.evaluate(tree, {"a": 2, "b": 1, "c": 0}) is False


def test_the_issue_example_against_figures():
    tree = sendwhen.parse("overdue > 0 and open >= 5")
    assert sendwhen.names(tree) == ["overdue", "open"]
    assert sendwhen.evaluate(tree, {"overdue": 1, "open": 5}) is True
    assert sendwhen.evaluate(tree, {"overdue": 0, "open": 9}) is False
    assert sendwhen.evaluate(tree, {"overdue": None, "open": 9}) is False


def test_messages_say_where():
    with pytest.raises(ThresholdError, match=r"expected a comparison .* at column 6, found 'and'"):
        sendwhen.parse("rows and open > 1")
    with pytest.raises(ThresholdError, match=r"unexpected character '&' at column 10"):
        sendwhen.parse("rows > 0 && open > 1")


def test_figure_names_are_checked_per_report_type():
    assert sendwhen.problems("overdue > 0 and open >= 5", "audit_report") == []
    (message,) = sendwhen.problems("overdue > 0 and incidents > 1", "audit_report")
    assert message.startswith("incidents is not a figure of reportType audit_report")
    assert "rows, findings, open, overdue" in message
    assert sendwhen.problems("rows > 0", "custom_query") == []


@pytest.mark.parametrize(
    ("shown", "value"),
    [("1,234", 1234.0), ("85%", 85.0), ("12.5", 12.5), ("0", 0.0), ("—", None), ("3 of 5", None)],
)
def test_card_values_read_as_numbers(shown, value):
    assert sendwhen.figure_value(shown) == value


def test_a_card_left_out_when_zero_reads_as_zero():
    values = sendwhen.figure_values("compliance_readiness", 3, [("Pass", "3"), ("Fail", "0")])
    assert values["unknown"] == 0.0
    assert values["readiness"] is None  # not shown at all: no value
    assert values["rows"] == 3.0


def test_the_digest_ignores_row_order_and_sees_any_change():
    rows = [{"id": 1, "status": "open"}, {"id": 2, "status": "closed"}]
    same = sendwhen.rows_digest(rows)
    assert sendwhen.is_digest(same)
    assert sendwhen.rows_digest(list(reversed(rows))) == same
    changed = copy.deepcopy(rows)
    changed[1]["status"] = "open"
    assert sendwhen.rows_digest(changed) != same
    assert sendwhen.rows_digest(rows[:1]) != same
    assert sendwhen.rows_digest([]) != same


@pytest.mark.parametrize(
    ("mode", "rows", "kwargs", "send"),
    [
        ("always", 0, {}, True),
        ("nonEmpty", 0, {}, False),
        ("nonEmpty", 2, {}, True),
        ("empty", 0, {}, True),
        ("empty", 2, {}, False),
        ("changed", 2, {"digest": "sha256:a", "last_digest": None}, True),
        ("changed", 2, {"digest": "sha256:a", "last_digest": "sha256:a"}, False),
        ("changed", 2, {"digest": "sha256:a", "last_digest": "sha256:b"}, True),
        ("threshold", 2, {"threshold": "rows > 1", "figures": {"rows": 2.0}}, True),
        ("threshold", 2, {"threshold": "rows > 2", "figures": {"rows": 2.0}}, False),
    ],
)
def test_each_mode_decides(mode, rows, kwargs, send):
    decision = sendwhen.decide(mode, rows=rows, **kwargs)
    assert decision.send is send
    assert (decision.reason == "") is send
    if not send:
        assert f"spec.delivery.sendWhen {mode}" in decision.reason


def test_a_false_threshold_says_the_figures_it_saw():
    decision = sendwhen.decide(
        "threshold", rows=0, threshold="overdue>0", figures={"rows": 0.0, "overdue": 0.0}
    )
    assert decision.reason == (
        "threshold overdue > 0 is false (overdue 0) (spec.delivery.sendWhen threshold)"
    )


def spec_with(delivery: dict, report_type: str = "audit_report") -> dict:
    spec = copy.deepcopy(BASE)
    spec["reportType"] = report_type
    spec.setdefault("delivery", {}).update(delivery)
    return spec


def problems_of(spec: dict) -> list[str]:
    return [str(p) for p in validate_spec(spec).errors]


def test_admission_takes_a_threshold_over_the_types_figures():
    spec = spec_with({"sendWhen": {"mode": "threshold", "threshold": "overdue > 0 and open >= 5"}})
    assert problems_of(spec) == []


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        ("overdue >", "expected a figure name or a number at column 10, found the end"),
        ("incidents > 0", "incidents is not a figure of reportType audit_report"),
        ("rows > 0 or eval(1)", "expected a comparison"),
    ],
)
def test_admission_refuses_a_bad_threshold_naming_the_field(threshold, expected):
    spec = spec_with({"sendWhen": {"mode": "threshold", "threshold": threshold}})
    (problem,) = problems_of(spec)
    assert problem.startswith("spec.delivery.sendWhen.threshold: ")
    assert expected in problem


def test_admission_refuses_a_threshold_without_its_mode_and_the_reverse():
    (problem,) = problems_of(spec_with({"sendWhen": {"mode": "changed", "threshold": "rows > 0"}}))
    assert problem == "spec.delivery.sendWhen.threshold: is only for mode threshold"
    (problem,) = problems_of(spec_with({"sendWhen": {"mode": "threshold"}}))
    assert problem.startswith("spec.delivery.sendWhen.threshold: is required for mode threshold")


def test_skip_if_empty_agrees_with_non_empty_and_contradicts_the_rest():
    assert problems_of(spec_with({"skipIfEmpty": True, "sendWhen": {"mode": "nonEmpty"}})) == []
    (problem,) = problems_of(spec_with({"skipIfEmpty": True, "sendWhen": {"mode": "empty"}}))
    assert problem.startswith("spec.delivery.skipIfEmpty: is the older form of sendWhen mode")
    assert "contradicts mode empty" in problem
    assert problems_of(spec_with({"skipIfEmpty": False, "sendWhen": {"mode": "empty"}})) == []


@pytest.mark.parametrize("report_type", sorted(sendwhen.FIGURES))
def test_problem_messages_stay_one_clause_for_admission(report_type):
    for text in ("nope > 1", "rows >", "1 > 2", "(rows > 1"):
        for message in sendwhen.problems(text, report_type):
            assert "; " not in message  # validation's summary splits on it
