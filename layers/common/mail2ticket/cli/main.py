"""`mail2ticket`: configure inboxes, inspect mailboxes and tickets, retry a message.

Works against AWS, or against the local stack when AWS_ENDPOINT_URL points at it.
"""

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from mail2ticket.cli import config_cmd, dlq, inbox, mailbox, parse, retry, tickets
from mail2ticket.cli.common import Result
from mail2ticket.errors import Mail2TicketError

COMMAND_MODULES = (inbox, mailbox, retry, tickets, config_cmd, parse, dlq)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="mail2ticket", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument(
        "--stack", metavar="NAME", help="use the tables, bucket, queue and functions of this deployed stack"
    )
    root.add_argument("-v", "--verbose", action="store_true", help="show log lines (on stderr)")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with _diagnostics_on_stderr(args.verbose):
        try:
            if args.stack:
                _use_stack(args.stack)
            result = args.run(args)
        except KeyboardInterrupt:
            return _fail("interrupted", 130)
        except (Mail2TicketError, PynamoDBException, BotoCoreError, ClientError) as exc:
            return _fail(str(exc))
        except Exception as exc:
            if args.verbose:
                raise
            return _fail(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for the details)")
    if isinstance(result, Result):
        if result.text:
            print(result.text)
        return result.code
    print(result)
    return 0


def _fail(message: str, code: int = 1) -> int:
    print(f"mail2ticket: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _use_stack(stack_name: str) -> None:
    """Point the settings at the stack's resources; the store modules read them when first imported."""
    from mail2ticket.store.deployed import OUTPUT_VARIABLES, stack_outputs

    outputs = stack_outputs(stack_name)
    os.environ.update({var: outputs[key] for key, var in OUTPUT_VARIABLES.items() if key in outputs})


@contextmanager
def _diagnostics_on_stderr(verbose: bool) -> Iterator[None]:
    """Log lines go to stderr (stdout is the command's answer); metrics are for Lambda, not for a terminal."""
    from mail2ticket.observability import logger

    handler = logger.registered_handler
    stream, level = getattr(handler, "stream", None), logger.log_level
    metrics_disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    # Assigned, not setStream(): that flushes the previous stream, which may be closed already.
    if stream is not None:
        handler.stream = sys.stderr  # type: ignore[attr-defined]
    logger.setLevel("DEBUG" if verbose else "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    try:
        yield
    finally:
        if stream is not None:
            handler.stream = stream  # type: ignore[attr-defined]
        logger.setLevel(level)
        if metrics_disabled is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = metrics_disabled


if __name__ == "__main__":
    sys.exit(main())
