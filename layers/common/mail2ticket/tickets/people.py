"""Persons (callers, contacts, agents) and organizations, listed and edited by the rules the engine relies on.

An address is a person's key, compared without case; an organization is named by its id or by its unique name
(any case, spaces collapsed). Each change publishes `PersonSaved`, `PersonDeleted` or `OrganizationSaved`.

    from mail2ticket.tickets import people
    people.put_organization("acme", "ACME Corporation")
    people.put_person("alice@example.org", name="Alice Martin", org="ACME Corporation")
"""

import re
import time
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action

from mail2ticket.store import events
from mail2ticket.store import people as store
from mail2ticket.store import tickets as repo
from mail2ticket.store.models import OrganizationItem, PersonItem, TicketItem
from mail2ticket.tickets.errors import Conflict, Invalid, NotFound, condition_failed

_LOCAL_PART = re.compile(r"^[^\s@<>()\[\],;:\"\\]{1,64}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ORG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_NAME = 200


class _Unset:
    """A field a `put` leaves as it is (None removes it)."""


UNSET: Any = _Unset()


def valid_email(address: str) -> str:
    """The address in its stored form (lower case), or Invalid when it is not one mail could come from."""
    value = address.strip()
    local, at, domain = value.rpartition("@")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_domain = ""
    labels = ascii_domain.split(".")
    if (
        not at
        or not _LOCAL_PART.match(local)
        or len(labels) < 2
        or len(ascii_domain) > 253
        or not all(_LABEL.match(label) for label in labels)
    ):
        raise Invalid(f"{address!r} is not an e-mail address")
    return value.lower()


def list_people(org: str | None = None) -> list[PersonItem]:
    """Every person (a scan), or those of one organization (its id or name), by address."""
    org_id = _organization_id(org) if org else None
    found = (p for p in store.people() if org_id is None or p.org == org_id)
    return sorted(found, key=lambda p: p.email)


def get_person(email: str) -> PersonItem:
    person = repo.get_person(valid_email(email))
    if person is None:
        raise NotFound(f"no person has the address {email.strip().lower()}")
    return person


def tickets_of(email: str) -> list[TicketItem]:
    """The tickets the person called or is assigned, oldest first (a scan of the tickets)."""
    return sorted(store.tickets_of(valid_email(email)), key=lambda t: (t.created_at, t.ref))


@dataclass(frozen=True)
class Saved:
    person: PersonItem
    created: bool


def put_person(email: str, name: Any = UNSET, org: Any = UNSET, now: float | None = None) -> Saved:
    """Create the person, or change the fields given (None removes one). `org` is an organization's id or
    unique name, which must exist."""
    address = valid_email(email)
    if name is not UNSET and name is not None:
        name = _name(name, "a person's name")
    org_id = org if org is UNSET or org is None else _organization_id(org)
    if repo.get_person(address) is None:
        person = PersonItem(
            pk=PersonItem.key(address),
            email=address,
            name=None if name is UNSET else name,
            org=None if org_id is UNSET else org_id,
            created_at=int(now if now is not None else time.time()),
        )
        try:
            store.add_person(person)
        except store.Taken:
            pass  # created meanwhile: the fields given are set below, as for any existing person
        else:
            _published("PersonSaved", email=address, created=True)
            return Saved(person, True)
    actions: list[Action] = []
    for attribute, value in ((PersonItem.name, name), (PersonItem.org, org_id)):
        if value is not UNSET:
            actions.append(attribute.remove() if value is None else attribute.set(value))
    if not actions:
        return Saved(get_person(address), False)
    try:
        person = store.update_person(address, actions)
    except store.Missing:
        raise Conflict(f"person {address} was deleted meanwhile; nothing was written") from None
    _published("PersonSaved", email=address, created=False)
    return Saved(person, False)


def delete_person(email: str) -> None:
    """Delete the person. Tickets keep the address of their caller and agent; a later mail from it is an
    unknown caller again."""
    address = valid_email(email)
    try:
        store.delete_person(address)
    except store.Missing:
        raise NotFound(f"no person has the address {address}") from None
    _published("PersonDeleted", email=address)


def list_organizations() -> list[OrganizationItem]:
    return sorted(store.organizations(), key=lambda o: o.name.lower())


def get_organization(org: str) -> OrganizationItem:
    """An organization by its id or its unique name."""
    found = store.get_organization(_organization_id(org))
    if found is None:
        raise NotFound(f"organization {org!r} was deleted meanwhile")
    return found


def put_organization(org_id: str, name: str, now: float | None = None) -> OrganizationItem:
    """Create the organization, or rename it; its name must be unique (any case, spaces collapsed)."""
    if not _ORG_ID.match(org_id):
        raise Invalid(f"{org_id!r} is not an organization id: 1 to 64 letters, digits, '_', '.' or '-'")
    name = _name(name, "an organization's name")
    named = store.get_organization(name)
    if named is not None and named.org_id != org_id:
        # A value is tried as an id before a name: this name would always lead to the other organization.
        raise Invalid(f"{name!r} is the id of the organization {named.name!r}: choose another name")
    existing = store.get_organization(org_id)
    if existing is None:
        try:
            org = repo.create_organization(org_id, name, int(now if now is not None else time.time()))
        except TransactWriteError as exc:
            if not condition_failed(exc):
                raise
            holder = repo.resolve_organization(name)
            if holder is not None and holder != org_id:
                raise Invalid(_name_taken(name, holder)) from None
            raise Conflict(f"organization {org_id} was created meanwhile; nothing was written") from None
        _published("OrganizationSaved", org_id=org_id, name=name, created=True)
        return org
    if existing.name == name:
        return existing
    try:
        org = store.rename_organization(existing, name)
    except store.Taken:
        raise Invalid(_name_taken(name, repo.resolve_organization(name))) from None
    except store.Missing:
        raise Conflict(f"organization {org_id} changed meanwhile; nothing was written") from None
    _published("OrganizationSaved", org_id=org_id, name=name, created=False)
    return org


def _organization_id(value: str) -> str:
    org_id = repo.resolve_organization(value.strip())
    if org_id is None:
        raise NotFound(f"no organization has the id or name {value!r}")
    return org_id


def _name(value: str, what: str) -> str:
    name = " ".join(str(value).split())
    if not name or len(name) > _MAX_NAME:
        raise Invalid(f"{what} holds 1 to {_MAX_NAME} characters")
    return name


def _name_taken(name: str, holder: str | None) -> str:
    return f"another organization ({holder or 'being renamed'}) is named {name!r} already"


def _published(detail_type: str, **detail: Any) -> None:
    events.publish(detail_type, detail)
