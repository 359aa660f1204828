"""Faults injected the way an unlucky day brings them: each AWS request of a poll or of a processing run fails
in turn (the process killed before it, killed after it, or the request throttled), then time passes.

Whatever failed, every mail ends exactly once (one ticket effect), and a mail arriving later is not held up.
"""

import itertools
from typing import Any

import pytest

from infra.local import runner
from infra.local.aws_calls import FAULTS
from infra.local.stack import LocalStack
from tests.conftest import new_mail_account
from tests.integration.fault_support import Runs, injected, mail, outcome
from tests.integration.polling import save

pytestmark = pytest.mark.integration

# Mail A opens a ticket with its attachment, B answers it, C arrives once the fault is over.
EXPECTED = {
    "statuses": ["processed", "processed", "processed"],
    "errors": [],
    "titles": ["Later mail", "Printer jammed"],
    "entries": [0, 1],
    "attachments": [0, 1],
}
# The run that fails: a poll that finds A and B; the processing of A (a new ticket, its caller created); the
# processing of B (an update of A's ticket).
RUNS = ("poll", "create", "update")


def _each_request(dovecot: Any, monkeypatch: pytest.MonkeyPatch, run: str, fault: str) -> dict[str, Any]:
    """The scenario once per request of the run, that request failing; returns what went wrong.

    Each scenario has an inbox of its own (the previous ones are switched off): no reset between them."""
    wrong: dict[str, Any] = {}
    with injected(monkeypatch) as (injector, clock):
        runs = Runs(injector, clock)
        for at in itertools.count():
            inbox_id = f"{run}-{fault}-{at}"
            account = new_mail_account(dovecot)
            save(account.inbox(inbox_id))
            # A sender of its own: its person is created by this scenario's first mail.
            sender = f"alice.{inbox_id}@example.org"
            first, first_id = mail("Printer jammed", attachment=True, sender=sender)
            reply = mail("Re: Printer jammed", in_reply_to=first_id, sender=sender)[0]
            account.append(first)
            if run == "poll":
                account.append(reply)
            else:
                runs.poll()
            if run == "update":
                runs.drain()
                account.append(reply)
                runs.clock.advance()
                runs.poll()
            injector.arm(at, fault)
            runs.poll() if run == "poll" else runs.process_batch()
            fired, seen = injector.fired, [c.operation for c in injector.seen]
            injector.arm(None)
            if run == "create":
                account.append(reply)
            account.append(mail("Later mail", sender=sender)[0])
            runs.settle()
            save(account.inbox(inbox_id, active=False))
            found = outcome(inbox_id)
            if found != EXPECTED:
                wrong[f"{at}: {seen[at] if fired else 'none'}"] = found
            if not fired:
                return wrong
    return wrong


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("fault", FAULTS)
def test_a_run_failing_at_any_request_loses_and_doubles_no_mail(
    aws: LocalStack, dovecot: Any, monkeypatch: pytest.MonkeyPatch, fault: str, run: str
) -> None:
    assert _each_request(dovecot, monkeypatch, run, fault) == {}


def test_a_mail_that_kills_every_processor_ends_as_an_error_and_blocks_nothing(
    aws: LocalStack, dovecot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mail2ticket.settings import get_settings
    from mail2ticket.store.raw import get_object, raw_key, sha256_hex
    from mail2ticket.store.replicas import replicas

    # Given a mail whose processing always ends its invocation (a timeout, out of memory), among others
    account = new_mail_account(dovecot)
    save(account.inbox("helpdesk"))
    deadly = mail("Deadly mail", attachment=True)[0]
    account.append(deadly)
    account.append(mail("Ordinary mail")[0])
    deadly_key = raw_key(sha256_hex(deadly))

    with injected(monkeypatch) as (injector, clock):
        runs = Runs(injector, clock)
        injector.arm(
            fault="kill_before", when=lambda c: c.operation == "GetObject" and c.params["Key"] == deadly_key
        )
        # When the poller and the processor run for a while, every attempt that reads the mail dying
        runs.settle()
        account.append(mail("Later mail")[0])
        runs.settle()
        reads = sum(1 for c in injector.seen if c.operation == "GetObject" and c.params["Key"] == deadly_key)
        # and once it is recorded, it is neither queued nor read again
        injector.arm(
            fault="kill_before", when=lambda c: c.operation == "GetObject" and c.params["Key"] == deadly_key
        )
        runs.settle()
        again = sum(1 for c in injector.seen if c.params.get("Key") == deadly_key)

    # Then it is an error saying why, read no more than the attempts allow, its raw mail kept; the others are
    # tickets
    by_subject = {r.subject: r for r in replicas("helpdesk")}
    error = by_subject["Deadly mail"]
    assert error.status == "error" and error.error_code == "internal"
    assert "attempts ended without a result" in (error.error_message or "")
    assert reads == get_settings().max_attempts and again == 0
    assert get_object(error.s3_key) == deadly
    assert outcome("helpdesk")["titles"] == ["Later mail", "Ordinary mail"]


def test_a_throttled_read_of_one_inbox_fails_that_inbox_only(
    aws: LocalStack, dovecot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two inboxes with mail, the first one's poll state throttled
    accounts = {inbox_id: new_mail_account(dovecot) for inbox_id in ("alpha", "beta")}
    for inbox_id, account in accounts.items():
        save(account.inbox(inbox_id))
        account.append(mail(f"For {inbox_id}")[0])

    def poll_state_of_alpha(call: Any) -> bool:
        return call.operation == "GetItem" and call.params.get("Key", {}).get("inbox_id") == {"S": "alpha"}

    with injected(monkeypatch) as (injector, clock):
        injector.arm(when=poll_state_of_alpha)
        # When the poller runs
        clock.advance()
        with injector.running():
            result = runner.run_poller(now=clock.moment)
        # Then beta was read, and only alpha's poll failed (its request stays queued for another delivery)
        polled = {p["inbox_id"]: p for p in result["polled"]}
        assert polled["beta"]["received"] == 1 and polled["beta"]["error"] is None
        assert "alpha" not in polled or polled["alpha"]["error"]
        assert not polled.get("alpha", {}).get("received")

        # and the next tick reads alpha
        clock.advance()
        result = runner.run_poller(now=clock.moment)
    assert {p["inbox_id"]: p["received"] for p in result["polled"]}.get("alpha") == 1


def test_a_cleaner_run_throttled_at_any_request_fails_no_rule_for_good(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.clean_support import DAY, at, object_exists
    from tests.integration.engine_support import all_replicas, inbox, make_mail, person, receive

    wrong: dict[str, Any] = {}
    with injected(monkeypatch) as (injector, _):
        for n in itertools.count():
            aws.reset()
            # Given an undesired mail due for its purge, and a mail in error gone from the server long ago
            person("alice@example.org")
            inbox(error_behavior="keep")
            now = int(clock_now())
            receive("helpdesk", make_mail("I am away", headers={"Auto-Submitted": "auto-replied"}), now=now)
            receive("helpdesk", make_mail("Who?", sender="stranger@example.net"), now=now)
            [gone] = [r for r in all_replicas() if r.status == "error"]
            _mark_gone(gone.inbox_id, gone.sk, now)
            # When a cleaner run has its nth request throttled, then the next run goes through
            injector.arm(n, "throttle")
            with injector.running():
                first = runner.run_cleaner(now=at(now + 10 * DAY))
            fired, seen = injector.fired, [c.operation for c in injector.seen]
            injector.arm(None)
            runner.run_cleaner(now=at(now + 10 * DAY + 3600))
            # Then the first run answered (naming what failed), and the work is done, once
            states = {r.subject: (r.status, r.pending_action) for r in all_replicas()}
            done = states == {"I am away": ("undesired", "delete")} and not object_exists(gone.s3_key)
            if not done or (fired and not first["failed"]):
                wrong[f"{n}: {seen[n] if fired else 'none'}"] = {"states": states, "first": first}
            if not fired:
                break
    assert wrong == {}


def clock_now() -> float:
    import time

    return time.time()


def _mark_gone(inbox_id: str, sk: str, when: int) -> None:
    from mail2ticket.store.models import Replica

    Replica(inbox_id=inbox_id, sk=sk).update(actions=[Replica.disappeared_at.set(when)])
