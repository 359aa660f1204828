"""`make up` / `make down`: the local stack left running in the background, its details in one file.

`up` starts a supervisor process that runs the LocalStack (every server of `LocalStack.servers`), provisions
a mailbox with its inbox item, writes `.local/stack.json` and waits for `down`. The CLI reads that file
(`mail2ticket --local …`). `up` on a running stack only prints how to use it; a stack file left by a stack
that died is detected, what remains of that stack is stopped, and a new one starts. `down` stops the
supervisor, which stops its servers, then makes sure no process of the stack survives.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from infra.local.resources import REPO_ROOT

STATE_DIR = REPO_ROOT / ".local"
STACK_FILE = "stack.json"
INBOX_ID = "support"
ADDRESS = "support@example.com"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
_SUPERVISOR = "infra.local.background"


# ------------------------------------------------------------------------------------------------ up


def up(state_dir: Path = STATE_DIR) -> int:
    """Start the stack unless one runs already; print how to use it."""
    from infra.local.dovecot import SetupError, ensure_installed

    state_dir.mkdir(parents=True, exist_ok=True)
    with _locked(state_dir):
        stack = read_stack(state_dir)
        if stack is not None and running(stack):
            print(f"The local stack is already running (process {stack['pid']}).\n")
            print(usage(stack, state_dir))
            return 0
        if stack is not None:
            print(f"The stack file {state_dir / STACK_FILE} is left from a stack that is gone: cleaning up.")
            _stop(stack, state_dir)
        try:
            ensure_installed()  # in the foreground: an install's messages and failures reach the user
        except SetupError as error:
            print(f"make up: {error}", file=sys.stderr)
            return 1
        stack = _start_supervisor(state_dir)
        if stack is None:
            return 1
    print(usage(stack, state_dir))
    return 0


def _start_supervisor(state_dir: Path) -> dict[str, Any] | None:
    log = state_dir / "stack.log"
    path = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "layers" / "common"), str(REPO_ROOT)])}
    with log.open("wb") as output:
        # A session of its own: the supervisor and its children outlive this command and its terminal.
        process = subprocess.Popen(
            [sys.executable, "-m", _SUPERVISOR, "serve", "--dir", str(state_dir)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            env={**os.environ, **path},
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        stack = read_stack(state_dir)
        if stack is not None and stack.get("pid") == process.pid:
            return stack
        if process.poll() is not None:
            print(f"make up: the local stack did not start:\n{_tail(log)}", file=sys.stderr)
            return None
        time.sleep(0.1)
    print(
        f"make up: the local stack was not ready after {START_TIMEOUT_S:.0f} s:\n{_tail(log)}",
        file=sys.stderr,
    )
    _stop({"pid": process.pid}, state_dir)
    return None


def usage(stack: dict[str, Any], state_dir: Path) -> str:
    """How to reach the servers and what to try first."""
    servers, box = stack["servers"], stack["mailbox"]
    cli = ".venv/bin/mail2ticket --local"
    lines = [
        f"Local stack running in the background (process {stack['pid']}), described in "
        f"{state_dir / STACK_FILE}:",
        f"  AWS (moto)  {servers['moto']['url']}",
        f"  mailbox     {box['login']}, password {box['password']}, on {box['host']}: "
        f"IMAP {box['imap_port']} (STARTTLS), IMAPS {box['imaps_port']}",
        f"  inbox       {box['inbox_id']}: polls that mailbox; an unknown sender becomes a person",
        f"  SMTP        {servers['smtp']['host']}:{servers['smtp']['port']}: mail the system sends goes to "
        f"{servers['smtp']['outbox']}",
        "",
        "Try it (add --local to any command, or set M2T_LOCAL=1 once):",
        f"  {cli} local deliver infra/local/demo_mails/01_plain_new.eml   # IMAP APPEND to the mailbox",
        f"  {cli} poll                  # store the new mail and queue it",
        f"  {cli} process               # turn the queued mail into tickets",
        f"  {cli} tickets ls",
        f"  {cli} tickets set-status R-000001 closed",
        f"  {cli} clean                 # the closed ticket's mail is to be deleted from the mailbox",
        f"  {cli} poll                  # ...which the poller does",
        f"  {cli} mailbox ls {box['inbox_id']}",
        "Stop it with `make down`.",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ down


def down(state_dir: Path = STATE_DIR) -> int:
    """Stop the stack and every process it started; nothing to do when none runs."""
    if not state_dir.exists():
        print("No local stack is running.")
        return 0
    with _locked(state_dir):
        stack = read_stack(state_dir)
        if stack is None:
            print("No local stack is running.")
            return 0
        _stop(stack, state_dir)
    print("The local stack is stopped.")
    return 0


def _stop(stack: dict[str, Any], state_dir: Path) -> None:
    """The supervisor stops its servers on SIGTERM; whatever survives (it was killed) is stopped here."""
    pid = int(stack.get("pid") or 0)
    if _is_supervisor(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _is_supervisor(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _is_supervisor(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # Left only when the supervisor could not stop them: each recorded process is checked to still be the
    # server it was (a pid may have been reused since), and a group leader's children go with it.
    for details in stack.get("servers", {}).values():
        server, command = int(details.get("pid") or 0), str(details.get("command") or "")
        if details.get("process_group"):
            _signal_group(server, signal.SIGKILL, command)
        elif _command_has(server, command):
            with contextlib.suppress(ProcessLookupError):
                os.kill(server, signal.SIGKILL)
        workdir = details.get("workdir")
        if workdir and Path(workdir).name.startswith("m2t-"):
            shutil.rmtree(workdir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STACK_FILE).unlink()


# ------------------------------------------------------------------------------------------------ serve


def serve(state_dir: Path) -> int:
    """The supervisor: run the stack until SIGTERM or SIGINT, or until one of its servers dies."""
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from infra.local.stack import LocalStack, add_mailbox

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.set())
    stack = LocalStack(outbox=state_dir / "outbox")
    stack.start()
    try:
        assert stack.dovecot is not None
        mailbox = add_mailbox(
            stack,
            INBOX_ID,
            ADDRESS,
            description="Local helpdesk mailbox",
            unknown_caller_behavior="create_person",
        )
        details = {
            "pid": os.getpid(),
            "started_at": int(time.time()),
            "environment": stack.client_environment(),
            "servers": {name: server.details() for name, server in stack.servers.items()},
            "mailbox": mailbox.details(stack.dovecot),
        }
        _write_private(state_dir / STACK_FILE, json.dumps(details, indent=2))
        print(f"local stack ready: {json.dumps(details['servers'])}", flush=True)
        while not stopping.wait(1.0):
            dead = [name for name, server in stack.servers.items() if not server.alive()]
            if dead:
                print(f"{', '.join(dead)} stopped by itself: stopping the local stack", flush=True)
                return 1
        return 0
    finally:
        stack.stop()
        current = read_stack(state_dir)
        if current is not None and current.get("pid") == os.getpid():
            (state_dir / STACK_FILE).unlink()


# ------------------------------------------------------------------------------------------------ helpers


def read_stack(state_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((state_dir / STACK_FILE).read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError):
        return None


def running(stack: dict[str, Any]) -> bool:
    """The supervisor lives and the AWS endpoint answers."""
    if not _is_supervisor(int(stack.get("pid") or 0)):
        return False
    try:
        urllib.request.urlopen(f"{stack['servers']['moto']['url']}/moto-api/", timeout=2).close()
    except (OSError, KeyError):
        return False
    return True


def _write_private(path: Path, text: str) -> None:
    """Readable by its owner only (it holds the local mailbox's password); replaced in one rename."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    tmp.replace(path)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One `up` or `down` at a time: two at once would start two stacks."""
    with (state_dir / "up.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _command_line(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def _command_has(pid: int, word: str) -> bool:
    """The process exists and its command line holds `word`: a recorded pid reused since is left alone."""
    return pid > 0 and bool(word) and word in _command_line(pid) and not _zombie(pid)


def _is_supervisor(pid: int) -> bool:
    return _command_has(pid, _SUPERVISOR) and "serve" in _command_line(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].startswith("Z")


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    members.append(int(entry.name))
    return members


def _signal_group(pgid: int, signum: int, command: str) -> None:
    """Signal the members of a process group whose command line holds `command`, until none is left (5 s)."""
    deadline = time.monotonic() + 5
    while pgid > 0 and command and time.monotonic() < deadline:
        members = [m for m in _group_members(pgid) if _command_has(m, command)]
        if not members:
            return
        for member in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, signum)
        time.sleep(0.05)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.background", description=__doc__)
    parser.add_argument("action", choices=("up", "down", "serve"))
    parser.add_argument("--dir", type=Path, default=STATE_DIR, help="where the stack file and log live")
    args = parser.parse_args(argv)
    state_dir = args.dir.resolve()
    if args.action == "serve":
        return serve(state_dir)
    return up(state_dir) if args.action == "up" else down(state_dir)


if __name__ == "__main__":
    sys.exit(main())
