"""Ticket actions for agents and scripts: status, assignment, private notes; rules, conditions, events."""

import pytest

from mail2ticket.store import tickets as repo
from mail2ticket.store.models import TicketItem
from mail2ticket.tickets import actions
from mail2ticket.tickets.errors import Conflict, Invalid, NotFound
from tests.integration.engine_support import (
    event_queue,
    global_config,
    inbox,
    make_mail,
    person,
    published,
    receive,
)

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(aws: object) -> None:
    person("alice@example.org", "Alice Martin")
    person("agent@example.com", "Agent Smith")


def _ticket(ref: str = "R-000001") -> TicketItem:
    ticket = repo.get_ticket(ref)
    assert ticket is not None
    return ticket


def _stale_read(monkeypatch: pytest.MonkeyPatch, ref: str = "R-000001") -> None:
    """The action's first read returns the ticket as it is now: what changes after is a concurrent change."""
    reads = [_ticket(ref)]
    real = repo.get_ticket
    monkeypatch.setattr(repo, "get_ticket", lambda r: reads.pop() if reads else real(r))


def _opened(class_: str = "UserRequest") -> tuple[bytes, str]:
    inbox(target_class=class_)
    first = make_mail("Printer")
    receive("helpdesk", first)
    return first


def test_closing_sets_what_the_cleaner_needs_and_reopening_clears_it() -> None:
    # Given an open ticket
    _opened()
    url = event_queue()

    # When an agent closes it
    done = actions.set_status("R-000001", "closed", now=1_800_000_000)

    # Then it is closed, in the cleaner's index, and the change is published without any text
    closed = _ticket()
    assert (done.previous_status, done.ticket.status, done.changed) == ("new", "closed", True)
    assert (closed.status, closed.closed_at, closed.mail_cleanup_at) == (
        "closed",
        1_800_000_000,
        1_800_000_000,
    )
    [event] = published(url)
    assert (event["source"], event["detail-type"]) == ("mail2ticket", "TicketStatusChanged")
    assert event["detail"] == {
        "ticket_ref": "R-000001",
        "ticket_class": "UserRequest",
        "status": "closed",
        "previous_status": "new",
    }

    # When it is reopened, then the cleaner no longer has it
    actions.set_status("R-000001", "assigned", now=1_800_000_100)
    reopened = _ticket()
    assert (reopened.status, reopened.closed_at, reopened.mail_cleanup_at) == ("assigned", None, None)
    assert [e["detail"]["previous_status"] for e in published(url)] == ["closed"]


def test_a_closed_ticket_is_found_by_the_cleaner_and_a_reply_opens_a_new_one() -> None:
    from mail2ticket.store.cleaning import tickets_to_clean

    first = _opened()
    actions.set_status("R-000001", "closed", now=1_800_000_000)

    assert [t.pk for t in tickets_to_clean(1_800_000_000, 10)] == ["ticket#R-000001"]
    outcome = receive("helpdesk", make_mail("Re: Printer", "again", in_reply_to=first[1]))
    assert (outcome.action, outcome.ticket_ref) == ("created", "R-000002")


def test_a_status_the_class_does_not_have_is_refused() -> None:
    _opened("Problem")
    url = event_queue()

    with pytest.raises(Invalid, match="a Problem has no status 'pending': its statuses are new, assigned"):
        actions.set_status("P-000001", "pending")

    assert _ticket("P-000001").status == "new"
    assert published(url) == []


def test_the_same_status_again_writes_and_publishes_nothing() -> None:
    _opened()
    updated_at = _ticket().updated_at
    url = event_queue()

    done = actions.set_status("R-000001", "new", now=1_900_000_000)

    assert not done.changed and _ticket().updated_at == updated_at
    assert published(url) == []


def test_a_status_change_on_a_ticket_changed_meanwhile_is_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an agent's read of a new ticket, then a mail's stimulus resolves it
    _opened()
    _stale_read(monkeypatch)
    TicketItem(pk=TicketItem.key("R-000001"), sk="ticket").update(actions=[TicketItem.status.set("resolved")])
    url = event_queue()

    # When the agent closes it on the strength of the old read
    with pytest.raises(Conflict, match=r"R-000001 changed meanwhile \(status new -> resolved"):
        actions.set_status("R-000001", "closed")

    # Then nothing was written nor published
    monkeypatch.undo()
    assert (_ticket().status, _ticket().mail_cleanup_at) == ("resolved", None)
    assert published(url) == []


def test_assigning_a_new_ticket_moves_it_to_assigned() -> None:
    _opened()
    url = event_queue()

    done = actions.assign("R-000001", "Agent@Example.com")

    assert (done.ticket.status, done.ticket.agent) == ("assigned", "agent@example.com")
    assert (_ticket().status, _ticket().agent) == ("assigned", "agent@example.com")
    [event] = published(url)
    assert event["detail-type"] == "TicketAssigned"
    assert event["detail"] == {
        "ticket_ref": "R-000001",
        "ticket_class": "UserRequest",
        "status": "assigned",
        "agent": "agent@example.com",
        "previous_status": "new",
    }


def test_reassigning_keeps_the_status_and_names_the_previous_agent() -> None:
    _opened()
    person("second@example.com")
    actions.assign("R-000001", "agent@example.com")
    actions.set_status("R-000001", "resolved")
    url = event_queue()

    done = actions.assign("R-000001", "second@example.com")

    assert (done.ticket.status, done.ticket.agent, done.previous_agent) == (
        "resolved",
        "second@example.com",
        "agent@example.com",
    )
    assert published(url)[0]["detail"]["previous_agent"] == "agent@example.com"


@pytest.mark.parametrize(
    ("agent", "error", "message"),
    [
        ("nobody@example.com", NotFound, "no person has the address nobody@example.com"),
        ("not an address", Invalid, "is not an e-mail address"),
    ],
)
def test_the_agent_must_be_a_person(agent: str, error: type[Exception], message: str) -> None:
    _opened()

    with pytest.raises(error, match=message):
        actions.assign("R-000001", agent)

    assert (_ticket().status, _ticket().agent) == ("new", None)


def test_a_closed_ticket_is_not_assigned() -> None:
    _opened()
    actions.set_status("R-000001", "closed")

    with pytest.raises(Invalid, match=r"R-000001 is closed: reopen it"):
        actions.assign("R-000001", "agent@example.com")


def test_an_assignment_on_a_ticket_assigned_meanwhile_is_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an agent's read of a ticket assigned to one agent, then another assignment
    _opened()
    person("second@example.com")
    person("third@example.com")
    actions.assign("R-000001", "agent@example.com")
    _stale_read(monkeypatch)
    TicketItem(pk=TicketItem.key("R-000001"), sk="ticket").update(
        actions=[TicketItem.agent.set("second@example.com")]
    )

    # When the first read leads to a third agent, then that assignment is refused
    with pytest.raises(Conflict, match=r"agent agent@example.com -> second@example.com"):
        actions.assign("R-000001", "third@example.com")
    monkeypatch.undo()
    assert _ticket().agent == "second@example.com"


def test_a_note_is_a_private_log_entry_with_its_author_and_its_event_has_no_text() -> None:
    _opened()
    url = event_queue()

    entry = actions.add_note("R-000001", "  Called the user: SECRET-NOTE-TEXT  ", author="Agent@Example.com")

    entries = list(repo.log_entries("R-000001"))
    assert [(e.log, e.author_email, e.text, e.inbox_id, e.message_key) for e in entries] == [
        ("private_log", "agent@example.com", "Called the user: SECRET-NOTE-TEXT", None, None)
    ]
    assert entries[0].sk == entry.sk
    [event] = published(url)
    assert event["detail-type"] == "TicketNoteAdded" and "SECRET-NOTE-TEXT" not in str(event)
    assert event["detail"]["author"] == "agent@example.com" and event["detail"]["log"] == "private_log"


def test_notes_and_mails_share_one_log_in_time_order() -> None:
    first = _opened()
    actions.add_note("R-000001", "first note", author="agent@example.com", now=4_000_000_000)
    receive("helpdesk", make_mail("Re: Printer", "a reply", in_reply_to=first[1]))

    assert [e.log for e in repo.log_entries("R-000001")] == ["public_log", "private_log"]


@pytest.mark.parametrize(
    ("ref", "text", "author", "error", "message"),
    [
        ("R-000001", "   ", "agent@example.com", Invalid, "a note needs some text"),
        ("R-000001", "x" * 100_001, "agent@example.com", Invalid, "at most 100000 bytes"),
        ("R-000001", "hello", "agent", Invalid, "is not an e-mail address"),
        ("R-000099", "hello", "agent@example.com", NotFound, "ticket 'R-000099' does not exist"),
    ],
)
def test_a_note_that_cannot_be_added_writes_nothing(
    ref: str, text: str, author: str, error: type[Exception], message: str
) -> None:
    _opened()

    with pytest.raises(error, match=message):
        actions.add_note(ref, text, author=author)

    assert [e.log for e in repo.log_entries("R-000001")] == []


def test_a_note_on_a_ticket_deleted_meanwhile_is_not_written(monkeypatch: pytest.MonkeyPatch) -> None:
    _opened()
    _stale_read(monkeypatch)
    TicketItem(pk=TicketItem.key("R-000001"), sk="ticket").delete()

    with pytest.raises(NotFound, match="deleted meanwhile"):
        actions.add_note("R-000001", "hello", author="agent@example.com")

    assert list(repo.log_entries("R-000001")) == []


def test_a_stimulus_and_an_agent_close_a_ticket_the_same_way() -> None:
    # Given two tickets, one closed by a mail's stimulus and one by an agent
    inbox(stimuli=["resolved:ev_close"])
    global_config()
    first = make_mail("Printer")
    receive("helpdesk", first)
    receive("helpdesk", make_mail("Scanner"))
    for ref in ("R-000001", "R-000002"):
        actions.set_status(ref, "resolved", now=1_800_000_000)
    receive("helpdesk", make_mail("Re: Printer", "thanks", in_reply_to=first[1]), now=1_800_000_500)
    actions.set_status("R-000002", "closed", now=1_800_000_500)

    # Then both hold the same closing attributes
    closing = [(t.status, t.closed_at, t.mail_cleanup_at) for t in (_ticket("R-000001"), _ticket("R-000002"))]
    assert closing == [("closed", 1_800_000_500, 1_800_000_500)] * 2
