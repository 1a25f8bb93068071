"""The SMTP front renderer pods submit to (aiosmtpd).

AUTH PLAIN is required before MAIL; its password is the pod's projected relay token, checked by
TokenReview and bound to the pod's report (identity.Lookup.bind). Each RCPT is refused with 550
unless the report's current object admits it (policy); an admitted one already forwarded for
the run's key is answered 250 and not forwarded again (dedupe); any other is passed to the
platform relay, whose reply the pod gets. Nothing logged here quotes the token or the message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from kubernetes.client.exceptions import ApiException

from tidings.relay import policy
from tidings.relay.dedupe import DedupeStore, address_hash
from tidings.relay.identity import Lookup
from tidings.relay.upstream import Unconfirmed, UpstreamSession

log = logging.getLogger("tidings.relay")
# aiosmtpd logs every command line at DEBUG, AUTH blobs included, and warns on each connection
# that AUTH goes without TLS, which is deliberate here (see RelayController): errors only.
logging.getLogger("mail.log").setLevel(logging.ERROR)

AUTH_LINE_LIMIT = 16384
ALREADY_SENT = "250 2.0.0 already sent for this run (report, window, trigger); not sent again"


@dataclass
class Transaction:
    """What one MAIL ... DATA of a pod has decided so far."""

    run: policy.Run
    admitted: dict[str, str]
    sent: set[str]  # address hashes already forwarded for run.key
    upstream: UpstreamSession
    forward: list[str] = field(default_factory=list)  # accepted upstream, to be forwarded
    already: list[str] = field(default_factory=list)  # forwarded before: answered 250 only


class RelayHandler:
    def __init__(
        self,
        lookup: Lookup,
        store: DedupeStore,
        upstream: Callable[[], UpstreamSession],
    ) -> None:
        self.lookup = lookup
        self.store = store
        self.upstream = upstream

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH PLAIN with the relay token as password; the login name is ignored."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                return AuthResult(
                    success=False, handled=False, message="501 5.5.2 cannot decode base64"
                )
        parts = blob.split(b"\0")
        if len(parts) != 3:
            return AuthResult(
                success=False, handled=False, message="501 5.5.2 not an AUTH PLAIN response"
            )
        token = parts[2].decode(errors="replace")
        login = parts[1].decode(errors="replace")  # read only for the operator's own token
        peer = _peer(server.session)
        try:
            run = await asyncio.to_thread(self.lookup.bind, token, login)
        except policy.Refused as refused:
            log.warning("refused AUTH from %s: %s", peer, refused)
            return AuthResult(success=False, handled=False, message=f"535 5.7.8 {refused}")
        except ApiException as error:  # status only: a body may quote the review
            log.error("cannot check the token of %s: API %s", peer, error.status)
            return AuthResult(
                success=False, handled=False, message="454 4.7.0 cannot check the token now"
            )
        log.info(
            "authenticated %s as a run of %s (job %s, key %s)", peer, run.where, run.job, run.key
        )
        return AuthResult(success=True, auth_data=run)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        run: policy.Run = session.auth_data
        try:
            report = await asyncio.to_thread(self.lookup.report, run.namespace, run.report)
            if report is None or report["metadata"].get("uid") != run.report_uid:
                return f"550 5.7.1 {run.where} is gone"
            live = await asyncio.to_thread(self.lookup.groups, run.namespace, report)
            sent = await asyncio.to_thread(self.store.sent, run.key)
        except ApiException as error:
            log.error("cannot read %s or its dedupe record: API %s", run.where, error.status)
            return "451 4.3.0 cannot read the report now"
        _close(envelope)
        admitted = policy.admitted(report, run, live)
        envelope.tidings = Transaction(run, admitted, sent, self.upstream())
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        state: Transaction = envelope.tidings
        reason = policy.refusal(address, state.admitted, state.run)
        if reason is not None:
            log.warning("refused RCPT for %s (job %s): %s", state.run.where, state.run.job, reason)
            return f"550 5.7.1 {reason}"
        if address_hash(address) in state.sent:
            state.already.append(address)
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK: already sent for this run, not sent again"
        code, text = await asyncio.to_thread(state.upstream.rcpt, address)
        if code in (250, 251):
            state.forward.append(address)
            envelope.rcpt_tos.append(address)
        return f"{code} {text}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        state: Transaction = envelope.tidings
        run = state.run
        try:
            return await self._forward(state, envelope.original_content or b"")
        finally:
            _close(envelope)
            log.info("%s (job %s): %d already sent before", run.where, run.job, len(state.already))

    async def _forward(self, state: Transaction, content: bytes) -> str:
        if not state.forward:
            return ALREADY_SENT
        run = state.run
        try:
            claimed = await asyncio.to_thread(self.store.claim, run.key, state.forward)
        except ApiException as error:
            log.error("cannot record the run key of %s: API %s", run.where, error.status)
            return "451 4.3.0 cannot record this run now; nothing was sent"
        if set(claimed) != set(state.forward):
            # Another transaction took some meanwhile: start over upstream with ours alone.
            state.upstream.close()
            state.upstream = self.upstream()
            refused = []
            for address in claimed:
                code, _ = await asyncio.to_thread(state.upstream.rcpt, address)
                if code not in (250, 251):
                    refused.append(address)
            await asyncio.to_thread(self.store.release, run.key, refused)
            claimed = [a for a in claimed if a not in refused]
            if not claimed:
                state.upstream.close()
                return ALREADY_SENT
        try:
            code, text = await asyncio.to_thread(state.upstream.data, content)
        except Unconfirmed as error:
            log.warning("%s: the platform relay did not confirm (%s); not resent", run.where, error)
            return "451 4.4.2 the platform relay took the message without confirming; not resent"
        if code != 250:
            await asyncio.to_thread(self.store.release, run.key, claimed)
            return f"{code} {text}"
        log.info("%s (job %s): forwarded to %d recipient(s)", run.where, run.job, len(claimed))
        return f"250 2.0.0 relayed to {len(claimed)} recipient(s)"

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        _close(envelope)
        return "250 OK"


def _close(envelope: Envelope) -> None:
    state: Transaction | None = getattr(envelope, "tidings", None)
    if state is not None:
        state.upstream.close()
        envelope.tidings = None


def _peer(session: Session | None) -> str:
    peer: Any = getattr(session, "peer", None)
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


class _Front(SMTP):
    # A service-account token is over 1 KB, and its AUTH PLAIN line a third more: RFC 5321's
    # 512-byte command limit would refuse it (RFC 4954 lets AUTH lines be longer).
    line_length_limit = AUTH_LINE_LIMIT

    def __init__(self, handler: RelayHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        limits = collections.defaultdict(lambda: SMTP.command_size_limit, AUTH=AUTH_LINE_LIMIT)
        self.command_size_limits = limits  # per connection: aiosmtpd's default is class-wide

    def connection_lost(self, error: Exception | None) -> None:
        if self.envelope is not None:
            _close(self.envelope)  # a pod that went away leaves no upstream connection open
        super().connection_lost(error)


class RelayController(Controller):
    """The SMTP front on (address, port) in a thread of its own."""

    def __init__(self, handler: RelayHandler, address: str, port: int, max_bytes: int) -> None:
        super().__init__(
            handler,
            hostname=address,
            port=port,
            auth_required=True,
            # Pod to relay is plain SMTP inside the cluster: the token is short-lived and good
            # for this audience only (docs/relay.md, "What it does not protect").
            auth_require_tls=False,
            auth_exclude_mechanism=["LOGIN"],
            data_size_limit=max_bytes,
        )

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return _Front(self.handler, **self.SMTP_kwargs)
