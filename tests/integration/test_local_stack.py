"""`make up` / `make down`: a stack left running in the background, found by the CLI, and stopped entirely."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from infra.local.background import read_stack

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.integration

# The test process's own stack must not leak into the commands: they find theirs through M2T_LOCAL only.
_OWN = ("AWS_", "M2T_", "SSL_CERT_FILE", "SMTP_", "PROCESS_", "RAW_BUCKET", "EVENT_BUS_NAME", "POWERTOOLS_")
_TABLES = ("INBOXES_TABLE", "REPLICAS_TABLE", "TICKETS_TABLE")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN) and k not in _TABLES}
    return {**env, **extra}


def _background(action: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.local.background", action, "--dir", str(state)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def _cli(state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "mail2ticket"
    return subprocess.run(
        [str(command), *argv],
        cwd=ROOT,
        env=_env(M2T_LOCAL=str(state / "stack.json")),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat[stat.rindex(")") + 2 :].startswith("Z")


def _processes(stack: dict[str, Any]) -> list[int]:
    """The stack's processes still running: its supervisor, moto, Dovecot and Dovecot's children."""
    dovecot = int(stack["servers"]["dovecot"]["pid"])
    group = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == dovecot:
                group.append(int(entry.name))
    candidates = [int(stack["pid"]), int(stack["servers"]["moto"]["pid"]), dovecot, *group]
    return [pid for pid in dict.fromkeys(candidates) if _alive(pid)]


@pytest.fixture
def state(tmp_path: Path, dovecot_installed: None):
    state = tmp_path / "state"
    yield state
    _background("down", state)


def test_up_leaves_a_stack_the_cli_uses_and_down_stops_every_process_of_it(state: Path) -> None:
    # When the stack is brought up
    up = _background("up", state)

    # Then it runs in the background, its details in a file only its owner reads, and it says how to use it
    assert up.returncode == 0, up.stdout + up.stderr
    stack = read_stack(state)
    assert stack is not None and len(_processes(stack)) >= 3
    assert (state / "stack.json").stat().st_mode & 0o777 == 0o600
    assert "local deliver infra/local/demo_mails/01_plain_new.eml" in up.stdout and "make down" in up.stdout

    # And a mail delivered to its mailbox becomes a ticket with three commands, with no variable exported
    delivered = _cli(state, "local", "deliver", "infra/local/demo_mails/01_plain_new.eml")
    assert delivered.returncode == 0, delivered.stderr
    assert json.loads(_cli(state, "poll", "--json").stdout)["polled"][0]["received"] == 1
    assert json.loads(_cli(state, "process", "--json").stdout)[0]["outcome"] == "created"
    [ticket] = json.loads(_cli(state, "tickets", "ls", "--json").stdout)
    assert ticket["title"] == "Printer on 3rd floor is jammed"
    assert json.loads(_cli(state, "local", "status", "--json").stdout)["pid"] == stack["pid"]

    # When it is brought up again, then the running stack is kept
    again = _background("up", state)
    assert again.returncode == 0 and again.stdout.startswith(
        f"The local stack is already running (process {stack['pid']})"
    )
    assert read_stack(state) == stack

    # When it is brought down, then none of its processes is left, nor its file
    down = _background("down", state)
    assert (down.returncode, down.stdout) == (0, "The local stack is stopped.\n")
    assert _wait_for_none(stack) == []
    assert not (state / "stack.json").exists()
    assert _background("down", state).stdout == "No local stack is running.\n"
    gone = _cli(state, "tickets", "ls")
    assert gone.returncode == 1 and "no local stack is running" in gone.stderr and "make up" in gone.stderr


def test_a_stack_whose_supervisor_died_is_detected_and_replaced(state: Path) -> None:
    # Given a running stack whose supervisor is killed, leaving its servers behind
    assert _background("up", state).returncode == 0
    dead = read_stack(state)
    assert dead is not None
    os.kill(int(dead["pid"]), signal.SIGKILL)
    time.sleep(0.2)

    # Then the CLI says so instead of talking to what is left
    stale = _cli(state, "tickets", "ls")
    assert stale.returncode == 1 and f"its process {dead['pid']} is gone" in stale.stderr

    # When the stack is brought up again, then what was left is stopped and a new stack runs
    up = _background("up", state)
    assert up.returncode == 0, up.stderr
    assert "left from a stack that is gone: cleaning up" in up.stdout
    assert _wait_for_none(dead) == []
    fresh = read_stack(state)
    assert fresh is not None and fresh["pid"] != dead["pid"]
    assert _cli(state, "tickets", "ls").stdout == "(none)\n"


def _wait_for_none(stack: dict[str, Any], seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _processes(stack)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
