"""`mail2ticket config …`: the global parameters, validated before they are written."""

import argparse
import json
from typing import Any

from mail2ticket.cli.common import CliError, read_document
from mail2ticket.cli.table import render_fields, to_json
from mail2ticket.config.models import GlobalConfig
from mail2ticket.config.validation import validate_global


def add_parser(commands: Any) -> None:
    group = commands.add_parser(
        "config",
        help="global parameters",
        description="Global parameters (the #global item of the inboxes table).",
    )
    sub = group.add_subparsers(dest="config_command", required=True, metavar="ACTION")

    get = sub.add_parser(
        "get", help="show the parameters, or one", description="Show the effective parameters."
    )
    get.add_argument("key", metavar="KEY", nargs="?", choices=sorted(GlobalConfig.model_fields))
    get.add_argument("--json", action="store_true", help="print JSON for scripts")
    get.set_defaults(run=_get)

    set_ = sub.add_parser(
        "set",
        help="set parameters (validated first)",
        description="Set KEY to VALUE, or every parameter of a YAML/JSON file. Lists take one item per line "
        "or a JSON list; numbers and booleans are read as JSON. Nothing is written when a value is invalid.",
    )
    set_.add_argument("key", metavar="KEY", nargs="?")
    set_.add_argument("value", metavar="VALUE", nargs="?")
    set_.add_argument("--file", metavar="FILE", help="a mapping of parameters to set")
    set_.set_defaults(run=_set)

    unset = sub.add_parser(
        "unset", help="return parameters to their defaults", description="Forget parameters."
    )
    unset.add_argument("keys", metavar="KEY", nargs="+", choices=sorted(GlobalConfig.model_fields))
    unset.set_defaults(run=_unset)


def _get(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import global_values

    explicit = global_values()
    values = validate_global(explicit).model_dump(mode="json")
    if args.key:
        value = values[args.key]
        if args.json:
            return to_json(value)
        return "\n".join(value) if isinstance(value, list) else render_fields([("", value)]).strip()
    if args.json:
        return to_json(values)
    fields = [(f"{name}{' *' if name in explicit else ''}", value) for name, value in values.items()]
    return render_fields(fields) + "\n\n* set explicitly; the others follow the defaults"


def _set(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import global_values, save_global_values

    if args.file:
        if args.key or args.value:
            raise CliError("give either KEY VALUE or --file FILE")
        changes = read_document(args.file)
        if not isinstance(changes, dict):
            raise CliError(f"{args.file} must hold a mapping of parameter names to values")
    elif args.key and args.value is not None:
        changes = {args.key: _value(args.key, args.value)}
    else:
        raise CliError("give KEY VALUE or --file FILE")
    save_global_values({**global_values(), **changes})
    return "\n".join(f"{name} set" for name in changes)


def _value(key: str, text: str) -> Any:
    """A str parameter takes the text as it is; others read JSON first (7, true, ["a", "b"])."""
    field = GlobalConfig.model_fields.get(key)
    if field is None or field.annotation is str:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _unset(args: argparse.Namespace) -> str:
    from mail2ticket.store.config import global_values, save_global_values

    values = global_values()
    save_global_values({k: v for k, v in values.items() if k not in args.keys})
    return "\n".join(f"{key} back to its default" for key in args.keys)
