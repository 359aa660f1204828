"""The dispatch step's own decisions: a shard message older than a tick, or not a shard request, is dropped
without reading anything (the next tick's message stands for it)."""

import time

import pytest

from mail2ticket import dispatch
from mail2ticket.store.poll_queue import ShardRequest


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """The shard steps that ran (none reads AWS here)."""
    ran: list[tuple[int, int, int]] = []

    def step(shard: int, shards: int, tick: int) -> dispatch.DispatchSummary:
        ran.append((shard, shards, tick))
        return dispatch.DispatchSummary(shard, shards, tick)

    monkeypatch.setattr(dispatch, "dispatch_shard", step)
    return ran


def test_a_shard_message_runs_its_step_with_the_ticks_shard_count(steps: list[tuple[int, int, int]]) -> None:
    body = ShardRequest(shard=3, shards=16, tick=1_800_000_000).model_dump_json()
    sent = int(time.time() * 1000) - 5000

    assert dispatch.dispatch_requested(body, str(sent))["shard"] == 3
    assert steps == [(3, 16, 1_800_000_000)]


def test_a_shard_message_older_than_a_tick_is_dropped(steps: list[tuple[int, int, int]]) -> None:
    body = ShardRequest(shard=1, shards=10, tick=1_800_000_000).model_dump_json()
    sent = int(time.time() * 1000) - (dispatch.TICK_SECONDS + 5) * 1000

    assert dispatch.dispatch_requested(body, str(sent))["dropped"] == "older than a tick"
    assert steps == []


@pytest.mark.parametrize("body", ["not json", '{"inbox_id": "x", "tick": 1}', '{"shard": 1, "tick": 1}'])
def test_a_message_that_is_not_a_shard_request_is_dropped(
    steps: list[tuple[int, int, int]], body: str
) -> None:
    assert dispatch.dispatch_requested(body) == {"dropped": "not a shard request"}
    assert steps == []
