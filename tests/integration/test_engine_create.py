"""Creating and updating tickets: references, default values, callers, contacts, stimuli, loop protection."""

import email
import email.message
import email.policy

import pytest

from mail2ticket.store import tickets as repo
from mail2ticket.store.models import TicketItem
from tests.integration.engine_support import (
    SUPPORT,
    all_replicas,
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


@pytest.mark.parametrize(
    ("ticket_class", "first", "second"),
    [
        ("UserRequest", "R-000001", "R-000002"),
        ("Incident", "I-000001", "I-000002"),
        ("Change", "C-000001", "C-000002"),
        ("Problem", "P-000001", "P-000002"),
    ],
)
def test_each_class_numbers_its_tickets_with_its_prefix(ticket_class: str, first: str, second: str) -> None:
    inbox(target_class=ticket_class)

    refs = [receive("helpdesk", make_mail(s)).ticket_ref for s in ("One", "Two")]

    assert refs == [first, second]
    assert {t.ticket_class for t in tickets()} == {ticket_class}


def test_a_new_ticket_maps_the_mail_and_the_default_values() -> None:
    repo.create_organization("42", "Demo Corp", 1)
    inbox(ticket_default_values=["org_id:Demo Corp", "urgency:2", "service_id:svc-7"])

    receive("helpdesk", make_mail("Printer jammed", "Error E-42 on floor 3"))

    [ticket] = tickets()
    assert (ticket.title, ticket.caller_email, ticket.origin, ticket.status) == (
        "Printer jammed",
        "alice@example.org",
        "mail",
        "new",
    )
    assert ticket.description.startswith("Error E-42 on floor 3")
    assert ticket.org == "42"
    assert ticket.defaults is not None
    assert dict(ticket.defaults.as_dict()) == {"urgency": "2", "service_id": "svc-7"}


def test_an_organization_is_found_by_id_or_by_name_in_any_case() -> None:
    repo.create_organization("42", "Demo Corp", 1)

    assert [repo.resolve_organization(v) for v in ("42", "demo corp", "DEMO  CORP", "Other")] == [
        "42",
        "42",
        "42",
        None,
    ]


def test_an_unknown_organization_in_default_values_is_a_readable_error() -> None:
    inbox(ticket_default_values=["org_id:Nobody Inc"])

    outcome = receive("helpdesk", make_mail("Printer"))

    assert (outcome.status, outcome.error_code) == ("error", "internal")
    assert "org_id 'Nobody Inc'" in (outcome.error_message or "")
    assert tickets() == []


def test_default_values_override_the_standard_mapping() -> None:
    inbox(ticket_default_values=["title:From the web form", "origin:portal"])

    receive("helpdesk", make_mail("Subject of the mail"))

    [ticket] = tickets()
    assert (ticket.title, ticket.origin) == ("From the web form", "portal")


def test_an_empty_subject_takes_the_default_title() -> None:
    inbox(ticket_default_title="Mail without subject")

    receive("helpdesk", make_mail(""))

    assert [t.title for t in tickets()] == ["Mail without subject"]


def test_the_caller_is_found_whatever_the_case_of_the_address() -> None:
    inbox()

    receive("helpdesk", make_mail("Printer", sender="Alice <ALICE@Example.ORG>"))

    assert [t.caller_email for t in tickets()] == ["alice@example.org"]


def test_create_person_applies_caller_default_values() -> None:
    repo.create_organization("7", "Demo Corp", 1)
    inbox(
        unknown_caller_behavior="create_person",
        caller_default_values=["org_id:demo corp", "phone:+33 1 23"],
    )

    receive("helpdesk", make_mail("Hello", sender="Bob Stone <bob@example.net>"))

    bob = repo.get_person("bob@example.net")
    assert bob is not None
    assert (bob.name, bob.org, dict(bob.extra_values.as_dict())) == ("Bob Stone", "7", {"phone": "+33 1 23"})
    [ticket] = tickets()
    assert (ticket.caller_email, ticket.org) == ("bob@example.net", "7")


def test_create_person_with_an_unknown_organization_is_failed_to_create_person() -> None:
    inbox(unknown_caller_behavior="create_person", caller_default_values=["org_id:Nobody"])

    outcome = receive("helpdesk", make_mail("Hello", sender="bob@example.net"))

    assert (outcome.status, outcome.error_code) == ("error", "failed_to_create_person")
    assert repo.get_person("bob@example.net") is None


def test_an_unknown_caller_is_rejected() -> None:
    inbox(unknown_caller_behavior="reject")

    outcome = receive("helpdesk", make_mail("Hello", sender="stranger@example.net"))

    assert (outcome.status, outcome.error_code) == ("error", "unknown_caller")
    assert tickets() == [] and repo.get_person("stranger@example.net") is None


def _contacts(ref: str) -> list[str]:
    return sorted(c.email for c in repo.contacts(ref))


@pytest.mark.parametrize(
    ("mode", "on_creation", "on_update"),
    [
        ("never", [], []),
        ("always", ["carol@example.org"], ["carol@example.org", "dave@example.org"]),
        ("only_on_creation", ["carol@example.org"], ["carol@example.org"]),
        ("only_on_update", [], ["dave@example.org"]),
    ],
)
def test_additional_contacts_follow_the_inbox_setting(
    mode: str, on_creation: list[str], on_update: list[str]
) -> None:
    # Given known persons Carol and Dave, and a stranger who is never created
    person("carol@example.org")
    person("dave@example.org")
    inbox(import_additional_contacts=mode)
    first = make_mail("Printer", to=f"{SUPPORT}, carol@example.org", cc="stranger@example.net")

    receive("helpdesk", first)
    assert _contacts("R-000001") == on_creation

    receive(
        "helpdesk", make_mail("Re: Printer", to=SUPPORT, cc="Dave <DAVE@example.org>", in_reply_to=first[1])
    )
    assert _contacts("R-000001") == on_update
    assert repo.get_person("stranger@example.net") is None


def test_the_inbox_own_address_is_never_a_contact_even_when_it_is_a_person() -> None:
    person(SUPPORT)
    inbox(import_additional_contacts="always")

    receive("helpdesk", make_mail("Printer", to=SUPPORT))

    assert _contacts("R-000001") == []


def test_an_update_writes_to_the_class_log_set_in_ticket_log() -> None:
    global_config(ticket_log={"UserRequest": "private_log"})
    inbox()
    first = make_mail("Printer")
    receive("helpdesk", first)

    receive("helpdesk", make_mail("Re: Printer", "thanks", in_reply_to=first[1]))

    [entry] = repo.log_entries("R-000001")
    assert (entry.log, entry.author_email, entry.text) == ("private_log", "alice@example.org", "thanks")


def _set_status(ref: str, status: str) -> None:
    TicketItem.get(TicketItem.key(ref), "ticket").update(actions=[TicketItem.status.set(status)])


@pytest.mark.parametrize(
    ("status", "expected"),
    [("pending", "assigned"), ("resolved", "assigned"), ("assigned", "assigned"), ("new", "new")],
)
def test_stimuli_move_the_ticket_on_update(status: str, expected: str) -> None:
    inbox(stimuli="pending:ev_assign\nresolved:ev_reopen\nnew:ev_close")
    first = make_mail("Printer")
    receive("helpdesk", first)
    _set_status("R-000001", status)

    receive("helpdesk", make_mail("Re: Printer", "any news?", in_reply_to=first[1]))

    [ticket] = tickets()
    assert ticket.status == expected


def test_a_processed_mail_records_the_mailbox_action_of_email_storage() -> None:
    inbox("deleting", email_storage="delete")
    inbox("moving", email_storage="move", target_folder="INBOX.Done")
    inbox("keeping")

    for inbox_id in ("deleting", "moving", "keeping"):
        receive(inbox_id, make_mail(f"Mail for {inbox_id}"))

    actions = [
        (r.pending_action, r.action_folder)
        for i in ("deleting", "moving", "keeping")
        for r in all_replicas(i)
    ]
    assert actions == [("delete", None), ("move", "INBOX.Done"), (None, None)]


def test_error_behavior_delete_records_the_delete_action_with_the_error() -> None:
    inbox("strict", error_behavior="delete", unknown_caller_behavior="reject")
    inbox("lenient", error_behavior="keep", unknown_caller_behavior="reject")

    for inbox_id in ("strict", "lenient"):
        receive(inbox_id, make_mail("Hi", sender="stranger@example.net"))

    assert [(r.status, r.pending_action) for i in ("strict", "lenient") for r in all_replicas(i)] == [
        ("error", "delete"),
        ("error", None),
    ]


def test_a_sender_opening_too_many_tickets_in_an_hour_is_throttled() -> None:
    # Given a limit of 2 new tickets per sender and hour
    global_config(max_tickets_per_sender_per_hour=2)
    inbox()
    person("bob@example.org")
    hour = 1_800_000_000 - 1_800_000_000 % 3600

    # When Alice sends four new mails within the hour, and Bob one
    outcomes = [receive("helpdesk", make_mail(f"Loop {i}"), now=hour + i) for i in range(4)]
    bob = receive("helpdesk", make_mail("Bob's mail", sender="bob@example.org"), now=hour + 5)

    # Then her third and fourth mails are undesired, and other senders are not affected
    assert [o.action for o in outcomes] == ["created", "created", "undesired", "undesired"]
    assert (outcomes[2].error_message or "").startswith("loop protection: alice@example.org")
    assert bob.action == "created"
    # And the next hour she may open tickets again
    assert receive("helpdesk", make_mail("Next hour"), now=hour + 3600).action == "created"


def test_replies_do_not_count_against_the_sender_limit() -> None:
    global_config(max_tickets_per_sender_per_hour=1)
    inbox()
    first = make_mail("Printer")
    receive("helpdesk", first, now=1_800_000_000)

    replies = [
        receive("helpdesk", make_mail("Re: Printer", f"reply {i}", in_reply_to=first[1]), now=1_800_000_001)
        for i in range(3)
    ]

    assert [o.action for o in replies] == ["updated"] * 3


def test_a_huge_body_is_bounded_so_that_no_item_nears_the_item_size_limit() -> None:
    inbox()
    body = "é" * 300_000 + "\n"
    first = make_mail("Huge", body)
    receive("helpdesk", first)

    outcome = receive("helpdesk", make_mail("Re: Huge", body, in_reply_to=first[1]))

    assert outcome.action == "updated"
    [ticket] = tickets()
    [entry] = repo.log_entries("R-000001")
    assert len(ticket.description.encode()) <= 100_000 and ticket.description.endswith("kept as raw EML]")
    assert len(entry.text.encode()) + len((entry.full_text or "").encode()) <= 200_000


def _with_files(subject: str, count: int, in_reply_to: str | None = None) -> tuple[bytes, str]:
    raw, message_id = make_mail(subject, in_reply_to=in_reply_to)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    for n in range(count):
        content = f"{subject}: file {n}\n".encode()
        message.add_attachment(content, maintype="application", subtype="octet-stream", filename=f"f{n}.log")
    return message.as_bytes(policy=email.policy.SMTP), message_id


def test_a_mail_with_more_files_than_one_transaction_holds_keeps_them_all() -> None:
    # Given a mail with 130 files (DynamoDB writes at most 100 items in one transaction)
    inbox()

    # When it opens a ticket, and a reply with 120 more files follows
    created = receive("helpdesk", first := _with_files("Many logs", 130))
    reply = receive("helpdesk", _with_files("Re: Many logs", 120, in_reply_to=first[1]))

    # Then both mails are processed once, on the same ticket, with every file
    assert created.action == "created" and reply.action == "updated"
    assert reply.ticket_ref == created.ticket_ref
    assert {r.status for r in all_replicas()} == {"processed"}
    assert len(list(repo.attachments(created.ticket_ref or ""))) == 250
    assert len(list(repo.log_entries(created.ticket_ref or ""))) == 1
