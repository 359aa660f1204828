"""Helpers of the poller's integration tests: mails, polls at increasing times, the resulting state."""

import itertools
import subprocess
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

from infra.local import runner

_ticks = itertools.count(1)


def mail(subject: str, body: str = "body", message_id: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Alice Martin <alice@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Date"] = "Mon, 03 Nov 2025 10:12:00 +0100"
    message["Message-ID"] = message_id or make_msgid(domain="example.org")
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def poll(minutes_later: int | None = None) -> dict[str, Any]:
    """One poller run, each a quarter of an hour after the previous one: every inbox is due, and a replica
    queued by the previous run is old enough to be queued again when it is still new."""
    offset = minutes_later if minutes_later is not None else 15 * next(_ticks)
    return runner.run_poller(now=datetime.now(UTC) + timedelta(minutes=offset))


def cycle() -> dict[str, Any]:
    result = poll()
    runner.drain_queue()
    return result


def by_inbox(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["inbox_id"]: p for p in result["polled"]}


def doveadm(server: Any, *args: str) -> None:
    """Dovecot's admin command on the local server (e.g. to renumber a folder)."""
    subprocess.run(["doveadm", "-c", str(server.config_path), *args], check=True, capture_output=True)


def save(inbox: Any) -> None:
    from mail2ticket.store.config import save_inbox

    save_inbox(inbox)


def replicas(inbox_id: str) -> list[Any]:
    from mail2ticket.store.replicas import replicas as query

    return sorted(query(inbox_id), key=lambda r: r.created_at)


def ticket_titles() -> list[str]:
    from mail2ticket.store.tickets import list_tickets

    return sorted(t.title for t in list_tickets())


def ask(subject: str, inbox_id: str, action: str, folder: str | None = None) -> Any:
    """Record a mailbox action on the replica of the mail with this subject, as other components do."""
    from mail2ticket.store.models import Replica

    replica = next(r for r in replicas(inbox_id) if r.subject == subject)
    actions = [Replica.pending_action.set(action)]
    if folder:
        actions.append(Replica.action_folder.set(folder))
    replica.update(actions=actions)
    return replica
