"""Properties of the validator on arbitrary input (hypothesis).

- validate_spec never raises on any JSON-like value, however mangled; it only reports problems,
  each under a spec.* path.
- Whatever it accepts is usable downstream as is: an accepted address goes into an email header
  and comes back unchanged, an accepted subject formats, an accepted schedule has a next fire time.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import string
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from croniter import croniter
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from tests.support.admission_cases import BASE, INVALID, VALID

from tidings.validation import (
    ValidationResult,
    address_problem,
    schedule_problems,
    subject_problems,
    validate_spec,
)

# Text that exercises the rules: header-injection characters, braces, cron syntax, unicode.
TRICKY = string.printable + "\u00e9\u2028\u0085\x00{}@<>\"'—ü\uff15"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=TRICKY, max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet=TRICKY, max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)


def spec_paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path into a spec, so mutations reach deep fields, not just the top level."""
    paths = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            paths += spec_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += spec_paths(value, (*prefix, index))
    return paths


# Small seeds only: a 5000-row spec would make every draw slow without reaching new code.
SEEDS = [s for s in [BASE] + [c.spec for c in VALID + INVALID] if len(json.dumps(s)) < 3000]
# Keys the validator looks at that a seed may not have.
EXTRA_KEYS = [("schedule",), ("timeZone",), ("templateRef",), ("suspend",), ("delivery",)]
SEED_PATHS = [spec_paths(seed) + EXTRA_KEYS for seed in SEEDS]


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A known spec with one to four fields replaced by arbitrary JSON values."""
    index = draw(st.integers(0, len(SEEDS) - 1))
    spec = copy.deepcopy(SEEDS[index])
    for _ in range(draw(st.integers(1, 4))):
        *parents, last = draw(st.sampled_from(SEED_PATHS[index]))
        node: Any = spec
        for key in parents:  # an earlier mutation may have replaced a parent: then skip
            node = node[key] if _has(node, key) else None
        if _has(node, last) or isinstance(node, dict):
            node[last] = draw(json_values)
    return spec


def _has(node: Any, key: str | int) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and key < len(node)


def assert_reported_not_raised(result: ValidationResult) -> None:
    assert isinstance(result, ValidationResult)
    assert result.ok is (result.errors == [])
    for problem in result.errors:
        assert problem.path == "spec" or problem.path.startswith(("spec.", "spec["))
        assert problem.message and str(problem) == f"{problem.path}: {problem.message}"
        # The summary joins problems with "; " on one line: messages must not break that.
        assert "; " not in problem.message and "\n" not in problem.message
    assert result.summary().split("; ") == [str(p) for p in result.errors] or result.ok
    assert all(isinstance(w, str) and w for w in result.warnings)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
@example({"; ": None})  # an unknown key that once broke the "; "-joined summary
def test_arbitrary_json_never_raises(value):
    assert_reported_not_raised(validate_spec(value))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_mangled_specs_never_raise(spec):
    assert_reported_not_raised(validate_spec(spec))


# -- addresses


def header_round_trip(address: str) -> tuple[bytes, list[Any]]:
    """Put the address in a To: header as the renderer does (EmailMessage, policy.default),
    serialize, and parse it back."""
    message = EmailMessage()
    message["To"] = address
    message["Subject"] = "report"
    message.set_content("body")
    raw = message.as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    return raw, list(parsed["To"].addresses)


addresses = st.emails() | st.text(alphabet=TRICKY, min_size=3, max_size=60).map(
    lambda s: s if "@" in s else s[: len(s) // 2] + "@" + s[len(s) // 2 :]
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(addresses)
@example("ciso@example.com")
@example("o'brien+weekly/reports@sub.example.co.uk")
@example("a" * 64 + "@" + "b" * 60 + "." + "c" * 60 + ".example.com")
def test_accepted_addresses_round_trip_into_a_header_unchanged(address):
    assume(address_problem(address) is None)
    raw, parsed = header_round_trip(address)
    assert len(parsed) == 1
    assert parsed[0].addr_spec == address
    assert parsed[0].display_name == ""
    # Long addresses are folded onto a continuation line; unfolded, the header is the address.
    headers = re.sub(rb"\n[ \t]+", b" ", raw.split(b"\n\n", 1)[0])
    assert f"To: {address}".encode() in headers.split(b"\n")


@settings(max_examples=300)
@given(st.text(alphabet=TRICKY, max_size=60))
def test_address_rule_never_raises(text):
    problem = address_problem(text)
    assert problem is None or isinstance(problem, str)


# -- subjects and schedules


@settings(max_examples=300)
@given(st.text(alphabet="{}!:namedt0 .[]_\r\n—x", max_size=30))
@example("{name} — {date}")
def test_accepted_subjects_format_to_one_line(template):
    assume(subject_problems(template) == [])
    subject = template.format(name="Payments weekly", date="2025-01-06")
    assert "\n" not in subject and "\r" not in subject


def cron_field(*tokens: str) -> st.SearchStrategy[str]:
    """A field as a list of tokens: mostly valid for that field, now and then a trap."""
    traps = ["*/0", "5-1", "L", "1#2", "60", "@daily", "TZ=UTC", ""]
    token = st.sampled_from([*tokens * 10, *traps])
    return st.lists(token, min_size=1, max_size=2).map(",".join)


schedules = st.tuples(
    cron_field("*", "0", "5", "*/15", "5/10", "0-29", "59"),
    cron_field("*", "?", "0", "9", "23", "8-17", "*/6"),
    cron_field("*", "?", "1", "15", "29", "30", "31", "1-7", "*/10"),
    cron_field("*", "2", "FEB", "jan-jun", "12", "*/3", "4,6,9,11"),
    cron_field("*", "?", "0", "6", "MON", "mon-fri", "SUN", "1-5/2"),
).map(" ".join)


@settings(max_examples=500)
@given(schedules)
@example("0 9 29 2 *")
def test_accepted_schedules_have_a_next_fire_time(schedule):
    assume(schedule_problems(schedule) == [])
    assert len(schedule.split(" ")) == 5
    start = dt.datetime(2031, 3, 30, 1, 30, tzinfo=dt.UTC)
    fire = croniter(schedule, start).get_next(dt.datetime)
    assert fire > start


@settings(max_examples=300)
@given(schedules | st.text(alphabet="0123456789*?/-, \t\nLW#@MONTUEJA=Z", max_size=30))
def test_schedule_rule_never_raises(schedule):
    problems = schedule_problems(schedule)
    assert all(isinstance(p, str) and p for p in problems)
