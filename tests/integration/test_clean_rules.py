"""Retention rules on the local stack, the cleaner's clock passed explicitly: undesired mail, the kept mail
of closed and deleted tickets, replicas whose mail left the server, and objects nobody references."""

import time

import pytest

from tests.integration.clean_support import DAY, HOUR, clean, object_exists
from tests.integration.engine_support import (
    all_replicas,
    deliver,
    global_config,
    inbox,
    make_mail,
    person,
    receive,
    replica,
)

pytestmark = pytest.mark.integration

AUTO_REPLY = {"Auto-Submitted": "auto-replied"}


@pytest.fixture(autouse=True)
def _stack(aws: object) -> None:
    person("alice@example.org", "Alice Martin")
    inbox()


def _mark_gone(inbox_id: str, key: str, at: int) -> None:
    from mail2ticket.store.models import Replica

    Replica(inbox_id=inbox_id, sk=Replica.sort_key(key)).update(actions=[Replica.disappeared_at.set(at)])


def test_an_undesired_mail_is_purged_once_its_delay_has_passed() -> None:
    # Given an automatic reply recorded as undesired now, with the default delay of 7 days
    now = int(time.time())
    outcome = receive("helpdesk", make_mail("I am away", headers=AUTO_REPLY), now=now)
    assert outcome.status == "undesired"
    [key] = [r.message_key for r in all_replicas()]

    # When the cleaner runs six days later, then eight days later, then again
    early = clean(now + 6 * DAY)
    due = clean(now + 8 * DAY)
    again = clean(now + 8 * DAY + HOUR)

    # Then only the run after the delay asks the poller to delete it, once
    assert (early["purge_requested"], due["purge_requested"], again["purge_requested"]) == (0, 1, 0)
    assert replica("helpdesk", key).pending_action == "delete"


def test_a_purge_delay_of_zero_asks_for_the_deletion_in_the_final_commit() -> None:
    global_config(undesired_purge_delay_days=0)

    receive("helpdesk", make_mail("Out Of Office"), now=int(time.time()))

    [undesired] = all_replicas()
    assert undesired.status == "undesired" and undesired.pending_action == "delete"
    assert undesired.undesired_at is None


def test_an_undesired_mail_reset_before_its_purge_is_left_on_the_server() -> None:
    from mail2ticket.store.replicas import reset_replica

    now = int(time.time())
    receive("helpdesk", make_mail("I am away", headers=AUTO_REPLY), now=now)
    [key] = [r.message_key for r in all_replicas()]
    reset_replica("helpdesk", key, now)

    assert clean(now + 8 * DAY)["purge_requested"] == 0
    assert replica("helpdesk", key).pending_action is None
    assert replica("helpdesk", key).undesired_at is None


def _close(ref: str, now: int) -> None:
    """A reply that closes the ticket through the inbox's stimuli, as the engine does it."""
    from mail2ticket.store.tickets import get_ticket

    ticket = get_ticket(ref)
    assert ticket is not None
    receive("helpdesk", make_mail("Thanks, solved", in_reply_to=ticket.message_id), now=now)


def test_the_kept_mails_of_a_closed_ticket_are_deleted_from_the_server() -> None:
    from mail2ticket.store.tickets import get_ticket

    # Given an inbox that keeps mail, a ticket closed by a reply, and another ticket still open
    inbox(stimuli=["new:ev_resolve", "resolved:ev_close"])
    now = int(time.time())
    closed = receive("helpdesk", make_mail("Printer broken"), now=now).ticket_ref
    open_ref = receive("helpdesk", make_mail("Screen flickers"), now=now).ticket_ref
    assert closed and open_ref
    _close(closed, now + 60)
    _close(closed, now + 120)
    ticket = get_ticket(closed)
    assert ticket is not None and ticket.status == "closed" and ticket.closed_at is not None

    # When the cleaner runs twice
    first = clean(now + HOUR)
    second = clean(now + 2 * HOUR)

    # Then the three mails of the closed ticket are to be deleted, once, and the open ticket's mail stays
    assert (first["kept_mail_released"], second["kept_mail_released"]) == (3, 0)
    actions = {r.ticket_ref: set() for r in all_replicas()}
    for r in all_replicas():
        actions[r.ticket_ref].add(r.pending_action)
    assert actions == {closed: {"delete"}, open_ref: {None}}
    assert get_ticket(closed).mail_cleanup_at is None  # type: ignore[union-attr]


def test_a_closed_ticket_leaves_the_mail_of_an_inbox_that_moves_it_alone() -> None:
    inbox(email_storage="move", target_folder="Done", stimuli=["new:ev_resolve", "resolved:ev_close"])
    now = int(time.time())
    ref = receive("helpdesk", make_mail("Printer broken"), now=now).ticket_ref
    assert ref
    _close(ref, now + 60)
    _close(ref, now + 120)

    assert clean(now + HOUR)["kept_mail_released"] == 0
    assert {r.pending_action for r in all_replicas()} == {"move"}


def test_the_kept_mail_of_a_deleted_ticket_is_deleted_and_its_attachments_removed() -> None:
    from mail2ticket.store.models import TicketItem
    from mail2ticket.store.tickets import attachments, get_ticket

    # Given two tickets with the same attachment, one of them deleted by an operator (all its items)
    now = int(time.time())
    doomed = receive("helpdesk", _with_attachment("First", b"shared bytes" * 50, "a.pdf"), now=now).ticket_ref
    kept = receive("helpdesk", _with_attachment("Second", b"shared bytes" * 50, "a.pdf"), now=now).ticket_ref
    own = receive("helpdesk", _with_attachment("Third", b"only here" * 50, "b.pdf"), now=now).ticket_ref
    assert doomed and kept and own
    [shared] = [a.s3_key for a in attachments(doomed)]
    [alone] = [a.s3_key for a in attachments(own)]
    for ref in (doomed, own):
        for item in TicketItem.query(TicketItem.key(ref)):
            item.delete()
    assert get_ticket(doomed) is None

    # When the cleaner runs two days later
    result = clean(now + 2 * DAY)

    # Then the deleted tickets' mails are to be deleted, and only the attachment nobody else holds is gone
    assert result["kept_mail_released"] == 2
    pending = {r.ticket_ref: r.pending_action for r in all_replicas()}
    assert pending == {doomed: "delete", kept: None, own: "delete"}
    assert object_exists(shared) and not object_exists(alone)


def _with_attachment(subject: str, content: bytes, filename: str) -> tuple[bytes, str]:
    from email import message_from_bytes
    from email.policy import SMTP, default

    raw, message_id = make_mail(subject)
    message = message_from_bytes(raw, policy=default)
    message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)  # type: ignore[attr-defined]
    return message.as_bytes(policy=SMTP), message_id


def test_a_replica_gone_from_the_server_is_deleted_after_the_retention_period() -> None:
    from mail2ticket.store.models import RawMailReference, TicketItem

    # Given a processed mail and an undesired one, both gone from the server at `gone`
    now = int(time.time())
    ticketed = receive("helpdesk", make_mail("Printer broken"), now=now)
    receive("helpdesk", make_mail("I am away", headers=AUTO_REPLY), now=now)
    by_status = {r.status: r for r in all_replicas()}
    gone = now + HOUR
    for r in by_status.values():
        _mark_gone("helpdesk", r.message_key, gone)

    # When the cleaner runs within the retention period, after it, and two days later
    within = clean(gone + 30 * 60)
    after = clean(gone + 2 * HOUR)
    later = clean(gone + 2 * DAY)

    # Then both replicas are deleted after the period; the undesired mail's EML goes once it is old enough
    # (the sweep), while the ticket keeps the raw mail it was made from
    assert within["replicas_deleted"] == 0 and after["replicas_deleted"] == 2
    assert all_replicas() == []
    assert later["objects_removed"] == 1
    assert not object_exists(by_status["undesired"].s3_key)
    assert object_exists(by_status["processed"].s3_key)
    refs = list(RawMailReference.query(TicketItem.key(ticketed.ticket_ref or "")))
    assert [r.sha256 for r in refs if r.sk.startswith("raw#")] == [by_status["processed"].sha256]


def test_a_replica_still_waiting_for_the_processor_is_never_deleted() -> None:
    now = int(time.time())
    key = deliver("helpdesk", make_mail("Not processed yet")[0])
    _mark_gone("helpdesk", key, now)

    assert clean(now + 2 * DAY)["replicas_deleted"] == 0
    assert replica("helpdesk", key).status == "new"


def test_the_raw_mail_of_a_deleted_replica_stays_while_another_inbox_holds_the_same_mail() -> None:
    # Given the same mail in two inboxes, gone from the first one's server
    inbox("second")
    now = int(time.time())
    raw_and_id = make_mail("I am away", headers=AUTO_REPLY)
    receive("helpdesk", raw_and_id, now=now)
    receive("second", raw_and_id, now=now)
    [first] = all_replicas("helpdesk")
    _mark_gone("helpdesk", first.message_key, now)

    # When the cleaner deletes that replica, two days later
    result = clean(now + 2 * DAY)

    # Then the shared raw mail stays for the other inbox
    assert result["replicas_deleted"] == 1 and result["objects_removed"] == 0
    assert object_exists(first.s3_key)
