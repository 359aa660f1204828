"""One poll + process cycle against Dovecot and moto server: tickets, replicas, replies."""

import pytest

from infra.local import runner
from tests.conftest import MailAccount
from tests.integration.engine_support import make_mail, tickets
from tests.integration.polling import cycle, replicas, save

pytestmark = pytest.mark.integration


def test_new_mail_becomes_a_ticket_and_its_replica_is_processed(mail_account: MailAccount) -> None:
    # Given an inbox with one new mail
    save(mail_account.inbox("helpdesk"))
    raw, message_id = make_mail("Printer jammed on 3rd floor", "The printer shows error E-42.\nThanks, Alice")
    mail_account.append(raw)

    # When the poller and processor run once
    cycle()

    # Then one ticket holds the mail, its caller was created, and the replica is processed
    [ticket] = tickets()
    assert (ticket.ref, ticket.title, ticket.caller_email) == (
        "R-000001",
        "Printer jammed on 3rd floor",
        "alice@example.org",
    )
    assert ticket.description.startswith("The printer shows error E-42.")
    assert ticket.origin == "mail" and ticket.message_id == message_id
    [replica] = replicas("helpdesk")
    assert (replica.status, replica.ticket_ref, replica.message_id) == (
        "processed",
        "R-000001",
        message_id,
    )
    from mail2ticket.store.raw import get_object

    assert get_object(replica.s3_key) == raw


def test_reply_by_in_reply_to_appends_the_new_part_to_the_ticket_log(mail_account: MailAccount) -> None:
    save(mail_account.inbox("helpdesk"))
    first, first_id = make_mail("VPN access", "Please give me VPN access.")
    mail_account.append(first)
    cycle()
    reply, _ = make_mail(
        "Re: VPN access",
        "It works now, thank you!\n\n"
        "On Mon, 3 Nov 2025 at 10:12, Alice wrote:\n> Please give me VPN access.\n",
        in_reply_to=first_id,
    )
    mail_account.append(reply)

    cycle()

    [ticket] = tickets()
    from mail2ticket.store.tickets import log_entries

    [entry] = list(log_entries(ticket.ref))
    assert entry.text == "It works now, thank you!"
    assert "> Please give me VPN access." in (entry.full_text or "")
    statuses = sorted((r.status, r.ticket_ref) for r in replicas("helpdesk"))
    assert statuses == [("processed", "R-000001"), ("processed", "R-000001")]


def test_reply_matched_only_through_references(mail_account: MailAccount) -> None:
    save(mail_account.inbox("helpdesk"))
    first, first_id = make_mail("Laptop broken", "Screen is black.")
    mail_account.append(first)
    cycle()
    reply, _ = make_mail(
        "Re: Laptop broken", "Still black.", references=f"<older@example.net> \t<{first_id}>"
    )
    mail_account.append(reply)

    cycle()

    assert [t.ref for t in tickets()] == ["R-000001"]


def test_unrelated_mail_opens_a_second_ticket(mail_account: MailAccount) -> None:
    save(mail_account.inbox("helpdesk"))
    for subject in ("First problem", "Second problem"):
        mail_account.append(make_mail(subject, "details")[0])

    cycle()

    assert [(t.ref, t.title) for t in tickets()] == [
        ("R-000001", "First problem"),
        ("R-000002", "Second problem"),
    ]


def test_polling_again_and_duplicate_deliveries_change_nothing(mail_account: MailAccount) -> None:
    save(mail_account.inbox("helpdesk", periodicity_seconds=1))
    mail_account.append(make_mail("Only once", "body")[0])
    cycle()
    [replica] = replicas("helpdesk")

    # When the same queue message is delivered again and the mailbox is polled again later
    from mail2ticket.store.queue import enqueue

    enqueue("helpdesk", replica.message_key)
    cycle()

    assert len(tickets()) == 1
    assert [r.status for r in replicas("helpdesk")] == ["processed"]


def test_autoreply_is_recorded_as_undesired_without_a_ticket(mail_account: MailAccount) -> None:
    save(mail_account.inbox("helpdesk"))
    raw, _ = make_mail(
        "Automatic reply: VPN access", "I am out of office.", headers={"Auto-Submitted": "auto-replied"}
    )
    mail_account.append(raw)

    cycle()

    assert tickets() == []
    [replica] = replicas("helpdesk")
    assert (replica.status, replica.undesired_reason) == ("undesired", "Auto-Submitted: auto-replied")


def test_unknown_caller_is_rejected_with_a_readable_error(mail_account: MailAccount) -> None:
    save(mail_account.inbox("helpdesk", unknown_caller_behavior="reject"))
    mail_account.append(make_mail("Hello", "Who am I?", sender="stranger@example.net")[0])

    cycle()

    assert tickets() == []
    [replica] = replicas("helpdesk")
    assert (replica.status, replica.error_code) == ("error", "unknown_caller")
    assert "stranger@example.net" in (replica.error_message or "")


def test_a_broken_inbox_does_not_stop_the_others(mail_account: MailAccount) -> None:
    good = mail_account.inbox("good")
    broken = mail_account.inbox("broken", port=1)
    save(good)
    save(broken)
    mail_account.append(make_mail("Still arrives", "body")[0])

    result = runner.run_poller()
    runner.drain_queue()

    by_inbox = {p["inbox_id"]: p for p in result["polled"]}
    assert by_inbox["broken"]["error"] and by_inbox["good"]["received"] == 1
    assert result["failed"] == 1
    assert [t.title for t in tickets()] == ["Still arrives"]


def test_wrong_password_is_reported_without_the_secret(mail_account: MailAccount) -> None:
    import boto3

    boto3.client("secretsmanager").put_secret_value(
        SecretId=mail_account.secret_arn, SecretString="wrong-pw-123"
    )
    from mail2ticket.store.secrets import clear_cache

    clear_cache()
    save(mail_account.inbox("helpdesk"))

    result = runner.run_poller()

    [poll] = result["polled"]
    assert poll["error"] and "wrong-pw-123" not in poll["error"]
