"""A backlog larger than one batch: several bounded runs finish it, nothing is done twice, also with two
cleaners at once."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mail2ticket.clean import clean_all
from mail2ticket.settings import get_settings
from tests.integration.clean_support import DAY, HOUR, clean
from tests.integration.engine_support import all_replicas, deliver, inbox, make_mail

pytestmark = pytest.mark.integration

BATCH = 5


@pytest.fixture(autouse=True)
def _small_batches(aws: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CLEAN_BATCH_SIZE", str(BATCH))
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("CLEAN_BATCH_SIZE")
    get_settings.cache_clear()


def _gone_replicas(inbox_id: str, count: int, gone_at: int) -> None:
    """Final replicas whose mail left the server at `gone_at`."""
    from mail2ticket.store.models import Replica

    inbox(inbox_id)
    for n in range(count):
        key = deliver(inbox_id, make_mail(f"Mail {n}", headers={"Auto-Submitted": "auto-replied"})[0])
        Replica(inbox_id=inbox_id, sk=Replica.sort_key(key)).update(
            actions=[Replica.status.set("undesired"), Replica.disappeared_at.set(gone_at)]
        )


def test_a_backlog_larger_than_a_batch_is_finished_by_several_bounded_runs() -> None:
    # Given twelve replicas to delete in one inbox and three in another, with batches of five
    now = int(time.time())
    _gone_replicas("big", 12, now)
    _gone_replicas("small", 3, now)

    # When the cleaner runs until a run finds nothing to delete
    runs: list[dict[str, Any]] = []
    while not runs or runs[-1]["replicas_deleted"]:
        runs.append(clean(now + 2 * HOUR + len(runs) * HOUR))
        assert len(runs) < 10

    # Then every run stayed within its batch, and each replica was deleted exactly once
    assert all(r["examined"].get("disappeared", 0) <= BATCH for r in runs)
    assert [r["replicas_deleted"] for r in runs] == [5, 5, 5, 0]
    assert runs[0]["more"]
    assert all_replicas("big") == [] and all_replicas("small") == []


def test_two_cleaners_at_once_do_each_deletion_once() -> None:
    now = int(time.time())
    _gone_replicas("race", 12, now)
    barrier = threading.Barrier(2)
    deleted: list[int] = []
    errors: list[Exception] = []

    def cleaner() -> None:
        barrier.wait()
        try:
            for step in range(4):
                deleted.append(clean_all(now=now + DAY + step).replicas_deleted)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=cleaner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(deleted) == 12 and all(d <= BATCH for d in deleted)
    assert all_replicas("race") == []
