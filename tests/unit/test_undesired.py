"""Automatic mail is recognised by its headers, its type and its subject."""

from email.message import EmailMessage

import pytest

from mail2ticket.config import GlobalConfig
from mail2ticket.mail.parse import parse_mail
from mail2ticket.mail.undesired import undesired_reason

PATTERNS = GlobalConfig().undesired_subject_patterns


def reason(subject: str = "Printer", **headers: str) -> str | None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("body")
    return undesired_reason(parse_mail(message.as_bytes()), PATTERNS)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"Auto_Submitted": "auto-generated"}, "Auto-Submitted: auto-generated"),
        ({"X_Autoreply": "yes"}, "x-autoreply header"),
        ({"X_Autorespond": "yes"}, "x-autorespond header"),
        ({"X_Auto_Response_Suppress": "All"}, "x-auto-response-suppress header"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": "junk"}, "Precedence: junk"),
        ({"Precedence": "auto_reply"}, "Precedence: auto_reply"),
    ],
)
def test_automatic_mail_headers(headers: dict[str, str], expected: str) -> None:
    assert reason(**headers) == expected


def test_subject_patterns() -> None:
    assert reason("Out of Office: back Monday") == "subject matches '^Out Of Office'"


def test_ordinary_mail_and_auto_submitted_no_are_wanted() -> None:
    assert reason() is None
    assert reason(Auto_Submitted="no", Precedence="list") is None


def test_delivery_report_is_a_bounce() -> None:
    raw = (
        b"From: MAILER-DAEMON@example.org\r\nSubject: Undelivered\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n"
    )

    assert undesired_reason(parse_mail(raw), PATTERNS) == "delivery status report"
