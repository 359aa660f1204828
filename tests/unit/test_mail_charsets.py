"""Charsets decoded as mail clients do: labels through their aliases and supersets, ISO-2022-JP with its
extensions, UTF-7, UTF-8 whatever a single-byte label says, then a guess for 8-bit text that is not Latin."""

from pathlib import Path

import pytest

from mail2ticket.mail.charsets import codec_for, decode_bytes
from mail2ticket.mail.parse import parse_mail

MAILS = Path(__file__).parents[1] / "mails"


def _mail(charset: str | None, body: bytes, subject: bytes = b"x", encoding: bytes = b"8bit") -> bytes:
    declared = b"; charset=" + charset.encode() if charset is not None else b""
    return (
        b"From: a@example.org\r\nSubject: " + subject + b"\r\nContent-Type: text/plain" + declared + b"\r\n"
        b"Content-Transfer-Encoding: " + encoding + b"\r\n\r\n" + body + b"\r\n"
    )


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("GB2312", "gb18030"),
        ("gbk", "gb18030"),
        ("ISO-8859-1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("ks_c_5601-1987", "cp949"),
        ("Shift_JIS", "cp932"),
        ("big5", "big5hkscs"),
        ("iso-8859-8-i", "iso8859-8"),
        ("windows-874", "cp874"),
        ('"utf8"', "utf-8"),
        ("x-unknown", "utf-8"),
        ("no-such-charset", None),
    ],
)
def test_labels_are_read_through_their_aliases_and_supersets(label: str, codec: str | None) -> None:
    assert codec_for(label) == codec


def test_iso_2022_jp_with_microsoft_extensions_is_read_as_windows_does() -> None:
    # ① and ㈱ (NEC row 13) and half-width katakana (ESC ( I), which strict ISO-2022-JP has not
    data = b'\x1b$B-!-j\x1b(I61\x1b(B ok \x1b$B$"\x1b(B'

    assert decode_bytes(data, "iso-2022-jp") == "①㈱ｶｱ ok あ"


def test_undeclared_iso_2022_jp_escapes_are_read_not_shown() -> None:
    assert decode_bytes("サポート 漢字".encode("iso2022_jp"), "us-ascii") == "サポート 漢字"


def test_utf_7_is_decoded() -> None:
    mail = parse_mail((MAILS / "utf7_body.eml").read_bytes())

    assert mail.body_text == "Dobrý den, tiskárna v kanceláři nefunguje. Děkuji, Eva"


def test_gbk_labelled_latin_1_is_recognised_in_the_body_and_in_a_raw_8_bit_subject() -> None:
    mail = parse_mail((MAILS / "gbk_labelled_latin1.eml").read_bytes())

    assert mail.subject == "打印机无法连接"
    assert mail.body_text.startswith("您好：\n\n新员工张伟的电脑无法连接打印机")


@pytest.mark.parametrize(
    ("charset", "text", "codec"),
    [
        (None, "Не работает вход в систему после смены пароля, помогите пожалуйста", "cp1251"),
        ("iso-8859-1", "Не работает вход в систему после смены пароля, помогите пожалуйста", "koi8_r"),
        ("utf-8", "プリンターが動きません。三階のプリンターが紙詰まりです", "shift_jis"),
        ("us-ascii", "请协助开通新员工的企业邮箱和办公系统账号，谢谢您的帮助", "gb18030"),
    ],
)
def test_undeclared_or_mislabelled_8_bit_text_is_guessed(charset: str | None, text: str, codec: str) -> None:
    assert parse_mail(_mail(charset, text.encode(codec))).body_text == text


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        ("us-ascii", "Grüße aus München".encode(), "Grüße aus München"),
        ("koi8-r", "Привет".encode(), "Привет"),
        ("utf-8", "Grüße aus München, schöne Grüße".encode("cp1252"), "Grüße aus München, schöne Grüße"),
        (None, "Café crème".encode("cp1252"), "Café crème"),
        ("windows-1250", "Dzień dobry".encode("cp1250"), "Dzień dobry"),
    ],
)
def test_utf8_wins_over_single_byte_labels_and_latin_text_stays_latin(
    charset: str | None, body: bytes, expected: str
) -> None:
    assert parse_mail(_mail(charset, body)).body_text == expected


def test_an_encoded_word_in_a_hebrew_logical_charset_is_read() -> None:
    subject = b"=?iso-8859-8-i?B?" + __import__("base64").b64encode("שלום עולם".encode("iso8859_8")) + b"?="

    assert parse_mail(_mail("utf-8", b"x", subject)).subject == "שלום עולם"


def test_an_encoded_word_whose_label_lies_is_read_as_utf8() -> None:
    assert parse_mail(_mail("utf-8", b"x", b"=?iso-8859-1?Q?caf=C3=A9?=")).subject == "café"


def test_decoding_never_raises_on_hostile_bytes() -> None:
    for data in (b"\x81\x8d\x8f\x90\x9d" * 20, b"\x1b$B\xff\xfe", b"\xff" * 100):
        for charset in (None, "iso-2022-jp", "utf-7", "gb2312", "windows-1252", "nonsense"):
            assert isinstance(decode_bytes(data, charset), str)
