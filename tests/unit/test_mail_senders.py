"""A mail is never refused for what its headers say: the head is mended, and the sender is found where
there is one (From, Sender, Reply-To, Return-Path, the envelope)."""

from pathlib import Path

import pytest

from mail2ticket.errors import ErrorCode, PermanentError
from mail2ticket.mail.parse import parse_mail

MAILS = Path(__file__).parents[1] / "mails"
BODY = b"\r\n\r\nThe printer is broken.\r\n"


def test_junk_before_the_head_and_a_broken_line_above_from_do_not_lose_the_sender() -> None:
    mail = parse_mail((MAILS / "broken_head_from_last_first.eml").read_bytes())

    assert (mail.from_addr, mail.sender_header) == ("marie.dupont@cabinet-dupont.example", "from")
    assert mail.subject == "Accès au partage"
    assert mail.body_text.startswith("Bonjour, je n'ai plus accès")


def test_an_encoded_display_name_that_decodes_to_last_comma_first_keeps_its_address() -> None:
    mail = parse_mail((MAILS / "broken_head_from_last_first.eml").read_bytes())

    assert mail.from_name == "Dupont, Marie"


def test_only_an_mbox_from_line_gives_the_envelope_sender() -> None:
    mail = parse_mail((MAILS / "mbox_envelope_only.eml").read_bytes())

    assert (mail.from_addr, mail.sender_header) == ("erp-export@contoso.example", "envelope")
    assert "no From" in mail.sender_note
    assert mail.subject == "Export INVOICE_EXPORT failed"


def test_an_empty_from_falls_back_to_reply_to_and_says_why() -> None:
    mail = parse_mail((MAILS / "empty_from_reply_to.eml").read_bytes())

    assert (mail.from_addr, mail.from_name, mail.sender_header) == (
        "h.weber@contoso.example",
        "Hannah Weber",
        "reply-to",
    )
    assert "From has no sender address" in mail.sender_note


@pytest.mark.parametrize(
    ("head", "address", "header"),
    [
        (b"From: <>\r\nSender: Ops <ops@example.org>", "ops@example.org", "sender"),
        (b"From: Undisclosed\r\nReturn-Path: <bounce@example.org>", "bounce@example.org", "return-path"),
        (
            b"From: =?x-mac-japanese?B?gXKBcw==?=\r\nX-Envelope-From: <env@example.org>",
            "env@example.org",
            "envelope",
        ),
        (
            b"Received: from mx.example.org by mx2\r\n (envelope-from <relay@example.org>); Mon, 3 Nov 2025"
            b"\r\nFrom: -",
            "relay@example.org",
            "envelope",
        ),
        (b"From : Alice <alice@example.org>", "alice@example.org", "from"),
        (b"\xef\xbb\xbfFrom: Alice <alice@example.org>", "alice@example.org", "from"),
        (b"\r\n\r\nFrom: Alice <alice@example.org>\r\nTo: support@example.com", "alice@example.org", "from"),
        (b"From: alice@example.org (Alice Martin)", "alice@example.org", "from"),
        (b'From: "Martin, Alice" <alice@example.org>', "alice@example.org", "from"),
        (b"From: Alice <alice@example.org>, Bob <bob@example.org>", "alice@example.org", "from"),
    ],
)
def test_the_sender_is_found_wherever_the_headers_hold_one(head: bytes, address: str, header: str) -> None:
    mail = parse_mail(head + b"\r\nSubject: x" + BODY)

    assert (mail.from_addr, mail.sender_header) == (address, header)
    assert mail.body_text == "The printer is broken."


@pytest.mark.parametrize(
    "head",
    [b"Subject: no sender at all", b"From: <>\r\nReturn-Path: <>\r\nSubject: bounce", b"From: Alice Martin"],
)
def test_a_mail_without_any_sender_is_read_and_says_why(head: bytes) -> None:
    mail = parse_mail(head + BODY)

    assert (mail.from_addr, mail.sender_header, mail.body_text) == ("", "", "The printer is broken.")
    assert "Sender, Reply-To, Return-Path or envelope sender" in mail.sender_note


def test_the_name_of_a_raw_8_bit_sender_is_read_in_the_mail_s_charset() -> None:
    raw = (
        b"From: " + "Иван Петров".encode("koi8_r") + b" <i.petrov@example.ru>\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=koi8-r\r\n\r\n" + "Добрый день".encode("koi8_r")
    )

    mail = parse_mail(raw)

    assert (mail.from_name, mail.from_addr) == ("Иван Петров", "i.petrov@example.ru")


def test_to_and_cc_are_read_from_their_raw_values() -> None:
    raw = (
        b"From: a@example.org\r\nTo: =?utf-8?B?RHVwb250LCBNYXJpZQ==?= <marie@example.org>, b@example.org\r\n"
        b"Cc: <>, c@example.org\r\nSubject: x" + BODY
    )

    mail = parse_mail(raw)

    assert (mail.to, mail.cc) == (("marie@example.org", "b@example.org"), ("c@example.org",))


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"PK\x03\x04\x14\x00\x06\x00", "ZIP"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "OLE2"),
        (b"Subject: x\r\n\r\nab\x00cd", "NUL"),
    ],
)
def test_only_input_that_holds_no_mail_is_decode_failed(raw: bytes, kind: str) -> None:
    with pytest.raises(PermanentError) as raised:
        parse_mail(raw)

    assert raised.value.code is ErrorCode.DECODE_FAILED and kind in raised.value.message
