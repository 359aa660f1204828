"""`mail2ticket`: configure inboxes, run the functions, inspect and act on mailboxes, tickets and people.

Works against AWS (--stack NAME), against the local stack of `make up` (--local, or M2T_LOCAL=1), or against
the endpoint AWS_ENDPOINT_URL names.
"""

import argparse
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from mail2ticket.cli.common import Result
from mail2ticket.errors import Mail2TicketError

# Each command's module is imported only when that command runs: `--help` and a table command must start in
# well under 0.3 s, and the AWS SDK, pydantic and the mail parser each cost tens of milliseconds to import.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "inbox": ("inbox", "add_parser", "inbox configuration items"),
    "mailbox": ("mailbox", "add_parser", "an inbox's messages"),
    "retry": ("retry", "add_parser", "process one message again and print the outcome"),
    "poll": ("run", "add_poll", "poll inboxes now: new mail stored and queued, mailbox actions done"),
    "process": ("run", "add_process", "process the queued messages until the queue is empty"),
    "clean": ("run", "add_clean", "apply the retention rules once"),
    "tickets": ("tickets", "add_parser", "tickets created from mail, and the actions of agents on them"),
    "people": ("people", "add_people", "persons: callers, contacts and agents"),
    "orgs": ("people", "add_orgs", "organizations"),
    "config": ("config_cmd", "add_parser", "global parameters"),
    "parse": ("parse", "add_parser", "show how a mail file is understood (nothing is written)"),
    "dlq": ("dlq", "add_parser", "the processor's dead-letter queue"),
    "local": ("local", "add_parser", "the local stack of `make up`: deliver a mail to its mailbox, status"),
}


def parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The CLI's parser; only the command named in `argv` (if any) has its arguments, others their help."""
    root = argparse.ArgumentParser(
        prog="mail2ticket", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _global_options(root, at_root=True)
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _command_in(argv)
    for name, (module, function, text) in COMMANDS.items():
        if name == chosen:
            getattr(importlib.import_module(f"mail2ticket.cli.{module}"), function)(commands)
        else:
            commands.add_parser(name, help=text)
    for leaf in _leaves(root):
        _global_options(leaf, at_root=False)
    return root


# (flags, options, default before the command)
_GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any], Any], ...] = (
    (
        ("--stack",),
        {"metavar": "NAME", "help": "use the tables, bucket, queue and functions of this deployed stack"},
        None,
    ),
    (
        ("--local",),
        {
            "action": "store_true",
            "help": "use the local stack of `make up` (also: M2T_LOCAL=1, or M2T_LOCAL=its stack file)",
        },
        False,
    ),
    (("-v", "--verbose"), {"action": "store_true", "help": "show log lines (on stderr)"}, False),
)


def _global_options(parser: argparse.ArgumentParser, at_root: bool) -> None:
    """--stack, --local and --verbose, given before the command or after it (where not taken already).

    Below the root they default to nothing at all, so that they never undo what was given before the command.
    """
    for flags, options, default in _GLOBAL_OPTIONS:
        if flags[-1] not in parser._option_string_actions:
            parser.add_argument(*flags, default=default if at_root else argparse.SUPPRESS, **options)


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield child
                yield from _leaves(child)


def _command_in(argv: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option (nor --stack's value)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--stack":
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic looks for plugins in every installed package's metadata (15 ms); this command uses none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    words = list(sys.argv[1:] if argv is None else argv)
    args = parser(words).parse_args(words)
    with _diagnostics_on_stderr(args.verbose):
        try:
            _choose_environment(args.stack, args.local, args.command)
            result = args.run(args)
        except KeyboardInterrupt:
            return _fail("interrupted", 130)
        except Exception as exc:
            if _expected(exc):
                return _fail(str(exc))
            if args.verbose:
                raise
            return _fail(f"unexpected {type(exc).__name__}: {exc} (run with --verbose for the details)")
    text, code = (result.text, result.code) if isinstance(result, Result) else (result, 0)
    try:
        if text:
            print(text)
    except BrokenPipeError:
        # The reader (head, less) has what it wanted: the rest goes nowhere, without a traceback at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _choose_environment(stack: str | None, local: bool, command: str) -> None:
    """Point the settings at a deployed stack or at the local one, before any store module is imported
    (they bind table names when first imported)."""
    from mail2ticket.cli.common import CliError
    from mail2ticket.cli.local import local_stack_file, use_local_stack

    stack_file = local_stack_file(local or command == "local")
    if stack and stack_file:
        raise CliError("--stack and --local (or M2T_LOCAL) name two different stacks: give one")
    if stack_file:
        use_local_stack(stack_file)
    elif stack:
        _use_stack(stack)


def _expected(exc: Exception) -> bool:
    """A failure to print as one line: the product's errors, AWS's answers, a server out of reach."""
    if isinstance(exc, Mail2TicketError):
        return True
    expected: list[type[Exception]] = []
    if "botocore" in sys.modules:
        from botocore.exceptions import BotoCoreError, ClientError

        expected += [BotoCoreError, ClientError]
    if "pynamodb" in sys.modules:
        from pynamodb.exceptions import PynamoDBException

        expected.append(PynamoDBException)
    return isinstance(exc, tuple(expected))


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
    """Log lines go to stderr (stdout is the command's answer); metrics are for Lambda, not for a terminal.

    The logger is set up only when a command has imported it: a command that logs nothing does not pay for
    Powertools.
    """
    metrics_disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "DEBUG" if verbose else "WARNING"
    try:
        with _logger_on_stderr(verbose):
            yield
    finally:
        if metrics_disabled is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = metrics_disabled


@contextmanager
def _logger_on_stderr(verbose: bool) -> Iterator[None]:
    observability = sys.modules.get("mail2ticket.observability")
    if observability is None:
        yield
        return
    logger = observability.logger
    handler = logger.registered_handler
    stream, level = getattr(handler, "stream", None), logger.log_level
    # Assigned, not setStream(): that flushes the previous stream, which may be closed already.
    if stream is not None:
        handler.stream = sys.stderr
    logger.setLevel("DEBUG" if verbose else "WARNING")
    try:
        yield
    finally:
        if stream is not None:
            handler.stream = stream
        logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
