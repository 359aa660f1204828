"""Persons and organizations, listed and edited (the engine creates persons with `tickets.create_person`)."""

from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from mail2ticket.store.models import OrganizationItem, OrganizationName, PersonItem, TicketItem
from mail2ticket.store.tickets import _connection


class Missing(Exception):
    """The item does not exist (or no longer)."""


class Taken(Exception):
    """The key or unique name is already used."""


def people() -> Iterator[PersonItem]:
    """Every person: a scan of the tickets table, which holds no index of persons."""
    return PersonItem.scan(PersonItem.sk == "person")


def organizations() -> Iterator[OrganizationItem]:
    """Every organization: a scan of the tickets table, which holds no index of organizations."""
    return OrganizationItem.scan(OrganizationItem.sk == "org")


def tickets_of(email: str) -> Iterator[TicketItem]:
    """The tickets a person called or is assigned: a scan of the tickets."""
    address = email.strip().lower()
    return TicketItem.scan(
        (TicketItem.item_type == "ticket")
        & ((TicketItem.caller_email == address) | (TicketItem.agent == address))
    )


def get_organization(org_id: str) -> OrganizationItem | None:
    try:
        return OrganizationItem.get(OrganizationItem.key(org_id), "org")
    except DoesNotExist:
        return None


def add_person(person: PersonItem) -> None:
    """Write a new person; Taken when one has the address already."""
    try:
        person.save(condition=PersonItem.pk.does_not_exist())
    except PutError as exc:
        if _condition_failed(exc):
            raise Taken(person.email) from None
        raise


def update_person(email: str, actions: list[Action]) -> PersonItem:
    """Change an existing person; Missing when it was deleted meanwhile."""
    person = PersonItem(pk=PersonItem.key(email))
    try:
        person.update(actions=actions, condition=PersonItem.pk.exists())
    except UpdateError as exc:
        if _condition_failed(exc):
            raise Missing(email) from None
        raise
    return person


def delete_person(email: str) -> None:
    try:
        PersonItem(pk=PersonItem.key(email)).delete(condition=PersonItem.pk.exists())
    except DeleteError as exc:
        if _condition_failed(exc):
            raise Missing(email) from None
        raise


def rename_organization(org: OrganizationItem, name: str) -> OrganizationItem:
    """Give an organization another unique name, moving its unique-name item in the same transaction.

    Missing when the organization changed meanwhile (renamed, deleted), Taken when the name is used.
    """
    old_key, new_key = OrganizationName.key(org.name), OrganizationName.key(name)
    try:
        with TransactWrite(connection=_connection()) as tx:
            tx.update(
                OrganizationItem(pk=org.pk, sk=org.sk),
                actions=[OrganizationItem.name.set(name)],
                condition=OrganizationItem.name == org.name,
            )
            if new_key != old_key:
                tx.delete(
                    OrganizationName(pk=old_key),
                    condition=OrganizationName.org_id == org.org_id,
                )
                tx.save(
                    OrganizationName(pk=new_key, org_id=org.org_id),
                    condition=OrganizationName.pk.does_not_exist(),
                )
    except TransactWriteError as exc:
        # DynamoDB answers in request order, and pynamodb sends the deletes, then the puts, then the updates.
        labels = ["old name", "new name", "organization"] if new_key != old_key else ["organization"]
        failed = {
            label
            for label, reason in zip(labels, exc.cancellation_reasons or [], strict=False)
            if reason is not None and reason.code == "ConditionalCheckFailed"
        }
        if "new name" in failed:
            raise Taken(name) from None
        if failed:
            raise Missing(org.org_id) from None
        raise
    org.name = name
    return org


def _condition_failed(exc: Any) -> bool:
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"
