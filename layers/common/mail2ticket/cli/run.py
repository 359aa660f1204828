"""`mail2ticket poll|process|clean`: run the functions now, in this process or through the deployed ones.

In this process (the local stack, or AWS_ENDPOINT_URL, or AWS with the resource names exported), `--at` sets
the clock, so that retention can be tried without waiting. With `--stack NAME` the deployed functions do the
work (a direct invocation; for `process`, the queue's messages handed to the processor as its event source
mapping would).
"""

import argparse
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from mail2ticket.cli.common import CliError, Result, add_json
from mail2ticket.cli.progress import Progress
from mail2ticket.cli.table import render, render_fields, to_json

_RELATIVE = re.compile(r"^([+-])(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
POLL_COLUMNS = ("inbox_id", "received", "requeued", "disappeared", "actions_done", "actions_failed", "error")
PROCESS_COLUMNS = ("inbox_id", "message_key", "outcome", "status", "ticket_ref", "error")


def add_poll(commands: Any) -> None:
    poll = commands.add_parser(
        "poll",
        help="poll inboxes now: new mail stored and queued, mailbox actions done",
        description="Run a tick now, as the schedule does: every inbox that is due is polled (one held back "
        "by its period or a back-off is not). With --inbox, poll that inbox now, whatever its period or "
        "back-off. New mail is stored and queued for the processor, and the mailbox actions other components "
        "asked for are carried out. Then run `process`. With --stack the deployed functions do it.",
    )
    poll.add_argument("--inbox", metavar="ID", help="poll only this inbox, now, even when it is backed off")
    _add_clock(poll)
    add_json(poll)
    poll.set_defaults(run=_poll)


def add_process(commands: Any) -> None:
    process = commands.add_parser(
        "process",
        help="process the queued messages until the queue is empty",
        description="Receive the process queue's messages and process them until the queue is empty; a "
        "message that fails stays queued (its attempts count, as with the deployed processor). With --stack "
        "the deployed processor is invoked with each batch, as its event source mapping would.",
    )
    _add_clock(process)
    add_json(process)
    process.set_defaults(run=_process)


def add_clean(commands: Any) -> None:
    clean = commands.add_parser(
        "clean",
        help="apply the retention rules once",
        description="Apply every retention rule once, as the hourly cleaner run does (one batch per rule). "
        "With --at, as if it were then: `clean --at +2h` does what a cleaner run two hours from now would.",
    )
    _add_clock(clean)
    add_json(clean)
    clean.set_defaults(run=_clean)


def _add_clock(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="TIME",
        type=_time,
        help="run as if it were TIME: an ISO date and time (UTC unless it says otherwise) or an offset from "
        "now such as +2h, +8d, -30m; only in this process against a local endpoint",
    )


def _time(text: str) -> datetime:
    now = datetime.now(UTC)
    relative = _RELATIVE.match(text.strip())
    if relative:
        sign, amount, unit = relative.groups()
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        return now + delta if sign == "+" else now - delta
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO date and time nor an offset such as +2h"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _clock(args: argparse.Namespace) -> datetime | None:
    """The time asked for with --at, which only a local endpoint may be run at."""
    if args.at is None:
        return None
    if args.stack:
        raise CliError("--at sets the clock of this process: it cannot be used with --stack")
    if not os.environ.get("AWS_ENDPOINT_URL"):
        raise CliError("--at is for a local stack (--local, or AWS_ENDPOINT_URL): AWS runs on its own clock")
    return args.at


def _deployed(args: argparse.Namespace, output: str) -> str | None:
    """The deployed function to invoke with --stack, else None (run in this process)."""
    if not args.stack:
        return None
    from mail2ticket.store.deployed import stack_function

    return stack_function(args.stack, output)


def _stamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


# ---------------------------------------------------------------------------------------------- poll


def _poll(args: argparse.Namespace) -> Result:
    at = _clock(args)
    if args.stack and not args.inbox:
        return _tick_deployed(args)
    function = _deployed(args, "PollerFunctionName")
    if function:
        from mail2ticket.store.deployed import invoke_function

        with Progress(f"the deployed poller ({function})") as progress:
            progress.start(args.inbox)
            answer = invoke_function(function, {"poll": {"inbox_id": args.inbox}})
    else:
        from mail2ticket.on_demand import poll_now, poll_tick

        with Progress("polling") as progress:
            if args.inbox:
                progress.start(args.inbox)
                answer = poll_now(args.inbox, _stamp(at))
            else:

                def advance(result: dict[str, Any]) -> None:
                    progress.advance(str(result["inbox_id"]))

                answer = poll_tick(_stamp(at), on_result=advance)
    rows: list[dict[str, Any]] = answer["polled"]
    if args.json:
        return Result(to_json(answer), 1 if answer["failed"] else 0)
    lines = [render(rows, POLL_COLUMNS) if rows else "No inbox was due."]
    if answer.get("not_due"):
        lines.append(
            f"{answer['not_due']} inbox(es) not due: held back by their period or a back-off "
            "(`mail2ticket inbox list` shows when; `poll --inbox ID` polls one now)."
        )
    if answer.get("leased_elsewhere"):
        lines.append(f"{answer['leased_elsewhere']} inbox(es) skipped: another poll is running on them.")
    received = sum(int(row["received"]) + int(row["requeued"]) for row in rows)
    if received:
        lines.append(f"{received} message(s) queued: `mail2ticket process` turns them into tickets.")
    return Result("\n".join(lines), 1 if answer["failed"] else 0)


def _tick_deployed(args: argparse.Namespace) -> Result:
    """Every inbox through the stack: the deployed dispatcher runs a tick; its shards' steps and the polls
    they queue then run in the deployed functions, as on the schedule."""
    from mail2ticket.lambda_events import scheduled_event
    from mail2ticket.store.deployed import invoke_function

    function = _deployed(args, "DispatcherFunctionName")
    assert function is not None
    with Progress(f"the deployed dispatcher ({function})") as progress:
        progress.start("every due inbox")
        answer = invoke_function(function, scheduled_event("mail2ticket-poll-on-demand"))
    if args.json:
        return Result(to_json(answer))
    return Result(
        f"Tick {answer['tick']}: {answer['sent']} of {answer['shards']} shard(s) queued. The deployed "
        "dispatcher queues the polls of each shard's due inboxes, and the deployed poller runs them now; "
        "`mail2ticket inbox list` shows each inbox's last poll and failures.",
        1 if answer["refused"] else 0,
    )


# ---------------------------------------------------------------------------------------------- process


def _process(args: argparse.Namespace) -> Result:
    from mail2ticket.on_demand import Handled, drain, process_here
    from mail2ticket.store import receive

    at = _clock(args)
    function = _deployed(args, "ProcessorFunctionName")
    handle = _invoking(function) if function else process_here(_stamp(at))
    with Progress("processing", receive.waiting()) as progress:

        def advance(handled: Handled) -> None:
            progress.advance(handled.message_key or "")

        results = drain(handle, on_handled=advance)
    rows = [
        {
            "inbox_id": h.inbox_id,
            "message_key": h.message_key,
            "outcome": (h.outcome or {}).get("action", "failed" if h.error else "done"),
            "status": (h.outcome or {}).get("status"),
            "ticket_ref": (h.outcome or {}).get("ticket_ref"),
            "error": h.error or (h.outcome or {}).get("error_message"),
        }
        for h in results
    ]
    failed = sum(1 for h in results if h.error)
    if args.json:
        return Result(to_json(rows), 1 if failed else 0)
    if not rows:
        return Result("The process queue is empty: nothing to process.")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    lines = [render(rows, PROCESS_COLUMNS), f"{len(rows)} message(s): {summary}."]
    if failed:
        lines.append(f"{failed} failed message(s) stay queued; `process` again retries them.")
    return Result("\n".join(lines), 1 if failed else 0)


def _invoking(function: str) -> Any:
    """Hand each batch to the deployed processor; its partial batch response names the failed messages."""
    from mail2ticket.lambda_events import sqs_event
    from mail2ticket.on_demand import handled_as_request
    from mail2ticket.store import receive
    from mail2ticket.store.deployed import invoke_function

    arn = receive.queue_arn()
    region = arn.split(":")[3]

    def handle(batch: list[receive.Received]) -> list[Any]:
        answer = invoke_function(function, sqs_event([m.message for m in batch], arn, region))
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        results = []
        for message in batch:
            handled = handled_as_request(message)
            if message.message_id in failed:
                handled.error = handled.error or f"failed in {function} (see its log)"
            results.append(handled)
        return results

    return handle


# ---------------------------------------------------------------------------------------------- clean


def _clean(args: argparse.Namespace) -> Result:
    at = _clock(args)
    function = _deployed(args, "CleanerFunctionName")
    with Progress("cleaning") as progress:
        if function:
            from mail2ticket.lambda_events import scheduled_event
            from mail2ticket.store.deployed import invoke_function

            progress.start(f"the deployed cleaner ({function})")
            answer = invoke_function(function, scheduled_event("mail2ticket-cleaner-on-demand"))
        else:
            from mail2ticket.clean import clean_all

            answer = clean_all(now=_stamp(at)).as_dict()
    if args.json:
        return Result(to_json(answer))
    examined = answer.get("examined") or {}
    fields: list[tuple[str, Any]] = [
        ("purge requested", f"{answer['purge_requested']} undesired mail(s) to delete from the mailbox"),
        ("kept mail released", f"{answer['kept_mail_released']} mail(s) of closed tickets to delete"),
        ("replicas deleted", f"{answer['replicas_deleted']} (gone from the mailbox past the retention)"),
        ("objects removed", f"{answer['objects_removed']} raw mail(s) or attachment(s) nothing refers to"),
        ("examined", ", ".join(f"{rule} {n}" for rule, n in examined.items()) or "nothing"),
    ]
    lines = [render_fields(fields)]
    if answer.get("more"):
        lines.append("More is due than one run handles: `clean` again goes on where this one stopped.")
    if answer["purge_requested"] or answer["kept_mail_released"]:
        lines.append("The next poll deletes those mails from the mailbox: `mail2ticket poll`.")
    return Result("\n".join(lines))
