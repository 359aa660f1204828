"""An SMTP capture server (aiosmtpd) on a free loopback port: outgoing mail lands in a list."""

import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
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
    received: list[CapturedMail] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(CapturedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpCapture:
    """Start with `with SmtpCapture() as smtp:`; `smtp.port` and `smtp.received` then."""

    def __init__(self) -> None:
        self._handler = _Handler()
        self.port = free_port()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def received(self) -> list[CapturedMail]:
        return self._handler.received

    def start(self) -> "SmtpCapture":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> "SmtpCapture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
