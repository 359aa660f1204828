"""Matching a mail to a ticket: In-Reply-To, References, known and sent Message-IDs, replicas, subject."""

import pytest

from mail2ticket.errors import TransientError
from mail2ticket.process import process_message
from mail2ticket.store import tickets as repo
from mail2ticket.store.models import Replica, TicketItem
from tests.integration.engine_support import (
    all_replicas,
    deliver,
    global_config,
    inbox,
    make_mail,
    person,
    receive,
    tickets,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(aws: object) -> None:
    person("alice@example.org", "Alice Martin")


def test_reply_by_in_reply_to_updates_the_ticket() -> None:
    inbox()
    first = make_mail("VPN access")
    receive("helpdesk", first)

    outcome = receive("helpdesk", make_mail("Re: VPN access", "Thanks!", in_reply_to=first[1]))

    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")
    assert len(tickets()) == 1


def test_every_references_id_is_tried_whatever_whitespace_separates_them() -> None:
    inbox()
    first = make_mail("Laptop broken")
    receive("helpdesk", first)
    folded = f"References: <a@elsewhere.net>\r\n\t<{first[1]}>\t <b@elsewhere.net>\r\n".encode()

    outcome = receive("helpdesk", make_mail("Re: Laptop", "Still broken", raw_header=folded))

    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")


def test_a_reply_to_a_mail_that_updated_the_ticket_matches_it() -> None:
    inbox()
    first = make_mail("Printer")
    receive("helpdesk", first)
    second = make_mail("Re: Printer", "More details", in_reply_to=first[1])
    receive("helpdesk", second)

    outcome = receive("helpdesk", make_mail("Re: Printer", "Even more", in_reply_to=second[1]))

    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")


def test_a_reply_to_a_mail_the_system_sent_for_the_ticket_matches_it() -> None:
    inbox()
    receive("helpdesk", make_mail("Printer"))
    repo.record_sent("notification-1@mail2ticket.example.com", "R-000001")

    outcome = receive(
        "helpdesk", make_mail("Re: Printer", "ok", in_reply_to="notification-1@mail2ticket.example.com")
    )

    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")


def _replica_known_only_by_its_message_id() -> str:
    """A processed replica of another inbox whose Message-ID is not in the ticket's index."""
    receive("helpdesk", make_mail("Printer"))
    raw, message_id = make_mail("Printer (copy to sales)")
    key = deliver("sales", raw, message_id)
    Replica.get("sales", Replica.sort_key(key)).update(
        actions=[Replica.status.set("processed"), Replica.ticket_ref.set("R-000001")]
    )
    return message_id


def test_with_aggregate_replies_a_reply_to_a_replica_updates_its_ticket() -> None:
    inbox()
    inbox("sales")
    message_id = _replica_known_only_by_its_message_id()

    outcome = receive("helpdesk", make_mail("Re: Printer", "reply-all", in_reply_to=message_id))

    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")


def test_without_aggregate_replies_a_reply_to_a_replica_opens_a_ticket() -> None:
    inbox()
    inbox("sales")
    global_config(aggregate_replies=False)
    message_id = _replica_known_only_by_its_message_id()

    outcome = receive("helpdesk", make_mail("Re: Printer", "reply-all", in_reply_to=message_id))

    assert (outcome.action, outcome.ticket_ref) == ("created", "R-000002")


def test_without_aggregate_replies_a_reply_all_to_the_opening_mail_opens_another_ticket() -> None:
    # Given a ticket opened by a mail, and aggregate_replies off
    inbox()
    global_config(aggregate_replies=False)
    first = make_mail("Printer")
    receive("helpdesk", first)

    # When someone answers all on that mail (In-Reply-To and References name it)
    outcome = receive(
        "helpdesk",
        make_mail("Re: Printer", "me too", in_reply_to=first[1], references=f"<{first[1]}>"),
    )

    # Then the answer opens a ticket of its own, as iTop does with aggregate_replies false
    assert (outcome.action, outcome.ticket_ref) == ("created", "R-000002")


def test_without_aggregate_replies_a_reply_to_a_reply_opens_another_ticket() -> None:
    inbox()
    global_config(aggregate_replies=False)
    first = make_mail("Printer")
    receive("helpdesk", first)
    update = make_mail("Re: Printer", "more", in_reply_to="notification-7@mail2ticket.example.com")
    repo.record_sent("notification-7@mail2ticket.example.com", "R-000001")
    assert receive("helpdesk", update).ticket_ref == "R-000001"

    outcome = receive("helpdesk", make_mail("Re: Re: Printer", "and more", in_reply_to=update[1]))

    assert (outcome.action, outcome.ticket_ref) == ("created", "R-000002")


def test_without_aggregate_replies_mails_the_system_sent_and_the_title_still_match() -> None:
    # Given aggregate_replies off, a ticket, and a notification the system sent about it
    inbox(title_pattern=r"R-[0-9]{6}")
    global_config(aggregate_replies=False)
    first = make_mail("Printer")
    receive("helpdesk", first)
    repo.record_sent("notification-1@mail2ticket.example.com", "R-000001")

    # When the caller answers the notification, and another mail names the ticket in its subject
    by_notification = receive(
        "helpdesk",
        make_mail("Re: Printer", "ok", in_reply_to="notification-1@mail2ticket.example.com"),
    )
    by_subject = receive("helpdesk", make_mail("[R-000001] Printer", "x", references=f"<{first[1]}>"))

    # Then both update the ticket
    assert (by_notification.action, by_notification.ticket_ref) == ("updated", "R-000001")
    assert (by_subject.action, by_subject.ticket_ref) == ("updated", "R-000001")


def test_with_aggregate_replies_a_reply_all_to_the_opening_mail_updates_its_ticket() -> None:
    inbox()
    global_config(aggregate_replies=True)
    first = make_mail("Printer")
    receive("helpdesk", first)

    outcome = receive(
        "helpdesk",
        make_mail("Re: Printer", "me too", in_reply_to=first[1], references=f"<{first[1]}>"),
    )

    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")


def test_title_pattern_finds_the_ticket_in_the_subject() -> None:
    inbox(title_pattern=r"R-[0-9]{6}")
    receive("helpdesk", make_mail("Printer"))

    outcome = receive("helpdesk", make_mail("Re: [R-000001] Printer", "new mail, no thread headers"))

    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")


def test_a_match_to_a_closed_ticket_opens_a_new_ticket() -> None:
    inbox()
    first = make_mail("Printer")
    receive("helpdesk", first)
    TicketItem.get(TicketItem.key("R-000001"), "ticket").update(actions=[TicketItem.status.set("closed")])

    outcome = receive("helpdesk", make_mail("Re: Printer", "again", in_reply_to=first[1]))

    assert (outcome.action, outcome.ticket_ref) == ("created", "R-000002")


def test_a_ticket_of_another_class_never_matches() -> None:
    inbox()
    inbox("incidents", target_class="Incident", title_pattern=r"R-[0-9]{6}")
    first = make_mail("Printer")
    receive("helpdesk", first)

    outcome = receive("incidents", make_mail("Re: [R-000001] Printer", "x", in_reply_to=first[1]))

    assert (outcome.action, outcome.ticket_ref) == ("created", "I-000001")


def test_create_only_opens_a_ticket_even_for_a_reply() -> None:
    inbox(behavior="create_only")
    first = make_mail("Printer")
    receive("helpdesk", first)

    outcome = receive("helpdesk", make_mail("Re: Printer", "x", in_reply_to=first[1]))

    assert (outcome.action, outcome.ticket_ref) == ("created", "R-000002")


def test_update_only_without_a_match_is_error_nothing_to_update() -> None:
    inbox(behavior="update_only")

    outcome = receive("helpdesk", make_mail("A new problem"))

    assert (outcome.status, outcome.error_code) == ("error", "nothing_to_update")
    [replica] = all_replicas()
    assert replica.error_code == "nothing_to_update" and "only updates" in (replica.error_message or "")
    assert tickets() == []


def test_a_reply_processed_before_its_original_waits_for_it() -> None:
    # Given an original and its reply polled together, the reply's delivery coming first
    inbox()
    first = make_mail("Printer")
    first_key = deliver("helpdesk", *first)
    reply_key = deliver("helpdesk", *make_mail("Re: Printer", "x", in_reply_to=first[1]))

    # When the reply is processed first, it is given back to the queue
    with pytest.raises(TransientError, match="not processed yet"):
        process_message("helpdesk", reply_key)

    # Then once the original has its ticket, the reply updates it
    process_message("helpdesk", first_key)
    outcome = process_message("helpdesk", reply_key)
    assert (outcome.action, outcome.ticket_ref) == ("updated", "R-000001")
    assert len(tickets()) == 1
