"""Exactly one ticket effect per mail: racing processors, duplicate deliveries, poison messages."""

import threading
from typing import Any

import boto3
import pytest

from infra.local import runner
from mail2ticket.process import process_message
from mail2ticket.settings import get_settings
from mail2ticket.store import tickets as repo
from mail2ticket.store.queue import enqueue
from tests.integration.engine_support import all_replicas, deliver, inbox, make_mail, person, receive, tickets

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(aws: object) -> None:
    person("alice@example.org", "Alice Martin")
    inbox()


def _race(key: str, workers: int = 6) -> list[Any]:
    """Call process_message on the same replica from several threads released at the same instant."""
    barrier = threading.Barrier(workers)
    results: list[Any] = []

    def work() -> None:
        barrier.wait()
        try:
            results.append(process_message("helpdesk", key))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_processors_racing_on_a_new_mail_create_one_ticket() -> None:
    key = deliver("helpdesk", *make_mail("Racing"))

    results = _race(key)

    created = [r for r in results if getattr(r, "action", None) == "created"]
    assert len(created) == 1
    assert [t.ref for t in tickets()] == ["R-000001"]
    [replica] = all_replicas()
    assert (replica.status, replica.ticket_ref) == ("processed", "R-000001")


def test_processors_racing_on_a_reply_write_one_log_entry() -> None:
    first = make_mail("Printer")
    receive("helpdesk", first)
    key = deliver("helpdesk", *make_mail("Re: Printer", "one entry", in_reply_to=first[1]))

    results = _race(key)

    assert [getattr(r, "action", None) for r in results].count("updated") == 1
    assert [e.text for e in repo.log_entries("R-000001")] == ["one entry"]


def test_duplicate_sqs_deliveries_in_one_batch_and_later_give_one_effect() -> None:
    first = make_mail("Printer")
    receive("helpdesk", first)
    key = deliver("helpdesk", *make_mail("Re: Printer", "only once", in_reply_to=first[1]))
    for _ in range(3):
        enqueue("helpdesk", key)

    runner.drain_queue()
    enqueue("helpdesk", key)
    runner.drain_queue()

    assert len(tickets()) == 1
    assert [e.text for e in repo.log_entries("R-000001")] == ["only once"]


def test_a_poison_message_ends_in_the_dlq_with_its_replica_in_error_without_blocking_others() -> None:
    # Given a queue that redelivers at once, a mail whose raw EML is gone (each attempt fails), two good ones
    sqs = boto3.client("sqs")
    url = get_settings().process_queue_url
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    poison = deliver("helpdesk", *make_mail("Poison"))
    replica = all_replicas()[0]
    boto3.client("s3").delete_object(Bucket=get_settings().raw_bucket, Key=replica.s3_key)
    good = [deliver("helpdesk", *make_mail(f"Good {i}", f"distinct body {i}")) for i in range(2)]
    for key in (poison, *good):
        enqueue("helpdesk", key)

    # When the processor drains the queue until it is empty
    responses = runner.drain_queue()

    # Then the good mails are tickets, the poison one is an error and its message is in the DLQ
    assert sorted(t.title for t in tickets()) == ["Good 0", "Good 1"]
    by_key = {r.message_key: r for r in all_replicas()}
    assert by_key[poison].status == "error" and by_key[poison].error_code == "internal"
    assert "after 5 attempts" in (by_key[poison].error_message or "")
    failures = [f for r in responses for f in r.get("batchItemFailures", [])]
    assert len(failures) == get_settings().max_attempts
    dlq = sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1].replace("ProcessQueue", "ProcessDeadLetterQueue"))
    [dead] = sqs.receive_message(QueueUrl=dlq["QueueUrl"], MaxNumberOfMessages=10).get("Messages", [])
    assert poison in dead["Body"]
