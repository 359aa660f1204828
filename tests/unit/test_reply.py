"""The new part of a plain-text reply."""

from mail2ticket.config import GlobalConfig
from mail2ticket.mail.reply import new_part

SETTINGS = GlobalConfig()


def cut(text: str) -> str:
    return new_part(text, SETTINGS.multiline_delimiter_patterns, SETTINGS.introductory_patterns)


def test_quoted_lines_and_their_introduction_are_dropped() -> None:
    text = "Thanks, it works.\n\nOn Mon, 3 Nov 2025 at 10:12, Bob <bob@example.com> wrote:\n> Try again\n> ok"

    assert cut(text) == "Thanks, it works."


def test_french_introduction_is_recognised() -> None:
    text = "Merci !\n\nLe lun. 3 nov. 2025 à 10:12, Bob <bob@example.com> a écrit :\n> Essayez encore"

    assert cut(text) == "Merci !"


def test_outlook_original_message_delimiter_cuts_everything_below() -> None:
    text = "Done.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nSubject: x\n\nold text"

    assert cut(text) == "Done."


def test_outlook_header_block_cuts_everything_below() -> None:
    text = (
        "Bien reçu.\n\nDe : Bob Martin <bob@example.com>\nEnvoyé : lundi 3 novembre 2025 10:12\nÀ : support"
    )

    assert cut(text) == "Bien reçu."


def test_a_mail_without_quotes_is_kept_whole() -> None:
    assert cut("Line one\n\nLine two") == "Line one\n\nLine two"


def test_a_reply_that_is_only_quotes_keeps_the_whole_body() -> None:
    assert cut("> only quoted\n> text") == "> only quoted\n> text"
