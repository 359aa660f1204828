"""Rows the CLI shows: tickets and a mailbox's replicas (each imports only the store it reads: a ticket
listing never loads the replicas' models and queue)."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mail2ticket.store.models import Replica

TICKET_COLUMNS = ("ref", "title", "caller", "status", "log_entries", "attachments", "inbox", "agent")
REPLICA_COLUMNS = ("message_key", "status", "date", "from", "subject", "ticket", "reason")


def ticket_rows() -> list[dict[str, Any]]:
    from mail2ticket.store.listing import ticket_lines

    return [
        {
            "ref": line.ref,
            "title": line.title,
            "caller": line.caller,
            "status": line.status,
            "log_entries": line.log_entries,
            "attachments": ", ".join(line.attachments),
            "inbox": line.inbox_id,
            "agent": line.agent,
        }
        for line in ticket_lines()
    ]


def replica_rows(inbox_id: str) -> list[dict[str, Any]]:
    from mail2ticket.store.replicas import replicas

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
            "server": _on_server(r),
            "attempts": r.attempts,
            "message_id": r.message_id,
            "s3_key": r.s3_key,
            "size": r.size,
            "action_result": r.action_result,
            "action_error": r.action_error,
            "disappeared_at": r.disappeared_at,
        }
        for r in sorted(replicas(inbox_id), key=lambda r: (r.uid or 0, r.message_key))
    ]


def _on_server(replica: "Replica") -> str | None:
    """What became of the message on the mail server, when something did."""
    if replica.action_result:
        return replica.action_result
    return "gone" if replica.disappeared_at else None
