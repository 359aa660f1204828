"""`mail2ticket parse`: one JSON object per file, offline, for mail files and bare bodies."""

import json
from pathlib import Path

import pytest

from mail2ticket.cli.main import main

MAILS = Path(__file__).parents[1] / "mails"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["parse", *argv])
    return code, capsys.readouterr().out


def test_json_output_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, str(MAILS / "gmail_new_with_attachment.eml"), "--json")

    result = json.loads(out)
    assert code == 0
    assert {"subject", "from", "body_text", "body_html", "new_part_text", "attachments", "undesired"} <= set(
        result
    )
    assert result["from"] == "priya.raman@fabrikam.example"
    assert result["undesired"] is None
    [shot] = [a for a in result["attachments"] if a["filename"] == "export_error.png"]
    assert shot == {
        "filename": "export_error.png",
        "content_type": "image/png",
        "size": 486,
        "sha256": "e5251fb12a8d283c9192eec5b19881e2a0843bf45df9c0a735c85aee8c0f3045",
        "inline": True,
        "content_id": "ii_mhj2k7p80",
    }


def test_undesired_reason_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, str(MAILS / "autoreply_out_of_office.eml"), "--json")

    assert json.loads(out)["undesired"] == "Auto-Submitted: auto-replied"


@pytest.mark.parametrize(
    ("input_format", "body", "new_part"),
    [
        ("text", "Thanks!\n\nOn Mon, Bob <b@example.com> wrote:\n> old", "Thanks!"),
        ("html", "<p>Thanks!</p><blockquote>old</blockquote>", "Thanks!"),
    ],
)
def test_bare_bodies_are_read_with_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, input_format: str, body: str, new_part: str
) -> None:
    path = tmp_path / "body"
    path.write_text(body)

    _, out = run(capsys, str(path), "--format", input_format, "--json")

    assert json.loads(out)["new_part_text"] == new_part


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe\x00garbage", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"])
def test_input_that_is_no_mail_gives_a_decode_error_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, raw: bytes
) -> None:
    path = tmp_path / "bad.eml"
    path.write_bytes(raw)

    code, out = run(capsys, str(path), "--json")

    assert code == 0
    assert json.loads(out)["error"]["code"] == "decode_failed"


def test_a_mail_without_any_sender_is_read_and_says_why_it_has_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a mail whose headers name no sender at all
    path = tmp_path / "nosender.eml"
    path.write_bytes(b"Subject: no sender\r\n\r\nThe printer is broken.\r\n")

    # When it is parsed
    code, out = run(capsys, str(path), "--json")

    # Then it is read, with its body, and the reason it has no sender
    result = json.loads(out)
    assert code == 0 and "error" not in result
    assert (result["from"], result["body_text"]) == ("", "The printer is broken.")
    assert "no From" in result["sender_note"]


def test_text_output_shows_the_new_part(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(capsys, str(MAILS / "outlook_reply_en.eml"))

    assert "new part:\nHi all," in out
    assert "Original Message" not in out
