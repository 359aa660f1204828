"""An SMTP capture server (aiosmtpd) on a free loopback port: outgoing mail lands in a list, and in a folder
when one is given."""

import email
import email.policy
import itertools
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from infra.local.moto_server import free_port


@dataclass
class CapturedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class _Handler:
    outbox: Path | None = None
    received: list[CapturedMail] = field(default_factory=list)
    _numbers: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(CapturedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        if self.outbox is not None:
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{next(self._numbers):04d}.eml"
            (self.outbox / name).write_bytes(envelope.original_content or envelope.content)
        return "250 OK"


class SmtpCapture:
    """Start with `with SmtpCapture() as smtp:`; `smtp.port` and `smtp.received` then."""

    def __init__(self, outbox: Path | None = None) -> None:
        self._handler = _Handler(outbox)
        self.outbox = outbox
        self.port = free_port()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def received(self) -> list[CapturedMail]:
        return self._handler.received

    def start(self) -> "SmtpCapture":
        if self.outbox is not None:
            self.outbox.mkdir(parents=True, exist_ok=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def alive(self) -> bool:
        return self._controller.server is not None

    def details(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "outbox": str(self.outbox) if self.outbox else None}

    def client_environment(self) -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port)}

    def __enter__(self) -> "SmtpCapture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
