"""What every command shares: readable failures, exit codes, output for people or scripts, input files."""

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mail2ticket.cli.table import render, to_json
from mail2ticket.errors import Mail2TicketError


class CliError(Mail2TicketError):
    """An expected failure, printed as one line with exit code 1."""


@dataclass
class Result:
    """A command's output and its exit code (1 when the command ran but what it reports is a failure)."""

    text: str
    code: int = 0


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


def table(rows: list[dict[str, Any]], columns: tuple[str, ...], as_json: bool) -> str:
    return to_json(rows) if as_json else render(rows, columns)


def read_document(path: str) -> Any:
    """A YAML or JSON file (JSON is read as YAML, which it is a subset of); errors name the file."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if file.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except yaml.YAMLError as exc:
        # Only the problem and its place: PyYAML's own message quotes the offending line.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise CliError(
            f"{path} is not valid YAML: {getattr(exc, 'problem', None) or 'syntax error'}{where}"
        ) from None


def timestamp(value: Any) -> str:
    """Epoch seconds as UTC `YYYY-MM-DD HH:MM:SS`; '' when unknown."""
    if value in (None, ""):
        return ""
    return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%d %H:%M:%S")
