"""Pure pieces of the poller: UID sets and ranges, the high-water mark, POP3 headers, OAuth secrets."""

import pytest

from mail2ticket.mailbox.imap import uid_set
from mail2ticket.mailbox.oauth import OAuthTokenError, _credentials
from mail2ticket.mailbox.pop3 import _message_id
from mail2ticket.poll import _Mark, _uids_of


def test_uid_sets_are_written_as_ranges() -> None:
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert uid_set([]) == ""


def test_saved_ranges_read_back_as_uids() -> None:
    assert _uids_of("1-3,7,9-10") == [1, 2, 3, 7, 9, 10]
    assert _uids_of("") == []


def test_the_mark_never_passes_a_message_not_yet_handled() -> None:
    # Given UIDs 5, 6 and 8 expected above a mark of 4
    mark = _Mark(4)
    mark.expect([8, 5, 6])

    # When 6 and 8 are handled before 5 (relocated ones, say)
    mark.handled(6)
    mark.handled(8)
    assert mark.high_water == 4

    # Then the mark jumps only once 5 is handled too
    mark.handled(5)
    assert mark.high_water == 8


def test_pop3_top_lines_give_the_message_id_even_when_folded() -> None:
    lines = [b"Subject: x", b"Message-ID:", b" <abc@example.org>", b"From: a@example.org"]
    assert _message_id(lines) == "<abc@example.org>"
    assert _message_id([b"Subject: none"]) == ""


def test_oauth_secrets_are_json_or_a_bare_client_secret() -> None:
    assert _credentials('{"refresh_token": "r", "client_secret": "s"}') == {
        "refresh_token": "r",
        "client_secret": "s",
    }
    assert _credentials("plain-secret") == {"client_secret": "plain-secret"}
    with pytest.raises(OAuthTokenError):
        _credentials('["not", "an", "object"]')
