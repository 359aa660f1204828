"""`mail2ticket parse FILE.eml`: what the processor would extract and decide for a mail, writing nothing."""

import argparse
import sys
from pathlib import Path
from typing import Any

from mail2ticket.cli.common import CliError
from mail2ticket.cli.table import render, render_fields, to_json
from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.errors import PermanentError
from mail2ticket.mail.parse import parse_mail
from mail2ticket.mail.reply import new_part
from mail2ticket.mail.undesired import undesired_reason


def add_parser(commands: Any) -> None:
    parse = commands.add_parser(
        "parse",
        help="dry run: what the processor would extract and decide for a mail",
        description="Parse a raw mail as the processor would: subject, sender, bodies, new part, "
        "attachments, undesired reason and, with --inbox, the ticket it would update. Nothing is written.",
    )
    parse.add_argument("file", metavar="FILE.eml")
    parse.add_argument(
        "--inbox", metavar="ID", help="apply this inbox's rules and look for the ticket it matches"
    )
    parse.add_argument("--json", action="store_true", help="print JSON for scripts")
    parse.set_defaults(run=_parse)


def _parse(args: argparse.Namespace) -> str:
    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    inbox, settings = _rules(args.inbox)
    result = dry_run(raw, settings, inbox)
    if args.json:
        return to_json(result)
    if "error" in result:
        return render_fields([("decision", result["decision"]), ("error", result["error"]["message"])])
    summary = render_fields(
        [
            ("subject", result["subject"]),
            ("from", result["from"]),
            ("undesired", result["undesired"] or "no"),
            ("matched_ticket", result.get("matched_ticket") or ("none" if inbox else "(give --inbox)")),
            ("decision", result["decision"]),
        ]
    )
    files = render(result["attachments"], ("filename", "content_type", "size", "sha256", "inline"))
    return "\n".join([summary, "", "New part", result["new_part_text"], "", "Attachments", files])


def _rules(inbox_id: str | None) -> tuple[InboxConfig | None, GlobalConfig]:
    if not inbox_id:
        return None, GlobalConfig()
    from mail2ticket.store.config import load_global_config, load_inbox

    return load_inbox(inbox_id), load_global_config()


def dry_run(raw: bytes, settings: GlobalConfig, inbox: InboxConfig | None) -> dict[str, Any]:
    """The facts and the decision, as JSON-ready values."""
    try:
        mail = parse_mail(raw)
    except PermanentError as exc:
        return {"decision": "error", "error": {"code": exc.code.value, "message": exc.message}}
    reason = undesired_reason(mail, settings.undesired_subject_patterns)
    result: dict[str, Any] = {
        "subject": mail.subject,
        "from": mail.from_addr,
        "from_name": mail.from_name,
        "message_id": mail.message_id,
        "body_text": mail.body_text,
        "body_html": mail.body_html,
        "new_part_text": new_part(
            mail.body_text, settings.multiline_delimiter_patterns, settings.introductory_patterns
        ),
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "inline": a.inline,
            }
            for a in mail.attachments
        ],
        "undesired": reason,
    }
    if inbox is not None and not reason:
        result["matched_ticket"] = _matched_ticket(inbox, settings, mail)
    result["decision"] = (
        "undesired"
        if reason
        else f"update {result['matched_ticket']}"
        if result.get("matched_ticket")
        else "create"
    )
    return result


def _matched_ticket(inbox: InboxConfig, settings: GlobalConfig, mail: Any) -> str | None:
    from mail2ticket.tickets.engine import find_ticket

    try:
        ticket = find_ticket(inbox, settings, mail)
    except Exception as exc:  # a dry run reports what it could not look up and goes on
        print(f"mail2ticket: warning: cannot look for a matching ticket: {exc}", file=sys.stderr)
        return None
    return ticket.ref if ticket else None
