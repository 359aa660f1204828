"""Ticket-side reads and the one transaction that commits a mail's effect together with its replica."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from mail2ticket.errors import TransientError
from mail2ticket.store.models import (
    AttachmentItem,
    ContactItem,
    Counter,
    LogEntry,
    MessageLink,
    OrganizationItem,
    OrganizationName,
    PersonItem,
    Replica,
    ReplicaStatus,
    SenderRate,
    TicketItem,
)
from mail2ticket.store.raw import wait_for_uploads
from mail2ticket.store.replicas import whole
from mail2ticket.tickets.lifecycle import CLOSED

REFERENCE_PREFIX = {"UserRequest": "R-", "Incident": "I-", "Change": "C-", "Problem": "P-"}
# DynamoDB's limit of items in one transaction.
TRANSACTION_ITEMS = 100


class LostRace(Exception):
    """Another attempt already committed this replica's effect."""


def next_reference(ticket_class: str) -> str:
    """`R-000123`: an atomic counter per class (a number burnt by a failed attempt is never reused)."""
    counter = Counter(pk=f"counter#{ticket_class}")
    counter.update(actions=[Counter.value.add(1)])
    return f"{REFERENCE_PREFIX[ticket_class]}{int(counter.value):06d}"


def get_ticket(ref: str) -> TicketItem | None:
    try:
        return TicketItem.get(TicketItem.key(ref), "ticket")
    except DoesNotExist:
        return None


def tickets_for_message_ids(message_ids: Iterable[str]) -> dict[str, str]:
    """Message-ID -> ticket ref for the ids the system knows."""
    # A link's key is stored in its bounded form: the answer is mapped back through that same form.
    by_key = {MessageLink.pk.serialize(MessageLink.key(mid)): mid for mid in dict.fromkeys(message_ids)}
    links = MessageLink.batch_get([(key, "msgid") for key in by_key])
    return {by_key[link.pk]: link.ticket_ref for link in links if link.pk in by_key}


def replicas_with_message_ids(message_ids: Iterable[str]) -> Iterator[Replica]:
    """Replicas of every inbox that hold one of these Message-IDs."""
    for message_id in dict.fromkeys(message_ids):
        yield from whole(Replica.by_message_id.query(message_id))


def tickets_for_sent_message_ids(message_ids: Iterable[str]) -> dict[str, str]:
    """Message-ID -> ticket ref for the ids of mails the system sent about a ticket."""
    keys = [(MessageLink.key(mid), "msgid") for mid in dict.fromkeys(message_ids)]
    links = MessageLink.batch_get(keys) if keys else []
    return {link.pk.removeprefix("msgid#"): link.ticket_ref for link in links if link.sent}


def record_sent(message_id: str, ticket_ref: str) -> None:
    """Remember a Message-ID the system sent for a ticket, so that a reply to it finds the ticket."""
    MessageLink(pk=MessageLink.key(message_id), ticket_ref=ticket_ref, sent=True).save()


def get_person(email: str) -> PersonItem | None:
    """The person with this address, whatever its case."""
    try:
        return PersonItem.get(PersonItem.key(email), "person")
    except DoesNotExist:
        return None


def existing_persons(emails: Iterable[str]) -> list[PersonItem]:
    """The persons among these addresses (unknown addresses are skipped, never created)."""
    keys = [(PersonItem.key(e), "person") for e in dict.fromkeys(e.strip().lower() for e in emails)]
    return sorted(PersonItem.batch_get(keys), key=lambda p: p.email) if keys else []


def contacts(ref: str) -> Iterator[ContactItem]:
    return ContactItem.query(TicketItem.key(ref), ContactItem.sk.startswith("contact#"))


def create_organization(org_id: str, name: str, now: int) -> OrganizationItem:
    """An organization and its unique-name item, together; a name already taken is refused."""
    org = OrganizationItem(pk=OrganizationItem.key(org_id), org_id=org_id, name=name, created_at=now)
    with TransactWrite(connection=_connection()) as tx:
        tx.save(org, condition=OrganizationItem.pk.does_not_exist())
        tx.save(
            OrganizationName(pk=OrganizationName.key(name), org_id=org_id),
            condition=OrganizationName.pk.does_not_exist(),
        )
    return org


def resolve_organization(value: str) -> str | None:
    """The id of the organization named by `value`: its id, else its unique name (any case)."""
    try:
        return OrganizationItem.get(OrganizationItem.key(value), "org").org_id
    except DoesNotExist:
        pass
    try:
        return OrganizationName.get(OrganizationName.key(value), "orgname").org_id
    except DoesNotExist:
        return None


def create_person(
    email: str, name: str | None, org: str | None, now: int, extra: dict[str, str] | None = None
) -> PersonItem:
    """Create a person unless one exists already (two processors may race on the same new sender)."""
    person = PersonItem(
        pk=PersonItem.key(email),
        email=email.strip().lower(),
        name=name,
        org=org,
        extra_values=extra or None,
        created_at=now,
    )
    try:
        person.save(condition=PersonItem.pk.does_not_exist())
    except PutError as exc:
        if not _condition_failed(exc):
            raise
        existing = get_person(email)
        if existing is None:
            raise
        return existing
    return person


def list_tickets() -> Iterator[TicketItem]:
    return TicketItem.scan(TicketItem.item_type == "ticket")


def log_entries(ref: str) -> Iterator[LogEntry]:
    return LogEntry.query(TicketItem.key(ref), LogEntry.sk.startswith("log#"))


def attachments(ref: str) -> Iterator[AttachmentItem]:
    return AttachmentItem.query(TicketItem.key(ref), AttachmentItem.sk.startswith("att#"))


@dataclass(frozen=True)
class SenderLimit:
    """Count a new ticket against its sender's hourly budget, in the same transaction."""

    email: str
    hour: int
    limit: int


@dataclass
class Commit:
    """Everything one mail changes, written with the replica's final status in one transaction."""

    replica: Replica
    attempt_id: str
    status: str
    now: int
    ticket_ref: str | None = None
    new_ticket: TicketItem | None = None
    touched_ticket: TicketItem | None = None
    new_status: str | None = None
    items: list[Model] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    undesired_reason: str | None = None
    pending_action: str | None = None
    action_folder: str | None = None
    sender_limit: SenderLimit | None = None


class SenderThrottled(Exception):
    """The sender has opened its hourly budget of tickets already."""


def commit(change: Commit) -> None:
    """Write the change; raises LostRace when this attempt no longer owns the replica."""
    # Every item refers to stored content only: the attachments started are in S3 first.
    wait_for_uploads()
    replica = change.replica
    actions: list[Action] = [
        Replica.status.set(change.status),
        Replica.updated_at.set(change.now),
        Replica.processing_until.remove(),
        # A final replica leaves the sparse index of open replicas the poller re-queues from.
        Replica.open_since.remove(),
    ]
    for attribute, value in (
        (Replica.ticket_ref, change.ticket_ref),
        (Replica.error_code, change.error_code),
        (Replica.error_message, change.error_message),
        (Replica.undesired_reason, change.undesired_reason),
        (Replica.pending_action, change.pending_action),
        (Replica.action_folder, change.action_folder),
    ):
        actions.append(attribute.set(value) if value is not None else attribute.remove())
    # The sparse index the cleaner purges undesired mails from, unless the purge is already asked for.
    actions.append(
        Replica.undesired_at.set(change.now) if _purge_later(change) else Replica.undesired_at.remove()
    )
    owned = (Replica.attempt_id == change.attempt_id) & (Replica.status == ReplicaStatus.PROCESSING)
    items = _write_overflow(change)
    # DynamoDB reports cancellation reasons in request order: pynamodb sends puts, then updates.
    labels: list[str] = []
    try:
        with TransactWrite(connection=_connection(), client_request_token=change.attempt_id) as tx:
            if change.new_ticket is not None:
                tx.save(change.new_ticket, condition=TicketItem.pk.does_not_exist())
                labels.append("ticket")
            for item in items:
                tx.save(item)
                labels.append("item")
            if change.touched_ticket is not None:
                _update_ticket(tx, change)
                labels.append("ticket")
            if change.sender_limit is not None:
                _count_sender(tx, change.sender_limit)
                labels.append("sender")
            tx.update(replica, actions=actions, condition=owned)
            labels.append("replica")
    except TransactWriteError as exc:
        failed = {
            label
            for label, reason in zip(labels, exc.cancellation_reasons or [], strict=False)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        }
        if "replica" in failed:
            raise LostRace(f"{replica.inbox_id}/{replica.message_key}") from exc
        if "sender" in failed:
            raise SenderThrottled(change.sender_limit.email if change.sender_limit else "") from exc
        if "ticket" in failed:
            raise TransientError("the ticket changed meanwhile") from exc
        raise


def _write_overflow(change: Commit) -> list[Model]:
    """The items the transaction holds; attachments and contacts beyond its limit are written first, alone."""
    # Their keys are the ticket's and the file's or address's, so a retry writes the same items again. Should
    # the mail never commit, they stay under its ticket reference unseen (a new ticket's reference is never
    # reused) or, for a reply, on the ticket without its log entry.
    fixed = sum(x is not None for x in (change.new_ticket, change.touched_ticket, change.sender_limit)) + 1
    excess = len(change.items) - (TRANSACTION_ITEMS - fixed)
    if excess <= 0:
        return change.items
    children = [item for item in change.items if isinstance(item, AttachmentItem | ContactItem)]
    early = children[:excess]
    for model in (AttachmentItem, ContactItem):
        with model.batch_write() as batch:
            for item in early:
                if isinstance(item, model):
                    batch.save(item)
    written = {id(item) for item in early}
    return [item for item in change.items if id(item) not in written]


def _update_ticket(tx: TransactWrite, change: Commit) -> None:
    ticket = change.touched_ticket
    assert ticket is not None
    actions: list[Action] = [TicketItem.updated_at.set(change.now)]
    # The stimulus was chosen for the status read earlier: it only applies if nobody moved the ticket since.
    condition = TicketItem.pk.exists() & (TicketItem.status == ticket.status)
    if change.new_status is not None:
        actions += status_actions(ticket.status, change.new_status, change.now)
    tx.update(ticket, actions=actions, condition=condition)


def status_actions(current: str, new: str, now: int) -> list[Action]:
    """The writes of a status change, whoever makes it: a mail's stimulus or an agent."""
    actions: list[Action] = [TicketItem.status.set(new)]
    if new == CLOSED:
        # Enters the cleaner's sparse index: the ticket's kept mails are then removed from the server.
        actions += [TicketItem.closed_at.set(now), TicketItem.mail_cleanup_at.set(now)]
    elif current == CLOSED:
        # Reopened: its mails are kept again (those the cleaner already asked to delete stay deleted).
        actions += [TicketItem.closed_at.remove(), TicketItem.mail_cleanup_at.remove()]
    return actions


def _purge_later(change: Commit) -> bool:
    return change.status == ReplicaStatus.UNDESIRED and change.pending_action is None


def _count_sender(tx: TransactWrite, limit: SenderLimit) -> None:
    rate = SenderRate(pk=SenderRate.key(limit.email, limit.hour))
    tx.update(
        rate,
        actions=[SenderRate.value.add(1), SenderRate.expires_at.set((limit.hour + 2) * 3600)],
        condition=SenderRate.value.does_not_exist() | (SenderRate.value < limit.limit),
    )


def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


@cache
def _connection() -> Connection:
    return Connection()
