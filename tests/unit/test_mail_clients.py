"""Whole mails as clients send them (tests/mails): the new part a person agrees with, in many languages."""

from pathlib import Path

import pytest

from mail2ticket.config import GlobalConfig
from mail2ticket.mail.parse import parse_mail
from mail2ticket.mail.understand import MailContent, understand

MAILS = Path(__file__).parents[1] / "mails"


def content(name: str) -> MailContent:
    return understand(parse_mail((MAILS / name).read_bytes()), GlobalConfig())


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        (
            "outlook_reply_sv.eml",
            "Hej,",
            "skrivaren på plan 2 fungerar igen efter omstarten. Tack för hjälpen!",
        ),
        (
            "outlook_web_reply_pl.eml",
            "Dzień dobry,",
            "po aktualizacji nadal nie mogę się zalogować do VPN. Błąd 809.",
        ),
        ("gmail_reply_ru.eml", "Добрый день!", "Спасибо, после перезагрузки всё заработало."),
        ("gmail_reply_ja_iso2022jp.eml", "サポートご担当者様", "山田"),
        ("iphone_reply_de.eml", "Danke, funktioniert wieder!", "Danke, funktioniert wieder!"),
        ("samsung_reply_es.eml", "Ya llegan otra vez, gracias.", "Ya llegan otra vez, gracias."),
        ("outlook_ios_reply_nl.eml", "De kassa werkt weer, bedankt!", "De kassa werkt weer, bedankt!"),
    ],
)
def test_client_replies_keep_the_new_part_without_quote_nor_signature(
    name: str, first: str, last: str
) -> None:
    found = content(name)

    lines = found.new_part_without_signature.splitlines()
    assert (lines[0], lines[-1]) == (first, last)
    assert len(found.body_text) > len(found.new_part_text)


def test_outlook_web_html_reply_is_cut_at_its_polish_header_block() -> None:
    found = content("outlook_web_reply_pl.eml")

    assert found.new_part_html is not None and "Błąd 809" in found.new_part_html
    assert "zainstalować" not in found.new_part_html


def test_an_inline_reply_from_thunderbird_keeps_each_answer_and_the_signature_apart() -> None:
    found = content("thunderbird_inline_reply_fr.eml")

    assert (
        found.new_part_without_signature == "Oui, elle est allumée depuis ce matin.\n\nNon, il est vert fixe."
    )
    assert found.signature.endswith("Sophie Moreau\nTransports Moreau")


def test_the_device_lines_of_mobile_clients_are_the_signature() -> None:
    assert content("iphone_reply_de.eml").signature == "Von meinem iPhone gesendet"
    assert content("samsung_reply_es.eml").signature == "Enviado desde mi smartphone Samsung Galaxy."
    assert content("outlook_ios_reply_nl.eml").signature.endswith(
        "Outlook voor iOS downloaden<https://aka.ms/o0ukef>"
    )


def test_a_japanese_mail_in_microsoft_extended_iso_2022_jp_keeps_its_circled_digits_and_half_width_kana() -> (
    None
):
    mail = parse_mail((MAILS / "gmail_reply_ja_iso2022jp.eml").read_bytes())

    assert mail.subject == "Re: [R-000204] プリンターが動きません ①"
    assert "①再起動、②ケーブルの差し直しを試しましたが、ﾌﾟﾘﾝﾀｰは動きません。" in mail.body_text
    assert mail.from_name == "山田"
