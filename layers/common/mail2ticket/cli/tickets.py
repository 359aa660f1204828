"""`mail2ticket tickets …`: the tickets made from mail, one in full, and the actions of agents on them."""

import argparse
from pathlib import Path
from typing import Any

from mail2ticket.cli.common import CliError, Result, add_json, table, timestamp
from mail2ticket.cli.table import render, render_fields, to_json

ACTIONS_NOTE = "Each action is refused when the ticket changed since it was read, and publishes its event."


def add_parser(commands: Any) -> None:
    group = commands.add_parser(
        "tickets",
        help="tickets created from mail, and the actions of agents on them",
        description="Tickets made from mail, and what agents do to them. " + ACTIONS_NOTE,
    )
    sub = group.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")

    ls = sub.add_parser("ls", help="list tickets", description="List the tickets.")
    ls.add_argument("--status", metavar="STATUS", help="only tickets in this status")
    add_json(ls)
    ls.set_defaults(run=_ls)

    show = sub.add_parser(
        "show",
        help="one ticket with its log, attachments and contacts",
        description="One ticket: its fields, log entries (the new part of each mail, notes), attachments "
        "with their S3 keys, contacts, and the Message-IDs of its mails.",
    )
    show.add_argument("ref", metavar="REF", help="ticket reference, e.g. R-000001")
    show.add_argument("--full", action="store_true", help="show each log entry's full mail text")
    show.add_argument(
        "--html",
        metavar="FILE",
        type=Path,
        help="write the sanitized HTML of the description (or of --entry N) to FILE",
    )
    show.add_argument(
        "--entry", metavar="N", type=int, default=0, help="with --html: log entry N as numbered by show"
    )
    add_json(show)
    show.set_defaults(run=_show)

    status = sub.add_parser(
        "set-status",
        help="change a ticket's status (closing releases its mail to the cleaner)",
        description="Move a ticket to one of its class's statuses (new, assigned, pending, resolved, closed; "
        "no pending for Change and Problem). Closing it lets the cleaner delete its kept mail from the "
        "mailbox, and a reply then opens a new ticket; reopening it (any other status) keeps its mail again. "
        + ACTIONS_NOTE,
    )
    status.add_argument("ref", metavar="REF")
    status.add_argument("status", metavar="STATUS")
    add_json(status)
    status.set_defaults(run=_set_status)

    assign = sub.add_parser(
        "assign",
        help="assign a ticket to an agent (a person)",
        description="Assign a ticket to an agent, a person's address (`people put` adds one). A new or "
        "pending ticket becomes assigned; a closed one must be reopened first. " + ACTIONS_NOTE,
    )
    assign.add_argument("ref", metavar="REF")
    assign.add_argument("agent", metavar="AGENT", help="the agent's address")
    add_json(assign)
    assign.set_defaults(run=_assign)

    note = sub.add_parser(
        "note",
        help="add a private note to a ticket's log",
        description="Add a private note (private_log: never sent to the caller) to a ticket's log. "
        "TEXT - reads the note from stdin. " + ACTIONS_NOTE,
    )
    note.add_argument("ref", metavar="REF")
    note.add_argument("text", metavar="TEXT", help="the note, or - to read it from stdin")
    note.add_argument("--author", metavar="EMAIL", required=True, help="who writes it (an address)")
    add_json(note)
    note.set_defaults(run=_note)


def _ls(args: argparse.Namespace) -> str:
    from mail2ticket.cli.views import TICKET_COLUMNS, ticket_rows

    rows = ticket_rows()
    if args.status:
        rows = [row for row in rows if row["status"] == args.status]
    return table(rows, TICKET_COLUMNS, args.json)


def _show(args: argparse.Namespace) -> str:
    from mail2ticket.store.tickets import attachments, contacts, get_ticket, log_entries

    ticket = get_ticket(args.ref)
    if ticket is None:
        raise CliError(f"ticket {args.ref!r} does not exist")
    entries = list(log_entries(ticket.ref))
    if args.html:
        return _write_html(args, ticket, entries)
    fields = {
        "ref": ticket.ref,
        "class": ticket.ticket_class,
        "title": ticket.title,
        "status": ticket.status,
        "agent": ticket.agent,
        "caller": ticket.caller_email,
        "org": ticket.org,
        "origin": ticket.origin,
        "inbox": ticket.inbox_id,
        "message_id": ticket.message_id,
        "html": "yes (--html FILE)" if ticket.description_html else "no",
        "defaults": dict(
            ticket.defaults.as_dict() if hasattr(ticket.defaults, "as_dict") else ticket.defaults or {}
        ),
        "created": timestamp(ticket.created_at),
        "updated": timestamp(ticket.updated_at),
        "closed": timestamp(ticket.closed_at),
    }
    log: list[dict[str, Any]] = [
        {
            "entry": number,
            "date": timestamp(entry.created_at),
            "log": entry.log,
            "author": entry.author_email,
            "inbox_id": entry.inbox_id,
            "message_key": entry.message_key,
            "message_id": entry.message_id,
            "html": entry.html is not None,
            "text": entry.text,
            **({"full_text": entry.full_text} if args.full or args.json else {}),
        }
        for number, entry in enumerate(entries, start=1)
    ]
    files = [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": int(a.size),
            "sha256": a.sha256,
            "s3_key": a.s3_key,
            "inline": a.inline,
            "message_key": a.message_key,
        }
        for a in attachments(ticket.ref)
    ]
    people = [{"email": c.email, "message_key": c.message_key} for c in contacts(ticket.ref)]
    if args.json:
        return to_json(
            {
                **fields,
                "html": ticket.description_html is not None,
                "description": ticket.description,
                "log": log,
                "attachments": files,
                "contacts": people,
            }
        )
    parts = [render_fields(list(fields.items())), "", "Description", ticket.description, ""]
    parts.append(f"Log ({len(log)})")
    for entry in log:
        source = f"{entry['message_key']} <{entry['message_id']}>" if entry["message_id"] else "note"
        html = ", html" if entry["html"] else ""
        parts.append(
            f"--- #{entry['entry']} {entry['date']}  {entry['author']}  {entry['log']}  ({source}{html})"
        )
        parts.append(entry["full_text"] if args.full and entry.get("full_text") else entry["text"])
    parts += [
        "",
        f"Attachments ({len(files)})",
        render(files, ("filename", "content_type", "size", "s3_key")),
    ]
    if people:
        parts += [
            "",
            f"Contacts ({len(people)})",
            render(people, tuple(sorted({k for p in people for k in p}))),
        ]
    return "\n".join(parts)


def _write_html(args: argparse.Namespace, ticket: Any, entries: list[Any]) -> str:
    """The sanitized HTML kept for the description (entry 0) or a log entry; inline images point at their
    attachment's S3 key."""
    if not 0 <= args.entry <= len(entries):
        raise CliError(f"ticket {ticket.ref} has log entries 1 to {len(entries)} (0 is the description)")
    what = "the description" if args.entry == 0 else f"log entry {args.entry}"
    html = ticket.description_html if args.entry == 0 else entries[args.entry - 1].html
    if html is None:
        raise CliError(
            f"{what} of {ticket.ref} has no HTML: its mail was plain text, or its HTML too long to keep "
            "(the text and the raw mail stand for it)"
        )
    try:
        args.html.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {args.html}: {exc.strerror}") from None
    return f"{what} of {ticket.ref}: sanitized HTML written to {args.html}"


def _set_status(args: argparse.Namespace) -> Result:
    from mail2ticket.tickets.actions import set_status

    done = set_status(args.ref, args.status)
    ticket = done.ticket
    if not done.changed:
        return _answer(args, done, f"{ticket.ref} is {ticket.status} already: nothing changed")
    text = f"{ticket.ref}: {done.previous_status} -> {ticket.status}"
    if ticket.status == "closed":
        text += " (the cleaner's next run asks the poller to delete its kept mail from the mailbox)"
    return _answer(args, done, text)


def _assign(args: argparse.Namespace) -> Result:
    from mail2ticket.tickets.actions import assign

    done = assign(args.ref, args.agent)
    ticket = done.ticket
    text = f"{ticket.ref}: assigned to {ticket.agent} ({ticket.status})"
    return _answer(args, done, text if done.changed else f"{text} already: nothing changed")


def _note(args: argparse.Namespace) -> Result:
    import sys

    from mail2ticket.tickets.actions import add_note

    text = sys.stdin.read() if args.text == "-" else args.text
    entry = add_note(args.ref, text, args.author)
    if args.json:
        return Result(
            to_json({"ref": args.ref, "sk": entry.sk, "log": entry.log, "author": entry.author_email})
        )
    return Result(f"{args.ref}: private note by {entry.author_email} added to the log")


def _answer(args: argparse.Namespace, done: Any, text: str) -> Result:
    if args.json:
        ticket = done.ticket
        return Result(
            to_json(
                {
                    "ref": ticket.ref,
                    "status": ticket.status,
                    "agent": ticket.agent,
                    "previous_status": done.previous_status,
                    "previous_agent": done.previous_agent,
                    "changed": done.changed,
                }
            )
        )
    return Result(text)
