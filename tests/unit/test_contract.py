"""The result line between the renderer pod and the operator (tidings.contract): byte-compatible
with the line renderers wrote before the model existed, and compatible across versions."""

from __future__ import annotations

import json

import pytest

from tidings.contract import MalformedResult, ResultLine, result_from_message
from tidings.renderer.result import RunResult, sort_addresses

# A line exactly as the renderer wrote it before ResultLine (RunResult.as_dict + json.dumps).
OLD_LINE = (
    '{"outcome":"Delivered","failure":null,"scheduledTime":"2026-12-01T08:00:00Z",'
    '"windowStart":"2026-11-23T00:00:00Z","windowEnd":"2026-11-30T00:00:00Z",'
    '"recipientsAccepted":1,"recipientsRejected":1,"bytes":48000,"renderer":"pdf",'
    '"error":"not delivered to: b@example.com: 550 no","messageId":"<tidings.abc@example.com>",'
    '"attempts":1,"rows":14,"pages":2,'
    '"attachments":[{"name":"r.pdf","bytes":30000,"sha256":"' + "ab" * 32 + '"}],'
    '"addresses":{"to":{"accepted":["a@example.com"],"refused":{"b@example.com":"550 no"}}}}'
)


def test_the_renderer_writes_the_line_byte_for_byte_as_before() -> None:
    result = RunResult(
        outcome="Delivered",
        scheduled_time="2026-12-01T08:00:00Z",
        window_start="2026-11-23T00:00:00Z",
        window_end="2026-11-30T00:00:00Z",
        recipients_accepted=1,
        recipients_rejected=1,
        bytes=48000,
        renderer="pdf",
        error="not delivered to: b@example.com: 550 no",
        message_id="<tidings.abc@example.com>",
        attempts=1,
        rows=14,
        pages=2,
        attachments=[{"name": "r.pdf", "bytes": 30000, "sha256": "ab" * 32}],
        addresses=sort_addresses(
            {"to": ["a@example.com", "b@example.com"]},
            ["a@example.com"],
            {"b@example.com": "550 no"},
        ),
        exit_code=0,
    )
    assert result.to_json() == OLD_LINE  # the exit code is not on the line


def test_an_old_line_parses_and_round_trips() -> None:
    line = ResultLine.parse(OLD_LINE)
    assert (line.outcome, line.recipients_accepted, line.attachments[0].bytes) == (
        "Delivered",
        1,
        30000,
    )
    assert line.addresses["to"].refused == {"b@example.com": "550 no"}
    assert line.to_json() == OLD_LINE


def test_a_line_from_an_early_renderer_lacks_the_later_fields() -> None:
    line = ResultLine.parse('{"outcome":"Failed","failure":"transient","error":"relay down"}')
    assert (line.attempts, line.rows, line.attachments, line.addresses) == (0, None, [], {})
    assert not line.delivered


def test_a_line_from_a_newer_renderer_keeps_what_this_operator_knows() -> None:
    newer = json.loads(OLD_LINE) | {"spamScore": 0.1, "attachments": [{"bytes": 1, "sha256": "x"}]}
    line = ResultLine.parse(json.dumps(newer))
    assert line.bytes == 48000 and line.attachments[0].name == ""
    assert "spamScore" not in line.to_json()


def test_a_new_line_round_trips_with_the_addresses_left_out() -> None:
    to = [f"{'x' * 60}-{i:03d}@example.com" for i in range(80)]
    written = ResultLine(outcome="Delivered", addresses=sort_addresses({"to": to}, to, {}))
    line = written.to_json()
    parsed = ResultLine.parse(line)
    assert parsed.addresses_omitted and parsed.addresses_omitted > 0
    assert parsed.to_json() == line


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Traceback (most recent call last):", "not JSON"),
        ("[1, 2]", "not a JSON object but list"),
        ('{"failure": "transient"}', "outcome: Field required"),
        ('{"outcome": 7}', "outcome: Input should be a valid string"),
        ('{"outcome": "Delivered", "bytes": "48000"}', "bytes: Input should be a valid integer"),
        ('{"outcome": "Delivered", "rows": true}', "rows: Input should be a valid integer"),
        (
            '{"outcome": "Delivered", "attachments": [{"name": "r.pdf", "bytes": 1}]}',
            "attachments.0.sha256: Field required",
        ),
        (
            '{"outcome": "Delivered", "addresses": {"to": {"refused": ["b@example.com"]}}}',
            "addresses.to.refused: Input should be a valid dictionary",
        ),
    ],
)
def test_a_line_that_breaks_the_contract_is_malformed_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(MalformedResult) as raised:
        ResultLine.parse(line)
    assert raised.value.reason.startswith(reason)


def test_the_result_is_the_last_json_object_of_the_termination_message() -> None:
    message = 'warning: slow font cache\n{"outcome": "Skipped"}\n'
    assert result_from_message(message) == ResultLine(outcome="Skipped")
    assert result_from_message("Traceback ...\nKeyError: 'x'") is None  # the log tail
    assert result_from_message(None) is None
    with pytest.raises(MalformedResult, match="outcome"):
        result_from_message('{"outcome": "Delivered"}\n{"error": "no outcome"}')
