"""Rows the CLI shows: tickets and a mailbox's replicas."""

from typing import Any

from mail2ticket.store.replicas import replicas
from mail2ticket.store.tickets import attachments, list_tickets, log_entries

TICKET_COLUMNS = ("ref", "title", "caller", "status", "log_entries", "attachments", "inbox")
REPLICA_COLUMNS = ("message_key", "status", "date", "from", "subject", "ticket", "reason")


def ticket_rows() -> list[dict[str, Any]]:
    rows = []
    for ticket in sorted(list_tickets(), key=lambda t: (t.created_at, t.ref)):
        rows.append(
            {
                "ref": ticket.ref,
                "title": ticket.title,
                "caller": ticket.caller_email,
                "status": ticket.status,
                "log_entries": sum(1 for _ in log_entries(ticket.ref)),
                "attachments": ", ".join(a.filename for a in attachments(ticket.ref)),
                "inbox": ticket.inbox_id,
            }
        )
    return rows


def replica_rows(inbox_id: str) -> list[dict[str, Any]]:
    return [
        {
            "message_key": r.message_key,
            "status": r.status,
            "date": r.date,
            "from": r.from_addr,
            "subject": r.subject,
            "ticket": r.ticket_ref,
            "reason": r.error_message or r.undesired_reason,
            "error_code": r.error_code,
            "pending_action": r.pending_action,
            "attempts": r.attempts,
        }
        for r in sorted(replicas(inbox_id), key=lambda r: (r.uid or 0, r.message_key))
    ]
