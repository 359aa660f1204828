"""`tickets set-status|assign|note|show --html`, `people …`, `orgs …` and `mailbox ls --json` in the CLI."""

from pathlib import Path

import pytest

from infra.local.stack import LocalStack
from mail2ticket.mail.parse import parse_mail
from tests.conftest import read_mail
from tests.integration.cli_helpers import cli
from tests.integration.engine_support import deliver, inbox, make_mail, person, receive

pytestmark = pytest.mark.integration


@pytest.fixture
def ticket(aws: LocalStack) -> str:
    """R-000001, opened by an HTML mail with attachments and updated by a text reply."""
    inbox("helpdesk")
    raw = read_mail("gmail_new_with_attachment.eml")
    mail = parse_mail(raw)
    person(mail.from_addr)
    from mail2ticket.process import process_message

    process_message("helpdesk", deliver("helpdesk", raw, mail.message_id))
    reply = make_mail("Re: export", "Any news?", sender=mail.from_addr, in_reply_to=mail.message_id)
    assert receive("helpdesk", reply).ticket_ref == "R-000001"
    person("agent@example.com", "Agent")
    return "R-000001"


def test_show_gives_message_ids_attachments_with_their_keys_and_the_html(
    ticket: str, tmp_path: Path, capsys
) -> None:
    # When the ticket is shown
    shown = cli(capsys, "tickets", "show", ticket, "--json").json()
    text = cli(capsys, "tickets", "show", ticket).out

    # Then each log entry and the ticket name their mail's Message-ID, and each attachment its S3 key
    mail = parse_mail(read_mail("gmail_new_with_attachment.eml"))
    assert shown["message_id"] == mail.message_id and shown["html"] is True
    [entry] = shown["log"]
    assert entry["message_id"] and entry["message_key"] and entry["entry"] == 1
    assert {a["filename"]: a["s3_key"] for a in shown["attachments"]}["export_error.png"].startswith(
        "attachments/"
    )
    assert f"<{entry['message_id']}>" in text and "S3_KEY" in text

    # When its HTML is written, then it is the sanitized HTML the ticket keeps
    page = tmp_path / "description.html"
    written = cli(capsys, "tickets", "show", ticket, "--html", str(page))
    assert (
        written.code == 0
        and written.out.strip() == f"the description of {ticket}: sanitized HTML written to {page}"
    )
    html = page.read_text(encoding="utf-8")
    assert 'src="attachments/' in html and "<script" not in html.lower() and "cid:" not in html

    # And a text entry, or one that does not exist, is one readable line
    none = cli(capsys, "tickets", "show", ticket, "--html", str(page), "--entry", "1")
    assert none.code == 1 and "log entry 1 of R-000001 has no HTML: its mail was plain text" in none.err
    beyond = cli(capsys, "tickets", "show", ticket, "--html", str(page), "--entry", "7")
    assert beyond.code == 1 and "has log entries 1 to 1 (0 is the description)" in beyond.err


def test_assign_note_and_close_from_the_command_line(ticket: str, capsys) -> None:
    assigned = cli(capsys, "tickets", "assign", ticket, "agent@example.com")
    assert (assigned.code, assigned.out) == (0, f"{ticket}: assigned to agent@example.com (assigned)\n")
    again = cli(capsys, "tickets", "assign", ticket, "agent@example.com")
    assert again.out.endswith("already: nothing changed\n")

    note = cli(capsys, "tickets", "note", ticket, "-", "--author", "agent@example.com", stdin="Called.\n")
    assert note.out == f"{ticket}: private note by agent@example.com added to the log\n"

    closed = cli(capsys, "tickets", "set-status", ticket, "closed", "--json").json()
    assert (closed["previous_status"], closed["status"], closed["changed"]) == ("assigned", "closed", True)

    listed = cli(capsys, "tickets", "ls", "--status", "closed", "--json").json()
    assert [(t["ref"], t["agent"], t["log_entries"]) for t in listed] == [(ticket, "agent@example.com", 2)]
    shown = cli(capsys, "tickets", "show", ticket, "--json").json()
    assert [e["log"] for e in shown["log"]] == ["public_log", "private_log"]
    assert shown["closed"] and shown["log"][1]["message_id"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["set-status", "R-000001", "pending"], "a Change has no status 'pending'"),
        (["set-status", "R-000009", "closed"], "ticket 'R-000009' does not exist"),
        (["assign", "R-000001", "stranger@example.com"], "no person has the address stranger@example.com"),
        (["note", "R-000001", "hi", "--author", "agent"], "'agent' is not an e-mail address"),
    ],
)
def test_refused_actions_are_one_line(aws: LocalStack, capsys, argv: list[str], message: str) -> None:
    inbox("helpdesk", target_class="Change")
    person("alice@example.org")
    receive("helpdesk", make_mail("Printer"))
    if argv[1] == "R-000001":
        argv = [argv[0], "C-000001", *argv[2:]]

    result = cli(capsys, "tickets", *argv)

    assert result.code == 1 and result.out == ""
    assert result.err.startswith("mail2ticket: error: ") and message in result.err


def test_people_and_organizations(aws: LocalStack, capsys) -> None:
    assert (
        cli(capsys, "orgs", "put", "acme", "--name", "ACME Corp").out
        == "organization acme is named 'ACME Corp'\n"
    )
    taken = cli(capsys, "orgs", "put", "globex", "--name", "acme corp")
    assert taken.code == 1 and "is named 'acme corp' already" in taken.err

    assert cli(capsys, "people", "put", "Bob@Example.com", "--name", "Bob", "--org", "acme corp").code == 0
    assert cli(capsys, "people", "put", "alice@example.org").out == "person alice@example.org created\n"
    bad = cli(capsys, "people", "put", "carol@example.org", "--org", "initech")
    assert bad.code == 1 and "no organization has the id or name 'initech'" in bad.err

    rows = cli(capsys, "people", "ls", "--json").json()
    assert [(p["email"], p["name"], p["org"]) for p in rows] == [
        ("alice@example.org", None, None),
        ("bob@example.com", "Bob", "acme"),
    ]
    assert cli(capsys, "people", "ls").out.splitlines()[0].split() == ["EMAIL", "NAME", "ORG", "CREATED"]
    assert [p["email"] for p in cli(capsys, "people", "ls", "--org", "acme", "--json").json()] == [
        "bob@example.com"
    ]
    org = cli(capsys, "orgs", "show", "ACME corp", "--json").json()
    assert (org["org_id"], [p["email"] for p in org["people"]]) == ("acme", ["bob@example.com"])
    assert [o["org_id"] for o in cli(capsys, "orgs", "ls", "--json").json()] == ["acme"]

    assert cli(capsys, "people", "put", "bob@example.com", "--org", "").code == 0
    assert cli(capsys, "people", "show", "bob@example.com", "--json").json()["org"] is None

    refused = cli(capsys, "people", "delete", "bob@example.com", stdin="")
    assert refused.code == 1 and "needs confirmation: pass --yes" in refused.err
    assert (
        cli(capsys, "people", "delete", "BOB@example.com", "--yes").out == "person bob@example.com deleted\n"
    )
    gone = cli(capsys, "people", "show", "bob@example.com")
    assert gone.code == 1 and "no person has the address bob@example.com" in gone.err


def test_people_show_lists_the_tickets_a_person_called_or_is_assigned(ticket: str, capsys) -> None:
    cli(capsys, "tickets", "assign", ticket, "agent@example.com")
    caller = parse_mail(read_mail("gmail_new_with_attachment.eml")).from_addr

    as_agent = cli(capsys, "people", "show", "agent@example.com", "--json").json()["tickets"]
    as_caller = cli(capsys, "people", "show", caller, "--json").json()["tickets"]

    assert [(t["ref"], t["role"]) for t in as_agent] == [(ticket, "agent")]
    assert [(t["ref"], t["role"]) for t in as_caller] == [(ticket, "caller")]


def test_mailbox_ls_json_gives_the_message_id_and_the_s3_key(ticket: str, capsys) -> None:
    rows = cli(capsys, "mailbox", "ls", "helpdesk", "--json").json()

    mail = parse_mail(read_mail("gmail_new_with_attachment.eml"))
    assert rows[0]["message_id"] == mail.message_id
    assert all(row["s3_key"].startswith("raw/") and row["s3_key"].endswith(".eml") for row in rows)
