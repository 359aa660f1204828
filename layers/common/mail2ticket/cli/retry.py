"""`mail2ticket retry ID KEY`: process one message again and print the outcome."""

import argparse
from typing import Any

from mail2ticket.cli.common import Result, add_json
from mail2ticket.cli.table import render, to_json

FAILED = ("error", "missing")


def add_parser(commands: Any) -> None:
    retry = commands.add_parser(
        "retry",
        help="process one message again and print the outcome",
        description="Reprocess one message from its stored EML. With --function or --stack the deployed "
        "processor does it (a direct invocation); otherwise this process does, against AWS_ENDPOINT_URL "
        "or AWS. A message in error is reset first; a processed one is reported as it is.",
    )
    retry.add_argument("inbox_id", metavar="ID")
    retry.add_argument("message_key", metavar="KEY")
    retry.add_argument("--function", metavar="NAME", help="the processor function's name or ARN")
    retry.add_argument(
        "--stack", dest="retry_stack", metavar="NAME", help="find the processor in this stack's outputs"
    )
    add_json(retry)
    retry.set_defaults(run=_retry)


def _retry(args: argparse.Namespace) -> Result:
    stack = args.retry_stack or args.stack
    if args.function or stack:
        from mail2ticket.store.deployed import invoke_function, stack_function

        function = args.function or stack_function(stack, "ProcessorFunctionName")
        request = {"retry": {"inbox_id": args.inbox_id, "message_key": args.message_key}}
        outcome: dict[str, Any] = invoke_function(function, request)
    else:
        from mail2ticket.process import retry_message

        outcome = dict(retry_message(args.inbox_id, args.message_key).as_dict())
    code = 1 if outcome.get("status") in FAILED else 0
    text = to_json(outcome) if args.json else render([outcome], list(outcome))
    return Result(text, code)
