#!/usr/bin/env python3
"""A demo SMTP sink (make cluster-demo): accepts every message on --host:--port, saves each as
DIR/<n>.eml and prints a line with its subject, recipients and attachments. Not a relay:
nothing is forwarded. Needs aiosmtpd, which `make demo` installs into .venv: run it with
.venv/bin/python (make cluster-demo does)."""

from __future__ import annotations

import argparse
import email
import email.policy
import signal
import threading
from pathlib import Path

try:
    from aiosmtpd.controller import Controller
except ImportError:
    raise SystemExit(
        "smtp-sink: needs aiosmtpd: run `make demo` (it installs it into .venv), then "
        "`.venv/bin/python hack/smtp-sink.py ...`"
    ) from None


class Saver:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = self.directory / f"{self.count}.eml"
        path.write_bytes(envelope.original_content)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        files = [part.get_filename() for part in message.iter_attachments()]
        print(
            f"{path}: {message['Subject']!s} -> {', '.join(envelope.rcpt_tos)}; "
            f"attachments: {', '.join(f for f in files if f) or 'none'}",
            flush=True,
        )
        return "250 OK: saved"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Saver(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"smtp-sink: listening on {args.host}:{args.port}, saving to {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
