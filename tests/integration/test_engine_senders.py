"""Mails whose headers are odd still end as a ticket or as an error that says why; a mail's files are
the ticket's once each, inline images flagged."""

from pathlib import Path

import pytest

from mail2ticket.process import process_message
from mail2ticket.store import tickets as repo
from tests.integration.engine_support import deliver, inbox, person, receive, replica, tickets

pytestmark = pytest.mark.integration
MAILS = Path(__file__).parents[1] / "mails"
NO_SENDER = b"Subject: Printer 3rd floor\r\nTo: support@example.com\r\n\r\nThe printer is broken.\r\n"


@pytest.fixture(autouse=True)
def _stack(aws: object) -> None:
    person("h.weber@contoso.example", "Hannah Weber")
    person("marie.dupont@cabinet-dupont.example", "Marie Dupont")


def test_a_mail_whose_from_is_empty_becomes_the_ticket_of_its_reply_to_sender() -> None:
    inbox(unknown_caller_behavior="reject")

    outcome = receive(
        "helpdesk", ((MAILS / "empty_from_reply_to.eml").read_bytes(), "20251103083000.99@contoso.example")
    )

    [ticket] = tickets()
    assert (outcome.action, ticket.caller_email) == ("created", "h.weber@contoso.example")


def test_a_mail_with_a_broken_head_and_a_last_comma_first_sender_becomes_a_ticket() -> None:
    inbox(unknown_caller_behavior="reject")

    outcome = receive(
        "helpdesk",
        (
            (MAILS / "broken_head_from_last_first.eml").read_bytes(),
            "20251103091500.1234@cabinet-dupont.example",
        ),
    )

    [ticket] = tickets()
    assert (outcome.action, ticket.caller_email, ticket.title) == (
        "created",
        "marie.dupont@cabinet-dupont.example",
        "Accès au partage",
    )


def test_a_mail_without_any_sender_goes_the_unknown_caller_way_and_its_replica_says_why() -> None:
    inbox(unknown_caller_behavior="reject", unknown_caller_rejection_reply="Please register first.")

    key = deliver("helpdesk", NO_SENDER)
    outcome = process_message("helpdesk", key)

    assert (outcome.status, outcome.error_code) == ("error", "unknown_caller")
    stored = replica("helpdesk", key)
    assert stored.error_code == "unknown_caller"
    assert "no sender address" in (stored.error_message or "") and "Reply-To" in (stored.error_message or "")
    assert tickets() == []


def test_an_inbox_that_creates_persons_cannot_create_one_without_an_address_and_says_so() -> None:
    inbox(unknown_caller_behavior="create_person")

    outcome = process_message("helpdesk", deliver("helpdesk", NO_SENDER))

    assert (outcome.status, outcome.error_code) == ("error", "failed_to_create_person")
    assert "no sender address" in (outcome.error_message or "")


def test_an_image_pasted_twice_is_one_file_of_the_ticket_flagged_inline() -> None:
    inbox(unknown_caller_behavior="create_person")

    receive("helpdesk", ((MAILS / "apple_mail_text_between_images.eml").read_bytes(), "apple-1@example"))

    [ticket] = tickets()
    files = [(a.filename, a.inline) for a in repo.attachments(ticket.ref)]
    assert files == [("ecran.png", True)]
    assert "Puis, au deuxième essai" in ticket.description
