"""Mails the system sends: rejection replies and error forwards."""

import email
import email.policy

from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.mail.parse import parse_mail
from mail2ticket.tickets.notices import error_forward, rejection_reply
from tests.conftest import read_mail

INBOX = InboxConfig(inbox_id="helpdesk", server="mail.example.com", login="support@example.com")


def test_a_rejection_reply_answers_in_the_thread_and_marks_itself_automatic() -> None:
    mail = parse_mail(read_mail("outlook_new_request_en.eml"))

    reply = rejection_reply(INBOX, mail, "Please register first.")

    assert (reply["From"], reply["To"]) == ("support@example.com", mail.from_addr)
    assert reply["In-Reply-To"] == f"<{mail.message_id}>"
    assert str(reply["Subject"]).startswith("Re: ")
    assert reply["Auto-Submitted"] == "auto-replied" and reply["Message-ID"]


def test_an_error_forward_carries_the_reason_and_the_original() -> None:
    raw = read_mail("gmail_new_with_attachment.eml")
    inbox = INBOX.model_copy(update={"notify_errors_to": "admin@example.com"})

    forward = error_forward(
        inbox, GlobalConfig(), raw, "Subject", "1:7", "unknown_caller", "no person has ..."
    )

    parsed = email.message_from_bytes(forward.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    assert "unknown_caller" in str(parsed["Subject"]) and parsed["To"] == "admin@example.com"
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None and "no person has ..." in body.get_content()
    [attachment] = parsed.iter_attachments()
    assert attachment.get_content_type() == "message/rfc822"


def test_an_error_forward_without_the_original_has_no_attachment() -> None:
    forward = error_forward(INBOX, GlobalConfig(), None, "", "1:7", "internal", "S3 unreachable")

    assert list(forward.iter_attachments()) == [] and "(no subject)" in str(forward["Subject"])
