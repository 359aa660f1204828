"""`mail2ticket`: inspect tickets and mailboxes, retry a message (on AWS, or locally via AWS_ENDPOINT_URL)."""

import argparse
import sys
from collections.abc import Sequence

from mail2ticket.cli.parse import add_parser as add_parse_parser
from mail2ticket.cli.table import render, to_json


def _tickets_ls(args: argparse.Namespace) -> str:
    from mail2ticket.cli.views import TICKET_COLUMNS, ticket_rows

    rows = ticket_rows()
    return to_json(rows) if args.json else render(rows, TICKET_COLUMNS)


def _mailbox_ls(args: argparse.Namespace) -> str:
    from mail2ticket.cli.views import REPLICA_COLUMNS, replica_rows

    rows = replica_rows(args.inbox_id)
    return to_json(rows) if args.json else render(rows, REPLICA_COLUMNS)


def _retry(args: argparse.Namespace) -> str:
    from mail2ticket.process import retry_message

    outcome = retry_message(args.inbox_id, args.message_key).as_dict()
    return to_json(outcome) if args.json else render([outcome], list(outcome))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mail2ticket", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    tickets = commands.add_parser("tickets", help="tickets created from mail").add_subparsers(required=True)
    ls = tickets.add_parser("ls", help="list tickets")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(run=_tickets_ls)

    mailbox = commands.add_parser("mailbox", help="an inbox's messages").add_subparsers(required=True)
    mls = mailbox.add_parser("ls", help="messages with their status, ticket and error")
    mls.add_argument("inbox_id")
    mls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mls.set_defaults(run=_mailbox_ls)

    retry = commands.add_parser("retry", help="process one message again, in this process")
    retry.add_argument("inbox_id")
    retry.add_argument("message_key")
    retry.add_argument("--json", action="store_true", help="print JSON instead of a table")
    retry.set_defaults(run=_retry)
    add_parse_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        print(args.run(args))
    except Exception as exc:
        print(f"mail2ticket: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
