"""The new part of replies from many clients and languages, in text and HTML."""

from pathlib import Path

import pytest

from mail2ticket.config import GlobalConfig
from mail2ticket.mail.parse import parse_mail
from mail2ticket.mail.reply import Reply, extract, rules
from mail2ticket.mail.reply_html import html_reply
from mail2ticket.mail.understand import understand

SETTINGS = GlobalConfig()
RULES = rules(tuple(SETTINGS.multiline_delimiter_patterns), tuple(SETTINGS.introductory_patterns))
MAILS = Path(__file__).parents[1] / "mails"


def text_cut(text: str) -> Reply:
    return extract(text, RULES)


def html_cut(html: str) -> str:
    return html_reply(html, SETTINGS.html_tags_to_remove, RULES).reply.text


@pytest.mark.parametrize(
    "introduction",
    [
        "On Mon, 3 Nov 2025 at 10:12, Bob <bob@example.com> wrote:",
        "Le lun. 3 nov. 2025 à 10:12, Bob <bob@example.com> a écrit :",
        "Am 03.11.25 um 10:12 schrieb Bob Martin:",
        "El 3 nov 2025, a las 10:12, Bob <bob@example.com> escribió:",
        "Il giorno lun 3 nov 2025 alle ore 10:12 Bob <bob@example.com> ha scritto:",
        "Op ma 3 nov 2025 om 10:12 schreef Bob <bob@example.com>:",
        "Den 3. nov. 2025 kl. 10.12 skrev Bob <bob@example.com>:",
    ],
)
def test_localized_introductions_cut_the_quote_even_without_quote_marks(introduction: str) -> None:
    text = f"Thanks, done.\nIt works now.\n\n{introduction}\n\nThe original message, not quoted."

    assert text_cut(text).text == "Thanks, done.\nIt works now."


def test_introduction_folded_over_two_lines_is_recognised() -> None:
    text = "Great.\nAll good.\n\nOn Tue, Sep 25, 2012 at 8:59 AM, Chris\n<chris@example.com> wrote:\n\n> old"

    assert text_cut(text).text == "Great.\nAll good."


@pytest.mark.parametrize(
    ("block", "language"),
    [
        ("From: Bob\nSent: Monday\nTo: Support\nSubject: x", "en"),
        ("De : Bob\nEnvoyé : lundi\nÀ : Support\nObjet : x", "fr"),
        ("Von: Bob\nGesendet: Montag\nAn: Support\nBetreff: x", "de"),
        ("De: Bob\nEnviado: lunes\nPara: Soporte\nAsunto: x", "es"),
        ("Da: Bob\nInviato: lunedì\nA: Supporto\nOggetto: x", "it"),
        ("Van: Bob\nVerzonden: maandag\nAan: Support\nOnderwerp: x", "nl"),
        ("*From:* Bob\n*Sent:* Monday\n*To:* Support", "bold markers"),
        ("Date: Monday\nSubject: x\nFrom: Bob\nTo: Support", "another order"),
    ],
)
def test_outlook_header_blocks_cut_everything_below(block: str, language: str) -> None:
    assert text_cut(f"Noted, thanks.\n\n{block}\n\nold text").text == "Noted, thanks.", language


@pytest.mark.parametrize(
    "separator",
    ["-----Original Message-----", "-----Ursprüngliche Nachricht-----", "-----Oprindelig meddelelse-----"],
)
def test_original_message_lines_go_with_the_header_block(separator: str) -> None:
    assert text_cut(f"Done.\n\n{separator}\nFrom: Bob\nSent: Monday\n\nold").text == "Done."


def test_inline_reply_keeps_each_answer_and_drops_the_quotes() -> None:
    text = (
        "On Mon, Bob <bob@example.com> wrote:\n> question one?\n\nAnswer one.\n\n> question two?\n\n"
        "Answer two."
    )

    assert text_cut(text).text == "Answer one.\n\nAnswer two."


def test_a_mail_that_starts_with_a_forwarded_header_block_keeps_the_text_below() -> None:
    text = "From: Jan <jan@example.com>\nSent: Monday\nSubject: Test\n\nHello Anna,\n\nHow are you?"

    assert text_cut(text).text == "Hello Anna,\n\nHow are you?"


def test_configured_single_line_delimiter_cuts() -> None:
    compiled = rules((), (), (r"^## Please reply above this line ##",))

    assert extract("Ok\n## Please reply above this line ##\nold", compiled).text == "Ok"


@pytest.mark.parametrize(
    ("text", "signature"),
    [
        ("Here it is.\n\n--\nBob\nACME", "--\nBob\nACME"),
        ("Here it is.\n\nSent from my iPhone", "Sent from my iPhone"),
        ("Here it is.\n\nThanks,\nBob", "Thanks,\nBob"),
        ("Hej,\n\nSvar.\n\nMed venlig hilsen\nAnders", "Med venlig hilsen\nAnders"),
        ("Here it is.\n\n-Bob", "-Bob"),
        ("Here it is.\n\nSent from my desk, which is easier.", ""),
        ("Fixed -- this is not a signature.", ""),
        ("List:\n   - one\n   - and another", ""),
    ],
)
def test_signature_is_found_at_the_end_and_kept_in_the_text(text: str, signature: str) -> None:
    reply = text_cut(text)

    assert (reply.text, reply.signature) == (text, signature)


def test_gateway_banner_on_top_is_dropped() -> None:
    text = (
        "CAUTION: This email originated from outside of the organization. Do not click links.\n\nHello,\nhelp"
    )

    assert text_cut(text).text == "Hello,\nhelp"


def test_gmail_quote_and_its_attribution_are_removed_from_html() -> None:
    html = (
        '<div dir="ltr">Fine, thanks.</div><div class="gmail_quote"><div class="gmail_attr">On Mon, Bob '
        "&lt;bob@example.com&gt; wrote:</div><blockquote>old text</blockquote></div>"
    )

    found = html_reply(html, SETTINGS.html_tags_to_remove, RULES)

    assert found.reply.text == "Fine, thanks."
    assert "old text" not in found.html and "Fine, thanks." in found.html
    assert "old text" in found.full_text


def test_outlook_web_reply_block_is_cut_in_html() -> None:
    html = (
        "<div>Done on my side.</div><hr><div id='divRplyFwdMsg'><b>From:</b> Bob<br><b>Sent:</b> Monday</div>"
        "<div>old text</div>"
    )

    found = html_reply(html, SETTINGS.html_tags_to_remove, RULES)

    assert found.reply.text == "Done on my side."
    assert "old text" not in found.html and "divRplyFwdMsg" not in found.html


def test_outlook_desktop_header_block_without_markers_is_cut_in_html() -> None:
    html = (
        "<p>Answer here.</p><div style='border-top:solid #E1E1E1 1.0pt'><p><b>Van:</b> Bob<br>"
        "<b>Verzonden:</b> maandag<br><b>Aan:</b> Support</p></div><p>old text</p>"
    )

    assert html_cut(html) == "Answer here."


def test_attribution_above_a_blockquote_in_the_same_paragraph_is_cut() -> None:
    html = (
        "<p>Hi. I am fine.<br>Alex<br>26.06.2014, 14:41, Bob &lt;bob@example.com&gt;:</p>"
        "<blockquote>Hi</blockquote>"
    )

    assert html_cut(html) == "Hi. I am fine.\nAlex"


def test_html_with_nothing_quoted_is_kept_whole() -> None:
    html = "<p>Just a new request.</p>"

    found = html_reply(html, SETTINGS.html_tags_to_remove, RULES)

    assert (found.html, found.reply.text) == (html, "Just a new request.")


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("outlook_reply_en.eml", "Hi all,", "Daniel"),
        ("gmail_reply_fr.eml", "Bonjour,", "Service achats – Bureau Durand"),
        ("gmail_reply_nl.eml", "Hoi,", "Tuinbouwbedrijf Hendriks"),
        ("thunderbird_reply_de.eml", "Hallo Jonas, hallo Support,", "Tel. +49 711 555 0123"),
        ("apple_mail_reply_es.eml", "Hola:", "Enviado desde mi iPhone"),
        ("outlook_reply_nl.eml", "Hallo,", "T 030 123 4567"),
        ("outlook_web_reply_it.eml", "Buongiorno,", "Studio Ferri & Associati"),
    ],
)
def test_fixture_replies_new_part_in_text_and_html(name: str, first: str, last: str) -> None:
    content = understand(parse_mail((MAILS / name).read_bytes()), SETTINGS)

    lines = content.new_part_text.splitlines()
    assert (lines[0], lines[-1]) == (first, last)
    assert content.new_part_html is not None and first.rstrip(",:") in content.new_part_html
    assert content.body_text.startswith(content.new_part_text.splitlines()[0]) or name.startswith("thunder")
    assert len(content.body_text) > len(content.new_part_text)
