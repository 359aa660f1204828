"""Robust parsing: legacy charsets, signed and S/MIME mail, TNEF, broken structures, never a crash."""

import random
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest
from asn1crypto import cms

from mail2ticket.errors import ErrorCode, PermanentError
from mail2ticket.mail.charsets import decode_bytes
from mail2ticket.mail.parse import ENCRYPTED_NOTICE, parse_mail, unflow

MAILS = Path(__file__).parents[1] / "mails"


def _text_mail(charset: str, body: bytes, subject: bytes = b"x") -> bytes:
    return (
        b"From: a@example.org\r\nSubject: " + subject + b"\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        ("windows-1258", "Xin chào".encode("cp1258"), "Xin chào"),
        ("gb2312", "请协助".encode("gb18030"), "请协助"),
        ("x-gbk", "开通邮箱".encode("gbk"), "开通邮箱"),
        ("us-ascii", "Grüße".encode(), "Grüße"),
        ("iso-8859-1", "Grüße".encode(), "Grüße"),
        ("utf-8", "Café".encode("cp1252"), "Café"),
        ("ks_c_5601-1987", "안녕하세요".encode("cp949"), "안녕하세요"),
    ],
)
def test_legacy_and_mislabelled_charsets_are_read(charset: str, body: bytes, expected: str) -> None:
    assert parse_mail(_text_mail(charset, body)).body_text == expected


def test_raw_8bit_header_is_read_as_utf8() -> None:
    mail = parse_mail(_text_mail("utf-8", b"body", subject="Problème d'accès".encode()))

    assert mail.subject == "Problème d'accès"


def test_encoded_word_in_an_unknown_charset_does_not_fail() -> None:
    mail = parse_mail(_text_mail("utf-8", b"body", subject=b"=?x-nonsense?Q?caf=C3=A9?="))

    assert "caf" in mail.subject


def test_decode_bytes_never_raises_on_undecodable_input() -> None:
    assert decode_bytes(b"\x81\x8d\x8f\x90\x9d", "windows-1252")
    assert decode_bytes(b"\xff\xfe", "no-such-charset")


def test_missing_subject_date_and_message_id_are_empty() -> None:
    mail = parse_mail(b"From: a@example.org\r\n\r\nbody\r\n")

    assert (mail.subject, mail.date, mail.message_id, mail.body_text) == ("", None, None, "body")


def test_format_flowed_text_is_unflowed() -> None:
    assert unflow("one two \nthree\n> quoted \n> more\n-- \nsig") == "one two three\n> quoted more\n-- \nsig"


def test_thunderbird_flowed_paragraph_is_one_line() -> None:
    mail = parse_mail((MAILS / "thunderbird_reply_de.eml").read_bytes())

    assert any(
        line.startswith("bei mir ist das Laufwerk P: seit heute früh ebenfalls weg.") and line.endswith(".")
        for line in mail.body_text.splitlines()
    )


def test_multipart_signed_mail_is_read_and_its_signature_is_not_a_file() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: signed\r\n"
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary=s\r\n\r\n'
        b"--s\r\nContent-Type: text/plain\r\n\r\nSigned hello\r\n"
        b"--s\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--s--\r\n"
    )

    mail = parse_mail(raw)

    assert (mail.body_text, mail.attachments) == ("Signed hello", ())


def _smime_signed(inner: bytes) -> bytes:
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [],
            "encap_content_info": {"content_type": "data", "content": inner},
            "signer_infos": [],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def test_opaque_smime_signed_mail_is_read_from_its_signed_data() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = "S/MIME"
    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\nInside the signature\r\n"
    message.set_content(
        _smime_signed(inner),
        maintype="application",
        subtype="pkcs7-mime",
        params={"smime-type": "signed-data"},
    )

    mail = parse_mail(message.as_bytes())

    assert mail.subject == "S/MIME"
    assert mail.body_text == "Inside the signature"


def test_an_encrypted_smime_mail_says_so_and_keeps_its_content_as_a_file() -> None:
    # Given a mail encrypted for its recipient (CMS EnvelopedData, which only their private key opens)
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = "Confidential"
    enveloped = cms.ContentInfo(
        {
            "content_type": "enveloped_data",
            "content": cms.EnvelopedData(
                {
                    "version": "v0",
                    "recipient_infos": [],
                    "encrypted_content_info": {
                        "content_type": "data",
                        "content_encryption_algorithm": {
                            "algorithm": "aes256_cbc",
                            "parameters": b"\x00" * 16,
                        },
                        "encrypted_content": b"\x01" * 32,
                    },
                }
            ),
        }
    ).dump()
    message.set_content(
        enveloped,
        maintype="application",
        subtype="pkcs7-mime",
        params={"smime-type": "enveloped-data", "name": "smime.p7m"},
    )

    mail = parse_mail(message.as_bytes())

    # Then the body says why it is empty, and the encrypted content is kept
    assert mail.body_text == ENCRYPTED_NOTICE
    assert [a.content_type for a in mail.attachments] == ["application/pkcs7-mime"]


def test_an_encrypted_openpgp_mail_says_so() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: secret\r\n"
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=e\r\n\r\n'
        b"--e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        b'--e\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
        b"-----BEGIN PGP MESSAGE-----\r\nhQEMA1234\r\n-----END PGP MESSAGE-----\r\n--e--\r\n"
    )

    mail = parse_mail(raw)

    assert mail.body_text == ENCRYPTED_NOTICE
    assert "encrypted.asc" in [a.filename for a in mail.attachments]


def test_a_signed_mail_is_not_called_encrypted() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\n\r\n"
    message.set_content(_smime_signed(inner), maintype="application", subtype="pkcs7-mime")

    assert parse_mail(message.as_bytes()).body_text == ""


def _tnef(files: dict[str, bytes]) -> bytes:
    def attribute(attribute_id: int, data: bytes) -> bytes:
        checksum = struct.pack("<H", sum(data) & 0xFFFF)
        return struct.pack("<BII", 2, attribute_id, len(data)) + data + checksum

    out = struct.pack("<IH", 0x223E9F78, 1)
    for name, data in files.items():
        out += attribute(0x00069002, b"\x00" * 14)
        out += attribute(0x00018010, name.encode() + b"\x00")
        out += attribute(0x0006800F, data)
    return out


def test_winmail_dat_is_expanded_into_its_files() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content("See the files.")
    winmail = _tnef({"report.txt": b"quarterly", "notes.txt": b"notes"})
    message.add_attachment(winmail, maintype="application", subtype="ms-tnef", filename="winmail.dat")

    mail = parse_mail(message.as_bytes())

    assert [(a.filename, a.content) for a in mail.attachments] == [
        ("report.txt", b"quarterly"),
        ("notes.txt", b"notes"),
    ]


def test_unreadable_winmail_dat_is_kept_as_it_is() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content("x")
    message.add_attachment(b"not tnef", maintype="application", subtype="ms-tnef", filename="winmail.dat")

    [attachment] = parse_mail(message.as_bytes()).attachments

    assert (attachment.filename, attachment.content) == ("winmail.dat", b"not tnef")


def test_attachment_without_content_is_kept() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=empty.pdf\r\n\r\n"
        b"--b--\r\n"
    )

    [attachment] = parse_mail(raw).attachments

    assert (attachment.filename, attachment.size) == ("empty.pdf", 0)


def test_gmail_attachment_with_a_content_id_is_not_inline() -> None:
    mail = parse_mail((MAILS / "gmail_new_with_attachment.eml").read_bytes())

    [pdf] = [a for a in mail.attachments if a.content_type == "application/pdf"]
    assert pdf.inline is False


def test_deeply_nested_multiparts_are_handled() -> None:
    depth = 200
    head = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(depth)
    )
    raw = b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n" + head + b"x\r\n"
    try:
        parse_mail(raw)
    except PermanentError as exc:
        assert exc.code is ErrorCode.DECODE_FAILED


def test_random_byte_soup_gives_a_result_or_a_decode_error() -> None:
    generator = random.Random(7)
    seeds = [(MAILS / name).read_bytes() for name in ("gmail_new_with_attachment.eml", "bounce_dsn.eml")]
    for _ in range(60):
        raw = bytearray(generator.choice(seeds))
        for _ in range(20):
            position = generator.randrange(len(raw))
            raw[position : position + generator.randrange(1, 40)] = generator.randbytes(
                generator.randrange(0, 8)
            )
        try:
            parse_mail(bytes(raw))
        except PermanentError as exc:
            assert exc.code is ErrorCode.DECODE_FAILED and exc.message
