"""`mail2ticket parse FILE`: what the processor would extract and decide for one mail, writing nothing.

Offline with the default rules; with `--inbox` it reads that inbox's and the global rules and looks for the
ticket the mail would update.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from mail2ticket.cli.common import CliError
from mail2ticket.cli.table import render, render_fields, to_json
from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.errors import PermanentError
from mail2ticket.mail.charsets import decode_bytes
from mail2ticket.mail.html import html_to_text, sanitize_html
from mail2ticket.mail.parse import ParsedMail, parse_mail
from mail2ticket.mail.reply import extract, rules
from mail2ticket.mail.reply_html import html_reply
from mail2ticket.mail.understand import understand


def add_parser(commands: Any) -> None:
    """Register `parse FILE [--format mime|text|html] [--json] [--inbox ID]` on the CLI's subcommands."""
    parse = commands.add_parser("parse", help="show how a mail file is understood (nothing is written)")
    parse.add_argument("file", type=Path, help="a raw mail (.eml), or a bare body with --format text|html")
    parse.add_argument("--format", choices=("mime", "text", "html"), default="mime", help="what FILE holds")
    parse.add_argument("--json", action="store_true", help="print one JSON object")
    parse.add_argument(
        "--inbox",
        metavar="ID",
        help="apply this inbox's and the global rules, and look for the ticket it matches",
    )
    parse.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    inbox, settings = _rules(args.inbox)
    result = describe(raw, args.format, settings)
    if inbox is not None and args.format == "mime" and "error" not in result:
        result["matched_ticket"] = _matched_ticket(inbox, settings, parse_mail(raw))
    result["decision"] = _decision(result)
    return to_json(result) if args.json else _text(result, inbox is not None)


def describe(raw: bytes, input_format: str, settings: GlobalConfig) -> dict[str, Any]:
    """The facts the processor reads from a mail, or from a bare text or HTML body."""
    if input_format != "mime":
        return _bare_body(decode_bytes(raw, None), input_format, settings)
    try:
        mail = parse_mail(raw)
    except PermanentError as exc:
        return {"error": {"code": str(exc.code), "reason": exc.message, "message": exc.message}}
    return _mail(mail, settings)


def _mail(mail: ParsedMail, settings: GlobalConfig) -> dict[str, Any]:
    content = understand(mail, settings)
    return {
        "subject": mail.subject,
        "from": mail.from_addr,
        "from_name": mail.from_name,
        "sender_header": mail.sender_header,
        "sender_note": mail.sender_note,
        "to": list(mail.to),
        "cc": list(mail.cc),
        "message_id": mail.message_id,
        "in_reply_to": list(mail.in_reply_to),
        "references": list(mail.references),
        "date": mail.date.isoformat() if mail.date else None,
        "body_text": content.body_text,
        "body_html": content.body_html,
        "new_part_text": content.new_part_text,
        "new_part_html": content.new_part_html,
        "signature": content.signature,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "inline": a.inline,
                "content_id": a.content_id,
            }
            for a in content.attachments
        ],
        "rejected": [
            {"filename": r.attachment.filename, "content_type": r.attachment.content_type, "reason": r.reason}
            for r in content.rejected
        ],
        "undesired": content.undesired,
        "notes": list(mail.notes),
    }


def _bare_body(body: str, input_format: str, settings: GlobalConfig) -> dict[str, Any]:
    compiled = rules(
        tuple(settings.multiline_delimiter_patterns),
        tuple(settings.introductory_patterns),
        tuple(settings.delimiter_patterns),
    )
    if input_format == "html":
        found = html_reply(body, settings.html_tags_to_remove, compiled)
        text, html, reply, new_html = html_to_text(body), sanitize_html(body), found.reply, found.html
    else:
        text, html, reply, new_html = body.strip(), None, extract(body, compiled), None
    return {
        "subject": "",
        "from": "",
        "body_text": text,
        "body_html": html,
        "new_part_text": reply.text,
        "new_part_html": sanitize_html(new_html) if new_html is not None else None,
        "signature": reply.signature,
        "attachments": [],
        "rejected": [],
        "undesired": None,
    }


def _rules(inbox_id: str | None) -> tuple[InboxConfig | None, GlobalConfig]:
    """Default rules offline, or the stored inbox and global parameters (the inbox must exist)."""
    if not inbox_id:
        return None, GlobalConfig()
    from mail2ticket.store.config import load_global_config, load_inbox

    return load_inbox(inbox_id), load_global_config()


def _matched_ticket(inbox: InboxConfig, settings: GlobalConfig, mail: ParsedMail) -> str | None:
    from mail2ticket.tickets.engine import find_ticket

    try:
        ticket = find_ticket(inbox, settings, mail)
    except Exception as exc:  # a dry run reports what it could not look up and goes on
        print(f"mail2ticket: warning: cannot look for a matching ticket: {exc}", file=sys.stderr)
        return None
    return ticket.ref if ticket else None


def _decision(result: dict[str, Any]) -> str:
    if "error" in result:
        return "error"
    if result["undesired"]:
        return "undesired"
    return f"update {result['matched_ticket']}" if result.get("matched_ticket") else "create"


def _text(result: dict[str, Any], with_inbox: bool) -> str:
    if "error" in result:
        return render_fields(
            [("decision", "error"), ("error", f"{result['error']['code']}: {result['error']['reason']}")]
        )
    summary = render_fields(
        [
            ("subject", result["subject"]),
            ("from", result["from"]),
            ("undesired", result["undesired"] or "no"),
            ("matched_ticket", result.get("matched_ticket") or ("none" if with_inbox else "(give --inbox)")),
            ("decision", result["decision"]),
        ]
    )
    files = render(result["attachments"], ("filename", "content_type", "size", "sha256", "inline"))
    lines = [summary, "", "new part:", result["new_part_text"], "", "Attachments", files]
    lines += [f"rejected: {r['filename']}: {r['reason']}" for r in result["rejected"]]
    return "\n".join(lines).rstrip()
