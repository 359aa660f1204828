"""Hostile or broken input stays cheap and never refuses a mail: bounded HTML depth and size, MIME parts,
headers, References; HTML Python's parser rejects; URLs hidden from the sanitizer's scheme check."""

import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from mail2ticket.config import GlobalConfig
from mail2ticket.mail import html as html_module
from mail2ticket.mail import parse as parse_module
from mail2ticket.mail.html import MAX_HTML_CHARS, MAX_HTML_DEPTH, bound_html, html_to_text, sanitize_html
from mail2ticket.mail.parse import MAX_HEADER_CHARS, MAX_HEADERS, MAX_PARTS, MAX_REFERENCES, parse_mail
from mail2ticket.mail.understand import understand

MAILS = Path(__file__).parents[1] / "mails"
# Far under a processor's timeout: these inputs took minutes before they were bounded.
SECONDS = 3.0


def _html_mail(html: str) -> bytes:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = "html"
    message.set_content(html, subtype="html")
    return message.as_bytes()


def _timed(raw: bytes) -> float:
    started = time.perf_counter()
    understand(parse_mail(raw), GlobalConfig())
    return time.perf_counter() - started


def test_deeply_nested_html_is_flattened_below_the_browser_limit_and_keeps_its_text() -> None:
    depth = 100_000
    html = "<div>" * depth + "deep text" + "</div>" * depth

    bounded, note = bound_html(html)

    assert note is not None and "flattened" in note and f"{depth:,}" in note
    assert bounded.count("<div>") == MAX_HTML_DEPTH
    assert "deep text" in html_to_text(bounded)


def test_a_mail_with_deeply_nested_html_is_processed_in_seconds_and_says_so() -> None:
    raw = _html_mail("<div>" * 60_000 + "Printer broken" + "</div>" * 60_000)

    assert _timed(raw) < SECONDS
    mail = parse_mail(raw)
    assert mail.body_text == "Printer broken" and any("flattened" in note for note in mail.notes)


def test_html_nested_less_than_the_limit_is_left_as_it_is() -> None:
    html = "<div>" * 300 + "x" + "</div>" * 300 + "<p>unclosed" * 2000

    assert bound_html(html) == (html, None)


def test_huge_html_is_cut_at_a_tag_and_the_note_says_the_raw_mail_keeps_it() -> None:
    html = "<p>line of text</p>" * (MAX_HTML_CHARS // 10)

    bounded, note = bound_html(html)

    assert len(bounded) <= MAX_HTML_CHARS and bounded.endswith("</p>")
    assert note is not None and "raw mail keeps it whole" in note
    assert _timed(_html_mail(html)) < SECONDS


def test_mime_parts_beyond_the_bound_are_left_in_the_raw_mail() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content("many parts")
    for n in range(MAX_PARTS + 20):
        message.add_attachment(
            b"x%d" % n, maintype="application", subtype="octet-stream", filename=f"f{n}.bin"
        )

    mail = parse_mail(message.as_bytes())

    assert len(mail.attachments) == MAX_PARTS - 1  # the text body is one of the parts read
    assert any("21 more MIME parts" in note for note in mail.notes)


def test_a_mail_with_300_attachments_stays_fast() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content("300 scans")
    for n in range(300):
        message.add_attachment(
            bytes([n % 256]) * 2000, maintype="application", subtype="pdf", filename=f"s{n}.pdf"
        )
    raw = message.as_bytes()

    assert _timed(raw) < SECONDS
    assert len(parse_mail(raw).attachments) == 300


def test_huge_and_numerous_headers_are_bounded() -> None:
    many = b"".join(b"X-Trace-%d: hop\r\n" % n for n in range(MAX_HEADERS + 500))
    huge = b"Subject: " + b"A" * (MAX_HEADER_CHARS * 40) + b"\r\n"
    raw = b"From: a@example.org\r\n" + huge + many + b"\r\nbody\r\n"

    started = time.perf_counter()
    mail = parse_mail(raw)

    assert time.perf_counter() - started < SECONDS
    assert len(mail.subject) == MAX_HEADER_CHARS and len(mail.headers) <= MAX_HEADERS
    assert any("longer than" in note for note in mail.notes)
    assert any(f"more than {MAX_HEADERS} header fields" in note for note in mail.notes)


def test_references_keep_their_first_and_latest_ids() -> None:
    ids = b" ".join(b"<id%d@example.org>" % n for n in range(5000))
    raw = b"From: a@example.org\r\nReferences: " + ids + b"\r\n\r\nbody\r\n"

    mail = parse_mail(raw)

    assert len(mail.references) == MAX_REFERENCES
    assert (mail.references[0], mail.references[-1]) == ("id0@example.org", "id4999@example.org")


def test_markup_python_s_parser_rejects_is_read_by_the_lenient_parser() -> None:
    found = understand(parse_mail((MAILS / "html_rejected_markup.eml").read_bytes()), GlobalConfig())

    assert "the checkout page shows error 500" in found.body_text
    assert found.body_html is not None and "https://shop.example/orders/7781" in found.body_html


def test_even_when_every_parser_fails_the_html_is_read_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    real = html_module.BeautifulSoup

    def rejecting(markup: str, parser: str) -> object:
        if markup.startswith("<pre>"):  # the plain-text fallback
            return real(markup, parser)
        raise html_module.ParserRejectedMarkup("rejected")

    monkeypatch.setattr(html_module, "BeautifulSoup", rejecting)

    assert html_to_text("<p>still <b>readable</b></p>") == "still readable"


def test_urls_are_read_as_browsers_read_them_before_the_scheme_check() -> None:
    cleaned = sanitize_html(
        '<a href="\x01java\x03script:alert(1)">a</a><a href="&nbsp;javascript:alert(2)">b</a>'
        '<a href="jav&#x09;ascript:alert(3)">c</a><a href="\u2003vbscript:x">d</a>'
        '<a href="https://example.org/ok">e</a><img src="https://tracker.example/p.gif"><img src="cid:ok">'
    )

    assert "script" not in cleaned.lower()
    assert 'href="https://example.org/ok"' in cleaned and 'src="cid:ok"' in cleaned
    assert "tracker" not in cleaned


def test_parse_bounds_are_the_documented_numbers() -> None:
    assert (parse_module.MAX_PARTS, parse_module.MAX_HEADERS, parse_module.MAX_REFERENCES) == (
        1000,
        1000,
        100,
    )
    assert (html_module.MAX_HTML_DEPTH, html_module.MAX_HTML_CHARS) == (512, 512 * 1024)
