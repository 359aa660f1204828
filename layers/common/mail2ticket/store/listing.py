"""The tickets with their log and attachment counts, read in one pass over the tickets table."""

from dataclasses import dataclass, field

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from mail2ticket.settings import get_settings


class _Listed(Model):
    """Any item of a ticket's partition, reduced to what a listing shows."""

    class Meta:
        table_name = get_settings().tickets_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    ref = UnicodeAttribute(null=True)
    title = UnicodeAttribute(null=True)
    caller_email = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    inbox_id = UnicodeAttribute(null=True)
    agent = UnicodeAttribute(null=True)
    created_at = NumberAttribute(null=True)
    filename = UnicodeAttribute(null=True)


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
    wanted = _Listed.pk.startswith("ticket#") & (
        (_Listed.sk == "ticket") | _Listed.sk.startswith("log#") | _Listed.sk.startswith("att#")
    )
    names = [
        "pk",
        "sk",
        "ref",
        "title",
        "caller_email",
        "status",
        "inbox_id",
        "agent",
        "created_at",
        "filename",
    ]
    for item in _Listed.scan(wanted, attributes_to_get=names):
        if item.sk == "ticket":
            tickets[item.pk] = TicketLine(
                ref=item.ref or item.pk.removeprefix("ticket#"),
                title=item.title or "",
                caller=item.caller_email or "",
                status=item.status or "",
                inbox_id=item.inbox_id or "",
                agent=item.agent,
                created_at=int(item.created_at or 0),
            )
        elif item.sk.startswith("log#"):
            logs[item.pk] = logs.get(item.pk, 0) + 1
        else:
            files.setdefault(item.pk, []).append(item.filename or "")
    for pk, line in tickets.items():
        line.log_entries = logs.get(pk, 0)
        line.attachments = sorted(files.get(pk, []))
    return sorted(tickets.values(), key=lambda t: (t.created_at, t.ref))
