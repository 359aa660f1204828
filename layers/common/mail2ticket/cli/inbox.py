"""`mail2ticket inbox …`: write, read, check and test inbox configuration items."""

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from mail2ticket.cli.common import CliError, Result, add_json, read_document, table, timestamp
from mail2ticket.cli.table import render_fields, to_json
from mail2ticket.config.models import InboxConfig, Protocol
from mail2ticket.config.validation import validate_inbox
from mail2ticket.errors import ConfigurationError

LIST_COLUMNS = (
    "inbox_id",
    "active",
    "protocol",
    "server",
    "port",
    "login",
    "mailbox",
    "secret",
    "last_poll",
    "failures",
    "next_attempt",
    "problem",
)


def add_parser(commands: Any) -> None:
    group = commands.add_parser(
        "inbox", help="inbox configuration items", description="Inbox configuration items."
    )
    sub = group.add_subparsers(dest="inbox_command", required=True, metavar="ACTION")

    put = sub.add_parser(
        "put",
        help="create or replace inboxes from a YAML or JSON file",
        description="Validate every inbox of FILE (one mapping or a list), then write them. "
        "A file without secret_arn keeps the ARN already stored.",
    )
    put.add_argument("file", metavar="FILE")
    put.set_defaults(run=_put)

    get = sub.add_parser(
        "get",
        help="show one inbox item and its polls",
        description="Show one inbox item as stored, then its polls: the last one, the consecutive failures "
        "with the last error, and the next attempt when the inbox is held back.",
    )
    get.add_argument("inbox_id", metavar="ID")
    add_json(get)
    get.set_defaults(run=_get)

    ls = sub.add_parser(
        "list",
        help="list inboxes with their last poll and failures",
        description="List the inboxes: last poll, consecutive failed polls, next attempt when held back "
        "(back-off, a server's wait, a long period), and the problem (poll error or invalid item).",
    )
    add_json(ls)
    ls.set_defaults(run=_list)

    for name, active in (("enable", True), ("disable", False)):
        toggle = sub.add_parser(
            name, help=f"{name} polling of an inbox", description=f"{name.title()} an inbox."
        )
        toggle.add_argument("inbox_id", metavar="ID")
        toggle.set_defaults(run=_toggle, active=active)

    delete = sub.add_parser(
        "delete",
        help="delete an inbox item",
        description="Delete an inbox item; its messages' replicas and tickets stay.",
    )
    delete.add_argument("inbox_id", metavar="ID")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument(
        "--delete-secret",
        action="store_true",
        help="also schedule its secret's deletion (recoverable for 7 days)",
    )
    delete.set_defaults(run=_delete)

    validate = sub.add_parser(
        "validate",
        help="check a file or a stored item",
        description="Check a YAML/JSON file, or the stored item of an inbox id.",
    )
    validate.add_argument("source", metavar="FILE|ID")
    validate.set_defaults(run=_validate)

    secret = sub.add_parser(
        "secret",
        help="store the inbox's password or OAuth secret",
        description="Read the secret from a prompt (or stdin when piped), store it in "
        "Secrets Manager as mail2ticket/ID and write its ARN into the item. "
        "The secret is never an argument and is never printed.",
    )
    secret.add_argument("inbox_id", metavar="ID")
    secret.set_defaults(run=_secret)

    test = sub.add_parser(
        "test",
        help="connect and list folders with message counts",
        description="Connect as the poller would; report the folders or the exact failure.",
    )
    test.add_argument("inbox_id", metavar="ID")
    add_json(test)
    test.set_defaults(run=_test)


def _inboxes_in(document: Any, source: str) -> list[InboxConfig]:
    entries = document if isinstance(document, list) else [document]
    if not entries:
        raise CliError(f"{source} holds no inbox")
    configs = []
    for number, entry in enumerate(entries, start=1):
        try:
            configs.append(validate_inbox(entry))
        except ConfigurationError as exc:
            label = entry.get("inbox_id") if isinstance(entry, dict) else None
            raise CliError(f"{source}: {label or f'entry {number}'}: {exc}") from None
    return configs


def _put(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import inbox_items, save_inbox

    configs = _inboxes_in(read_document(args.file), args.file)
    stored = {item["inbox_id"]: item for item in inbox_items()}
    _check_unique(configs, stored)
    lines = []
    for config in configs:
        existing = stored.get(config.inbox_id)
        if "secret_arn" not in config.model_fields_set and existing and existing.get("secret_arn"):
            config = config.model_copy(update={"secret_arn": existing["secret_arn"]})
        save_inbox(config)
        lines.append(f"inbox {config.inbox_id} {'updated' if existing else 'created'}")
        if not config.secret_arn and config.protocol is not Protocol.PUSH:
            lines.append(f"  no secret yet: run `mail2ticket inbox secret {config.inbox_id}`")
    return "\n".join(lines)


def _check_unique(configs: list[InboxConfig], stored: dict[str, dict[str, Any]]) -> None:
    """Two inboxes may read one account only from different folders, else each mail would be read twice."""
    owners: dict[tuple[str, str, str], str] = {}
    for inbox_id, item in stored.items():
        if item.get("protocol") != Protocol.PUSH.value:
            owners[_account(item)] = inbox_id
    seen: set[str] = set()
    for config in configs:
        if config.inbox_id in seen:
            raise CliError(f"inbox {config.inbox_id} appears twice in the file")
        seen.add(config.inbox_id)
        if config.protocol is Protocol.PUSH:
            continue  # no account: which inbox owns a recipient is checked as the inbox is saved
        account = _account(config.model_dump(mode="json"))
        owner = owners.get(account)
        if owner and owner != config.inbox_id:
            raise CliError(
                f"inbox {config.inbox_id}: inbox {owner} already reads folder {config.mailbox} of "
                f"{config.login} on {config.server}"
            )
        owners[account] = config.inbox_id


def _account(values: dict[str, Any]) -> tuple[str, str, str]:
    folder = str(values.get("mailbox") or "INBOX").replace("/", ".")
    return (str(values.get("server", "")).lower(), str(values.get("login", "")).lower(), folder)


def _get(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import inbox_item

    item = inbox_item(args.inbox_id)
    polls = _polls(args.inbox_id)
    if args.json:
        return to_json({**item, "poll_state": polls})
    order = list(InboxConfig.model_fields)
    names = sorted(item, key=lambda n: (order.index(n) if n in order else len(order), n))
    shown = {
        **polls,
        "last_poll": timestamp(polls["last_poll_at"]),
        "failing_since": timestamp(polls["failing_since"]),
        "next_attempt": timestamp(polls["next_attempt"]) or "at the next tick",
    }
    polls_part = [(f"poll: {name}", shown[name]) for name in _POLL_FIELDS]
    return render_fields([(name, item[name]) for name in names] + polls_part)


_POLL_FIELDS = ("last_poll", "failures", "failing_since", "last_error", "next_attempt", "unfinished")


def _polls(inbox_id: str) -> dict[str, Any]:
    """What the poll state says: last poll, consecutive failures since when, last error, next attempt."""
    import time

    from mail2ticket.store.replicas import poll_state

    state = poll_state(inbox_id)
    held = int(state.held_until or 0)
    return {
        "last_poll_at": state.last_poll_at,
        "failures": int(state.failures or 0),
        "failing_since": state.failing_since,
        "last_error": state.last_error or "",
        # None: at the next tick; a time: held back until then (back-off, a server's wait, a long period).
        "next_attempt": held if held > time.time() else None,
        "unfinished": bool(state.unfinished),
    }


def _list(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import inbox_items

    rows = []
    for item in sorted(inbox_items(), key=lambda i: str(i.get("inbox_id"))):
        row: dict[str, Any] = {
            key: item.get(key) for key in ("inbox_id", "active", "protocol", "server", "login")
        }
        try:
            config = validate_inbox(item)
        except ConfigurationError as exc:
            row.update(problem=str(exc))
        else:
            push = config.protocol is Protocol.PUSH
            row.update(
                active=config.active,
                protocol=config.protocol.value,
                port="" if push else config.effective_port,
                # a push inbox has no folder nor secret: what it receives instead
                mailbox=", ".join(config.recipients) if push else config.mailbox,
                secret="" if push else "set" if config.secret_arn else "missing",
            )
        polls = _polls(str(item.get("inbox_id")))
        row.update(
            last_poll=timestamp(polls["last_poll_at"]),
            failures=polls["failures"],
            next_attempt=timestamp(polls["next_attempt"]),
        )
        row.setdefault("problem", polls["last_error"])
        rows.append(row)
    return table(rows, LIST_COLUMNS, args.json)


def _toggle(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import set_inbox_attribute

    set_inbox_attribute(args.inbox_id, "active", args.active)
    return f"inbox {args.inbox_id} {'enabled' if args.active else 'disabled'}"


def _delete(args: argparse.Namespace) -> str | Result:
    from mail2ticket.store.config import delete_inbox, inbox_item
    from mail2ticket.store.secrets import delete_secret

    item = inbox_item(args.inbox_id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("deleting an inbox needs confirmation: pass --yes")
        answer = input(f"Delete inbox {args.inbox_id}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return Result("nothing deleted", 1)
    delete_inbox(args.inbox_id)
    lines = [f"inbox {args.inbox_id} deleted"]
    if args.delete_secret and item.get("secret_arn"):
        delete_secret(item["secret_arn"])
        lines.append(f"secret {item['secret_arn']} scheduled for deletion")
    return "\n".join(lines)


def _validate(args: argparse.Namespace) -> Result:
    if Path(args.source).is_file():
        configs = _inboxes_in(read_document(args.source), args.source)
        return Result("\n".join(f"{args.source}: inbox {c.inbox_id} is valid" for c in configs))
    if any(sep in args.source for sep in "/\\") or Path(args.source).suffix in (".yaml", ".yml", ".json"):
        raise CliError(f"no such file: {args.source}")
    from mail2ticket.store.config import inbox_item

    try:
        validate_inbox(inbox_item(args.source))
    except ConfigurationError as exc:
        if "does not exist" in str(exc):
            raise
        raise CliError(f"stored item {args.source}: {exc}") from None
    return Result(f"stored item {args.source} is valid")


def _secret(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import inbox_item, set_inbox_attribute
    from mail2ticket.store.secrets import put_secret

    inbox_item(args.inbox_id)  # fail before asking for the secret
    if sys.stdin.isatty():
        value = getpass.getpass(f"Secret for inbox {args.inbox_id} (not echoed): ")
    else:
        value = sys.stdin.read()
    value = value.rstrip("\r\n")
    if not value:
        raise CliError("empty secret: nothing stored")
    arn = put_secret(args.inbox_id, value)
    set_inbox_attribute(args.inbox_id, "secret_arn", arn)
    return f"secret of inbox {args.inbox_id} stored in {arn}"


def _test(args: argparse.Namespace) -> str:
    from mail2ticket.mailbox.probe import probe
    from mail2ticket.store.config import inbox_item
    from mail2ticket.store.secrets import get_secret

    try:
        config = validate_inbox(inbox_item(args.inbox_id))
    except ConfigurationError as exc:
        raise CliError(f"inbox {args.inbox_id}: {exc}") from None
    if config.protocol is Protocol.PUSH:
        return _push_summary(config, args.json)
    result = probe(config, get_secret(config.secret_arn))
    rows = [{"folder": name, "messages": count} for name, count in result.folders]
    graph = config.protocol is Protocol.GRAPH
    if args.json:
        answer: dict[str, Any] = {"inbox_id": config.inbox_id, "uidvalidity": result.uidvalidity}
        if graph:
            answer.update(folder_id=result.folder_id, messages=result.messages)
        return to_json({**answer, "folders": rows})
    if graph:
        header = (
            f"token from {config.microsoft_authority} for application {config.oauth_client_id}\n"
            f"mailbox {config.login} at {config.graph_endpoint}\n"
            f"folder {config.mailbox} selected: {result.messages} messages"
        )
    else:
        where = f"{config.server}:{config.effective_port} ({config.security.value})"
        header = f"connected to {where} as {config.login}; folder {config.mailbox} selected"
    return f"{header}\n{table(rows, ('folder', 'messages'), False)}"


def _push_summary(config: InboxConfig, as_json: bool) -> str:
    """A push inbox has no server to connect to: what it receives, and whether its routes are in place."""
    from mail2ticket.store.routes import routes_of

    owners = routes_of(config.recipients)
    rows = [
        {"recipient": r, "route": "ok" if owners.get(r) == config.inbox_id else f"owned by {owners.get(r)}"}
        if r in owners
        else {"recipient": r, "route": "missing (written at the next poll)"}
        for r in config.recipients
    ]
    if as_json:
        return to_json({"inbox_id": config.inbox_id, "protocol": "push", "recipients": rows})
    header = (
        f"push inbox {config.inbox_id}: no server to connect to; it receives the mail SES stores for its "
        f"recipients and any mail written under inbound/{config.inbox_id}/ of the bucket"
    )
    return f"{header}\n{table(rows, ('recipient', 'route'), False)}"
