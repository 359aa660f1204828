"""`mail2ticket mailbox …`: an inbox's messages with their status, and the operator's actions on them."""

import argparse
import time
from typing import Any

from mail2ticket.cli.common import CliError, Result, add_json, table
from mail2ticket.cli.table import to_json
from mail2ticket.errors import Mail2TicketError

STATUSES = ("new", "processing", "processed", "error", "undesired", "ignored")


def add_parser(commands: Any) -> None:
    group = commands.add_parser("mailbox", help="an inbox's messages", description="An inbox's messages.")
    sub = group.add_subparsers(dest="mailbox_command", required=True, metavar="ACTION")

    ls = sub.add_parser(
        "ls",
        help="messages with status, date, sender, subject, ticket and error",
        description="Messages read from the inbox's mailbox, with their status, ticket and error.",
    )
    ls.add_argument("inbox_id", metavar="ID")
    ls.add_argument("--status", choices=STATUSES, help="only messages in this status")
    add_json(ls)
    ls.set_defaults(run=_ls)

    for name, text in (
        ("reset", "set messages back to new and queue them again (error, undesired, ignored or new ones)"),
        ("ignore", "mark messages as ignored: they are not processed until reset"),
        ("delete", "delete messages from the mail server at the next poll"),
    ):
        action = sub.add_parser(name, help=text.split(" (")[0], description=text[0].upper() + text[1:] + ".")
        action.add_argument("inbox_id", metavar="ID")
        action.add_argument(
            "message_keys", metavar="KEY", nargs="+", help="message keys, as `mailbox ls` shows"
        )
        add_json(action)
        action.set_defaults(run=_act, action=name)


def _ls(args: argparse.Namespace) -> str:
    from mail2ticket.cli.views import REPLICA_COLUMNS, replica_rows
    from mail2ticket.store.config import inbox_item
    from mail2ticket.store.models import UNROUTED

    rows = replica_rows(args.inbox_id)
    if not rows and args.inbox_id != UNROUTED:
        inbox_item(args.inbox_id)  # an unknown inbox is an error, an empty mailbox is not
    if args.status:
        rows = [row for row in rows if row["status"] == args.status]
    extra = tuple(column for column in ("pending_action", "server") if any(r[column] for r in rows))
    columns = REPLICA_COLUMNS + extra
    return table(rows, columns, args.json)


def _act(args: argparse.Namespace) -> Result:
    from mail2ticket.store import replicas
    from mail2ticket.store.models import UNROUTED

    if args.inbox_id == UNROUTED:
        raise CliError(
            f"no inbox processes the mail of {UNROUTED}: once an inbox owns one, write its raw mail (S3_KEY "
            "in `mailbox ls --json`) under inbound/<inbox_id>/ of the bucket; it expires here by itself"
        )

    operation = {
        "reset": replicas.reset_replica,
        "ignore": replicas.ignore_replica,
        "delete": replicas.request_delete,
    }[args.action]
    done = {
        "reset": "reset to new and queued",
        "ignore": "ignored",
        "delete": "will be deleted at the next poll",
    }
    results: list[dict[str, Any]] = []
    for key in args.message_keys:
        try:
            operation(args.inbox_id, key, int(time.time()))
        except Mail2TicketError as exc:
            results.append({"message_key": key, "ok": False, "result": str(exc)})
        else:
            results.append({"message_key": key, "ok": True, "result": done[args.action]})
    failed = [r for r in results if not r["ok"]]
    if args.json:
        return Result(to_json(results), 1 if failed else 0)
    text = "\n".join(f"{r['message_key']}: {r['result']}" for r in results)
    if failed and len(results) == 1:
        raise CliError(str(failed[0]["result"]))
    return Result(text, 1 if failed else 0)
