"""Hostile and unlucky mail through the local stack, the DynamoDB limits check on: long ids and addresses,
huge and 8-bit headers, hundreds of attachments, a replica that cannot be written.

Each mail ends as a ticket entry or an error replica with a readable reason, and the mails after it arrive.
"""

import time
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from infra.local import runner
from infra.local.aws_calls import REFUSE
from mail2ticket.store.bounds import DIGEST_MARK
from tests.conftest import MailAccount
from tests.integration.engine_support import deliver, inbox, person
from tests.integration.fault_support import Runs, injected, outcome
from tests.integration.polling import cycle, replicas, save, ticket_titles

pytestmark = pytest.mark.integration


def _raw(subject: bytes, message_id: bytes, body: bytes = b"Hello.\r\n", **headers: bytes) -> bytes:
    """A mail written byte for byte, so that it can break every rule a generator would enforce."""
    lines = [
        b"From: " + headers.pop("sender", b"Alice Martin <alice@example.org>"),
        b"To: support@example.com",
        b"Subject: " + subject,
        b"Date: Mon, 03 Nov 2025 10:12:00 +0100",
        b"Message-ID: " + message_id,
        *(name.replace("_", "-").encode() + b": " + value for name, value in headers.items()),
        b"Content-Type: text/plain; charset=utf-8",
        b"",
        body,
    ]
    return b"\r\n".join(lines)


def _ordinary(n: int) -> bytes:
    return _raw(f"Ordinary {n}".encode(), f"<ordinary-{n}@example.org>".encode())


def test_a_message_id_over_the_index_key_limit_blocks_nothing_and_replies_find_its_ticket(
    mail_account: MailAccount,
) -> None:
    # Given a mail whose Message-ID is 2,093 bytes (over the by_message_id index key's 2,048), then 5 more
    save(mail_account.inbox("helpdesk", unknown_caller_behavior="create_person"))
    long_id = "<" + "x" * 2080 + "@example.org>"
    mail_account.append(_raw(b"Long id", long_id.encode()))
    for n in range(5):
        mail_account.append(_ordinary(n))

    # When the poller and the processor run
    cycle()
    # and a reply quotes that Message-ID
    mail_account.append(_raw(b"Re: Long id", b"<reply@example.org>", In_Reply_To=long_id.encode()))
    cycle()

    # Then every mail is a ticket; the reply updated the first one, found through the bounded id
    assert ticket_titles() == ["Long id", *(f"Ordinary {n}" for n in range(5))]
    by_subject = {r.subject: r for r in replicas("helpdesk")}
    assert {r.status for r in by_subject.values()} == {"processed"}
    assert by_subject["Re: Long id"].ticket_ref == by_subject["Long id"].ticket_ref
    stored = by_subject["Long id"]
    assert DIGEST_MARK in (stored.message_id or "") and len((stored.message_id or "").encode()) <= 2048
    assert stored.message_id_full == long_id.strip("<>")


def test_long_references_in_reply_to_and_sender_address_stay_within_key_limits(
    mail_account: MailAccount,
) -> None:
    # Given mails with a 3,000-character In-Reply-To, 50 long References, and a 3,000-character sender
    save(mail_account.inbox("helpdesk", unknown_caller_behavior="create_person"))
    long_ref = b"<" + b"r" * 3000 + b"@example.org>"
    references = b" ".join(b"<" + str(n).encode() * 700 + b"@example.org>" for n in range(10))
    mail_account.append(
        _raw(b"Long in-reply-to", b"<a@example.org>", In_Reply_To=long_ref, References=references)
    )
    long_sender = b"Bob <" + b"b" * 3000 + b"@example.org>"
    mail_account.append(_raw(b"Long sender 1", b"<b@example.org>", sender=long_sender))
    mail_account.append(_raw(b"Long sender 2", b"<c@example.org>", sender=long_sender))
    mail_account.append(_ordinary(1))

    # When they are polled and processed
    cycle()

    # Then each is a ticket, and both mails of the long sender belong to one person
    from mail2ticket.store import tickets as repo

    assert ticket_titles() == ["Long in-reply-to", "Long sender 1", "Long sender 2", "Ordinary 1"]
    callers = {t.title: t.caller_email for t in repo.list_tickets()}
    assert callers["Long sender 1"] == callers["Long sender 2"]
    assert repo.get_person("b" * 3000 + "@example.org") is not None


def test_a_huge_folded_subject_and_8_bit_headers_with_overlong_lines_become_tickets(
    mail_account: MailAccount,
) -> None:
    # Given a subject of 1 MB folded over many lines, and a mail with raw 8-bit headers and a 20,000-byte line
    save(mail_account.inbox("helpdesk", unknown_caller_behavior="create_person"))
    huge = b"\r\n ".join([b"word " * 190] * 1100)
    mail_account.append(_raw(huge, b"<huge@example.org>"))
    eight_bit = _raw(
        b"R\xe9union caf\xe9 " + b"y" * 20_000,
        b"<8bit@example.org>",
        sender=b"Ren\xe9 M\xfcller <rene@example.org>",
        X_Note=b"z" * 20_000,
    )
    mail_account.append(eight_bit)
    mail_account.append(_ordinary(1))

    # When they are polled and processed
    cycle()

    # Then each is a ticket, with its title and the replica's fields cut, and none is in error
    found = outcome("helpdesk")
    assert found["statuses"] == ["processed"] * 3 and found["errors"] == []
    from mail2ticket.store import tickets as repo

    titles = sorted(repo.list_tickets(), key=lambda t: len(t.title))
    assert len(titles[-1].title.encode()) <= 1024 and titles[-1].title.startswith("word word")
    assert all(len((r.subject or "").encode()) <= 2048 for r in replicas("helpdesk"))


def _with_attachments(count: int, name: str = "file") -> bytes:
    message = EmailMessage()
    message["From"] = "Alice Martin <alice@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = f"{count} attachments"
    message["Message-ID"] = f"<attachments-{count}@example.org>"
    message.set_content("See attached.")
    for n in range(count):
        content = f"%PDF-1.4 document {n}\n".encode() * 20
        message.add_attachment(content, maintype="application", subtype="pdf", filename=f"{name}-{n}.pdf")
    return message.as_bytes(policy=SMTP)


def test_a_mail_with_300_attachments_is_one_ticket_with_every_file(mail_account: MailAccount) -> None:
    # Given a mail with 300 attachments (three times what one transaction holds), and one more mail
    save(mail_account.inbox("helpdesk", unknown_caller_behavior="create_person"))
    mail_account.append(_with_attachments(300))
    mail_account.append(_ordinary(1))

    # When it is polled and processed
    runner.run_poller()
    started = time.monotonic()
    runner.drain_queue()
    took = time.monotonic() - started

    # Then one ticket holds its 300 files, and the other mail is a ticket too
    found = outcome("helpdesk")
    assert found["titles"] == ["300 attachments", "Ordinary 1"]
    assert found["attachments"] == [0, 300]
    print(f"300 attachments processed in {took:.2f} s")


def test_a_request_dynamodb_would_refuse_ends_the_mail_in_error_at_once_with_what_was_over(
    aws: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given bounds loosened so that a 500 KB body reaches the transaction whole (a defect, caught here)
    from mail2ticket.process import process_message
    from mail2ticket.store.models import TicketItem
    from mail2ticket.tickets import engine

    monkeypatch.setattr(engine, "MAX_TEXT_BYTES", 10**7)
    monkeypatch.setattr(TicketItem.description, "max_bytes", 10**7)
    inbox("helpdesk")
    person("alice@example.org")
    raw = _raw(b"Big body", b"<big@example.org>", body=b"text " * 100_000)

    # When it is processed once
    result = process_message("helpdesk", deliver("helpdesk", raw))

    # Then it is an error at the first attempt, saying what DynamoDB would refuse
    assert result.action == "error" and result.error_code == "internal"
    assert "DynamoDB would refuse TransactWriteItems" in (result.error_message or "")
    assert "over DynamoDB's limit of 409,600" in (result.error_message or "")


def _replica_put(status: str) -> Any:
    def matches(call: Any) -> bool:
        item = call.params.get("Item", {})
        return call.operation == "PutItem" and item.get("status") == {"S": status}

    return matches


def _poll_refusing(mail_account: MailAccount, runs: Runs, when: Any) -> None:
    """A poll during which DynamoDB refuses the writes `when` picks; then a later mail, and time passes."""
    runs.injector.arm(fault=REFUSE, when=when)
    runs.poll()
    runs.injector.arm(None)
    mail_account.append(_ordinary(2))
    runs.settle()


def test_a_replica_that_cannot_be_written_becomes_an_error_replica_and_the_poll_moves_on(
    mail_account: MailAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a mail whose replica DynamoDB refuses, then later mails
    save(mail_account.inbox("helpdesk", unknown_caller_behavior="create_person"))
    mail_account.append(_ordinary(1))
    with injected(monkeypatch) as (injector, clock):
        # When it is polled (the refusal lasts for this poll only) and later mails arrive
        _poll_refusing(mail_account, Runs(injector, clock), _replica_put("new"))

    # Then it is an error replica saying why, its raw mail kept, and the later mail is a ticket
    found = {r.subject or r.message_key: r for r in replicas("helpdesk")}
    [error] = [r for r in found.values() if r.status == "error"]
    assert "could not be recorded" in (error.error_message or "") and "ValidationException" in (
        error.error_message or ""
    )
    from mail2ticket.store.raw import get_object

    assert get_object(error.s3_key).startswith(b"From: ")
    assert ticket_titles() == ["Ordinary 2"]


def test_a_mail_not_even_an_error_replica_can_hold_is_skipped_listed_and_recorded_again(
    mail_account: MailAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mail2ticket.store.raw import skip_records

    # Given a mail whose replica and error replica DynamoDB both refuse, then a later mail
    save(mail_account.inbox("helpdesk", unknown_caller_behavior="create_person"))
    mail_account.append(_ordinary(1))
    with injected(monkeypatch) as (injector, clock):
        runs = Runs(injector, clock)
        _poll_refusing(
            mail_account, runs, lambda c: c.operation == "PutItem" and "status" in c.params.get("Item", {})
        )
        # the cleaner, long after, leaves its raw mail alone
        clock.advance(10 * 86400)
        with injector.running():
            runner.run_cleaner(now=clock.moment)
        skipped = list(skip_records())
        # When the operator, the cause fixed, asks the poller to record skipped mails again
        with injector.running():
            answer = runner.invoke("poller", {"retry_skipped": {}})
        runs.settle()

    # Then the skip record named the mail and the reason; recorded again, it became a ticket
    [(_, record)] = skipped
    assert record["inbox_id"] == "helpdesk" and "nor as an error replica" in record["reason"]
    assert [r["state"] for r in answer["recorded"]] == ["queued"]
    assert list(skip_records()) == []
    assert ticket_titles() == ["Ordinary 1", "Ordinary 2"]


def test_the_content_of_a_huge_maildrop_is_kept_beside_the_poll_state_not_in_it(aws: object) -> None:
    import os
    import zlib

    from mail2ticket.store import replicas as store

    # Given a POP3 maildrop of 40,000 kept mails, whose UIDLs compress to far more than an item holds
    uidls = "\n".join(os.urandom(12).hex() for _ in range(40_000))
    assert len(zlib.compress(uidls.encode())) > 400 * 1024
    lease = store.acquire_lease("pop", "poller-1", 1000, 300)
    assert lease is not None

    # When a poll records it, and the next poll reads it
    store.save_mark(lease, "poller-1", 0, 0, uidls)
    state = store.poll_state("pop")

    # Then it is read back whole, and the poll state item holds only where it is
    assert store.saved_present(state) == uidls
    assert state.present is None and state.present_key
    # and a small one goes back into the item
    store.save_mark(lease, "poller-1", 0, 0, "a\nb")
    state = store.poll_state("pop")
    assert (store.saved_present(state), state.present_key) == ("a\nb", None)
