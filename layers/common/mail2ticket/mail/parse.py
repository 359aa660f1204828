"""Parse a raw mail into the facts the ticket engine needs.

A mail is never refused for what its headers say: a head with junk, an mbox `From ` line or a broken line in
it is mended first, and the sender is read from From, else Sender, Reply-To, Return-Path, then the envelope
(`ParsedMail.sender_header` says which, `sender_note` why From was not used). Only input that holds no
message at all (no header field) raises `decode_failed`.

Bounds keep every mail's processing short: at most MAX_HEADERS header fields are read, each value cut to
MAX_HEADER_CHARS; at most MAX_PARTS MIME parts are read (the raw EML keeps the rest); References keeps its
first id and its last MAX_REFERENCES - 1; the HTML body is bounded by `html.bound_html`. Each bound that
applied is named in `ParsedMail.notes`.
"""

import binascii
import email
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.feedparser import BytesFeedParser
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from functools import cached_property
from html import escape

from mail2ticket.errors import ErrorCode, PermanentError
from mail2ticket.mail.charsets import codec_for, decode_bytes, guessed_codec
from mail2ticket.mail.headers import message_ids
from mail2ticket.mail.html import bound_html, html_to_text

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
# Other representations of a body in a multipart/alternative: never files.
_BODY_TYPES = {"text/plain", "text/html"}
_ALTERNATIVE_BODIES = _BODY_TYPES | {
    "text/enriched", "text/richtext", "text/x-amp-html", "text/watch-html", "text/x-watch-html",
}  # fmt: skip
# Containers whose first part is the body and the others are files (a signature, a delivery report).
_FIRST_IS_BODY = {"multipart/related", "multipart/signed", "multipart/report"}
# Past this depth a mail is hostile or broken: nested parts beyond it are not read.
_MAX_DEPTH = 30
MAX_PARTS = 1000
MAX_HEADERS = 1000
MAX_HEADER_CHARS = 16_384
MAX_REFERENCES = 100
# The head is looked at for repairs in its first bytes only.
_HEAD_BYTES = 1 << 18
_HEADER_LINE = re.compile(rb"[!-9;-~]+:")
_SPACED_NAME = re.compile(rb"([A-Za-z][A-Za-z0-9-]{0,75})[ \t]+:")
_KNOWN_FIELD = re.compile(
    rb"(?:from|to|cc|subject|date|message-id|received|return-path|mime-version|content-type|reply-to|sender|"
    rb"delivered-to|in-reply-to|references|dkim-signature|x-[a-z0-9-]+)[ \t]*:",
    re.IGNORECASE,
)
_SNIFF_BYTES = 8192
# Files that are not mails, by their first bytes.
_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 file (an Outlook .msg or an old Office document)"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
)
# A head the parser reads as it is: a header (or an mbox `From ` line) first, then headers and continuations.
_SOUND_FIRST_LINE = re.compile(rb"[!-9;-~]+:|From (?![ \t]*:)")
_UNSOUND_LINE = re.compile(rb"\n(?![!-9;-~]+:|[ \t])")
_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
_SIMPLE_MAILBOX = re.compile(
    r'\s*(?:(?:"((?:[^"\\]|\\.)*)"|([^"<>()\[\],;:@\\]*?))\s*<\s*([^\s<>()\[\]",;:@]+@[^\s<>()\[\]",;:@]+)\s*>'
    r'|([^\s<>()\[\]",;:@]+@[^\s<>()\[\]",;:@]+))\s*'
)
_BRACKETED = re.compile(r"<\s*([^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+)\s*>")
_ENVELOPE_FROM = re.compile(r"envelope-from\s*[=:]?\s*<?([^\s<>;()\"]+@[^\s<>;()\"]+)", re.IGNORECASE)
_ENVELOPE_HEADERS = ("x-envelope-from", "envelope-from", "x-original-sender", "x-sender", "x-original-from")
_SENDER_HEADERS = ("from", "sender", "reply-to", "return-path")
_CID_REFERENCE = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)
_DEFAULT_NAMES = {
    "message/rfc822": "forwarded.eml",
    "message/delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "message/feedback-report": "feedback-report.txt",
    "text/rfc822-headers": "headers.txt",
    "text/calendar": "calendar.ics",
}
_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)")
_BOUNDARY_LINE = re.compile(r"^--([^\s-][^\r\n]{0,69}?)[ \t]*\r?$", re.MULTILINE)


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
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    body_html: str | None
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, str]
    content_type: str
    has_text_part: bool = False
    # The sender's text parts as written (joined in order), beside `body_text` (which may be the HTML's).
    plain_text: str = ""
    # Which header gave `from_addr` ("from", "sender", "reply-to", "return-path", "envelope"), "" for none.
    sender_header: str = "from"
    # Why From did not give the sender, when it did not; why there is no sender, when there is none.
    sender_note: str = ""
    # The bounds that applied to this mail (parts, headers, HTML), each as a readable sentence.
    notes: tuple[str, ...] = ()
    # The text when there is neither a text part nor HTML: a TNEF body, or the notice of an encrypted mail.
    other_text: str = ""

    @cached_property
    def to(self) -> tuple[str, ...]:
        return self._addresses("to")

    @cached_property
    def cc(self) -> tuple[str, ...]:
        return self._addresses("cc")

    @cached_property
    def date(self) -> datetime | None:
        return _date(self.headers.get("date", ""))

    def _addresses(self, name: str) -> tuple[str, ...]:
        headers = self.headers
        return _addresses(headers.all(name), headers.hint) if isinstance(headers, Headers) else ()

    @cached_property
    def body_text(self) -> str:
        """The readable text: the sender's text parts, else the HTML rendered to text, else `other_text`.
        Rendered on first use: the ticket engine reads an HTML-only mail from its HTML reply instead."""
        if self.plain_text:
            return self.plain_text
        rendered = html_to_text(self.body_html).strip() if self.body_html else ""
        return rendered or self.other_text


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse a raw RFC 5322 mail; input that holds no mail raises PermanentError(decode_failed)."""
    try:
        # compat32 is the fast path: headers are decoded here from their raw values, once.
        return _extract(_message_tree(_mended_head(raw)))
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


def _mended_head(raw: bytes) -> bytes:
    """The mail with a head the parser reads whole: a byte-order mark, blank lines or junk before the first
    header dropped, `Name :` made `Name:`, and a broken line between two headers made a continuation."""
    if not raw.strip():
        raise PermanentError(ErrorCode.DECODE_FAILED, "empty input: there is no mail to read")
    kind = _binary_kind(raw[:_SNIFF_BYTES])
    if kind:
        raise PermanentError(ErrorCode.DECODE_FAILED, f"not a mail: the input is {kind}")
    if raw[:1].isspace() or raw.startswith(b"\xef\xbb\xbf"):
        raw = raw.removeprefix(b"\xef\xbb\xbf").lstrip()
    end = _head_end(raw)
    if _SOUND_FIRST_LINE.match(raw) and not _UNSOUND_LINE.search(raw, 0, end):
        return raw
    lines = raw[:end].split(b"\n")
    first = _first_header(lines)
    if first is None:
        return raw
    envelope = lines[:1] if lines[0].startswith(b"From ") and first > 0 else []
    mended = [*envelope]
    for i in range(first, len(lines)):
        line = _unspaced(lines[i])
        if _HEADER_LINE.match(line) or line[:1] in (b" ", b"\t") or (line.startswith(b"From ") and i == 0):
            mended.append(line)
        elif any(_HEADER_LINE.match(after) for after in lines[i + 1 : i + 3]):
            mended.append(b" " + line)  # a header's value that lost its folding whitespace
        else:
            return b"\n".join([*mended, *lines[i:]]) + raw[end:]
    return b"\n".join(mended) + raw[end:]


def _head_end(raw: bytes) -> int:
    """Where the head ends: its first blank line (LF or CRLF), looked for in the first bytes only."""
    ends = [
        found
        for found in (raw.find(b"\n\n", 0, _HEAD_BYTES), raw.find(b"\n\r\n", 0, _HEAD_BYTES))
        if found >= 0
    ]
    return min(ends) if ends else min(len(raw), _HEAD_BYTES)


def _unspaced(line: bytes) -> bytes:
    """`Name :` as `Name:` (obsolete syntax the parser does not read as a header)."""
    spaced = _SPACED_NAME.match(line)
    return spaced.group(1) + b":" + line[spaced.end() :] if spaced else line


def _first_header(lines: list[bytes]) -> int | None:
    """The first line of the real head: a header followed by another, one of them a field every mail has."""
    for i in range(min(len(lines), 30)):
        window = [_unspaced(line) for line in lines[i : i + 5]]
        if not _HEADER_LINE.match(window[0]):
            continue
        headers = [line for line in window if _HEADER_LINE.match(line)]
        if len(headers) >= 2 and any(_KNOWN_FIELD.match(line) for line in headers):
            return i
    return None


def _binary_kind(head: bytes) -> str | None:
    """What the input is when it is a file and not a mail (a mail is text: it holds no NUL byte)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "binary data (it holds NUL bytes)" if b"\x00" in head else None


def _extract(message: Message) -> ParsedMail:
    notes: list[str] = []
    if not message.keys() and not message.get_unixfrom():
        notes.append("the mail has no header: its whole text is its body")
    hint = _Hint(message)
    headers = Headers(message, hint, notes)
    from_name, from_addr, source, note = _sender(message, headers, hint)
    mail_type = _content_type(message)
    opened = _opened(message) if mail_type in _SMIME else message
    opened_type = mail_type if opened is message else _content_type(opened)
    reading = _Reading(hint=hint)
    segments = _segments(opened, 0, reading, opened_type)
    plain, html = _bodies(segments, reading)
    if reading.skipped:
        notes.append(
            f"{reading.skipped} more MIME parts than the {MAX_PARTS} read were not read: "
            "the raw mail keeps them"
        )
    if html is not None:
        html, bound = bound_html(html)
        if bound:
            notes.append(bound)
    referenced = set(_CID_REFERENCE.findall(html)) if html else set()
    attachments, tnef_body = _files(reading, referenced)
    other = ENCRYPTED_NOTICE if opened_type in _ENCRYPTED else tnef_body
    references = message_ids(headers.get("references"))
    if len(references) > MAX_REFERENCES:
        notes.append(
            f"References holds {len(references)} ids: the first and the last {MAX_REFERENCES - 1} are used"
        )
        references = (references[0], *references[-(MAX_REFERENCES - 1) :])
    return ParsedMail(
        subject=headers.get("subject", ""),
        from_addr=from_addr,
        from_name=from_name,
        message_id=next(iter(message_ids(headers.get("message-id"))), None),
        in_reply_to=message_ids(headers.get("in-reply-to")),
        references=references,
        body_html=html,
        attachments=tuple(attachments),
        headers=headers,
        content_type=mail_type,
        has_text_part=bool(reading.text_parts),
        plain_text=plain.strip(),
        sender_header=source,
        sender_note=note,
        notes=tuple(notes),
        other_text=other.strip(),
    )


class Headers(Mapping[str, str]):
    """The mail's headers by lower-cased name, decoded (RFC 2047, raw 8-bit) and unfolded on first read; the
    first occurrence of a repeated one wins. `all(name)` gives every raw value of a name."""

    def __init__(self, message: Message, hint: "_Hint", notes: list[str]) -> None:
        self._raw: dict[str, list[str]] = {}
        self._decoded: dict[str, str] = {}
        self.hint = hint
        for count, (name, value) in enumerate(message.raw_items()):
            if count == MAX_HEADERS:
                notes.append(f"more than {MAX_HEADERS} header fields: the first {MAX_HEADERS} are read")
                break
            text = value if isinstance(value, str) else str(value)
            if len(text) > MAX_HEADER_CHARS:
                notes.append(f"header {name} is longer than {MAX_HEADER_CHARS} characters: it is cut")
                if name.lower() == "references":  # it ends with the latest ids, which matter most
                    head = MAX_HEADER_CHARS // 16
                    text = f"{text[:head]} {text[-(MAX_HEADER_CHARS - head - 1) :]}"
                else:
                    text = text[:MAX_HEADER_CHARS]
            self._raw.setdefault(name.lower(), []).append(text)

    def __getitem__(self, name: str) -> str:
        if name not in self._decoded:
            self._decoded[name] = decode_header_value(self._raw[name][0], self.hint)
        return self._decoded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def raw(self, name: str) -> str | None:
        """The first raw value of a header, or None."""
        values = self._raw.get(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return self._raw.get(name, [])


def decode_header_value(value: object, hint: "_Hint | None" = None) -> str:
    """A raw header value decoded from RFC 2047 words, tolerant of unknown charsets and raw 8-bit bytes."""
    text = _raw_text(value, hint)
    if "=?" not in text:
        return text
    try:
        chunks = decode_header(text)
    except Exception:
        return text
    parts = [decode_bytes(c, charset) if isinstance(c, bytes) else c for c, charset in chunks]
    return " ".join("".join(parts).split())


def _raw_text(value: object, hint: "_Hint | None" = None) -> str:
    """A header value as text, unfolded: raw 8-bit bytes (surrogates here) read as the mail's charset."""
    text = value if isinstance(value, str) else str(value)
    if _SURROGATES.search(text):
        text = decode_bytes(text.encode("utf-8", "surrogateescape"), None, hint.charset if hint else None)
    return " ".join(text.split())


class _Hint:
    """The charset raw 8-bit headers and undeclared parts are most often in: the first one a text part of the
    mail declares, other than ASCII, Latin-1 and UTF-8; else the one guessed from the first text part that
    needs a guess (a guess on a few header bytes alone is a coin toss). Looked for only when such text
    turns up."""

    def __init__(self, message: Message) -> None:
        self._message = message
        self._charset: str | None = None
        self._known = False

    @property
    def charset(self) -> str | None:
        if not self._known:
            self._known = True
            for count, part in enumerate(self._message.walk()):
                if count > 50:
                    break
                try:
                    charset = part.get_content_charset()
                except Exception:
                    continue
                if codec_for(charset) not in (None, "cp1252", "utf-8", "ascii"):
                    self._charset = charset
                    break
            else:
                self._charset = self._guessed()
        return self._charset

    def _guessed(self) -> str | None:
        for count, part in enumerate(self._message.walk()):
            if count > 50:
                break
            if part.get_content_maintype() == "text" and not part.is_multipart():
                codec = guessed_codec(_payload_bytes(part))
                if codec is not None:
                    return codec
        return None


def _sender(message: Message, headers: Headers, hint: _Hint) -> tuple[str, str, str, str]:
    """(name, address, header it came from, note): From, else Sender, Reply-To, Return-Path, the envelope."""
    note = ""
    for header in _SENDER_HEADERS:
        value = headers.raw(header)
        name, addr = _mailbox(value, hint) if value is not None else ("", "")
        if addr:
            return name, addr, header, note if header != "from" else ""
        if header == "from":
            shown = _raw_text(value, hint)[:80] if value is not None else ""
            note = f"From has no sender address ({shown!r})" if value is not None else "the mail has no From"
    addr = _envelope_sender(message, headers)
    if addr:
        return "", addr, "envelope", f"{note}; the sender is the envelope's"
    return "", "", "", f"{note}, and no Sender, Reply-To, Return-Path or envelope sender either"


def _mailbox(value: object, hint: _Hint) -> tuple[str, str]:
    """The first address of an address header, and its display name decoded. The header is split into
    addresses before its words are decoded: a name may decode to "Last, First"."""
    raw = _raw_text(value, hint)
    simple = _SIMPLE_MAILBOX.fullmatch(raw)
    if simple:  # "Name <address>" or a bare address: most senders, read without the full parser
        quoted, name = simple.group(1), simple.group(2) or ""
        if quoted is not None:
            name = _QUOTED_PAIR.sub(r"\1", quoted)
        return _display_name(name.strip(), hint), (simple.group(3) or simple.group(4)).lower()
    for name, addr in getaddresses([raw]):
        if "@" in addr and _ADDRESS.fullmatch(addr.strip()):
            return _display_name(name, hint), addr.strip().lower()
    # An address the strict parser refuses: the one in angle brackets, else the first one written.
    found = _BRACKETED.search(raw) or _ADDRESS.search(raw)
    return ("", found.group(found.lastindex or 0).strip(".").lower()) if found else ("", "")


def _display_name(name: str, hint: _Hint) -> str:
    decoded = decode_header_value(name, hint).strip() if name else ""
    if len(decoded) > 1 and decoded[0] == decoded[-1] == '"':
        decoded = decoded[1:-1].strip()
    return decoded


def _envelope_sender(message: Message, headers: Headers) -> str:
    """The envelope sender: the mbox `From ` line, an envelope header, or a Received line's envelope-from."""
    unixfrom = (message.get_unixfrom() or "")[5:].lstrip(" :")
    found = _ADDRESS.match(unixfrom)
    if found:
        return found.group(0).lower()
    for header in _ENVELOPE_HEADERS:
        value = headers.raw(header)
        found = _ADDRESS.search(value) if value is not None else None
        if found:
            return found.group(0).lower()
    for received in headers.all("received")[:20]:
        match = _ENVELOPE_FROM.search(received)
        if match:
            return match.group(1).lower()
    return ""


def _addresses(values: list[str], hint: _Hint) -> tuple[str, ...]:
    found = getaddresses([_raw_text(v, hint) for v in values]) if values else []
    return tuple(dict.fromkeys(addr.strip().lower() for _, addr in found if "@" in addr))


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


@dataclass(slots=True)
class _Part:
    """A leaf part with the facts read from its headers once (Content-Type parameters are parsed once)."""

    message: Message
    content_type: str
    disposition: str | None
    filename: str | None
    content_id: str | None
    charset: str | None = None
    flowed: bool = False
    delsp: bool = False

    @classmethod
    def of(cls, message: Message, content_type: str) -> "_Part":
        fields: dict[str, str] = {}
        for key, value in message.raw_items():
            fields.setdefault(key.lower(), value if isinstance(value, str) else str(value))
        params = _params(message, fields.get("content-type", ""), "content-type")
        raw_disposition = fields.get("content-disposition")
        disposition = raw_disposition.split(";", 1)[0].strip().lower() or None if raw_disposition else None
        name = None
        if raw_disposition is not None and "filename" in raw_disposition.lower():
            name = _params(message, raw_disposition, "content-disposition").get("filename")
        name = name or params.get("name")
        raw_cid = fields.get("content-id")
        content_id = raw_cid.strip().strip("<>").strip() if raw_cid else None
        return cls(
            message,
            content_type,
            disposition,
            decode_header_value(name) if name else None,
            content_id or None,
            params.get("charset"),
            params.get("format", "").lower() == "flowed",
            params.get("delsp", "").lower() == "yes",
        )


def _params(message: Message, value: str, header: str) -> dict[str, str]:
    """A header's parameters by lower-cased name, read once. RFC 2231 values (`name*0*=`, `name*=utf-8''…`)
    are read by the stdlib, which joins and decodes them."""
    if ";" not in value:
        return {}
    if "*" in value:
        try:
            found = message.get_params(header=header) or []
            return {
                str(key).lower(): collapse_rfc2231_value(item) if isinstance(item, tuple) else str(item)
                for key, item in found[1:]
            }
        except Exception:
            return {}
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"'):
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1] if raw.endswith('"') and len(raw) > 1 else raw[1:])
        params.setdefault(key.lower(), raw)
    return params


@dataclass
class _Reading:
    """One mail's walk: its leaves in order, the ones that make the body, and what was left unread."""

    hint: _Hint
    leaves: list[_Part] = field(default_factory=list)
    body: set[int] = field(default_factory=set)
    text_parts: list[_Part] = field(default_factory=list)
    skipped: int = 0


@dataclass
class _Segment:
    """A piece of the body: its text parts, its HTML parts, and other representations of it."""

    texts: list[_Part] = field(default_factory=list)
    htmls: list[_Part] = field(default_factory=list)
    others: list[_Part] = field(default_factory=list)


def _segments(part: Message, depth: int, reading: _Reading, known_type: str | None = None) -> list[_Segment]:
    """The body's segments in order. A multipart/alternative gives one segment (its text and its richest
    HTML representation); mixed parts are joined in order (Apple Mail's text between images)."""
    if depth > _MAX_DEPTH:
        return []
    content_type = known_type or _content_type(part)
    if content_type.startswith("multipart/") and _mend_multipart(part):
        content_type = _content_type(part)
    if not content_type.startswith("message/") and part.is_multipart():
        payload = part.get_payload()
        children = [c for c in (payload if isinstance(payload, list) else []) if isinstance(c, Message)]
        found = [_segments(child, depth + 1, reading) for child in children]
        if content_type == "multipart/alternative":
            return _alternative(found)
        if content_type in _FIRST_IS_BODY:
            return next((segments for segments in found if segments), [])
        return [segment for segments in found for segment in segments]
    if len(reading.leaves) >= MAX_PARTS:
        reading.skipped += 1
        return []
    leaf = _Part.of(part, content_type)
    reading.leaves.append(leaf)
    if content_type not in _ALTERNATIVE_BODIES or not _is_body_part(leaf):
        return []
    if content_type == "text/plain":
        return [_Segment(texts=[leaf])]
    if content_type == "text/html":
        return [_Segment(htmls=[leaf])]
    return [_Segment(others=[leaf])]


def _is_body_part(leaf: _Part) -> bool:
    """A text part is body unless it is an attachment: marked so, or named without being marked inline."""
    if leaf.disposition == "attachment":
        return False
    return leaf.disposition == "inline" or not leaf.filename


def _alternative(found: list[list[_Segment]]) -> list[_Segment]:
    """One segment for the alternatives: the first that has text, the last (richest) that has HTML."""
    if not any(found):
        return []
    with_text = next((s for s in found if any(seg.texts for seg in s)), [])
    with_html = next((s for s in reversed(found) if any(seg.htmls for seg in s)), [])
    every = [p for s in found for seg in s for p in (*seg.texts, *seg.htmls, *seg.others)]
    return [
        _Segment(
            texts=[p for seg in with_text for p in seg.texts],
            htmls=[p for seg in with_html for p in seg.htmls],
            others=every,
        )
    ]


def _bodies(segments: list[_Segment], reading: _Reading) -> tuple[str, str | None]:
    """The text parts joined in order, and the HTML parts joined (a text-only piece among HTML ones as
    escaped text), or None without HTML."""
    for segment in segments:
        reading.body.update(id(p) for p in (*segment.texts, *segment.htmls, *segment.others))
    if not segments:
        segments = _fallback_body(reading)  # its part stays a file as well
    for segment in segments:
        reading.text_parts.extend(segment.texts)
    texts, htmls = [], []
    for segment in segments:
        text = "\n\n".join(_decoded_text(p, reading.hint).strip("\n") for p in segment.texts)
        html = "\n".join(_decoded_text(p, reading.hint) for p in segment.htmls)
        if segment.texts:
            texts.append(text)
        htmls.append(html if segment.htmls else _text_as_html(text) if text.strip() else "")
    has_html = any(segment.htmls for segment in segments)
    plain = _clean_text("\n\n".join(t for t in texts if t.strip()))
    return plain, _clean_text("\n".join(h for h in htmls if h)) if has_html else None


def _fallback_body(reading: _Reading) -> list[_Segment]:
    """A mail whose only text parts are named or attached: the first inline one is its body (and a file)."""
    for leaf in reading.leaves:
        if leaf.content_type in _BODY_TYPES and leaf.disposition != "attachment":
            return [_Segment(texts=[leaf]) if leaf.content_type == "text/plain" else _Segment(htmls=[leaf])]
    return []


def _text_as_html(text: str) -> str:
    return f'<div style="white-space:pre-wrap">{escape(text)}</div>'


def _mend_multipart(part: Message) -> bool:
    """A multipart whose boundary is missing or wrong is read with the boundary its body uses, or as text:
    a container is never a file. True when the part was mended."""
    if part.is_multipart():
        return False
    payload = part.get_payload()
    if not isinstance(payload, str):
        return False
    match = _BOUNDARY_LINE.search(payload)
    if match and payload.count("--" + match.group(1)) >= 2:
        boundary = match.group(1)
        inner = email.message_from_string(
            f'Content-Type: {_content_type(part)}; boundary="{boundary}"\n\n{payload}', policy=compat32
        )
        if inner.is_multipart():
            part.set_payload(inner.get_payload())
            part.set_param("boundary", boundary)
            return True
    charset = part.get_param("charset")
    del part["content-type"]
    part["Content-Type"] = f'text/plain; charset="{charset}"' if isinstance(charset, str) else "text/plain"
    return True


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


def _decoded_text(part: _Part, hint: _Hint | None = None) -> str:
    """A text part's content in its charset; unknown or wrong charsets fall back to a sensible decode."""
    data = _payload_bytes(part.message)
    guess = hint.charset if hint is not None and part.charset is None and not data.isascii() else None
    text = decode_bytes(data, part.charset, guess)
    return unflow(text, part.delsp) if part.flowed and part.content_type == "text/plain" else text


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


def _files(reading: _Reading, referenced: set[str]) -> tuple[list[Attachment], str]:
    """Every part that is not the body, in order: inline images, reports, text and HTML files, forwarded
    mails (as .eml); TNEF expanded. And a TNEF body, if any."""
    found: list[Attachment] = []
    tnef_body = ""
    for part in reading.leaves:
        content_type = part.content_type
        if id(part) in reading.body or content_type in _SIGNATURES:
            continue
        if content_type.startswith("message/"):
            found.append(_attachment(part, _message_bytes(part.message), referenced))
            continue
        content = _payload_bytes(part.message)
        if content_type in _TNEF or (part.filename or "").lower() == "winmail.dat":
            expanded, body = _tnef(content)
            if expanded is not None:
                found.extend(expanded)
                tnef_body = tnef_body or body
                continue
        found.append(_attachment(part, content, referenced))
    return found, tnef_body


def _message_bytes(part: Message) -> bytes:
    """The content of a message/* part: a forwarded mail as .eml, a delivery report's blocks as sent."""
    inner = part.get_payload()
    blocks = [block for block in inner if isinstance(block, Message)] if isinstance(inner, list) else []
    if blocks:
        blocks = blocks[:1] if _content_type(part) == "message/rfc822" else blocks
        try:
            return "".join(chunk for block in blocks for chunk in _source(block)).encode(
                "utf-8", "surrogateescape"
            )
        except Exception:
            return b"".join(block.as_bytes() for block in blocks)
    return _payload_bytes(part)


def _source(message: Message) -> Iterator[str]:
    """A parsed mail written back as it came: its header lines with their own folding, its body as sent
    (the stdlib's generator folds every header again, which costs more than the whole parse)."""
    for name, value in message.raw_items():
        yield f"{name}: {value}\n"
    yield "\n"
    payload = message.get_payload()
    if not isinstance(payload, list):
        yield payload if isinstance(payload, str) else ""
        return
    parts = [sub for sub in payload if isinstance(sub, Message)]
    if message.get_content_type() == "message/rfc822":
        yield from (chunk for inner in parts for chunk in _source(inner))
        return
    boundary = message.get_boundary() or ""
    if message.preamble:
        yield message.preamble + "\n"
    for sub in parts:
        yield f"--{boundary}\n"
        yield from _source(sub)
        yield "\n"
    yield f"--{boundary}--\n"
    if message.epilogue:
        yield message.epilogue


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


def _attachment(part: _Part, content: bytes, referenced: set[str]) -> Attachment:
    filename = part.filename
    if not filename and part.content_type == "message/rfc822":
        inner_subject = _inner_subject(part.message)
        filename = f"{inner_subject}.eml" if inner_subject else None
    # Gmail gives attachments a Content-ID too: an attachment is inline only when the body shows it.
    inline = part.disposition == "inline" or (
        bool(part.content_id) and (part.disposition != "attachment" or part.content_id in referenced)
    )
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
    """A name for a part that has none: by its kind, else `attachment` with its type's extension."""
    import mimetypes

    if content_type in _DEFAULT_NAMES:
        return _DEFAULT_NAMES[content_type]
    extension = mimetypes.guess_extension(content_type) or ".bin"
    return f"attachment{extension}"
