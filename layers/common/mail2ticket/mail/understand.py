"""One call that turns a parsed mail into what a ticket keeps: bodies, new part, files, undesired reason."""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache

from mail2ticket.config.models import GlobalConfig
from mail2ticket.mail.attachments import (
    DUPLICATE,
    AttachmentKey,
    Rejected,
    key_of,
    parse_size,
    select_attachments,
)
from mail2ticket.mail.html import sanitize_html
from mail2ticket.mail.parse import Attachment, ParsedMail
from mail2ticket.mail.reply import Reply, Rules, extract, rules
from mail2ticket.mail.reply_html import HtmlReply, html_reply
from mail2ticket.mail.undesired import undesired_reason

_IMG_CID = re.compile(r"""<img\b[^>]*\bsrc\s*=\s*["']?cid:([^"'\s>]+)[^>]*>""", re.IGNORECASE)
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_FEW_WORDS = 12
_TAG_OR_SPACE = re.compile(r"<[^>]*>|&nbsp;|\s+")
# A text part that only points at the HTML one: mass mailers', web mail's and mail libraries' placeholders.
_STUB_CHARS = 600
_STUB = re.compile(
    r"(?:view|read|open|see) (?:this|the|our) (?:e-?mail|message|newsletter|mail)"
    r"(?: online| in (?:your|a|the) (?:web )?browser)"
    r"|(?:html|rich[- ]text)[- ](?:capable|compatible|version|format|enabled|e-?mail|message)"
    r"|(?:does not|doesn't|cannot|can't|unable to) (?:support|display|show|read|render) html"
    r"|this is a multi-?part message in mime format|(?:e-?mail|message) (?:is|was) (?:sent |written )?in html"
    r"|version html|format html|en ligne|dans votre navigateur|im browser (?:ansehen|anzeigen|öffnen)"
    r"|html-version|nicht (?:richtig|korrekt) angezeigt|en (?:tu|su) navegador|versión html"
    r"|nel (?:tuo )?browser|versione html|in je browser|html-versie",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class MailContent:
    """What a ticket keeps of one mail. HTML is sanitized; inline images stay as `cid:<id>` references."""

    body_text: str
    body_html: str | None
    new_part_text: str
    new_part_html: str | None
    signature: str
    attachments: tuple[Attachment, ...]
    rejected: tuple[Rejected, ...]
    undesired: str | None
    # Later copies of a kept file in the same mail (same content): not files of their own, but their content
    # ids show the kept file.
    copies: tuple[Attachment, ...] = ()

    @property
    def new_part_without_signature(self) -> str:
        return Reply(self.new_part_text, self.signature).without_signature

    def without(self, existing: Iterable[AttachmentKey]) -> "MailContent":
        """This content without the attachments a ticket already has (same name, type, size and hash)."""
        known = set(existing)
        duplicates = [a for a in self.attachments if key_of(a) in known]
        if not duplicates:
            return self
        return replace(
            self,
            attachments=tuple(a for a in self.attachments if key_of(a) not in known),
            rejected=(*self.rejected, *(Rejected(a, DUPLICATE) for a in duplicates)),
        )


def understand(
    mail: ParsedMail, settings: GlobalConfig, existing: Iterable[AttachmentKey] = ()
) -> MailContent:
    """Bodies per `body_parts_order`, the new part of a reply, the files to keep, and why it is undesired.

    The sender's text part is the body when it carries the message; when it is empty, a stub ("view this
    mail in your browser") or clearly not the text of the HTML part, the HTML's rendering is.
    """
    compiled = rules(
        tuple(settings.multiline_delimiter_patterns),
        tuple(settings.introductory_patterns),
        tuple(settings.delimiter_patterns),
    )
    kept, rejected, copies = select_attachments(
        mail.attachments,
        settings.exclude_attachment_types,
        parse_size(settings.images_minimum_size),
        parse_size(settings.images_maximum_size),
        existing,
    )
    shown = {a.content_id for a in (*kept, *copies) if a.content_id}
    dropped_cids = {r.attachment.content_id for r in rejected if r.attachment.content_id} - shown
    dropped_cids -= {r.attachment.content_id for r in rejected if r.reason == DUPLICATE}
    html = _without_images(mail.body_html, dropped_cids) if mail.body_html else None
    plain = mail.plain_text
    found = None
    if html is not None and _html_wanted(settings.body_parts_order, mail) and _shows_text(html):
        found = _html_reply(html, settings.html_tags_to_remove, compiled)
    if found is not None and not carries_message(plain, found.full_text):
        body_text, reply = found.full_text, found.reply
    else:
        body_text = mail.body_text
        reply = extract(body_text, compiled)
    if mail.notes:
        body_text = f"{body_text}\n\n[{'; '.join(mail.notes)}]".strip()
    body_html = _sanitized(html)
    # An HTML reply with nothing to cut is the body itself: sanitized once.
    new_part_html = None if found is None else body_html if found.html is html else _sanitized(found.html)
    return MailContent(
        body_text=body_text,
        body_html=body_html,
        new_part_text=reply.text,
        new_part_html=new_part_html,
        signature=reply.signature,
        attachments=tuple(kept),
        rejected=tuple(rejected),
        undesired=undesired_reason(mail, settings.undesired_subject_patterns),
        copies=tuple(copies),
    )


def _html_reply(html: str, selectors: Sequence[str], compiled: Rules) -> HtmlReply | None:
    """The HTML's new part; None when the HTML cannot be read (the text body then stands for it)."""
    try:
        return html_reply(html, selectors, compiled)
    except Exception:
        return None


def _sanitized(html: str | None) -> str | None:
    if not html:
        return None
    try:
        return sanitize_html(html)
    except Exception:
        return None


def _prefers_html(order: str, mail: ParsedMail) -> bool:
    """True when the first available type of `body_parts_order` is HTML."""
    for name in (part.strip().lower() for part in order.split(",")):
        if name == "text/html" and mail.body_html and mail.body_html.strip():
            return True
        if name == "text/plain" and mail.plain_text:
            return False
    return False


def _html_wanted(order: str, mail: ParsedMail) -> bool:
    """The HTML is read when `body_parts_order` prefers it, or when the text part is empty or a stub."""
    return _prefers_html(order, mail) or _looks_like_stub(mail.plain_text)


def _shows_text(html: str) -> bool:
    """False for HTML without a visible character outside its tags (`<html></html>`, only images): there
    is nothing in it to read, nor to cut."""
    return bool(_TAG_OR_SPACE.sub("", html))


def _looks_like_stub(plain: str) -> bool:
    text = plain.strip()
    return not text or (len(text) < _STUB_CHARS and bool(_STUB.search(text)))


def carries_message(plain: str, rendered: str) -> bool:
    """True when the sender's text part says what the HTML says: not empty, not a stub, and holding at
    least half of the words the HTML shows."""
    if _looks_like_stub(plain):
        return False
    words = _words()
    shown = set(words.findall(rendered.lower()))
    if len(shown) < _FEW_WORDS:
        return True
    return len(shown & set(words.findall(plain.lower()))) * 2 >= len(shown)


@cache
def _words() -> re.Pattern[str]:
    """Words of three letters and more, and CJK characters one by one (compiled on first use: its
    character ranges are slow to compile)."""
    return re.compile(rf"[{_CJK}]|[^\W{_CJK}]{{3,}}")


def _without_images(html: str, content_ids: set[str]) -> str:
    """Remove the `<img>` of inline images that were not kept (signature logos, refused files)."""
    if not content_ids:
        return html
    return _IMG_CID.sub(lambda m: "" if m.group(1) in content_ids else m.group(0), html)
