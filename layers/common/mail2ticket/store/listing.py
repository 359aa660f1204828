"""The tickets with their log and attachment counts, read in one pass over the tickets table."""

from collections.abc import Iterator
from dataclasses import dataclass, field

from mail2ticket.settings import get_settings
from mail2ticket.store.clients import plain_client

# What a listing shows of each item of a ticket's partition (the ticket, its log entries, its attachments).
_NAMES = ("pk", "sk", "ref", "title", "caller_email", "status", "inbox_id", "agent", "created_at", "filename")


@dataclass
class TicketLine:
    ref: str
    title: str
    caller: str
    status: str
    inbox_id: str
    agent: str | None
    created_at: int
    log_entries: int = 0
    attachments: list[str] = field(default_factory=list)


def ticket_lines() -> list[TicketLine]:
    """Every ticket, oldest first, with how many log entries it has and its attachments' names.

    One scan, as listing the tickets alone already was (only tickets carry an index of their own, keys only):
    the log entries and attachments come in the same pass instead of two queries per ticket.
    """
    tickets: dict[str, TicketLine] = {}
    logs: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    for item in _scanned():
        pk, sk = item["pk"], item["sk"]
        if sk == "ticket":
            tickets[pk] = TicketLine(
                ref=item.get("ref") or pk.removeprefix("ticket#"),
                title=item.get("title", ""),
                caller=item.get("caller_email", ""),
                status=item.get("status", ""),
                inbox_id=item.get("inbox_id", ""),
                agent=item.get("agent"),
                created_at=int(item.get("created_at") or 0),
            )
        elif sk.startswith("log#"):
            logs[pk] = logs.get(pk, 0) + 1
        else:
            files.setdefault(pk, []).append(item.get("filename", ""))
    for pk, line in tickets.items():
        line.log_entries = logs.get(pk, 0)
        line.attachments = sorted(files.get(pk, []))
    return sorted(tickets.values(), key=lambda t: (t.created_at, t.ref))


def _scanned() -> Iterator[dict[str, str]]:
    """The scan's items as plain texts (the numbers too), with the plain botocore client: no item model to
    import for a command that only reads."""
    names = {f"#{n}": n for n in _NAMES}
    pages = (
        plain_client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=get_settings().tickets_table,
            ProjectionExpression=", ".join(names),
            FilterExpression="begins_with(#pk, :ticket) AND "
            "(#sk = :head OR begins_with(#sk, :log) OR begins_with(#sk, :att))",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":ticket": {"S": "ticket#"},
                ":head": {"S": "ticket"},
                ":log": {"S": "log#"},
                ":att": {"S": "att#"},
            },
        )
    )
    for page in pages:
        for item in page["Items"]:
            yield {name: value.get("S", value.get("N", "")) for name, value in item.items()}
