"""What a ticket keeps of a mail: body choice, safe HTML, inline images, attachment rules, undesired."""

import hashlib
import io
import struct
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from mail2ticket.config import GlobalConfig
from mail2ticket.mail.attachments import AttachmentKey, safe_filename
from mail2ticket.mail.html import rewrite_cids, sanitize_html
from mail2ticket.mail.parse import parse_mail
from mail2ticket.mail.understand import understand

MAILS = Path(__file__).parents[1] / "mails"


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def mail_with(*files: tuple[bytes, str, str, str | None], html: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "alice@example.org"
    message["Subject"] = "Files"
    message.set_content("See the files.")
    if html:
        message.add_alternative(html, subtype="html")
    for content, content_type, filename, cid in files:
        maintype, subtype = content_type.split("/")
        if cid:
            message.add_attachment(
                content, maintype=maintype, subtype=subtype, filename=filename, disposition="inline", cid=cid
            )
        else:
            message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def test_html_is_preferred_by_default_and_text_when_configured() -> None:
    mail = parse_mail(mail_with(html="<p>HTML <b>body</b></p>"))

    assert understand(mail, GlobalConfig()).new_part_html is not None
    assert understand(mail, GlobalConfig(body_parts_order="text/plain,text/html")).new_part_html is None


def test_html_only_mail_gets_a_text_rendering() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content("<p>Line one</p><p>Line two</p>", subtype="html")

    content = understand(parse_mail(message.as_bytes()), GlobalConfig())

    assert content.body_text == "Line one\nLine two"


@pytest.mark.parametrize(
    ("html", "forbidden"),
    [
        ("<p onclick='steal()'>x</p>", "onclick"),
        ("<script>alert(1)</script><p>x</p>", "alert"),
        ("<form action='https://evil.example'><input name=p></form>", "form"),
        ("<iframe src='https://evil.example'></iframe>", "iframe"),
        ("<a href='javascript:alert(1)'>x</a>", "javascript"),
        ("<img src='https://tracker.example/pixel.gif'>", "tracker"),
        ("<p style='background-image:url(https://tracker.example/x)'>x</p>", "tracker"),
        ("<object data='x.swf'></object><embed src='x.swf'>", "swf"),
        ("<meta http-equiv='refresh' content='0;url=https://evil.example'>", "refresh"),
        ("<svg><script>alert(1)</script></svg>", "alert"),
    ],
)
def test_sanitized_html_has_no_active_or_remote_content(html: str, forbidden: str) -> None:
    assert forbidden not in sanitize_html(html)


def test_sanitized_html_keeps_formatting_links_and_inline_images() -> None:
    html = (
        "<p style='color:red'><b>Bold</b> <a href='https://example.com'>link</a> <img src='cid:logo@x'></p>"
    )

    clean = sanitize_html(html)

    assert "<b>Bold</b>" in clean and 'href="https://example.com"' in clean and 'src="cid:logo@x"' in clean
    assert "color:red" in clean


def test_cid_references_are_rewritten_to_stored_urls() -> None:
    html = '<img src="cid:a@x"><img src="cid:unknown@x">'

    assert rewrite_cids(html, {"a@x": "https://files/a.png"}) == (
        '<img src="https://files/a.png"><img src="cid:unknown@x">'
    )


def test_gmail_images_small_logo_dropped_screenshot_kept_in_place() -> None:
    content = understand(parse_mail((MAILS / "gmail_new_with_attachment.eml").read_bytes()), GlobalConfig())

    assert {a.filename for a in content.attachments} == {"export_error.png", "Q3_sales_report_partial.pdf"}
    [logo] = content.rejected
    assert logo.attachment.filename == "fabrikam_logo.png" and "minimum size" in logo.reason
    assert content.body_html is not None
    assert "cid:ii_mhj2k7p80" in content.body_html and "cid:ii_mhj2k7p91" not in content.body_html


def test_images_over_the_maximum_are_resized() -> None:
    raw = mail_with((png(800, 400), "image/png", "shot.png", None))

    [image] = understand(parse_mail(raw), GlobalConfig(images_maximum_size="200x200")).attachments

    assert Image.open(io.BytesIO(image.content)).size == (200, 100)
    assert (image.size, image.sha256) == (len(image.content), hashlib.sha256(image.content).hexdigest())


def test_decompression_bombs_are_refused() -> None:
    raw = mail_with((bomb_png(60000, 60000), "image/png", "bomb.png", None))

    content = understand(parse_mail(raw), GlobalConfig(images_maximum_size="200x200"))

    assert content.attachments == ()
    assert "refused" in content.rejected[0].reason


def test_excluded_types_are_rejected_also_when_disguised() -> None:
    raw = mail_with(
        (b"MZ...", "application/x-msdownload", "setup.exe", None),
        (b"MZ...", "application/octet-stream", "invoice.exe", None),
        (b"%PDF", "application/pdf", "ok.pdf", None),
    )

    content = understand(parse_mail(raw), GlobalConfig())

    assert [a.filename for a in content.attachments] == ["ok.pdf"]
    assert {r.attachment.filename for r in content.rejected} == {"setup.exe", "invoice.exe"}


def test_duplicates_of_existing_ticket_files_are_not_added_again() -> None:
    raw = mail_with(
        (b"%PDF-1", "application/pdf", "a.pdf", None), (b"%PDF-2", "application/pdf", "b.pdf", None)
    )
    mail = parse_mail(raw)
    first = mail.attachments[0]
    existing = [AttachmentKey(first.filename, first.content_type, first.size, first.sha256)]

    content = understand(mail, GlobalConfig(), existing)

    assert [a.filename for a in content.attachments] == ["b.pdf"]
    assert content.without(existing) is content
    assert [a.filename for a in understand(mail, GlobalConfig()).without(existing).attachments] == ["b.pdf"]


def test_same_file_twice_in_one_mail_is_kept_once() -> None:
    raw = mail_with((b"%PDF", "application/pdf", "a.pdf", None), (b"%PDF", "application/pdf", "a.pdf", None))

    assert len(understand(parse_mail(raw), GlobalConfig()).attachments) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\bob\\report.pdf", "report.pdf"),
        ("a<b>:c|d?.txt", "a_b_c_d_.txt"),
        ("CON.txt", "_CON.txt"),
        ("", "attachment.pdf"),
        ("\x00\x1f", "attachment.pdf"),
        ("résumé Müller.pdf", "résumé Müller.pdf"),
        ("x" * 300 + ".pdf", "x" * 176 + ".pdf"),
    ],
)
def test_file_names_are_made_safe(name: str, expected: str) -> None:
    assert safe_filename(name, "application/pdf") == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("autoreply_out_of_office.eml", "Auto-Submitted: auto-replied"),
        ("bounce_dsn.eml", "delivery status report"),
        ("bulk_newsletter.eml", "Precedence: bulk"),
        ("gmail_reply_fr.eml", None),
    ],
)
def test_undesired_mail_is_recognised(name: str, reason: str | None) -> None:
    assert understand(parse_mail((MAILS / name).read_bytes()), GlobalConfig()).undesired == reason


def test_forwarded_mail_stays_an_eml_attachment() -> None:
    content = understand(parse_mail((MAILS / "forwarded_rfc822.eml").read_bytes()), GlobalConfig())

    [forwarded] = content.attachments
    assert (forwarded.filename, forwarded.content_type) == (
        "Payment overdue - invoice 4471.eml",
        "message/rfc822",
    )
