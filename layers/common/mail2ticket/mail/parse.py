"""Parse a raw mail into the facts the ticket engine needs."""

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from mail2ticket.errors import ErrorCode, PermanentError
from mail2ticket.mail.html import html_to_text

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str | None
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class ParsedMail:
    subject: str
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    body_text: str
    body_html: str | None
    attachments: tuple[Attachment, ...]
    headers: dict[str, str]
    content_type: str


def message_ids(value: str | None) -> tuple[str, ...]:
    """Every `<id>` of a Message-ID list header, in order; bare ids separated by any whitespace too."""
    if not value:
        return ()
    found = _MESSAGE_ID.findall(value)
    if not found:
        found = value.split()
    return tuple(dict.fromkeys(found))


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse a raw RFC 5322 mail; a mail that cannot be read raises PermanentError(decode_failed)."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        return _extract(message)
    except PermanentError:
        raise
    except Exception as exc:
        raise PermanentError(
            ErrorCode.DECODE_FAILED, f"unreadable mail: {type(exc).__name__}: {exc}"
        ) from exc


def _extract(message: Message) -> ParsedMail:
    assert isinstance(message, EmailMessage)
    from_name, from_addr = _address(_header(message, "from"))
    if not from_addr:
        raise PermanentError(ErrorCode.DECODE_FAILED, "no sender address in From")
    body_text, body_html, body_parts = _bodies(message)
    return ParsedMail(
        subject=_header(message, "subject"),
        from_addr=from_addr,
        from_name=from_name,
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        message_id=next(iter(message_ids(_header(message, "message-id"))), None),
        in_reply_to=message_ids(_header(message, "in-reply-to")),
        references=message_ids(_header(message, "references")),
        date=_date(_header(message, "date")),
        body_text=body_text,
        body_html=body_html,
        attachments=tuple(_attachments(message, body_parts)),
        headers={k.lower(): _safe_str(v) for k, v in message.items()},
        content_type=message.get_content_type(),
    )


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return ""


def _header(message: Message, name: str) -> str:
    """A header's decoded value, tolerant of broken encodings; '' when absent."""
    try:
        value = message.get(name)
    except Exception:
        raw = message.get_all(name, failobj=[None])[0] if hasattr(message, "get_all") else None
        value = raw
    if value is None:
        return ""
    return " ".join(_safe_str(value).split())


def _address(value: str) -> tuple[str, str]:
    name, addr = parseaddr(value)
    return name, addr.strip().lower() if "@" in addr else ""


def _addresses(message: Message, name: str) -> tuple[str, ...]:
    values = [_header(message, name)]
    return tuple(addr.lower() for _, addr in getaddresses(values) if "@" in addr)


def _date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _decoded_text(part: Message) -> str:
    """A text part's content; unknown or wrong charsets fall back to a lossless-enough decode."""
    assert isinstance(part, EmailMessage)
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError, AssertionError, ValueError):
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return ""
        for charset in ("utf-8", "cp1252"):
            try:
                return payload.decode(charset)
            except UnicodeDecodeError:
                continue
        return payload.decode("latin-1")


def _bodies(message: EmailMessage) -> tuple[str, str | None, set[int]]:
    """Text and HTML bodies, and the ids of the parts chosen as bodies (they are not attachments)."""
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    html = _decoded_text(html_part) if html_part is not None else None
    if text_part is not None:
        text = _decoded_text(text_part)
    elif html is not None:
        text = html_to_text(html)
    else:
        text = ""
    chosen = {id(p) for p in (text_part, html_part) if p is not None}
    return text.replace("\r\n", "\n").strip(), html, chosen


def _attachments(part: Message, bodies: set[int]) -> list[Attachment]:
    """Every file of the mail, inline images included; a forwarded mail is one `.eml` file."""
    assert isinstance(part, EmailMessage)
    content_type = part.get_content_type()
    if id(part) in bodies:
        return []
    if content_type == "message/rfc822":
        inner = part.get_payload()
        content = (
            inner[0].as_bytes()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message)
            else b""
        )
        return [_attachment(part, content_type, content)]
    if part.is_multipart():
        return [a for sub in part.iter_parts() for a in _attachments(sub, bodies)]
    is_file = part.get_content_disposition() == "attachment" or part.get_filename() or part.get("content-id")
    if content_type.startswith("text/") and not is_file:
        return []  # an alternative body (the one not chosen), not a file
    payload = part.get_payload(decode=True)
    return [_attachment(part, content_type, payload if isinstance(payload, bytes) else b"")]


def _attachment(part: EmailMessage, content_type: str, content: bytes) -> Attachment:
    filename = part.get_filename()
    if not filename and content_type == "message/rfc822":
        inner_subject = _inner_subject(part)
        filename = f"{inner_subject}.eml" if inner_subject else None
    content_id = part.get("content-id")
    return Attachment(
        filename=filename or _default_name(content_type),
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        inline=part.get_content_disposition() == "inline" or bool(content_id),
        content_id=str(content_id).strip("<> ") if content_id else None,
        content=content,
    )


def _inner_subject(part: EmailMessage) -> str:
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        return _header(inner[0], "subject")
    return ""


def _default_name(content_type: str) -> str:
    if content_type == "message/rfc822":
        return "forwarded.eml"
    main, _, sub = content_type.partition("/")
    return f"{main}.{sub or 'bin'}"


def display_address(name: str, addr: str) -> str:
    return str(Address(display_name=name, addr_spec=addr)) if name else addr
