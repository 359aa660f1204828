"""Ticket-side reads and the one transaction that commits a mail's effect together with its replica."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from mail2ticket.store.models import (
    AttachmentItem,
    Counter,
    LogEntry,
    MessageLink,
    PersonItem,
    Replica,
    ReplicaStatus,
    TicketItem,
)

REFERENCE_PREFIX = {"UserRequest": "R-", "Incident": "I-", "Change": "C-", "Problem": "P-"}


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
    keys = [(MessageLink.key(mid), "msgid") for mid in dict.fromkeys(message_ids)]
    return {link.pk.removeprefix("msgid#"): link.ticket_ref for link in MessageLink.batch_get(keys)}


def get_person(email: str) -> PersonItem | None:
    try:
        return PersonItem.get(PersonItem.key(email), "person")
    except DoesNotExist:
        return None


def create_person(email: str, name: str | None, org: str | None, now: int) -> PersonItem:
    """Create a person unless one exists already (two processors may race on the same new sender)."""
    person = PersonItem(pk=PersonItem.key(email), email=email.lower(), name=name, org=org, created_at=now)
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
    items: list[Model] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    undesired_reason: str | None = None


def commit(change: Commit) -> None:
    """Write the change; raises LostRace when this attempt no longer owns the replica."""
    replica = change.replica
    actions: list[Action] = [
        Replica.status.set(change.status),
        Replica.updated_at.set(change.now),
        Replica.processing_until.remove(),
    ]
    for attribute, value in (
        (Replica.ticket_ref, change.ticket_ref),
        (Replica.error_code, change.error_code),
        (Replica.error_message, change.error_message),
        (Replica.undesired_reason, change.undesired_reason),
    ):
        actions.append(attribute.set(value) if value is not None else attribute.remove())
    owned = (Replica.attempt_id == change.attempt_id) & (Replica.status == ReplicaStatus.PROCESSING)
    try:
        with TransactWrite(connection=_connection(), client_request_token=change.attempt_id) as tx:
            if change.new_ticket is not None:
                tx.save(change.new_ticket, condition=TicketItem.pk.does_not_exist())
            if change.touched_ticket is not None:
                tx.update(
                    change.touched_ticket,
                    actions=[TicketItem.updated_at.set(change.now)],
                    condition=TicketItem.pk.exists(),
                )
            for item in change.items:
                tx.save(item)
            tx.update(replica, actions=actions, condition=owned)
    except TransactWriteError as exc:
        reasons = [r.code if r else None for r in (exc.cancellation_reasons or [])]
        if reasons and reasons[-1] == "ConditionalCheckFailed":
            raise LostRace(f"{replica.inbox_id}/{replica.message_key}") from exc
        raise


def _condition_failed(exc: Exception) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


@cache
def _connection() -> Connection:
    return Connection()


def contacts(ref: str) -> list[dict[str, Any]]:
    """The ticket's contact items (`contact#…`), whatever attributes they carry."""
    from boto3.dynamodb.types import TypeDeserializer

    from mail2ticket.settings import get_settings
    from mail2ticket.store.clients import client

    found = client("dynamodb").query(
        TableName=get_settings().tickets_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": TicketItem.key(ref)}, ":prefix": {"S": "contact#"}},
    )
    deserializer = TypeDeserializer()
    return [{k: deserializer.deserialize(v) for k, v in item.items()} for item in found.get("Items", [])]
