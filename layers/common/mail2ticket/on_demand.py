"""The functions run on demand rather than on their schedule: poll inboxes now, drain the process queue.

`mail2ticket poll` and `process` call these (`clean` calls `clean.clean_all`); the poller's direct invocation
`{"poll": {"inbox_id": ...}}` calls `poll_now`. Each takes the clock as a parameter, so that retention can be
tried on a local stack.
"""

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mail2ticket.errors import ConfigurationError
from mail2ticket.poll import PollSummary, poll_inbox
from mail2ticket.settings import get_settings
from mail2ticket.store import receive
from mail2ticket.store.config import inboxes, load_global_config, load_inbox
from mail2ticket.store.queue import ProcessRequest
from mail2ticket.store.replicas import acquire_lease


def poll_now(
    inbox_id: str | None = None, now: float | None = None, on_inbox: Callable[[str], None] | None = None
) -> PollSummary:
    """Poll one inbox, or every active one, now, whatever their periodicity; an inbox whose lease another
    poller holds is counted as leased elsewhere. `on_inbox` is told each inbox before its poll starts."""
    now_s = int(now if now is not None else time.time())
    if inbox_id is not None:
        inbox = load_inbox(inbox_id)
        if not inbox.active:
            raise ConfigurationError(f"inbox {inbox_id!r} is disabled (mail2ticket inbox enable {inbox_id})")
        targets = [inbox]
    else:
        targets = [inbox for inbox in inboxes() if inbox.active]
    settings = load_global_config()
    owner = str(uuid.uuid4())
    summary = PollSummary()
    for inbox in targets:
        if on_inbox is not None:
            on_inbox(inbox.inbox_id)
        lease = acquire_lease(inbox.inbox_id, owner, now_s, get_settings().poll_lease_seconds)
        if lease is None:
            summary.leased_elsewhere += 1
            continue
        summary.polled.append(poll_inbox(inbox, lease, owner, now_s, settings))
    return summary


def poll_answer(summary: PollSummary) -> dict[str, Any]:
    """What the poller answers, on its schedule or on demand."""
    return {
        "polled": [p.__dict__ for p in summary.polled],
        "failed": summary.failed,
        "not_due": summary.not_due,
        "leased_elsewhere": summary.leased_elsewhere,
    }


@dataclass
class Handled:
    """What became of one queue message: the processor's outcome, or why it failed (it stays queued)."""

    message_id: str
    inbox_id: str | None
    message_key: str | None
    outcome: dict[str, Any] | None = None
    error: str | None = None


# Yields each message's Handled as soon as it is known (a progress line then moves message by message).
BatchHandler = Callable[[list[receive.Received]], Iterable[Handled]]


def process_here(now: float | None = None) -> BatchHandler:
    """Each message processed in this process, as the processor's handler does."""
    # Imported here: the poller's handler imports this module, and the processor's code is not its to load.
    from mail2ticket.process import process_message

    def handle(batch: list[receive.Received]) -> Iterator[Handled]:
        for message in batch:
            handled = handled_as_request(message)
            if handled.inbox_id is not None and handled.message_key is not None:
                try:
                    outcome = process_message(handled.inbox_id, handled.message_key, now=now)
                except Exception as exc:
                    handled.error = f"{type(exc).__name__}: {exc}"
                else:
                    handled.outcome = dict(outcome.as_dict())
            yield handled

    return handle


def handled_as_request(message: receive.Received) -> Handled:
    """A Handled for the message's request; one whose body is not a process request is already failed."""
    try:
        request = ProcessRequest.model_validate_json(message.body)
    except ValidationError:
        return Handled(message.message_id, None, None, error="not a process request")
    return Handled(message.message_id, request.inbox_id, request.message_key)


def drain(handle: BatchHandler, on_handled: Callable[[Handled], None] | None = None) -> list[Handled]:
    """Receive and handle the queue's messages until it is empty; what succeeded leaves the queue.

    A failed message is made visible again once the queue looks empty, and another pass runs while the last
    one made progress (a reply waits for its original, which may come later in the same pass). It is received
    again at most once per pass, so the queue's attempts count and dead-letter queue apply as usual.
    """
    results: dict[str, Handled] = {}
    while True:
        failed: list[receive.Received] = []
        progressed = False
        while batch := receive.receive():
            handled = []
            for result in handle(batch):
                handled.append(result)
                results[result.message_id] = result
                if on_handled is not None:
                    on_handled(result)
            done = [m for m, h in zip(batch, handled, strict=True) if h.error is None]
            failed += [m for m, h in zip(batch, handled, strict=True) if h.error is not None]
            receive.delete(done)
            progressed = progressed or bool(done)
        receive.release(failed)
        if not failed or not progressed:
            return list(results.values())
