"""Errors and what follows them: rejection replies, forwards through SES or SMTP, events, retry."""

import email
import email.policy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import runner
from mail2ticket.settings import get_settings
from mail2ticket.store import tickets as repo
from tests.integration.engine_support import (
    SUPPORT,
    all_replicas,
    deliver,
    event_queue,
    global_config,
    inbox,
    make_mail,
    person,
    published,
    receive,
    replica,
    ses_outbox,
    tickets,
    verify_sender,
)

pytestmark = pytest.mark.integration

ADMIN = "admin@example.com"
ERRORS_FROM = "mail2ticket@example.com"


@pytest.fixture(autouse=True)
def _stack(aws: object) -> None:
    person("alice@example.org", "Alice Martin")
    verify_sender(SUPPORT)
    verify_sender(ERRORS_FROM)


@pytest.fixture
def smtp_relay(smtp: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Outgoing mail through the SMTP capture server instead of SES."""
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(smtp.port))
    get_settings.cache_clear()
    smtp.received.clear()
    yield smtp
    get_settings.cache_clear()


def _sent(subject_part: str) -> list[email.message.EmailMessage]:
    found = []
    for raw in ses_outbox():
        message = email.message_from_string(raw["raw_data"], policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        if subject_part in str(message["Subject"]):
            found.append(message)
    return found


def test_an_unknown_caller_gets_the_rejection_reply_through_ses() -> None:
    inbox(unknown_caller_behavior="reject", unknown_caller_rejection_reply="Please register first.")
    raw, message_id = make_mail("Access request 81723", sender="stranger@example.net")

    receive("helpdesk", (raw, message_id))

    [reply] = _sent("Access request 81723")
    assert (reply["To"], reply["From"], reply["In-Reply-To"]) == (
        "stranger@example.net",
        SUPPORT,
        f"<{message_id}>",
    )
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply.get_content().strip() == "Please register first."


def test_no_rejection_reply_is_sent_to_an_automatic_mail() -> None:
    inbox(unknown_caller_behavior="reject", unknown_caller_rejection_reply="Please register first.")
    autoreply = make_mail(
        "Out of office 55120", sender="stranger@example.net", headers={"Auto-Submitted": "auto-replied"}
    )

    outcome = receive("helpdesk", autoreply)

    assert outcome.status == "undesired"
    assert _sent("55120") == []


def test_no_rejection_reply_without_a_rejection_text() -> None:
    inbox(unknown_caller_behavior="reject")

    receive("helpdesk", make_mail("Silent 99120", sender="stranger@example.net"))

    assert _sent("99120") == []


def test_a_mail_in_error_is_forwarded_with_the_original_attached_through_ses() -> None:
    inbox(notify_errors_to=ADMIN, notify_errors_from=ERRORS_FROM, behavior="update_only")
    raw, message_id = make_mail("Orphan reply 40412")

    receive("helpdesk", (raw, message_id))

    [forward] = _sent("Orphan reply 40412")
    assert (forward["To"], forward["From"]) == (ADMIN, ERRORS_FROM)
    assert "nothing_to_update" in str(forward["Subject"])
    body = forward.get_body(preferencelist=("plain",))
    assert body is not None and "no ticket matches" in body.get_content()
    [attachment] = forward.iter_attachments()
    assert attachment.get_content_type() == "message/rfc822"
    original = attachment.get_payload()[0]
    assert (original["Message-ID"], original["Subject"]) == (f"<{message_id}>", "Orphan reply 40412")


def test_a_too_big_mail_is_not_read_and_the_admins_are_told_where_it_is() -> None:
    # Given a 1 KiB limit and a bigger mail stored as the poller stores it (under big/)
    global_config(maximum_email_size="1K")
    inbox(notify_errors_to=ADMIN, notify_errors_from=ERRORS_FROM)
    raw, _ = make_mail("Huge scan 7731", body="x" * 4000)
    message_key = deliver("helpdesk", raw, prefix="big")
    key = replica("helpdesk", message_key).s3_key

    # When it is processed
    from mail2ticket.process import process_message

    outcome = process_message("helpdesk", message_key)

    # Then it is an error too_big, and the forward names the place of the raw mail without attaching it
    assert (outcome.status, outcome.error_code) == ("error", "too_big")
    [forward] = _sent("Huge scan 7731")
    body = forward.get_body(preferencelist=("plain",))
    assert body is not None and key in body.get_content() and "1K" in body.get_content()
    assert list(forward.iter_attachments()) == []


def test_the_forward_uses_the_configured_eml_attachment_type_and_the_login_as_sender() -> None:
    global_config(eml_attachment_mime_type="application/octet-stream")
    inbox(notify_errors_to=ADMIN, behavior="update_only")
    raw, _ = make_mail("Orphan 7781")

    receive("helpdesk", (raw, _))

    [forward] = _sent("Orphan 7781")
    assert forward["From"] == SUPPORT
    [attachment] = forward.iter_attachments()
    assert attachment.get_content_type() == "application/octet-stream"
    assert attachment.get_content() == raw


def test_with_smtp_configured_the_forward_goes_through_the_relay(smtp_relay: Any) -> None:
    inbox(notify_errors_to=ADMIN, notify_errors_from=ERRORS_FROM, behavior="update_only")

    receive("helpdesk", make_mail("Relay test 3310"))

    [captured] = [m for m in smtp_relay.received if "Relay test 3310" in str(m.message["Subject"])]
    assert (captured.mail_from, captured.rcpt_tos) == (ERRORS_FROM, [ADMIN])
    assert [a.get_content_type() for a in captured.message.iter_attachments()] == ["message/rfc822"]
    assert _sent("Relay test 3310") == []


def test_every_outcome_is_published_on_the_bus_without_the_mail_body() -> None:
    url = event_queue()
    inbox(unknown_caller_behavior="reject")
    first = make_mail("Printer", "SECRET-BODY-TEXT")
    keys = [deliver("helpdesk", *first)]
    receive_all = [
        make_mail("Re: Printer", "SECRET-BODY-TEXT", in_reply_to=first[1]),
        make_mail("Out of office", "SECRET-BODY-TEXT", headers={"Auto-Submitted": "auto-replied"}),
        make_mail("Hi", "SECRET-BODY-TEXT", sender="stranger@example.net"),
    ]
    keys += [deliver("helpdesk", *m) for m in receive_all]

    for key in keys:
        from mail2ticket.process import process_message

        process_message("helpdesk", key)

    found = published(url)
    assert "SECRET-BODY-TEXT" not in json.dumps(found)
    by_type = {e["detail-type"]: e["detail"] for e in found}
    assert set(by_type) == {"TicketCreatedFromMail", "TicketUpdatedByMail", "MailRejected", "MailInError"}
    assert by_type["TicketCreatedFromMail"] == {
        "inbox_id": "helpdesk",
        "message_key": keys[0],
        "outcome": "created",
        "status": "processed",
        "ticket_ref": "R-000001",
    }
    assert by_type["TicketUpdatedByMail"]["ticket_ref"] == "R-000001"
    assert by_type["MailRejected"]["message_key"] == keys[2]
    assert (by_type["MailInError"]["error_code"], by_type["MailInError"]["message_key"]) == (
        "unknown_caller",
        keys[3],
    )
    assert {e["source"] for e in found} == {"mail2ticket"}


def test_the_processor_retry_invocation_reprocesses_a_fixed_error() -> None:
    inbox(unknown_caller_behavior="reject")
    key = deliver("helpdesk", *make_mail("Hi", sender="bob@example.net"))
    from mail2ticket.process import process_message

    assert process_message("helpdesk", key).error_code == "unknown_caller"
    person("bob@example.net", "Bob")

    result = runner.retry("helpdesk", key)

    assert (result["action"], result["ticket_ref"]) == ("created", "R-000001")
    [replica] = all_replicas()
    assert (replica.status, replica.ticket_ref, replica.error_code) == ("processed", "R-000001", None)


def test_a_retry_through_the_cli_turns_a_fixed_error_into_a_ticket(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a mail in error because its sender is unknown
    from mail2ticket.cli.main import main

    inbox(unknown_caller_behavior="reject")
    key = deliver("helpdesk", *make_mail("Need a badge", sender="bob@example.net"))
    from mail2ticket.process import process_message

    assert process_message("helpdesk", key).error_code == "unknown_caller"

    # When the operator creates the person and retries the message from the CLI
    person("bob@example.net", "Bob")
    code = main(["retry", "helpdesk", key, "--json"])

    # Then the message became a ticket
    assert code == 0
    printed = "\n" + capsys.readouterr().out
    outcome = json.loads(printed[printed.rindex("\n{\n") :])  # log lines come first, then the result
    assert (outcome["action"], outcome["ticket_ref"]) == ("created", "R-000001")
    assert [(t.ref, t.title, t.caller_email) for t in tickets()] == [
        ("R-000001", "Need a badge", "bob@example.net")
    ]
    assert repo.get_person("bob@example.net") is not None
