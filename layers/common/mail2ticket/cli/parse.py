"""`mail2ticket parse FILE`: what the processor understands of one mail, read-only and offline by default."""

import argparse
import json
from pathlib import Path
from typing import Any

from mail2ticket.config.models import GlobalConfig
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
    parse.add_argument("--inbox", metavar="ID", help="apply the global parameters stored in DynamoDB")
    parse.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    settings = _settings(args.inbox)
    raw = args.file.read_bytes()
    result = describe(raw, args.format, settings)
    if args.json:
        return json.dumps(result, ensure_ascii=False, indent=2)
    return _text(result)


def describe(raw: bytes, input_format: str, settings: GlobalConfig) -> dict[str, Any]:
    """The facts the processor reads from a mail, or from a bare text or HTML body."""
    if input_format != "mime":
        return _bare_body(decode_bytes(raw, None), input_format, settings)
    try:
        mail = parse_mail(raw)
    except PermanentError as exc:
        return {"error": {"code": str(exc.code), "reason": exc.message}}
    return _mail(mail, settings)


def _mail(mail: ParsedMail, settings: GlobalConfig) -> dict[str, Any]:
    content = understand(mail, settings)
    return {
        "subject": mail.subject,
        "from": mail.from_addr,
        "from_name": mail.from_name,
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


def _settings(inbox_id: str | None) -> GlobalConfig:
    """GlobalConfig defaults, or, with an inbox, the stored global parameters (the inbox must exist)."""
    if not inbox_id:
        return GlobalConfig()
    from mail2ticket.store.config import load_global_config, load_inbox

    load_inbox(inbox_id)
    return load_global_config()


def _text(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"error {result['error']['code']}: {result['error']['reason']}"
    lines = [f"{name}: {result.get(name)}" for name in ("subject", "from", "undesired")]
    lines += ["", "new part:", result["new_part_text"], ""]
    lines += [
        f"attachment: {a['filename']} ({a['content_type']}, {a['size']} bytes"
        + (", inline)" if a["inline"] else ")")
        for a in result["attachments"]
    ]
    lines += [f"rejected: {r['filename']}: {r['reason']}" for r in result["rejected"]]
    return "\n".join(lines).rstrip()
