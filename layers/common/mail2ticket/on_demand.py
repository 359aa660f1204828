"""The functions run on demand rather than on their schedule: poll inboxes now, drain the process queue.

`mail2ticket poll` and `process` call these (`clean` calls `clean.clean_all`); the poller's direct invocation
`{"poll": {"inbox_id": ...}}` calls `poll_now`. Each takes the clock as a parameter, so that retention can be
tried on a local stack.
"""

import contextvars
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from mail2ticket.errors import ConfigurationError
from mail2ticket.poll import NotPolled, poll_deadline, poll_inbox, poll_requested
from mail2ticket.settings import get_settings
from mail2ticket.store import poll_queue, receive
from mail2ticket.store.config import load_global_config, load_inbox
from mail2ticket.store.process_request import ProcessRequest
from mail2ticket.store.replicas import acquire_lease

# How many polls `mail2ticket poll` runs at once in its own process.
POLLS_AT_ONCE = 8

Result = dict[str, Any]


def poll_now(
    inbox_id: str, now: float | None = None, time_left_ms: Callable[[], int] | None = None
) -> Result:
    """Poll one inbox now, whatever its period or back-off: an operator asked for this one. Only a poll
    running on it stops it (counted as leased elsewhere); its outcome counts in its failures and back-off
    like any poll's."""
    started = time.monotonic()
    now_s = int(now if now is not None else time.time())
    inbox = load_inbox(inbox_id)
    if not inbox.active:
        raise ConfigurationError(f"inbox {inbox_id!r} is disabled (mail2ticket inbox enable {inbox_id})")
    owner = str(uuid.uuid4())
    lease = acquire_lease(inbox_id, owner, now_s, get_settings().poll_lease_seconds)
    if lease is None:
        return poll_answer([asdict(NotPolled(inbox_id, "leased"))])
    deadline = poll_deadline(inbox, started, time_left_ms)
    return poll_answer(
        [asdict(poll_inbox(inbox, lease, owner, now_s, load_global_config(), deadline=deadline))]
    )


def poll_tick(
    now: float | None = None,
    on_result: Callable[[Result], None] | None = None,
    concurrency: int = POLLS_AT_ONCE,
) -> Result:
    """What a scheduled tick does, in this process: the tick, each shard's dispatch step, and the polls they
    queued, `concurrency` at once. Inboxes held back (back-off, long period) are skipped, as on schedule."""
    from mail2ticket.dispatch import dispatch_requested, dispatch_tick

    settings = get_settings()
    if not (settings.dispatch_queue_url and settings.poll_queue_url):
        raise ConfigurationError(
            "DISPATCH_QUEUE_URL and POLL_QUEUE_URL are not set: use --stack NAME, or --local for the local "
            "stack"
        )
    dispatch_tick(now=now)

    def shard(message: dict[str, Any]) -> list[Result]:
        return [dispatch_requested(message["Body"], message.get("Attributes", {}).get("SentTimestamp"))]

    def poll(message: dict[str, Any]) -> list[Result]:
        request = poll_queue.PollRequest.model_validate_json(message["Body"])
        return [asdict(poll_requested(request.inbox_id, request.tick))]

    return fan_out(shard, poll, settings.dispatch_shards, concurrency, on_result)


Handle = Callable[[dict[str, Any]], list[Result] | None]


def fan_out(
    shard: Handle,
    poll: Handle,
    shard_concurrency: int,
    concurrency: int,
    on_result: Callable[[Result], None] | None = None,
) -> Result:
    """After a tick, outside Lambda, what the two event sources do: each message of the dispatch queue to
    `shard`, and each poll request to `poll` as soon as a shard's step queued it, until both queues are
    empty. Returns what `poll_answer` makes of the polls and the shards' steps."""
    settings = get_settings()
    with ThreadPoolExecutor(max_workers=1) as background:
        steps = background.submit(
            contextvars.copy_context().run, consume, settings.dispatch_queue_url, shard, shard_concurrency
        )
        polls = consume(settings.poll_queue_url, poll, concurrency, on_result, until=steps.done)
        return poll_answer(polls, steps.result())


def consume(
    queue_url: str,
    handle: Handle,
    concurrency: int,
    on_result: Callable[[Result], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> list[Result]:
    """What an SQS event source with BatchSize 1 does, outside Lambda: each message received is handed to
    `handle`, at most `concurrency` at once, until the queue is empty (and, with `until`, until it says
    nothing more will come). A message is deleted once handled; one whose `handle` answers None stays,
    visible again after the queue's visibility timeout. Returns the results in the order they ended;
    `on_result` sees each as soon as it is known."""

    def run(message: dict[str, Any]) -> list[Result]:
        results = handle(message)
        if results is None:
            return []
        poll_queue.delete(queue_url, message)
        return results

    results: list[Result] = []
    running: set[Future[list[Result]]] = set()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while True:
            # Read before receiving: once it says no more will come, an empty queue is the end.
            last = until is None or until()
            if len(running) < concurrency:
                received = poll_queue.receive(queue_url, concurrency - len(running))
                # Each in a copy of the caller's context: what it set (trace, log or test labels) holds there.
                running |= {pool.submit(contextvars.copy_context().run, run, m) for m in received}
                if received and len(running) < concurrency:
                    continue
            if not running:
                if last:
                    return results
                time.sleep(0.005)
                continue
            done, running = wait(running, timeout=0.05, return_when=FIRST_COMPLETED)
            for future in done:
                for result in future.result():
                    results.append(result)
                    if on_result is not None:
                        on_result(result)


def poll_answer(results: list[Result], steps: list[Result] | None = None) -> Result:
    """What a poll on demand answers: each poll's result under `polled`, the failed ones counted, the inboxes
    not polled by reason (held or already polled for this tick, leased by another poll), and the polls the
    shards' steps queued."""
    polled = [r for r in results if "reason" not in r]
    skipped = [r["reason"] for r in results if "reason" in r]
    steps = steps or []
    return {
        "polled": polled,
        "failed": sum(1 for r in polled if r["error"]),
        "not_due": sum(int(s.get("not_due", 0)) for s in steps) + skipped.count("not due"),
        "leased_elsewhere": skipped.count("leased"),
        "dispatched": sum(int(s.get("dispatched", 0)) for s in steps),
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
