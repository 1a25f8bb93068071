"""Redaction of what a peer can echo back: a relay that refuses a login and quotes
the AUTH blob it was sent. The renderer runs as in a pod against a real aiosmtpd on loopback;
its result line and stderr must hold neither the password nor any base64 carrying it. The
pure rules of tidings.redaction are checked beside it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from tests.support.renderer_cli import run_pod
from tests.support.renderer_reports import small_report
from tests.support.smtp_servers import Recorder, start_smtp

from tidings.redaction import MASK, redact
from tidings.renderer.result import EX_UNAVAILABLE

USER = "reports-relay"
PASSWORD = "hunter2-s3cret-Pa55"


def encodings(raw: bytes) -> list[str]:
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    return [standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")]


def forbidden() -> list[str]:
    """The password and every base64 form of it and of the AUTH PLAIN blob."""
    blob = f"\0{USER}\0{PASSWORD}".encode()
    return [PASSWORD, *encodings(PASSWORD.encode()), *encodings(blob)]


class EchoingRelay(Recorder):
    """Refuses every login with a 535 that quotes the AUTH line it got, as some relays do."""

    async def handle_AUTH(self, server, session, envelope, args):
        self.quoted = " ".join(args)
        return f"535 5.7.8 authentication failed for AUTH {self.quoted}"


def test_a_535_quoting_the_auth_plain_blob_leaves_no_trace(tmp_path: Path) -> None:
    relay = EchoingRelay()
    controller, server = start_smtp(relay, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])
    try:
        env = server.env(
            TIDINGS_SMTP_USERNAME=USER,
            TIDINGS_SMTP_PASSWORD=PASSWORD,
            TIDINGS_SMTP_ALLOW_PLAIN_AUTH="true",
        )
        done, result = run_pod(tmp_path, small_report(), env)
    finally:
        controller.stop()
    blob = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    assert relay.quoted == f"PLAIN {blob}"  # the relay really echoed the blob
    assert result is not None, done.stderr
    assert done.returncode == EX_UNAVAILABLE, done.stderr
    assert "535 5.7.8 authentication failed for AUTH PLAIN ***" in result["error"]
    line = (tmp_path / "termination-log").read_text()
    for text in (line, done.stdout, done.stderr):
        leaked = [value for value in forbidden() if value in text]
        assert not leaked, f"leaked {leaked} in {text!r}"


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_carrying_a_secret_is_masked_whole(encode) -> None:
    for raw in (
        f"\0{USER}\0{PASSWORD}".encode(),  # AUTH PLAIN
        f"{USER}\0{USER}\0{PASSWORD}".encode(),  # AUTH PLAIN with an authzid
        f"{USER}:{PASSWORD}".encode(),  # HTTP Basic
        PASSWORD.encode(),  # AUTH LOGIN's second answer
    ):
        for encoded in (encode(raw).decode(), encode(raw).decode().rstrip("=")):
            assert redact(f"reply: {encoded}.", [PASSWORD]) == f"reply: {MASK}."


def test_a_secret_inside_a_cut_base64_stream_is_masked_at_any_alignment() -> None:
    for prefix in ("", "a", "ab", "abc"):
        stream = base64.b64encode(f"{prefix}{PASSWORD} and more".encode()).decode()
        cut = stream[: len(stream) - 3]  # a peer that truncates: no longer decodes as a whole
        masked = redact(f"x {cut} y", [PASSWORD])
        assert not any(core in masked for core in encodings(PASSWORD.encode()))
        assert MASK in masked


def test_an_auth_plain_blob_is_masked_even_with_no_secret_known() -> None:
    blob = base64.b64encode(b"\0someone\0whatever-it-was").decode()
    assert redact(f"535 {blob}", []) == f"535 {MASK}"


def test_encoded_names_are_masked_only_in_base64() -> None:
    text = f"334 VXNlcm5hbWU6 {base64.b64encode(USER.encode()).decode()} for {USER}"
    assert redact(text, [], encoded=[USER]) == f"334 VXNlcm5hbWU6 {MASK} for {USER}"


def test_ordinary_text_is_left_alone() -> None:
    text = "SMTP authentication refused by relay.example.com:587: 535 5.7.8 invalid credentials"
    assert redact(text, [PASSWORD], encoded=[USER]) == text
    assert redact("a short pw: abc", ["abc"]) == "a short pw: abc"  # too short to mask
