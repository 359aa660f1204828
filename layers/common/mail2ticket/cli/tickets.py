"""`mail2ticket tickets …`: the tickets made from mail, and one ticket with its log and attachments."""

import argparse
from typing import Any

from mail2ticket.cli.common import CliError, add_json, table, timestamp
from mail2ticket.cli.table import render, render_fields, to_json


def add_parser(commands: Any) -> None:
    group = commands.add_parser(
        "tickets", help="tickets created from mail", description="Tickets made from mail."
    )
    sub = group.add_subparsers(dest="tickets_command", required=True, metavar="ACTION")

    ls = sub.add_parser("ls", help="list tickets", description="List the tickets.")
    add_json(ls)
    ls.set_defaults(run=_ls)

    show = sub.add_parser(
        "show",
        help="one ticket with its log, attachments and contacts",
        description="One ticket: its fields, log entries (the new part of each mail), attachments, contacts.",
    )
    show.add_argument("ref", metavar="REF", help="ticket reference, e.g. R-000001")
    show.add_argument("--full", action="store_true", help="show each log entry's full mail text")
    add_json(show)
    show.set_defaults(run=_show)


def _ls(args: argparse.Namespace) -> str:
    from mail2ticket.cli.views import TICKET_COLUMNS, ticket_rows

    return table(ticket_rows(), TICKET_COLUMNS, args.json)


def _show(args: argparse.Namespace) -> str:
    from mail2ticket.store.tickets import attachments, contacts, get_ticket, log_entries

    ticket = get_ticket(args.ref)
    if ticket is None:
        raise CliError(f"ticket {args.ref!r} does not exist")
    fields = {
        "ref": ticket.ref,
        "class": ticket.ticket_class,
        "title": ticket.title,
        "status": ticket.status,
        "caller": ticket.caller_email,
        "org": ticket.org,
        "origin": ticket.origin,
        "inbox": ticket.inbox_id,
        "message_id": ticket.message_id,
        "defaults": dict(
            ticket.defaults.as_dict() if hasattr(ticket.defaults, "as_dict") else ticket.defaults or {}
        ),
        "created": timestamp(ticket.created_at),
        "updated": timestamp(ticket.updated_at),
    }
    log = [
        {
            "date": timestamp(entry.created_at),
            "log": entry.log,
            "author": entry.author_email,
            "message_key": entry.message_key,
            "text": entry.text,
            **({"full_text": entry.full_text} if args.full or args.json else {}),
        }
        for entry in log_entries(ticket.ref)
    ]
    files = [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": int(a.size),
            "sha256": a.sha256,
            "inline": a.inline,
        }
        for a in attachments(ticket.ref)
    ]
    people = [{"email": c.email, "message_key": c.message_key} for c in contacts(ticket.ref)]
    if args.json:
        return to_json(
            {
                **fields,
                "description": ticket.description,
                "log": log,
                "attachments": files,
                "contacts": people,
            }
        )
    parts = [render_fields(list(fields.items())), "", "Description", ticket.description, ""]
    parts.append(f"Log ({len(log)})")
    for entry in log:
        parts.append(f"--- {entry['date']}  {entry['author']}  {entry['log']}  ({entry['message_key']})")
        parts.append(entry["full_text"] if args.full and entry.get("full_text") else entry["text"])
    parts += [
        "",
        f"Attachments ({len(files)})",
        render(files, ("filename", "content_type", "size", "sha256")),
    ]
    if people:
        parts += [
            "",
            f"Contacts ({len(people)})",
            render(people, tuple(sorted({k for p in people for k in p}))),
        ]
    return "\n".join(parts)
