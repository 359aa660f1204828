"""Mail the system sends: the rejection reply to an unknown caller, and the forward of a mail in error."""

import email
import email.policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.mail.parse import ParsedMail


def rejection_reply(inbox: InboxConfig, mail: ParsedMail, text: str) -> EmailMessage:
    """The inbox's rejection text, answering the sender's mail in its thread."""
    reply = _message(inbox.login, mail.from_addr, _re(mail.subject), "auto-replied")
    if mail.message_id:
        reply["In-Reply-To"] = f"<{mail.message_id}>"
        reply["References"] = " ".join(f"<{mid}>" for mid in (*mail.references, mail.message_id))
    reply.set_content(text)
    return reply


def error_forward(
    inbox: InboxConfig,
    settings: GlobalConfig,
    raw: bytes | None,
    subject: str,
    message_key: str,
    code: str,
    reason: str,
) -> EmailMessage:
    """The reason as text, with the original mail (when read) attached as `eml_attachment_mime_type`."""
    sender = inbox.notify_errors_from or inbox.login
    title = f"[mail2ticket] {code} in {inbox.inbox_id}: {subject or '(no subject)'}"
    forward = _message(sender, inbox.notify_errors_to, title, "auto-generated")
    forward.set_content(
        f"A mail of inbox {inbox.inbox_id} (message {message_key}) could not become a ticket.\n\n"
        f"Error: {code}\nReason: {reason}\n"
    )
    if raw is not None:
        forward.make_mixed()
        forward.attach(_original(raw, settings.eml_attachment_mime_type))
    return forward


def _message(sender: str, to: str, subject: str, auto_submitted: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    domain = sender.rpartition("@")[2] or "mail2ticket.invalid"
    message["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834: well-behaved responders do not answer this, which stops mail loops.
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    return message


def _original(raw: bytes, content_type: str) -> EmailMessage:
    part = EmailMessage()
    if content_type == "message/rfc822":
        part["Content-Type"] = content_type
        part.set_payload([email.message_from_bytes(raw, policy=email.policy.compat32)])
        part["Content-Disposition"] = 'attachment; filename="original.eml"'
        return part
    maintype, _, subtype = content_type.partition("/")
    part.set_content(raw, maintype=maintype, subtype=subtype or "octet-stream", filename="original.eml")
    return part


def _re(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
