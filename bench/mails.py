"""A realistic, reproducible mix of helpdesk mail: requests, replies, attachments, auto-replies."""

import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

SUBJECTS = [
    "Printer on 3rd floor jammed",
    "VPN does not connect from home",
    "New laptop for Maria",
    "Password reset needed",
    "Outlook keeps asking for credentials",
    "Access to the finance share",
    "Screen flickers after update",
    "Phone extension not working",
    "Request: second monitor",
    "Teams meeting audio problem",
]
# Real mail in Cyrillic, Japanese, German and French, on purpose.
NON_ASCII = [
    ("Принтер не печатает", "Добрый день! Принтер на втором этаже не печатает с утра."),
    ("プリンターが動きません", "おはようございます。三階のプリンターが紙詰まりです。"),
    ("Drucker im Büro defekt", "Grüß Gott, der Drucker im Büro zeigt Fehler E-42 an. Schöne Grüße"),
    (
        "Problème d'accès à l'intranet",
        "Bonjour, je n'arrive plus à me connecter à l'intranet depuis ce matin.",
    ),
]
LINES = [
    "Since this morning I get an error when I try to log in.",
    "I already restarted the machine twice, it did not help.",
    "The message says: 'The operation could not be completed (0x80004005)'.",
    "Could you please have a look as soon as possible? We have a deadline on Friday.",
    "It worked fine until yesterday's update.",
    "My colleague in the same office has the same problem.",
    "I attached a screenshot of the error.",
]


def _sender(rng: random.Random) -> tuple[str, str]:
    n = rng.randrange(60)
    return f"User {n} <user{n}@example.org>", f"User {n}"


def _body(rng: random.Random, name: str) -> str:
    lines = rng.sample(LINES, rng.randint(2, len(LINES)))
    return (
        "Hello,\n\n"
        + "\n".join(lines)
        + f"\n\nBest regards,\n{name}\nACME Corp. - Accounting\n+33 1 23 45 67 89\n"
    )


def _base(rng: random.Random, subject: str, when: datetime) -> tuple[EmailMessage, str, str]:
    message = EmailMessage()
    address, name = _sender(rng)
    message["From"] = address
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid(domain="example.org")
    return message, name, message["Message-ID"]


def mail_mix(count: int, seed: int = 7) -> list[bytes]:
    """`count` mails: 22% replies, 8% auto-replies, 8% other scripts, 12% HTML; 10% carry attachments."""
    rng = random.Random(seed)
    when = datetime(2025, 11, 3, 8, 0, tzinfo=UTC)
    sent: list[tuple[str, str, str]] = []  # (message id, subject, body) of earlier requests
    mails = []
    for _ in range(count):
        when += timedelta(seconds=rng.randint(10, 300))
        kind = rng.random()
        if kind < 0.22 and sent:
            parent_id, subject, parent_body = rng.choice(sent[-200:])
            message, name, _ = _base(rng, f"Re: {subject}", when)
            message["In-Reply-To"] = parent_id
            message["References"] = parent_id
            quoted = "\n".join(f"> {line}" for line in parent_body.splitlines())
            message.set_content(
                f"Thanks, {rng.choice(LINES)}\n\nOn Mon, 3 Nov 2025 at 10:12, Support wrote:\n{quoted}\n"
            )
        elif kind < 0.30:
            subject = rng.choice(SUBJECTS)
            message, name, _ = _base(rng, f"Automatic reply: {subject}", when)
            message["Auto-Submitted"] = "auto-replied"
            message.set_content("I am out of the office until Monday and will read your mail when I am back.")
        elif kind < 0.38:
            subject, text = rng.choice(NON_ASCII)
            message, name, message_id = _base(rng, subject, when)
            message.set_content(text + "\n\n" + name)
            sent.append((message_id, subject, text))
        else:
            subject = f"{rng.choice(SUBJECTS)} #{rng.randrange(10_000)}"
            message, name, message_id = _base(rng, subject, when)
            body = _body(rng, name)
            if kind < 0.50:
                message.set_content(body)
                html = "".join(f"<p>{line}</p>" for line in body.splitlines() if line)
                message.add_alternative(f"<html><body>{html}</body></html>", subtype="html")
            else:
                message.set_content(body)
            if kind > 0.90:
                pdf = b"%PDF-1.4\n" + rng.randbytes(rng.randint(30_000, 300_000))
                message.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
                png = b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(10_000, 60_000))
                message.add_attachment(png, maintype="image", subtype="png", filename="screenshot.png")
            sent.append((message_id, subject, body))
        mails.append(message.as_bytes(policy=SMTP))
    return mails


def big_mail(size: int, seed: int = 11) -> bytes:
    """A request of about `size` bytes on the wire, most of it three base64-encoded attachments."""
    rng = random.Random(seed)
    message, name, _ = _base(rng, "Scans of the signed contracts", datetime(2025, 11, 3, 9, 0, tzinfo=UTC))
    message.set_content(_body(rng, name))
    part = int(size * 3 / 4 / 3)  # base64 grows the content by a third
    for n in range(3):
        message.add_attachment(
            b"%PDF-1.4\n" + rng.randbytes(part),
            maintype="application",
            subtype="pdf",
            filename=f"scan{n}.pdf",
        )
    return message.as_bytes(policy=SMTP)
