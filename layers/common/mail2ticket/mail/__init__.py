"""Mail understanding: pure functions, bytes in and dataclasses out."""

from mail2ticket.mail.attachments import AttachmentKey, Rejected
from mail2ticket.mail.html import rewrite_cids
from mail2ticket.mail.parse import Attachment, ParsedMail, parse_mail
from mail2ticket.mail.understand import MailContent, understand

__all__ = [
    "Attachment",
    "AttachmentKey",
    "MailContent",
    "ParsedMail",
    "Rejected",
    "parse_mail",
    "rewrite_cids",
    "understand",
]
