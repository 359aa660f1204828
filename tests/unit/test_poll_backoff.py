"""Pure pieces of the fleet's polls: when an inbox may be polled next, and servers that ask to slow down."""

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from mail2ticket.mailbox.session import ServerThrottled, retry_after_seconds, throttling
from mail2ticket.poll import next_hold
from mail2ticket.settings import get_settings

TICK = 1_800_000_000


def test_failures_wait_longer_and_longer_up_to_the_cap() -> None:
    # Given the settings' base and cap
    settings = get_settings()

    # When an inbox of a one-minute period fails again and again
    waits = [next_hold(TICK, TICK + 3, 60, failures) - TICK for failures in range(1, 10)]  # type: ignore[operator]

    # Then each wait is longer than the one before until the cap, which holds
    assert waits[0] == 2 * settings.poll_backoff_base_seconds
    rising = waits[: waits.index(settings.poll_backoff_max_seconds) + 1]
    assert rising == sorted(set(rising)) and len(rising) > 3
    assert set(waits[len(rising) :]) <= {settings.poll_backoff_max_seconds}


def test_a_success_polls_again_at_the_next_tick_or_at_the_end_of_a_longer_period() -> None:
    assert next_hold(TICK, TICK + 3, 60, 0) is None
    assert next_hold(TICK, TICK + 3, 30, 0) is None
    assert next_hold(TICK, TICK + 3, 3600, 0) == TICK + 3600


def test_a_poll_that_left_mail_unread_goes_on_at_the_next_tick_whatever_the_period() -> None:
    assert next_hold(TICK, TICK + 100, 3600, 0, unfinished=True) is None


def test_a_failing_inbox_of_a_long_period_keeps_its_period() -> None:
    assert next_hold(TICK, TICK + 3, 3600, 1) == TICK + 3600


def test_the_wait_a_server_asked_for_is_honoured_when_longer_than_the_back_off() -> None:
    # Given a poll that started late after its tick (now), and a server asking for 30 minutes
    hold = next_hold(TICK, TICK + 40, 60, 1, retry_after=1800)

    # Then the next attempt is 30 minutes after the answer, not after the tick
    assert hold == TICK + 40 + 1800
    # and a short wait does not shorten the back-off
    assert next_hold(TICK, TICK + 40, 60, 3, retry_after=5) == next_hold(TICK, TICK + 40, 60, 3)
    # and an absurd wait is bounded to a day
    assert next_hold(TICK, TICK, 60, 1, retry_after=10**9) == TICK + 86400


@pytest.mark.parametrize(
    ("answer", "wait"),
    [
        ("[LIMIT] Too many connections", None),
        ("* BYE Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)", None),
        ("NO [THROTTLED] Account exceeded command or bandwidth limits", None),
        ("BYE Request is throttled. Try again in 5 minutes.", 300),
        ("-ERR [LOGIN-DELAY] wait before you log in again, retry after 120 seconds", 120),
        ("NO [IN-USE] maildrop locked", None),
        ("User is over the rate limit; try again later", None),
    ],
)
def test_throttling_answers_are_recognised_with_the_wait_they_name(answer: str, wait: float | None) -> None:
    throttled = throttling(answer)

    assert isinstance(throttled, ServerThrottled) and throttled.retry_after == wait
    assert answer.strip()[:40] in str(throttled)


@pytest.mark.parametrize(
    "answer",
    [
        "NO [AUTHENTICATIONFAILED] Authentication failed.",
        "NO Mailbox doesn't exist: Support",
        "BAD Error in IMAP command UID: Invalid arguments.",
        "-ERR [AUTH] Authentication failed.",
        "socket error: EOF",
    ],
)
def test_other_refusals_are_not_throttling(answer: str) -> None:
    assert throttling(answer) is None


def test_retry_after_headers_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 3, 2, 10, 2, tzinfo=UTC), usegmt=True)

    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(later, now=now.timestamp()) == 120
    assert retry_after_seconds(" 7 ") == 7
    assert retry_after_seconds("not a date") is None and retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    # a date already past is no wait at all
    assert (
        retry_after_seconds(
            format_datetime(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), usegmt=True), now=now.timestamp()
        )
        == 0
    )
