"""Persons and organizations through the package's API: validation, unique names, references, events."""

import pytest

from mail2ticket.store import tickets as repo
from mail2ticket.tickets import people
from mail2ticket.tickets.errors import Conflict, Invalid, NotFound
from tests.integration.engine_support import event_queue, inbox, make_mail, published, receive

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(aws: object) -> None:
    pass


@pytest.mark.parametrize(
    "address",
    ["alice@example.org", "Alice.Martin+it@Sub.Example.ORG", "jürgen@bücher.example", "o'brien@example.ie"],
)
def test_addresses_mail_comes_from_are_accepted_in_lower_case(address: str) -> None:
    assert people.valid_email(f"  {address} ") == address.lower()


@pytest.mark.parametrize(
    "address",
    ["", "alice", "alice@", "@example.org", "alice@localhost", "a b@example.org", "alice@exa mple.org",
     "alice@-example.org", "<alice@example.org>", "alice@example..org", "x" * 65 + "@example.org"],
)  # fmt: skip
def test_anything_else_is_refused(address: str) -> None:
    with pytest.raises(Invalid, match="is not an e-mail address"):
        people.valid_email(address)


def test_a_person_is_created_then_changed_field_by_field() -> None:
    people.put_organization("acme", "ACME Corporation")
    url = event_queue()

    created = people.put_person("Alice@Example.org", name="Alice  Martin", org="acme corporation", now=1)
    renamed = people.put_person("alice@example.org", name="Alice M.")
    moved = people.put_person("alice@example.org", org=None)

    assert created.created and not renamed.created
    stored = people.get_person("ALICE@example.org")
    assert (stored.email, stored.name, stored.org, stored.created_at) == (
        "alice@example.org",
        "Alice M.",
        None,
        1,
    )
    assert (created.person.name, created.person.org) == ("Alice Martin", "acme")
    assert moved.person.org is None
    assert [(e["detail-type"], e["detail"]) for e in published(url)] == [
        ("PersonSaved", {"email": "alice@example.org", "created": True}),
        ("PersonSaved", {"email": "alice@example.org", "created": False}),
        ("PersonSaved", {"email": "alice@example.org", "created": False}),
    ]


def test_a_person_needs_an_existing_organization() -> None:
    with pytest.raises(NotFound, match="no organization has the id or name 'nowhere'"):
        people.put_person("alice@example.org", org="nowhere")

    assert repo.get_person("alice@example.org") is None


def test_people_are_listed_by_address_and_by_organization() -> None:
    people.put_organization("acme", "ACME")
    people.put_person("zoe@example.org", org="acme")
    people.put_person("bob@example.org")
    people.put_person("alice@example.org", org="ACME")

    assert [p.email for p in people.list_people()] == [
        "alice@example.org",
        "bob@example.org",
        "zoe@example.org",
    ]
    assert [p.email for p in people.list_people("acme")] == ["alice@example.org", "zoe@example.org"]


def test_a_deleted_person_is_an_unknown_caller_again() -> None:
    # Given a person who sent a mail to an inbox that rejects unknown callers
    inbox(unknown_caller_behavior="reject")
    people.put_person("alice@example.org", name="Alice")
    assert receive("helpdesk", make_mail("Printer")).action == "created"

    # When the person is deleted
    people.delete_person("alice@example.org")

    # Then their next mail is refused, their ticket keeps their address, and a second delete is refused
    assert receive("helpdesk", make_mail("Scanner")).error_code == "unknown_caller"
    assert [t.ref for t in people.tickets_of("alice@example.org")] == ["R-000001"]
    with pytest.raises(NotFound):
        people.delete_person("alice@example.org")


def test_an_organization_is_created_and_renamed_keeping_its_name_unique() -> None:
    url = event_queue()
    people.put_organization("acme", "ACME")
    people.put_organization("globex", "Globex")

    with pytest.raises(Invalid, match=r"another organization \(globex\) is named 'Globex'"):
        people.put_organization("other", "Globex ")
    with pytest.raises(Invalid, match=r"another organization \(acme\) is named 'Acme'"):
        people.put_organization("globex", "Acme")
    renamed = people.put_organization("acme", "ACME Corporation")

    assert renamed.name == "ACME Corporation"
    assert repo.resolve_organization("acme corporation") == "acme"
    assert repo.resolve_organization("ACME") is None  # the old name is free
    assert repo.resolve_organization("Globex") == "globex"
    people.put_organization("other", "ACME ")
    assert repo.resolve_organization("other") == "other"
    assert [o.org_id for o in people.list_organizations()] == ["other", "acme", "globex"]
    assert [(e["detail-type"], e["detail"]["org_id"], e["detail"]["created"]) for e in published(url)] == [
        ("OrganizationSaved", "acme", True),
        ("OrganizationSaved", "globex", True),
        ("OrganizationSaved", "acme", False),
        ("OrganizationSaved", "other", True),
    ]


def test_a_name_that_is_another_organizations_id_is_refused() -> None:
    people.put_organization("acme", "ACME Corporation")

    with pytest.raises(Invalid, match="'acme' is the id of the organization 'ACME Corporation'"):
        people.put_organization("globex", "acme")


@pytest.mark.parametrize(
    ("org_id", "name", "message"),
    [("a b", "A B", "is not an organization id"), ("ab", "   ", "holds 1 to 200 characters")],
)
def test_an_invalid_organization_is_refused(org_id: str, name: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        people.put_organization(org_id, name)


def test_a_rename_of_an_organization_renamed_meanwhile_is_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    from mail2ticket.store import people as store

    people.put_organization("acme", "ACME")
    stale = store.get_organization("acme")
    people.put_organization("acme", "ACME Corporation")
    monkeypatch.setattr(store, "get_organization", lambda org_id: stale if org_id == "acme" else None)

    with pytest.raises(Conflict, match="organization acme changed meanwhile"):
        people.put_organization("acme", "ACME Inc")

    monkeypatch.undo()
    assert repo.resolve_organization("ACME Corporation") == "acme"
    assert repo.resolve_organization("ACME Inc") is None
