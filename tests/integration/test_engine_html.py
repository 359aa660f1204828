"""The ticket keeps the mail's HTML: sanitized, inline images pointing at their stored attachments."""

import hashlib
from pathlib import Path

import pytest

from infra.local.stack import LocalStack
from mail2ticket.mail.parse import parse_mail
from mail2ticket.process import process_message
from mail2ticket.store.tickets import attachments, log_entries
from tests.integration.engine_support import deliver, inbox, person, tickets

pytestmark = pytest.mark.integration
MAILS = Path(__file__).parents[1] / "mails"


def test_new_ticket_keeps_sanitized_html_with_inline_images_at_their_attachment(aws: LocalStack) -> None:
    # Given a Gmail mail with an inline screenshot, a tiny signature logo and a PDF
    inbox("helpdesk")
    raw = (MAILS / "gmail_new_with_attachment.eml").read_bytes()
    person(parse_mail(raw).from_addr)
    key = deliver("helpdesk", raw)

    # When it is processed
    process_message("helpdesk", key)

    # Then the HTML points at the stored screenshot, the logo is gone, and nothing active is left
    [ticket] = tickets()
    html = ticket.description_html or ""
    shot = next(a for a in parse_mail(raw).attachments if a.filename == "export_error.png")
    assert f'src="attachments/{hashlib.sha256(shot.content).hexdigest()}"' in html
    assert "cid:" not in html and "<script" not in html.lower()
    names = {a.filename for a in attachments(ticket.ref)}
    assert "export_error.png" in names and "fabrikam_logo.png" not in names


def test_reply_log_entry_keeps_the_html_of_its_new_part_only(aws: LocalStack) -> None:
    # Given a ticket opened by an Outlook mail
    inbox("helpdesk")
    first = (MAILS / "outlook_new_request_en.eml").read_bytes()
    reply = (MAILS / "outlook_reply_en.eml").read_bytes()
    person(parse_mail(first).from_addr)
    person(parse_mail(reply).from_addr)
    process_message("helpdesk", deliver("helpdesk", first))

    # When Outlook's reply arrives
    process_message("helpdesk", deliver("helpdesk", reply))

    # Then the log entry's HTML holds the reply without the quoted original
    [ticket] = tickets()
    [entry] = list(log_entries(ticket.ref))
    assert entry.html and "Hi all," in entry.html
    assert "divRplyFwdMsg" not in entry.html and "Original Message" not in entry.html
    assert entry.text.startswith("Hi all,")
