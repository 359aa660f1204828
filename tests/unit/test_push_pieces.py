"""Pure pieces of the push intake: what a pushed mail's headers say, the S3 events that name it, and the
configuration of a push inbox."""

import json
from pathlib import Path

import pytest

from mail2ticket.config.validation import validate_inbox
from mail2ticket.errors import ConfigurationError
from mail2ticket.intake import InboundObject, objects_in
from mail2ticket.mail.envelope import MAX_RECIPIENTS, envelope

EVENTS = Path(__file__).resolve().parents[1] / "events"

# As SES stores a mail it received for support@push.example.com (its lines on top of the sender's).
STORED_BY_SES = (
    b"Return-Path: <alice@example.org>\r\n"
    b"Received: from mail.example.org (mail.example.org [192.0.2.25])\r\n"
    b" by inbound-smtp.eu-west-1.amazonaws.com with SMTP id d6iitobk75ur44p8kdnnp7g2n800\r\n"
    b" for Support@Push.example.com;\r\n"
    b" Fri, 11 Sep 2015 20:32:33 +0000 (UTC)\r\n"
    b"X-SES-Spam-Verdict: PASS\r\n"
    b"X-SES-Virus-Verdict: FAIL\r\n"
    b"Received: from laptop by mail.example.org for <first-hop@example.net>; Fri, 11 Sep 2015\r\n"
    b"From: Alice <alice@example.org>\r\n"
    b'To: "Doe, Jane" <jane@push.example.com>, list@lists.example.org\r\n'
    b"Cc: =?utf-8?q?Caf=C3=A9?= <cafe@example.org>\r\n"
    b"X-SES-Spam-Verdict: FAIL\r\n"
    b"Subject: Hello\r\n"
    b"\r\n"
    b"To: body@example.org\r\n"
)


def test_the_envelope_is_seses_recipient_then_to_and_cc_and_its_verdicts_are_its_own() -> None:
    # Given a mail as SES stores it / When its envelope is read
    found = envelope(STORED_BY_SES)

    # Then SES's Received line comes first, an earlier hop's does not count, To and Cc follow, the body
    # is not read; the verdicts are those SES wrote on top, not a line the sender wrote below
    assert found.recipients == (
        "support@push.example.com",
        "jane@push.example.com",
        "list@lists.example.org",
        "cafe@example.org",
    )
    assert (found.spam_verdict, found.virus_verdict) == ("PASS", "FAIL")
    assert found.rejection == "Amazon SES virus verdict: FAIL"


def test_an_mta_s_delivery_lines_name_the_envelope_recipient() -> None:
    raw = b"Delivered-To: helpdesk@example.com\nX-Original-To: Help@Example.com\nTo: a@b.example\n\nbody\n"

    assert envelope(raw).recipients == ("help@example.com", "helpdesk@example.com", "a@b.example")
    assert envelope(raw).rejection is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xffPDF", b"To: <<<@@@>>>, ,;\n\n", b"Received: for\n\n", b"To: " + b"x" * 100_000 + b"\n\n"],
)
def test_headers_that_are_no_addresses_give_no_recipient_and_no_error(raw: bytes) -> None:
    assert all("@" in r for r in envelope(raw).recipients)


def test_a_mail_naming_thousands_of_addresses_is_read_for_the_first_ones() -> None:
    raw = b"To: " + b", ".join(b"user%d@example.org" % n for n in range(5000)) + b"\r\n\r\nbody"

    found = envelope(raw).recipients

    assert len(found) == MAX_RECIPIENTS and found[0] == "user0@example.org"


def test_an_s3_event_names_its_objects_with_their_keys_decoded_and_versions() -> None:
    # Given the event S3 delivers for a mail written with spaces and a plus sign in its name
    event = json.loads((EVENTS / "s3_inbound_event.json").read_text())

    # When the objects it names are read
    found = objects_in(event)

    # Then the key is decoded as S3 encodes it (+ for a space), and the version kept
    assert found == [
        InboundObject("inbound/helpdesk/Re: café + more.eml", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
    ]
    assert found[0].folder == "helpdesk"
    assert InboundObject("inbound/0a1b2c3d4e5f").folder is None


def test_events_that_name_no_new_object_under_inbound_name_nothing() -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "raw"}
    removed = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete", "s3": {}}]}
    elsewhere = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"object": {"key": "raw%2Fx.eml"}},
            }
        ]
    }

    folder = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"object": {"key": "inbound/help/"}},
            }
        ]
    }

    assert objects_in(test_event) == objects_in(removed) == objects_in(elsewhere) == objects_in(folder) == []


def test_a_push_inbox_owns_addresses_and_domains_in_one_form() -> None:
    inbox = validate_inbox(
        {
            "inbox_id": "push",
            "protocol": "push",
            "recipients": "Support@Example.com\n@Help.Example.org\nexample.net.\nsupport@example.com",
        }
    )

    assert inbox.recipients == ["support@example.com", "help.example.org", "example.net"]
    # replies are sent from its first address; no server, no port
    assert (inbox.login, inbox.server, inbox.effective_port) == ("support@example.com", "", 0)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"email_storage": "delete"}, "email_storage: a push inbox has no mailbox to delete mail from"),
        ({"email_storage": "move", "target_folder": "Done"}, "email_storage: a push inbox has no mailbox"),
        (
            {"recipients": ["not an address"]},
            "recipients: 'not an address' is neither a mail address nor a domain",
        ),
        ({"recipients": [f"a{n}@example.com" for n in range(41)]}, "recipients: at most 40"),
    ],
)
def test_a_push_inbox_refuses_what_it_cannot_do(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        validate_inbox({"inbox_id": "push", "protocol": "push", **values})

    assert expected in str(refused.value)


def test_only_a_push_inbox_is_routed_by_recipient() -> None:
    with pytest.raises(ConfigurationError) as refused:
        validate_inbox(
            {"inbox_id": "imap", "server": "mail.example.com", "login": "a@b.c", "recipients": ["x.com"]}
        )

    assert "recipients: only a push inbox receives mail by recipient" in str(refused.value)
