"""`mail2ticket dlq …`: the processor's dead-letter queue, listed and moved back to the process queue."""

import argparse
from typing import Any

from mail2ticket.cli.common import Result, add_json, table, timestamp
from mail2ticket.cli.table import to_json

COLUMNS = ("message_id", "inbox_id", "message_key", "receive_count", "sent_at", "status", "error")


def add_parser(commands: Any) -> None:
    group = commands.add_parser(
        "dlq", help="the processor's dead-letter queue", description="The processor's dead-letter queue."
    )
    sub = group.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    ls = sub.add_parser(
        "ls",
        help="messages in the dead-letter queue, with their replica's status and error",
        description="Messages in the dead-letter queue, with their replica's status and error. Listing "
        "receives each message once (its receive count grows by one) and makes it visible again.",
    )
    add_json(ls)
    ls.set_defaults(run=_ls)
    redrive = sub.add_parser(
        "redrive",
        help="move messages back to the process queue",
        description="Move messages back to the process queue, each sent there before it leaves the DLQ.",
    )
    redrive.add_argument("--max", type=int, metavar="N", help="move at most N messages")
    add_json(redrive)
    redrive.set_defaults(run=_redrive)


def _ls(args: argparse.Namespace) -> str:
    from mail2ticket.store.dlq import peek
    from mail2ticket.store.replicas import replicas_by_key

    letters = peek()
    wanted: dict[str, set[str]] = {}
    for letter in letters:
        if letter.request:
            wanted.setdefault(letter.request.inbox_id, set()).add(letter.request.message_key)
    found = {
        (r.inbox_id, r.message_key): r
        for inbox_id, keys in wanted.items()
        for r in replicas_by_key(inbox_id, keys)
    }
    rows = []
    for letter in letters:
        request = letter.request
        replica = found.get((request.inbox_id, request.message_key)) if request else None
        rows.append(
            {
                "message_id": letter.message_id,
                "inbox_id": request.inbox_id if request else None,
                "message_key": request.message_key if request else None,
                "receive_count": letter.receive_count,
                "sent_at": letter.sent_at if args.json else timestamp(letter.sent_at),
                "status": replica.status if replica else ("unknown message" if request else "not a request"),
                "error": (replica.error_message or replica.error_code) if replica else None,
                "body": None if request else letter.body[:200],
            }
        )
    if not args.json:
        for row in rows:
            row.pop("body")
    return table(rows, COLUMNS, args.json)


def _redrive(args: argparse.Namespace) -> Result:
    from mail2ticket.cli.common import CliError
    from mail2ticket.store.dlq import redrive

    if args.max is not None and args.max < 1:
        raise CliError("--max must be at least 1")
    moved = redrive(args.max)
    return Result(
        to_json({"moved": moved}) if args.json else f"{moved} message(s) moved to the process queue"
    )
