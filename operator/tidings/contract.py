"""The contract between the operator and the renderer pod, and the marks the operator leaves on
the objects it writes: labels, annotations, the finalizer, exit codes, the test-send names and
the one-line JSON result a run writes to its termination message.

Pure: the renderer writes `ResultLine.to_json()`, the operator reads `result_from_message()`.
An old renderer pod can finish after an operator upgrade (and the reverse), so the line is
compatible both ways: fields added later are optional, unknown fields are ignored, and only a
line that is not JSON, lacks `outcome`, or has a known field of the wrong type is malformed
(`MalformedResult`, with the reason).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

# ------------------------------------------------------------------- labels and annotations

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tidings"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
COMPONENT_LABEL = "app.kubernetes.io/component"
REPORT_UID_LABEL = "tidings.dev/report-uid"
# Label values stop at 63 characters and report names may be 253: the name goes in an annotation.
REPORT_NAME_ANNOTATION = "tidings.dev/report"
RUN_NOW_ANNOTATION = "tidings.dev/run-now"
REACTIVATE_ANNOTATION = "tidings.dev/reactivate"
# On a namespace: the time zone of its reports that set no spec.timeZone (controller/zones.py).
DEFAULT_TIME_ZONE_ANNOTATION = "tidings.dev/default-time-zone"
# Set by the CronJob controller (Kubernetes >= 1.28): the run's scheduled time.
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
# Held on every Job of ours until its outcome is in the report's status (docs/operator.md).
FINALIZER = "tidings.dev/run-outcome"
# Set, in the same write that drops the finalizer, on a Job whose outcome was counted.
COUNTED_ANNOTATION = "tidings.dev/counted"
# Why a run's pod had not started within the bound; the failure is counted with this reason.
NOT_STARTED_ANNOTATION = "tidings.dev/not-started"
# The report snapshot in the pod template; the renderer reads it as a downward-API file.
SNAPSHOT_ANNOTATION = "tidings.dev/report-snapshot"
RUN_NOW_LABEL = "tidings.dev/run-now"
# Stamped on the CronJob in each write: the generation that write gives it. Any other generation
# means someone else changed its spec.
WRITTEN_GENERATION = "tidings.dev/written-generation"

# Test sends (controller/testsend.py): the annotation asks, the env var tells the pod.
TEST_SEND_ANNOTATION = "tidings.dev/send-test"
TEST_RECIPIENT_ENV = "TIDINGS_TEST_RECIPIENT"
# The window's end of a run the operator starts itself (run-now, test send).
SCHEDULED_TIME_ENV = "TIDINGS_SCHEDULED_TIME"
TEST_SUBJECT_PREFIX = "[TEST] "
# spec.delivery.sendWhen mode changed: the last delivered run's rowsDigest, set by the operator.
LAST_ROWS_DIGEST_ENV = "TIDINGS_LAST_ROWS_DIGEST"
# spec.delivery.channels: the delivery relay's channel front, set by the operator when it has one.
CHANNEL_RELAY_ENV = "TIDINGS_CHANNEL_RELAY_URL"

# Chosen windows (controller/reruns.py). On the report, asked once per value like run-now:
# `tidings.dev/run-at: TIME [NOTE]` re-runs the window of a run fired at TIME (RFC 3339, not in
# the future); `tidings.dev/resend: RECORD [NOTE]` mails the window of ReportDelivery RECORD
# again, to the recipients it did not reach only. A NOTE after a space tells repeats apart.
RUN_AT_ANNOTATION = "tidings.dev/run-at"
RESEND_ANNOTATION = "tidings.dev/resend"
# On the Job the operator starts for them (the protect-runs policy keeps anyone else from
# writing tidings.dev/ keys on a Job): the time re-run, the record resent and its recipients.
RERUN_AT_JOB_ANNOTATION = "tidings.dev/rerun-at"
RESEND_OF_JOB_ANNOTATION = "tidings.dev/resend-of"
RESEND_TO_JOB_ANNOTATION = "tidings.dev/resend-to"
# Comma-separated: the renderer mails only those of the snapshot's to/cc/bcc that are listed.
RESEND_RECIPIENTS_ENV = "TIDINGS_RESEND_RECIPIENTS"

# The delivery relay (docs/relay.md): the pod logs in with a projected service-account token for
# the relay's audience, which the kubelet mints bound to the pod and rotates at 80 % of its life.
RELAY_TOKEN_DIR_ENV = "TIDINGS_RELAY_TOKEN_DIR"
RELAY_TOKEN_DIR = "/var/run/secrets/tidings.dev/relay"
RELAY_TOKEN_EXPIRY_SECONDS = 600  # the shortest the kubelet accepts

# The relay's probe of the platform relay (relay/probe.py): every replica connects, says EHLO,
# upgrades with STARTTLS when smtp.tls says so and logs in when credentials are set, then writes
# the result to one ConfigMap of the release namespace (this component label), which
# `kubectl tidings doctor` reads with view rights there: the user never needs the credentials.
RELAY_PROBE_COMPONENT = "relay-probe"
RELAY_PROBE_INTERVAL_SECONDS = 60
# Data keys: checkedAt (RFC 3339), ok ("true"/"false"), step (the one that failed, or "quit"),
# detail, upstream (host:port), tls, auth ("login" or "none"), intervalSeconds, replica.
RELAY_PROBE_STEPS = ("connect", "ehlo", "starttls", "auth", "quit")


def digest(value: str) -> str:
    """What status keeps of an annotation value (runNowHandled, reactivateHandled,
    testSendHandled): any length compares exactly, in 71 bytes."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


LEGACY_MAX = 253  # what an operator before digests kept of a value: its first 253 characters


def handled(value: str, recorded: str) -> bool:
    """Whether `recorded` (a status field) says `value` was acted on: its digest. For an upgrade
    from an operator that kept the value itself, an exact copy counts too, but only of a value
    that fit whole (a longer one was cut, so its copy cannot tell it from another with the same
    start: acted on once more, rather than never) and only when the copy is not digest-shaped
    (a new value whose text is the stored digest is a new request)."""
    if recorded == digest(value):
        return True
    legacy = len(value) <= LEGACY_MAX and not _DIGEST.fullmatch(recorded)
    return legacy and recorded == value


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


# ------------------------------------------------------------------------------- exit codes

# sysexits(3), so a retry policy can tell "try again" from "fix the report".
EX_OK = 0
EX_SOFTWARE = 1  # unexpected internal error (the operator treats it as transient)
EX_USAGE = 2  # command-line usage error (argparse)
EX_DATAERR = 65  # permanent input failure
EX_UNAVAILABLE = 69  # permanent delivery failure
EX_TEMPFAIL = 75  # transient failure
# Failures a retry cannot fix: the Job's pod failure policy fails the Job at once on these.
PERMANENT_EXIT_CODES = (EX_DATAERR, EX_UNAVAILABLE)

# ------------------------------------------------------------------------------ result line

RESULT_MAX_BYTES = 4096  # the kubelet keeps at most 4 KiB of a termination message
REPLY_MAX_CHARS = 100  # an SMTP reply kept per refused address once the line is too long
RECIPIENT_LISTS = ("to", "cc", "bcc")


class MalformedResult(ValueError):
    """A result line that breaks the contract; `reason` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed result line: {reason}")
        self.reason = reason


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="ignore"
    )


class Attachment(_Wire):
    """One attachment as mailed."""

    name: str = ""
    bytes: int
    sha256: str


class AddressList(_Wire):
    """One of to/cc/bcc: the addresses SMTP accepted, and the refused ones with the reply."""

    accepted: list[str] = Field(default_factory=list)
    refused: dict[str, str] = Field(default_factory=dict)


class ChannelLine(_Wire):
    """What one channel (spec.delivery.channels) did in the run."""

    name: str  # webhook[0]
    type: str  # webhook | slack | teams
    destination: str = ""  # the host
    outcome: str  # accepted | refused
    failure: str | None = None  # transient | permanent when refused
    reply: str = ""  # the destination's answer, or why it was not reached
    attempts: int = 0
    idempotency_key: str = ""


class ResultLine(_Wire):
    """What one run did: the keys of models.HistoryEntry, plus what the operator's
    ReportDelivery record needs (addresses, attachments, rows, pages, attempts)."""

    outcome: str  # Delivered | Failed | Skipped (sendWhen said not to send: exit 0)
    failure: str | None = None  # None | transient | permanent
    scheduled_time: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    recipients_accepted: int = 0
    recipients_rejected: int = 0
    bytes: int = 0
    renderer: str | None = None  # pdf | text | None
    error: str = ""
    message_id: str = ""
    attempts: int = 0  # SMTP transactions started
    rows: int | None = None  # rows in the report after filters
    pages: int | None = None  # pages of the PDF
    attachments: list[Attachment] = Field(default_factory=list)
    addresses: dict[str, AddressList] = Field(default_factory=dict)
    rows_digest: str | None = None  # sha256 of the window's rows (sendWhen mode changed)
    channels: list[ChannelLine] = Field(default_factory=list)  # one per spec channel
    # Set only when the line had to leave addresses out to fit RESULT_MAX_BYTES.
    addresses_omitted: int | None = None

    @property
    def delivered(self) -> bool:
        return self.outcome == "Delivered"

    @classmethod
    def parse(cls, line: str) -> ResultLine:
        """One line of JSON; MalformedResult when it breaks the contract."""
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise MalformedResult(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise MalformedResult(f"not a JSON object but {type(data).__name__}")
        try:
            # Strict: a count given as a string, or a bool, is the wrong type, not coerced.
            return cls.model_validate(data, strict=True)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "the line"
            raise MalformedResult(f"{where}: {problem['msg']}") from None

    def to_json(self, max_bytes: int = RESULT_MAX_BYTES) -> str:
        """One line of JSON of at most max_bytes bytes (UTF-8). To fit, `error` is cut first
        (it repeats the refused addresses), then refused replies are shortened, then addresses
        are left out from the end (bcc refused first), counted in `addressesOmitted`."""
        data: dict[str, Any] = self.model_dump(
            by_alias=True, mode="json", include=set(ResultLine.model_fields)
        )
        for optional in ("addressesOmitted", "rowsDigest", "channels"):  # as lines before them
            if data[optional] in (None, []):
                del data[optional]
        addresses = data["addresses"]
        line = _dumps(data)
        excess = len(line.encode()) - max_bytes
        error = self.error
        # JSON escaping can make a character cost more than its UTF-8 size: cut until it fits.
        while excess > 0 and error:
            cut = max(1, excess // 2)
            error = error[: max(0, len(error) - cut - 1)]
            data["error"] = error + "…"
            line = _dumps(data)
            excess = len(line.encode()) - max_bytes
        if excess > 0:
            for lists in addresses.values():
                refused = lists["refused"]
                for address, reply in refused.items():
                    refused[address] = reply[:REPLY_MAX_CHARS]
            line = _dumps(data)
        omitted = data.get("addressesOmitted") or 0
        while len(line.encode()) > max_bytes and _drop_last_address(addresses):
            omitted += 1
            data["addressesOmitted"] = omitted
            line = _dumps(data)
        return line


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _drop_last_address(addresses: dict[str, dict[str, Any]]) -> bool:
    """Remove one address, refused before accepted, bcc before cc before to; False if none."""
    for kind in ("refused", "accepted"):
        for name in reversed(RECIPIENT_LISTS):
            listed = (addresses.get(name) or {}).get(kind)
            if isinstance(listed, dict) and listed:
                listed.pop(next(reversed(listed)))
                return True
            if isinstance(listed, list) and listed:
                listed.pop()
                return True
    return False


def result_from_message(text: str | None) -> ResultLine | None:
    """The renderer's result in a termination message: its last line that is a JSON object.
    None when no line is one (the pod died before writing it and the kubelet kept the log
    tail instead); MalformedResult when that line breaks the contract."""
    for line in reversed((text or "").strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return ResultLine.parse(line)
    return None
