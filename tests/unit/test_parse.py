"""Parsing raw mail: headers, bodies, attachments, and bad input as a typed error."""

import hashlib
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from mail2ticket.errors import ErrorCode, PermanentError
from mail2ticket.mail.parse import message_ids, parse_mail

MAILS = Path(__file__).parents[1] / "mails"


def _mail(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Alice Martin <Alice@Example.org>")
    message["To"] = "support@example.com"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return message


def test_text_mail_gives_subject_sender_ids_and_body() -> None:
    message = _mail(Subject="Printer jammed", Message_ID="<abc@example.org>", In_Reply_To="<x@example.org>")
    message.set_content("Line one\nLine two\n")

    mail = parse_mail(message.as_bytes(policy=SMTP))

    assert mail.subject == "Printer jammed"
    assert (mail.from_addr, mail.from_name) == ("alice@example.org", "Alice Martin")
    assert mail.message_id == "abc@example.org"
    assert mail.in_reply_to == ("x@example.org",)
    assert mail.body_text == "Line one\nLine two"
    assert mail.attachments == ()


def test_encoded_subject_folded_over_lines_is_decoded() -> None:
    raw = (
        b"From: hans@example.de\r\nTo: support@example.com\r\n"
        b"Subject: =?UTF-8?B?RHJ1Y2tlciBkcnVja3Qga2VpbmUgVW1sYXV0ZSDigJMgw4Qgw5Yg?=\r\n"
        b" =?UTF-8?Q?=C3=9C_bitte_pr=C3=BCfen?=\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n"
    )

    assert parse_mail(raw).subject == "Drucker druckt keine Umlaute \u2013 Ä Ö Ü bitte prüfen"


def test_html_only_mail_is_rendered_to_text() -> None:
    message = _mail(Subject="VPN")
    message.set_content(
        "<html><body><p>Need <b>VPN</b> access.</p><script>x()</script><p>Bob</p></body></html>",
        subtype="html",
    )

    mail = parse_mail(message.as_bytes())

    assert mail.body_text == "Need VPN access.\nBob"
    assert mail.body_html is not None and "<b>VPN</b>" in mail.body_html


def test_attachments_and_inline_images_are_listed_with_their_hash() -> None:
    message = _mail(Subject="Report")
    message.set_content("See attached.")
    pdf = b"%PDF-1.4 tiny"
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="report.pdf")
    message.add_attachment(
        b"\x89PNG....",
        maintype="image",
        subtype="png",
        filename="logo.png",
        disposition="inline",
        cid="<logo@example.org>",
    )

    mail = parse_mail(message.as_bytes())

    by_name = {a.filename: a for a in mail.attachments}
    assert by_name["report.pdf"].sha256 == hashlib.sha256(pdf).hexdigest()
    assert (by_name["report.pdf"].size, by_name["report.pdf"].inline) == (len(pdf), False)
    assert (by_name["logo.png"].inline, by_name["logo.png"].content_id) == (True, "logo@example.org")


def test_unknown_charset_falls_back_instead_of_failing() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\ncaf\xc3\xa9\r\n"
    )

    assert parse_mail(raw).body_text == "café"


def test_mail_without_sender_is_read_and_says_why() -> None:
    mail = parse_mail(b"Subject: no sender\r\n\r\nbody\r\n")

    assert (mail.from_addr, mail.sender_header, mail.body_text) == ("", "", "body")
    assert "no From" in mail.sender_note and "envelope" in mail.sender_note


def test_text_without_any_header_is_read_as_the_body_of_a_mail_without_sender() -> None:
    mail = parse_mail(b"The printer on floor 3 is broken.\r\nPlease help.\r\n")

    assert mail.body_text == "The printer on floor 3 is broken.\nPlease help."
    assert (mail.from_addr, mail.notes) == ("", ("the mail has no header: its whole text is its body",))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all",
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nbroken",
        b"From: a@example.org\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64",
    ],
)
def test_bad_input_gives_a_result_or_a_decode_error_never_a_crash(raw: bytes) -> None:
    try:
        parse_mail(raw)
    except PermanentError as exc:
        assert exc.code is ErrorCode.DECODE_FAILED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@x> <b@y>", ("a@x", "b@y")),
        ("<a@x>\r\n\t<b@y>\n <a@x>", ("a@x", "b@y")),
        ("bare@x other@y", ("bare@x", "other@y")),
        ("", ()),
        (None, ()),
    ],
)
def test_message_id_lists_split_on_any_whitespace(value: str | None, expected: tuple[str, ...]) -> None:
    assert message_ids(value) == expected


def fixture(name: str) -> bytes:
    return (MAILS / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "subject", "sender"),
    [
        (
            "outlook_new_request_en.eml",
            "Cannot open shared calendar after mailbox migration",
            "m.hollis@contoso.example",
        ),
        (
            "japanese_iso2022jp.eml",
            "【至急】本社3階 第2会議室のプロジェクターが映らない件",
            "t.yamada@sakura-shoji.example",
        ),
        (
            "russian_koi8r.eml",
            "Не работает вход в 1С:Бухгалтерию после смены пароля",
            "i.petrov@severtrans.example",
        ),
        ("chinese_gb2312.eml", "请协助开通新员工的企业邮箱和OA账号", "wangfang@huaxin-keji.example"),
        (
            "folded_encoded_subject.eml",
            "Réclamation urgente : facture n° 2025-0417 débitée deux fois — "
            "merci de régulariser avant le 15 novembre",
            "s.moreau@transports-moreau.example",
        ),
        (
            "outlook_web_reply_it.eml",
            "R: [R-000171] La stampante del 2° piano non stampa più a colori",
            "giulia.romano@studio-ferri.example",
        ),
        ("no_subject_no_messageid.eml", "", "erp-batch@contoso.example"),
    ],
)
def test_client_mails_in_several_charsets(name: str, subject: str, sender: str) -> None:
    mail = parse_mail(fixture(name))

    assert (mail.subject, mail.from_addr) == (subject, sender)
    assert mail.body_text


def test_legacy_charset_bodies_are_decoded() -> None:
    assert parse_mail(fixture("russian_koi8r.eml")).body_text.startswith("Добрый день!")
    assert parse_mail(fixture("chinese_gb2312.eml")).body_text.startswith("您好：")
    assert parse_mail(fixture("japanese_iso2022jp.eml")).body_text.startswith("サポートご担当者様")


def test_missing_message_id_is_none() -> None:
    assert parse_mail(fixture("no_subject_no_messageid.eml")).message_id is None


def test_inline_images_inside_related_parts_and_attachments_are_found() -> None:
    mail = parse_mail(fixture("gmail_new_with_attachment.eml"))

    files = {(a.filename, a.content_type, a.inline, a.content_id) for a in mail.attachments}
    assert ("export_error.png", "image/png", True, "ii_mhj2k7p80") in files
    assert ("fabrikam_logo.png", "image/png", True, "ii_mhj2k7p91") in files
    assert len([a for a in mail.attachments if a.content_type == "application/pdf"]) == 1
    assert mail.body_text.startswith("Hi support team,")


def test_forwarded_mail_is_kept_as_an_eml_attachment() -> None:
    mail = parse_mail(fixture("forwarded_rfc822.eml"))

    [forwarded] = mail.attachments
    assert (forwarded.filename, forwarded.content_type) == (
        "Payment overdue - invoice 4471.eml",
        "message/rfc822",
    )
    assert b"20251103063015.7F2A91C3B4@srv17.northwind-billing.example" in forwarded.content


def test_reply_references_are_read() -> None:
    mail = parse_mail(fixture("outlook_reply_en.eml"))

    assert mail.in_reply_to == ("000001dc4ca1$ff3e7080$5d8e3080$@contoso.example",)
    assert "000001dc4ca1$ff3e7080$5d8e3080$@contoso.example" in mail.references
