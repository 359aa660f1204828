"""The body a person agrees with, and every real part that is not the body kept as a file."""

from pathlib import Path

import pytest

from mail2ticket.config import GlobalConfig
from mail2ticket.mail.parse import parse_mail
from mail2ticket.mail.understand import MailContent, carries_message, understand

MAILS = Path(__file__).parents[1] / "mails"


def content(name: str, **settings: str) -> MailContent:
    return understand(parse_mail((MAILS / name).read_bytes()), GlobalConfig.model_validate(settings))


@pytest.mark.parametrize("order", ["text/html,text/plain", "text/plain,text/html"])
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("stub_text_beside_html.eml", "The customer added a comment: the invoice PDF is still empty."),
        ("empty_text_beside_html.eml", "my keyboard is missing the F5 and F6 keys since the move."),
    ],
)
def test_an_empty_or_stub_text_part_gives_way_to_the_html(name: str, expected: str, order: str) -> None:
    found = content(name, body_parts_order=order)

    assert expected in found.body_text and expected in found.new_part_text
    assert "HTML capable" not in found.body_text


def test_a_text_part_that_says_something_else_than_the_html_gives_way_to_it() -> None:
    found = content("different_text_beside_html.eml")

    assert "The delivery address of order 55120 is wrong" in found.body_text
    assert "Sent with Tool" not in found.body_text


def test_a_text_part_that_carries_the_message_stays_the_body() -> None:
    found = content("outlook_reply_en.eml")

    assert found.body_text.startswith("Hi all,") and "-----Original Message-----" in found.body_text


@pytest.mark.parametrize(
    ("plain", "rendered", "carries"),
    [
        ("", "Hello there", False),
        ("To view this email in your browser, click here.", "A full newsletter " * 20, False),
        ("Hello,\nthe VPN is down since noon.\nBob", "Hello, the VPN is down since noon. Bob", True),
        ("Short note.", "Short note.", True),
        ("Totally other words here", " ".join(f"word{n}" for n in range(40)), False),
    ],
)
def test_whether_the_text_part_carries_the_message(plain: str, rendered: str, carries: bool) -> None:
    assert carries_message(plain, rendered) is carries


def test_apple_mail_text_between_images_is_joined_and_an_image_pasted_twice_is_one_inline_file() -> None:
    found = content("apple_mail_text_between_images.eml")

    assert found.body_text.splitlines() == [
        "Bonjour,",
        "",
        "Au démarrage, l’écran reste noir après le logo :",
        "",
        "Puis, au deuxième essai, ce message apparaît :",
        "",
        "Merci d’avance,",
        "Lucas",
    ]
    [image] = found.attachments
    assert (image.filename, image.inline) == ("ecran.png", True)
    assert found.rejected == () and len(found.copies) == 1


def test_every_real_part_that_is_not_the_body_is_a_file() -> None:
    found = content("files_every_real_part.eml")

    files = [(a.filename, a.content_type) for a in found.attachments]
    assert files == [
        ("report.html", "text/html"),
        ("calendar.ics", "text/calendar"),
        ("server.log", "text/plain"),
    ]
    assert found.rejected == ()
    assert "multipart" not in " ".join(name for name, _ in files)
    assert found.body_text.startswith("Here is the report, the invite and the log")


def test_a_bounce_keeps_its_delivery_report_and_the_returned_mail_as_files() -> None:
    mail = parse_mail((MAILS / "bounce_dsn.eml").read_bytes())

    files = {a.content_type: a for a in mail.attachments}
    assert set(files) == {"message/delivery-status", "message/rfc822"}
    report = files["message/delivery-status"].content.decode()
    assert "Final-Recipient: rfc822; j.doe@contoso.example" in report and "Status: 5.1.10" in report
    assert (
        files["message/rfc822"].content.startswith(b"Return-Path:")
        or b"Subject:" in files["message/rfc822"].content
    )


def test_a_multipart_with_a_wrong_boundary_is_read_with_the_boundary_its_body_uses() -> None:
    mail = parse_mail((MAILS / "wrong_boundary.eml").read_bytes())

    assert mail.body_text == "The scanner on floor 4 shows error E12."
    assert [(a.filename, a.content) for a in mail.attachments] == [
        ("scan.pdf", b"%PDF-1.4\n%\xc3\xa4\xc3\xbc\xc3\xb6\xc3\x9f\n")
    ]


def test_a_multipart_without_any_boundary_is_text_not_a_file() -> None:
    raw = b"From: a@example.org\r\nContent-Type: multipart/mixed\r\n\r\nJust the text.\r\n"

    mail = parse_mail(raw)

    assert (mail.body_text, mail.attachments) == ("Just the text.", ())


def test_a_named_text_part_marked_inline_is_body_and_one_marked_attachment_is_a_file() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: inline; filename="note.txt"\r\n\r\nInline note\r\n'
        b"--b\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="log.txt"\r\n\r\nlog line\r\n'
        b"--b--\r\n"
    )

    mail = parse_mail(raw)

    assert mail.body_text == "Inline note"
    assert [a.filename for a in mail.attachments] == ["log.txt"]


def test_an_image_the_html_shows_is_inline_even_when_marked_attachment() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b'--r\r\nContent-Type: text/html\r\n\r\n<p>See <img src="cid:shot@x"></p>\r\n'
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <shot@x>\r\n"
        b'Content-Disposition: attachment; filename="s.png"'
        b"\r\n\r\nPNGDATA\r\n--r--\r\n"
    )

    [image] = parse_mail(raw).attachments

    assert (image.filename, image.inline, image.content_id) == ("s.png", True, "shot@x")


def test_a_copy_of_an_inline_image_still_shows_in_the_stored_html() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b'--r\r\nContent-Type: text/html\r\n\r\n<p><img src="cid:one@x"> and <img src="cid:two@x"></p>\r\n'
        b"--r\r\nContent-Type: image/gif\r\nContent-ID: <one@x>\r\n\r\nGIF89a-same\r\n"
        b"--r\r\nContent-Type: image/gif\r\nContent-ID: <two@x>\r\n\r\nGIF89a-same\r\n--r--\r\n"
    )

    found = understand(parse_mail(raw), GlobalConfig())

    assert len(found.attachments) == 1 and [c.content_id for c in found.copies] == ["two@x"]
    assert found.body_html is not None and found.body_html.count("cid:") == 2
