"""The installed `mail2ticket` console script: help on every command, one-line errors, --stack."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.local.moto_server import free_port
from infra.local.stack import LocalStack
from tests.integration.cli_helpers import cli, fake_stack, write_inbox

pytestmark = pytest.mark.integration

COMMANDS = [
    ["inbox", "put"], ["inbox", "get"], ["inbox", "list"], ["inbox", "enable"], ["inbox", "disable"],
    ["inbox", "delete"], ["inbox", "validate"], ["inbox", "secret"], ["inbox", "test"],
    ["mailbox", "ls"], ["mailbox", "reset"], ["mailbox", "ignore"], ["mailbox", "delete"],
    ["retry"], ["tickets", "ls"], ["tickets", "show"], ["config", "get"], ["config", "set"],
    ["config", "unset"], ["parse"], ["inbox"], ["mailbox"], ["tickets"], ["config"],
    ["poll"], ["process"], ["clean"], ["tickets", "set-status"], ["tickets", "assign"], ["tickets", "note"],
    ["people"], ["people", "ls"], ["people", "show"], ["people", "put"], ["people", "delete"], ["orgs"],
    ["orgs", "ls"], ["orgs", "show"], ["orgs", "put"], ["local"], ["local", "deliver"], ["local", "status"],
]  # fmt: skip


def _script() -> str:
    found = Path(sys.executable).parent / "mail2ticket"
    return str(found) if found.exists() else shutil.which("mail2ticket") or "mail2ticket"


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_script(), *argv], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def test_the_console_script_is_installed_and_helps() -> None:
    result = _run("--help")

    assert result.returncode == 0 and result.stdout.startswith("usage: mail2ticket")
    for command in ("inbox", "mailbox", "retry", "poll", "process", "clean", "tickets", "people", "orgs"):
        assert f"    {command} " in result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(capsys, command: list[str]) -> None:
    from mail2ticket.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: mail2ticket {' '.join(command)}")


def test_a_usage_error_exits_with_2(capsys) -> None:
    from mail2ticket.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["mailbox", "reset", "helpdesk"])

    assert exited.value.code == 2 and "the following arguments are required: KEY" in capsys.readouterr().err


def test_aws_out_of_reach_is_one_line_without_traceback() -> None:
    port = free_port()

    result = _run(
        "inbox", "list", env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1"}
    )

    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("mail2ticket: error: Could not connect to the endpoint URL")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_stack_option_uses_the_stack_resources(aws: LocalStack, tmp_path: Path, capsys) -> None:
    # Given a stack whose outputs name the (local) tables, and an inbox in them
    cli(capsys, "inbox", "put", str(write_inbox(tmp_path)))
    outputs = {
        "InboxesTableName": os.environ["INBOXES_TABLE"],
        "ReplicasTableName": os.environ["REPLICAS_TABLE"],
        "TicketsTableName": os.environ["TICKETS_TABLE"],
    }
    fake_stack("prod", outputs)

    # When the script runs with --stack and an environment naming other tables
    result = _run("--stack", "prod", "inbox", "list", "--json", env={"INBOXES_TABLE": "elsewhere"})

    # Then it reads the stack's tables
    assert result.returncode == 0, result.stderr
    assert [row["inbox_id"] for row in json.loads(result.stdout)] == ["helpdesk"]
