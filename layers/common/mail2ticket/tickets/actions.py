"""What agents and other systems do to a ticket: change its status, assign it, add a private note.

The API for a script, a Lambda or the CLI. Each action reads the ticket, decides by the rules the engine
follows (the class's statuses; closing puts the ticket's mail in the cleaner's hands, reopening takes it
back), writes on the condition that what it decided on has not changed meanwhile (else `Conflict`, and nothing
is written), and publishes its event on the product's bus. A refused action raises an `ActionRefused`.

    from mail2ticket.tickets import actions
    actions.assign("R-000042", "agent@example.com")
    actions.add_note("R-000042", "Called the user: the printer works again.", author="agent@example.com")
    actions.set_status("R-000042", "resolved")
"""

import time
import uuid
from dataclasses import dataclass

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from mail2ticket.store import events
from mail2ticket.store import tickets as repo
from mail2ticket.store.models import LogEntry, TicketItem
from mail2ticket.tickets.errors import Conflict, Invalid, NotFound, condition_failed
from mail2ticket.tickets.lifecycle import CLOSED, TRANSITIONS, statuses
from mail2ticket.tickets.people import valid_email

PRIVATE_LOG = "private_log"
# Like a mail's text, a note is an item of its own, bounded far below DynamoDB's 400 KB.
MAX_NOTE_BYTES = 100_000


@dataclass(frozen=True)
class Done:
    """What a status change or an assignment did: the ticket as it is now, and as it was."""

    ticket: TicketItem
    previous_status: str
    previous_agent: str | None

    @property
    def changed(self) -> bool:
        return (self.ticket.status, self.ticket.agent) != (self.previous_status, self.previous_agent)


def set_status(ref: str, status: str, now: float | None = None) -> Done:
    """Move the ticket to `status`, one of its class's. Closing it sets `closed_at` and `mail_cleanup_at` (the
    cleaner then deletes its kept mail from the mailbox); leaving `closed` removes them. Publishes
    `TicketStatusChanged`; the same status again changes nothing and publishes nothing."""
    ticket = _ticket(ref)
    allowed = statuses(ticket.ticket_class)
    if status not in allowed:
        raise Invalid(
            f"a {ticket.ticket_class} has no status {status!r}: its statuses are {', '.join(allowed)}"
        )
    done = Done(ticket, ticket.status, ticket.agent)
    if status == ticket.status:
        return done
    now_s = _now(now)
    _update(ticket, [TicketItem.updated_at.set(now_s), *repo.status_actions(ticket.status, status, now_s)])
    _publish("TicketStatusChanged", ticket, previous_status=done.previous_status)
    return done


def assign(ref: str, agent: str, now: float | None = None) -> Done:
    """Assign the ticket to `agent`, an existing person's address. A ticket whose status has an assignment
    (new, pending) becomes `assigned`, as the engine's `ev_assign` does; a closed ticket must be reopened
    first. Publishes `TicketAssigned`."""
    ticket = _ticket(ref)
    address = valid_email(agent)
    if repo.get_person(address) is None:
        raise NotFound(f"no person has the address {address}: add the agent with `people put {address}`")
    if ticket.status == CLOSED:
        raise Invalid(f"ticket {ref} is closed: reopen it (set-status) before assigning it")
    status = TRANSITIONS[ticket.ticket_class].get(ticket.status, {}).get("ev_assign", ticket.status)
    done = Done(ticket, ticket.status, ticket.agent)
    if address == ticket.agent and status == ticket.status:
        return done
    now_s = _now(now)
    actions: list[Action] = [TicketItem.agent.set(address), TicketItem.updated_at.set(now_s)]
    if status != ticket.status:
        actions += repo.status_actions(ticket.status, status, now_s)
    agent_unchanged = (
        TicketItem.agent.does_not_exist() if ticket.agent is None else TicketItem.agent == ticket.agent
    )
    _update(ticket, actions, agent_unchanged)
    _publish(
        "TicketAssigned", ticket, previous_status=done.previous_status, previous_agent=done.previous_agent
    )
    return done


def add_note(ref: str, text: str, author: str, now: float | None = None) -> LogEntry:
    """Add a private note (the `private_log`, never sent to the caller) by `author`, an address, to the log.
    Publishes `TicketNoteAdded` (without the text)."""
    ticket = _ticket(ref)
    text = text.strip()
    if not text:
        raise Invalid("a note needs some text")
    if len(text.encode()) > MAX_NOTE_BYTES:
        raise Invalid(f"a note holds at most {MAX_NOTE_BYTES} bytes of text")
    now_s = _now(now)
    entry = LogEntry(
        pk=ticket.pk,
        sk=f"log#{now_s:012d}#note#{uuid.uuid4().hex}",
        log=PRIVATE_LOG,
        author_email=valid_email(author),
        text=text,
        created_at=now_s,
    )
    try:
        with TransactWrite(connection=repo._connection()) as tx:
            tx.save(entry, condition=LogEntry.sk.does_not_exist())
            tx.update(ticket, actions=[TicketItem.updated_at.set(now_s)], condition=TicketItem.pk.exists())
    except TransactWriteError as exc:
        if condition_failed(exc):
            raise NotFound(f"ticket {ref} was deleted meanwhile; the note was not added") from None
        raise
    _publish("TicketNoteAdded", ticket, log=PRIVATE_LOG, author=entry.author_email)
    return entry


def _ticket(ref: str) -> TicketItem:
    ticket = repo.get_ticket(ref)
    if ticket is None:
        raise NotFound(f"ticket {ref!r} does not exist")
    return ticket


def _update(ticket: TicketItem, actions: list[Action], condition: Condition | None = None) -> None:
    """Write the change only if the status read is still the ticket's (and `condition` holds)."""
    unchanged = TicketItem.pk.exists() & (TicketItem.status == ticket.status)
    if condition is not None:
        unchanged &= condition
    read = (ticket.status, ticket.agent)
    try:
        ticket.update(actions=actions, condition=unchanged)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        current = repo.get_ticket(ticket.ref)
        if current is None:
            raise NotFound(f"ticket {ticket.ref} was deleted meanwhile; nothing was written") from None
        raise Conflict(
            f"ticket {ticket.ref} changed meanwhile (status {read[0]} -> {current.status}, agent "
            f"{read[1] or 'none'} -> {current.agent or 'none'}); nothing was written: look at it again"
        ) from None


def _publish(detail_type: str, ticket: TicketItem, **detail: str | None) -> None:
    """References only, as every event of the product: no text of the ticket or of a note."""
    values = {
        "ticket_ref": ticket.ref,
        "ticket_class": ticket.ticket_class,
        "status": ticket.status,
        "agent": ticket.agent,
        **detail,
    }
    events.publish(detail_type, {k: v for k, v in values.items() if v is not None})


def _now(now: float | None) -> int:
    return int(now if now is not None else time.time())
