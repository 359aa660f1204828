"""Parse a raw mail into the facts the ticket engine needs."""

import binascii
import email
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.feedparser import BytesFeedParser
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from mail2ticket.errors import ErrorCode, PermanentError
from mail2ticket.mail.charsets import decode_bytes
from mail2ticket.mail.headers import message_ids
from mail2ticket.mail.html import html_to_text

_FEED_BYTES = 1 << 16
_SURROGATES = re.compile("[\udc80-\udcff]")
_SIGNATURES = {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
_SMIME = {"application/pkcs7-mime", "application/x-pkcs7-mime"}
# What is still one of these once the readable content of a signed mail was taken out is encrypted.
_ENCRYPTED = _SMIME | {"multipart/encrypted"}
# The body of a mail only its recipient's key can open: an agent sees why the ticket says nothing more.
ENCRYPTED_NOTICE = (
    "[This mail is encrypted (S/MIME or OpenPGP): it can only be read with the recipient's private key. "
    "Its encrypted content is attached.]"
)
_TNEF = {"application/ms-tnef", "application/vnd.ms-tnef"}
# Past this depth a mail is hostile or broken: nested parts beyond it are not read.
_MAX_DEPTH = 30


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
    has_text_part: bool = False


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse a raw RFC 5322 mail; a mail that cannot be read raises PermanentError(decode_failed)."""
    try:
        # compat32 is the fast path: headers are decoded here from their raw values, once.
        return _extract(_message_tree(raw))
    except PermanentError:
        raise
    except RecursionError as exc:
        raise PermanentError(ErrorCode.DECODE_FAILED, "unreadable mail: MIME parts nested too deep") from exc
    except Exception as exc:
        raise PermanentError(
            ErrorCode.DECODE_FAILED, f"unreadable mail: {type(exc).__name__}: {exc}"
        ) from exc


def _message_tree(raw: bytes) -> Message:
    """What `email.message_from_bytes` builds, fed in slices: it would first copy the whole mail into a
    str and a StringIO buffer (four bytes per character), over six times the mail at its peak."""
    parser = BytesFeedParser(policy=compat32)
    view = memoryview(raw)
    for start in range(0, len(raw), _FEED_BYTES):
        parser.feed(view[start : start + _FEED_BYTES].tobytes())
    return parser.close()


def _extract(message: Message) -> ParsedMail:
    headers = _headers(message)
    from_name, from_addr = _address(headers.get("from", ""))
    if not from_addr:
        raise PermanentError(ErrorCode.DECODE_FAILED, "no sender address in From")
    opened = _opened(message)
    parts = [_Part.of(leaf, content_type) for leaf, content_type in _walk(opened)]
    text_part, html_part = _body_parts(parts)
    html = _clean_text(_decoded_text(html_part)) if html_part is not None else None
    if text_part is not None:
        text = _clean_text(_decoded_text(text_part))
    else:
        text = html_to_text(html) if html else ""
    attachments, tnef_body = _files(parts, {id(p) for p in (text_part, html_part) if p is not None})
    if not text and tnef_body:
        text = tnef_body
    if not text and _content_type(opened) in _ENCRYPTED:
        text = ENCRYPTED_NOTICE
    return ParsedMail(
        subject=headers.get("subject", ""),
        from_addr=from_addr,
        from_name=from_name,
        to=_addresses(headers.get("to", "")),
        cc=_addresses(headers.get("cc", "")),
        message_id=next(iter(message_ids(headers.get("message-id"))), None),
        in_reply_to=message_ids(headers.get("in-reply-to")),
        references=message_ids(headers.get("references")),
        date=_date(headers.get("date", "")),
        body_text=text.strip(),
        body_html=html,
        attachments=tuple(attachments),
        headers=headers,
        content_type=_content_type(message),
        has_text_part=text_part is not None,
    )


def _headers(message: Message) -> dict[str, str]:
    """Every header, decoded (RFC 2047) and unfolded; the first occurrence of a repeated one wins."""
    headers: dict[str, str] = {}
    for name, value in message.raw_items():
        key = name.lower()
        if key not in headers:
            headers[key] = decode_header_value(value)
    return headers


def decode_header_value(value: object) -> str:
    """A raw header value decoded from RFC 2047 words, tolerant of unknown charsets and raw 8-bit bytes."""
    text = value if isinstance(value, str) else str(value)
    if _SURROGATES.search(text):
        # Raw 8-bit header bytes come through as surrogates: read them as UTF-8, else Windows-1252.
        text = decode_bytes(text.encode("utf-8", "surrogateescape"), None)
    text = " ".join(text.split())
    if "=?" not in text:
        return text
    try:
        return " ".join(str(make_header(decode_header(text))).split())
    except Exception:
        return _decode_words_leniently(text)


def _decode_words_leniently(text: str) -> str:
    parts = []
    try:
        chunks = decode_header(text)
    except Exception:
        return text
    for chunk, charset in chunks:
        parts.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    return " ".join("".join(parts).split())


def _address(value: str) -> tuple[str, str]:
    name, addr = parseaddr(value)
    return name, addr.strip().lower() if "@" in addr else ""


def _addresses(value: str) -> tuple[str, ...]:
    return tuple(addr.lower() for _, addr in getaddresses([value]) if "@" in addr) if value else ()


def _date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _clean_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _opened(message: Message) -> Message:
    """The readable content of an opaque S/MIME signed mail, else the mail itself."""
    if _content_type(message) not in _SMIME:
        return message
    inner = _smime_content(_payload_bytes(message))
    if inner is None:
        return message
    return email.message_from_bytes(inner)


def _smime_content(data: bytes) -> bytes | None:
    """The MIME entity inside CMS SignedData (read, not verified); None for encrypted or unreadable data."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            return None
        content = info["content"]["encap_content_info"]["content"].native
    except Exception:
        return None
    return content if isinstance(content, bytes) else None


@dataclass(frozen=True)
class _Part:
    """A leaf part with the facts read from its headers once."""

    message: Message
    content_type: str
    disposition: str | None
    filename: str | None
    content_id: str | None

    @classmethod
    def of(cls, message: Message, content_type: str) -> "_Part":
        raw_cid = message.get("content-id")
        content_id = str(raw_cid).strip().strip("<>").strip() if raw_cid else None
        return cls(message, content_type, _disposition(message), _filename(message), content_id or None)


def _body_parts(parts: list[_Part]) -> tuple[_Part | None, _Part | None]:
    """The first text and the first HTML part that are not attachments, outside forwarded mails."""
    text_part = html_part = None
    for part in parts:
        if part.disposition == "attachment":
            continue
        if part.content_type == "text/plain" and text_part is None:
            text_part = part
        elif part.content_type == "text/html" and html_part is None:
            html_part = part
    return text_part, html_part


def _payload_bytes(part: Message) -> bytes:
    fast = _base64_payload(part)
    if fast is not None:
        return fast
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _base64_payload(part: Message) -> bytes | None:
    """A well-formed base64 part decoded straight from its text: the stdlib copies it three times first
    (encode, split into lines, join). None when it is not base64 or not clean, for the lenient stdlib path."""
    if str(part.get("content-transfer-encoding", "")).strip().lower() != "base64" or part.is_multipart():
        return None
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None
    try:
        return binascii.a2b_base64(payload)
    except (binascii.Error, ValueError):
        return None


def _decoded_text(part: _Part) -> str:
    """A text part's content in its charset; unknown or wrong charsets fall back to a sensible decode."""
    message = part.message
    try:
        charset = message.get_content_charset()
        flowed = str(message.get_param("format", "")).lower() == "flowed"
        delsp = str(message.get_param("delsp", "no")).lower() == "yes"
    except Exception:
        charset, flowed, delsp = None, False, False
    text = decode_bytes(_payload_bytes(message), charset)
    return unflow(text, delsp) if flowed and part.content_type == "text/plain" else text


def unflow(text: str, delsp: bool = False) -> str:
    """Join the soft line breaks of a format=flowed text (RFC 3676), keeping quote depths apart."""
    lines: list[str] = []
    pending: str | None = None
    pending_depth = -1
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw_line) - len(raw_line.lstrip(">"))
        line = raw_line[depth:]
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if pending is not None and depth == pending_depth:
            line = pending + line
        elif pending is not None:
            lines.append(">" * pending_depth + (" " if pending_depth else "") + pending)
        pending = None
        if line.endswith(" ") and line != "-- ":
            pending, pending_depth = (line[:-1] if delsp else line), depth
            continue
        lines.append(">" * depth + (" " if depth else "") + line)
    if pending is not None:
        lines.append(">" * pending_depth + (" " if pending_depth else "") + pending)
    return "\n".join(lines)


def _walk(part: Message, depth: int = 0) -> Iterator[tuple[Message, str]]:
    """Leaf parts and forwarded mails in order, with their content type; a forwarded mail is not entered."""
    if depth > _MAX_DEPTH:
        return
    content_type = _content_type(part)
    if content_type != "message/rfc822" and part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            if isinstance(sub, Message):
                yield from _walk(sub, depth + 1)
        return
    yield part, content_type


def _files(parts: list[_Part], bodies: set[int]) -> tuple[list[Attachment], str]:
    """Every file of the mail, inline images included, TNEF expanded; and a TNEF body, if any."""
    found: list[Attachment] = []
    tnef_body = ""
    for part in parts:
        content_type = part.content_type
        if id(part) in bodies or content_type in _SIGNATURES or content_type == "message/delivery-status":
            continue
        if content_type == "message/rfc822":
            found.append(_attachment(part, _forwarded_bytes(part.message)))
            continue
        is_file = part.disposition == "attachment" or part.filename or part.content_id
        if content_type.startswith("text/") and not is_file:
            continue  # an alternative body (the one not chosen), not a file
        content = _payload_bytes(part.message)
        if content_type in _TNEF or (part.filename or "").lower() == "winmail.dat":
            expanded, body = _tnef(content)
            if expanded is not None:
                found.extend(expanded)
                tnef_body = tnef_body or body
                continue
        found.append(_attachment(part, content))
    return found, tnef_body


def _forwarded_bytes(part: Message) -> bytes:
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        try:
            return inner[0].as_bytes()
        except Exception:
            return bytes(inner[0])
    return _payload_bytes(part)


def _tnef(data: bytes) -> tuple[list[Attachment] | None, str]:
    """The files inside a winmail.dat and its text body; None when it cannot be read."""
    import tnefparse

    try:
        tnef = tnefparse.TNEF(data)
        files = []
        for item in tnef.attachments:
            name = item.long_filename() or item.name or "attachment.bin"
            name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            content = item.data if isinstance(item.data, bytes) else b""
            files.append(_file(name.strip("\x00"), _guess_type(name), content, False, None))
        body = tnef.body.decode("cp1252", "replace") if isinstance(tnef.body, bytes) else ""
    except Exception:
        return None, ""
    return files, body.strip("\x00").strip()


def _guess_type(filename: str) -> str:
    import mimetypes

    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return decode_header_value(name) if name else None


def _attachment(part: _Part, content: bytes) -> Attachment:
    filename = part.filename
    if not filename and part.content_type == "message/rfc822":
        inner_subject = _inner_subject(part.message)
        filename = f"{inner_subject}.eml" if inner_subject else None
    # Gmail gives attachments a Content-ID too: only a part not marked as an attachment is inline.
    inline = part.disposition == "inline" or (part.disposition != "attachment" and bool(part.content_id))
    name = filename or _default_name(part.content_type)
    return _file(name, part.content_type, content, inline, part.content_id)


def _file(
    filename: str, content_type: str, content: bytes, inline: bool, content_id: str | None
) -> Attachment:
    return Attachment(
        filename=filename,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        inline=inline,
        content_id=content_id,
        content=content,
    )


def _inner_subject(part: Message) -> str:
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        return decode_header_value(inner[0].get("subject", "") or "")
    return ""


def _default_name(content_type: str) -> str:
    if content_type == "message/rfc822":
        return "forwarded.eml"
    main, _, sub = content_type.partition("/")
    return f"{main}.{sub or 'bin'}"
