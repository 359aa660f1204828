"""One call that turns a parsed mail into what a ticket keeps: bodies, new part, files, undesired reason."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

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
from mail2ticket.mail.reply import Reply, extract, rules
from mail2ticket.mail.reply_html import html_reply
from mail2ticket.mail.undesired import undesired_reason

_IMG_CID = re.compile(r"""<img\b[^>]*\bsrc\s*=\s*["']?cid:([^"'\s>]+)[^>]*>""", re.IGNORECASE)


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
    """Bodies per `body_parts_order`, the new part of a reply, the files to keep, and why it is undesired."""
    compiled = rules(
        tuple(settings.multiline_delimiter_patterns),
        tuple(settings.introductory_patterns),
        tuple(settings.delimiter_patterns),
    )
    kept, rejected = select_attachments(
        mail.attachments,
        settings.exclude_attachment_types,
        parse_size(settings.images_minimum_size),
        parse_size(settings.images_maximum_size),
        existing,
    )
    dropped_cids = {r.attachment.content_id for r in rejected if r.attachment.content_id}
    dropped_cids -= {a.content_id for a in kept if a.content_id}
    dropped_cids -= {r.attachment.content_id for r in rejected if r.reason == DUPLICATE}
    html = _without_images(mail.body_html, dropped_cids) if mail.body_html else None
    found = None
    if html and html.strip() and (_prefers_html(settings.body_parts_order, mail) or not mail.body_text):
        found = html_reply(html, settings.html_tags_to_remove, compiled)
    # The sender's own text part says the new part in text best; HTML-only mail is read from its rendering.
    if found is not None and not mail.has_text_part:
        body_text, reply = found.full_text, found.reply
    else:
        body_text = mail.body_text
        reply = extract(body_text, compiled)
    return MailContent(
        body_text=body_text,
        body_html=sanitize_html(html) if html else None,
        new_part_text=reply.text,
        new_part_html=sanitize_html(found.html) if found is not None else None,
        signature=reply.signature,
        attachments=tuple(kept),
        rejected=tuple(rejected),
        undesired=undesired_reason(mail, settings.undesired_subject_patterns),
    )


def _prefers_html(order: str, mail: ParsedMail) -> bool:
    """True when the first available type of `body_parts_order` is HTML."""
    for name in (part.strip().lower() for part in order.split(",")):
        if name == "text/html" and mail.body_html and mail.body_html.strip():
            return True
        if name == "text/plain" and mail.body_text:
            return False
    return False


def _without_images(html: str, content_ids: set[str]) -> str:
    """Remove the `<img>` of inline images that were not kept (signature logos, refused files)."""
    if not content_ids:
        return html
    return _IMG_CID.sub(lambda m: "" if m.group(1) in content_ids else m.group(0), html)
