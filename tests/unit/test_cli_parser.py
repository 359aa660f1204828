"""The CLI parser: commands loaded only when named, options anywhere, the clock, the stack file, progress."""

import argparse
import importlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mail2ticket.cli import main
from mail2ticket.cli.local import DEFAULT_STACK_FILE, local_stack_file
from mail2ticket.cli.progress import Progress
from mail2ticket.cli.run import _time


def _help_of(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {choice.dest: choice.help for choice in commands._choices_actions}


def test_the_top_level_help_needs_no_command_module() -> None:
    assert _help_of(main.parser([])) == {name: text for name, (_, _, text) in main.COMMANDS.items()}


@pytest.mark.parametrize("name", list(main.COMMANDS))
def test_each_command_registers_the_help_the_top_level_shows(name: str) -> None:
    module, function, text = main.COMMANDS[name]
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()

    getattr(importlib.import_module(f"mail2ticket.cli.{module}"), function)(commands)

    assert _help_of(parser)[name] == text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tickets", "ls"], (None, False, False)),
        (["--local", "tickets", "ls"], (None, True, False)),
        (["tickets", "ls", "--local", "-v"], (None, True, True)),
        (["--stack", "prod", "tickets", "ls"], ("prod", False, False)),
        (["-v", "--stack", "prod", "tickets", "ls", "--local"], ("prod", True, True)),
        (["poll", "--stack", "prod"], ("prod", False, False)),
    ],
)
def test_global_options_go_before_or_after_the_command(argv: list[str], expected: tuple) -> None:
    args = main.parser(argv).parse_args(argv)

    assert (args.stack, args.local, args.verbose) == expected


def test_retry_keeps_its_own_stack_option() -> None:
    argv = ["retry", "support", "1:2", "--stack", "prod"]
    args = main.parser(argv).parse_args(argv)

    assert (args.retry_stack, args.stack) == ("prod", None)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([], None),
        (["-v"], None),
        (["--stack", "tickets", "poll"], "poll"),
        (["-v", "people", "ls"], "people"),
    ],
)
def test_the_command_word_is_the_first_argument_that_is_not_an_option(argv: list[str], command: str) -> None:
    assert main._command_in(argv) == command


@pytest.mark.parametrize(
    ("text", "offset"),
    [("+2h", timedelta(hours=2)), ("-30m", timedelta(minutes=-30)), ("+8d", timedelta(days=8))],
)
def test_the_clock_takes_an_offset_from_now(text: str, offset: timedelta) -> None:
    assert abs(_time(text) - (datetime.now(UTC) + offset)) < timedelta(seconds=5)


def test_the_clock_takes_an_iso_time_in_utc_unless_it_says_otherwise() -> None:
    assert _time("2030-01-02T03:04:05") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert _time("2030-01-02 03:04+02:00") == datetime(2030, 1, 2, 1, 4, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        _time("next week")


@pytest.mark.parametrize(
    ("value", "asked", "expected"),
    [
        (None, False, None),
        (None, True, DEFAULT_STACK_FILE),
        ("1", False, DEFAULT_STACK_FILE),
        ("0", True, DEFAULT_STACK_FILE),
        ("off", False, None),
        ("/tmp/elsewhere/stack.json", False, Path("/tmp/elsewhere/stack.json")),
    ],
)
def test_the_stack_file_comes_from_local_or_m2t_local(
    monkeypatch: pytest.MonkeyPatch, value: str | None, asked: bool, expected: Path | None
) -> None:
    if value is None:
        monkeypatch.delenv("M2T_LOCAL", raising=False)
    else:
        monkeypatch.setenv("M2T_LOCAL", value)

    assert local_stack_file(asked) == expected


def test_the_default_stack_file_is_the_checkouts() -> None:
    assert Path(__file__).parents[2] / ".local" / "stack.json" == DEFAULT_STACK_FILE


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only() -> None:
    pipe, terminal = io.StringIO(), _Terminal()
    with Progress("processing", 4, stream=pipe) as quiet, Progress("processing", 4, stream=terminal) as bar:
        for bar_ in (quiet, bar):
            bar_.advance("R-000001")
        bar.draw()

    assert pipe.getvalue() == ""
    assert terminal.getvalue().startswith("\r\033[Kprocessing [#######.......................] 1/4 ")
    assert terminal.getvalue().endswith("\r\033[K")


def test_progress_without_a_total_counts() -> None:
    bar = Progress("polling", stream=io.StringIO())
    bar.start("support")

    assert bar.line().startswith("polling: 0 done, ") and bar.line().endswith(" support")
