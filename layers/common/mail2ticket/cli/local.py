"""`mail2ticket local …` and `--local`: the stack `make up` leaves running, found through its stack file.

The stack file (`.local/stack.json` of the checkout, or the path in M2T_LOCAL) holds the environment the
functions would have (endpoint, tables, bucket, queue, certificate, SMTP relay) and the local mailbox.
"""

import argparse
import json
import os
from pathlib import Path
from typing import Any

from mail2ticket.cli.common import CliError, Result, add_json
from mail2ticket.cli.table import render_fields, to_json

ENV_VAR = "M2T_LOCAL"
# layers/common/mail2ticket/cli/local.py -> the checkout's root.
DEFAULT_STACK_FILE = Path(__file__).resolve().parents[4] / ".local" / "stack.json"
_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")


def local_stack_file(asked: bool) -> Path | None:
    """The stack file to use: M2T_LOCAL's path, else the checkout's when --local or M2T_LOCAL=1 ask for it."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in _ON:
        return DEFAULT_STACK_FILE
    if value.lower() in _OFF:
        return DEFAULT_STACK_FILE if asked else None
    return Path(value).expanduser()


def read_stack_file(path: Path) -> dict[str, Any]:
    """The running local stack's details; a missing file or a stack whose process is gone is an error."""
    try:
        stack = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(
            f"no local stack is running ({path} does not exist): start one with `make up`"
        ) from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the local stack file {path}: {exc}") from None
    pid = int(stack.get("pid") or 0)
    if not _alive(pid):
        raise CliError(
            f"the local stack of {path} is not running any more (its process {pid} is gone): "
            "run `make up` to start a new one"
        )
    return dict(stack)


def use_local_stack(path: Path) -> None:
    """Give this process the environment the functions have on the local stack."""
    os.environ.update(read_stack_file(path)["environment"])


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed process nobody has reaped yet)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc here: the signal check is all there is
    return not stat[stat.rindex(")") + 2 :].startswith("Z")


def add_parser(commands: Any) -> None:
    group = commands.add_parser(
        "local",
        help="the local stack of `make up`: deliver a mail to its mailbox, status",
        description="The local stack `make up` started (these commands always use it).",
    )
    sub = group.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    deliver = sub.add_parser(
        "deliver",
        help="put mail files in the local mailbox (IMAP APPEND), as a mail server would",
        description="Put each mail file (.eml) in the local mailbox with IMAP APPEND; a poll then reads it.",
    )
    deliver.add_argument("files", metavar="FILE", nargs="+", type=Path, help="raw mails (.eml)")
    deliver.add_argument("--folder", default="INBOX", help="the mailbox folder (default INBOX)")
    deliver.set_defaults(run=_deliver)
    status = sub.add_parser(
        "status",
        help="the local servers, the mailbox and the environment the CLI uses",
        description="The local stack's servers, mailbox and environment (the mailbox's password is local).",
    )
    add_json(status)
    status.set_defaults(run=_status)


def _stack() -> dict[str, Any]:
    path = local_stack_file(True)
    assert path is not None
    return read_stack_file(path)


def _deliver(args: argparse.Namespace) -> Result:
    from imap_tools import MailBoxStartTls

    box = _stack()["mailbox"]
    mails = []
    for file in args.files:
        try:
            mails.append((file, file.read_bytes()))
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror}") from None
    with MailBoxStartTls(box["host"], box["imap_port"]).login(box["login"], box["password"]) as mailbox:
        if args.folder != "INBOX" and not mailbox.folder.exists(args.folder):
            mailbox.folder.create(args.folder)
        for _, raw in mails:
            mailbox.append(raw, args.folder, flag_set=())
    lines = [f"{file}: delivered to {box['login']} ({args.folder})" for file, _ in mails]
    lines.append(f"Poll inbox {box['inbox_id']!r} to read it: mail2ticket poll --local")
    return Result("\n".join(lines))


def _status(args: argparse.Namespace) -> str:
    stack = _stack()
    if args.json:
        return to_json(stack)
    box = stack["mailbox"]
    fields: list[tuple[str, Any]] = [("stack file", str(local_stack_file(True))), ("process", stack["pid"])]
    fields += [(name, detail) for name, detail in stack["servers"].items()]
    fields += [
        ("inbox", box["inbox_id"]),
        ("mailbox", f"{box['login']} on {box['host']}, password {box['password']}"),
    ]
    fields += [("environment", [f"{k}={v}" for k, v in sorted(stack["environment"].items())])]
    return render_fields(fields)
