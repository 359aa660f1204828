"""`mail2ticket parse`: the processor's view of a mail, for any file, without writing anything."""

import os
from pathlib import Path

import boto3
import pytest

from infra.local.stack import LocalStack
from tests.conftest import MAILS
from tests.integration.cli_helpers import cli, stored_message, write_inbox

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
KEYS = {"subject", "from", "body_text", "body_html", "new_part_text", "attachments", "undesired", "decision"}


def _stored_anything() -> list[str]:
    """Every DynamoDB item and S3 object of the stack, by table or bucket."""
    found = []
    dynamodb = boto3.client("dynamodb")
    for table in dynamodb.list_tables()["TableNames"]:
        found += [f"{table}: {item}" for item in dynamodb.scan(TableName=table)["Items"]]
    found += [
        o["Key"]
        for o in boto3.client("s3").list_objects_v2(Bucket=os.environ["RAW_BUCKET"]).get("Contents", [])
    ]
    return found


def test_parse_prints_the_facts_of_each_fixture_and_writes_nothing(aws: LocalStack, capsys) -> None:
    for path in sorted(MAILS.glob("*.eml")):
        result = cli(capsys, "parse", str(path), "--json")

        assert result.code == 0, f"{path.name}: {result.err}"
        facts = result.json()
        assert set(facts) >= KEYS and facts["from"], path.name
        for attachment in facts["attachments"]:
            assert set(attachment) >= {"filename", "content_type", "size", "sha256", "inline"}
            assert len(attachment["sha256"]) == 64
    assert _stored_anything() == []


def test_parse_reports_the_facts_the_fixtures_readme_lists(aws: LocalStack, capsys) -> None:
    attached = cli(capsys, "parse", str(MAILS / "gmail_new_with_attachment.eml"), "--json").json()
    autoreply = cli(capsys, "parse", str(MAILS / "autoreply_out_of_office.eml"), "--json").json()
    reply = cli(capsys, "parse", str(MAILS / "outlook_reply_en.eml"), "--json").json()

    assert "Q3_sales_report_partial.pdf" in [a["filename"] for a in attached["attachments"]]
    assert autoreply["undesired"] and autoreply["decision"] == "undesired"
    assert "Original Message" in reply["body_text"] and "Original Message" not in reply["new_part_text"]
    assert reply["decision"] == "create"


def test_parse_with_an_inbox_finds_the_ticket_a_reply_would_update(
    aws: LocalStack, tmp_path: Path, capsys
) -> None:
    # Given a ticket opened by a new request
    cli(capsys, "inbox", "put", str(write_inbox(tmp_path, unknown_caller_behavior="create_person")))
    assert (
        cli(capsys, "retry", "helpdesk", stored_message("helpdesk", "outlook_new_request_en.eml", 1)).code
        == 0
    )
    before = _stored_anything()

    # When its reply is parsed with the inbox's rules
    result = cli(capsys, "parse", str(MAILS / "outlook_reply_en.eml"), "--inbox", "helpdesk", "--json")

    # Then the matched ticket is named, and nothing was written
    assert result.json()["matched_ticket"] == "R-000001" and result.json()["decision"] == "update R-000001"
    assert _stored_anything() == before
    assert (
        "matched_ticket  R-000001"
        in cli(capsys, "parse", str(MAILS / "outlook_reply_en.eml"), "--inbox", "helpdesk").out
    )


@pytest.mark.parametrize("content", [b"", b"\x00\xff\xfe garbage", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"])
def test_parse_of_a_file_that_is_not_a_mail_says_why(
    aws: LocalStack, tmp_path: Path, capsys, content: bytes
) -> None:
    path = tmp_path / "broken.eml"
    path.write_bytes(content)

    result = cli(capsys, "parse", str(path), "--json")

    assert result.code == 0 and result.json()["decision"] == "error"
    assert result.json()["error"]["code"] == "decode_failed"
    assert _stored_anything() == []


@pytest.mark.parametrize(
    "content",
    [b"Subject: no sender\r\n\r\nbody", b"From: \r\nContent-Type: multipart/mixed\r\n\r\nbody"],
)
def test_parse_of_a_mail_without_sender_reads_it_and_says_why(
    aws: LocalStack, tmp_path: Path, capsys, content: bytes
) -> None:
    path = tmp_path / "nosender.eml"
    path.write_bytes(content)

    result = cli(capsys, "parse", str(path), "--json")

    assert result.code == 0 and result.json()["decision"] == "create"
    assert (result.json()["from"], result.json()["body_text"]) == ("", "body")
    assert "no Sender, Reply-To, Return-Path or envelope sender" in result.json()["sender_note"]
    assert _stored_anything() == []


def test_parse_of_a_missing_file_is_one_line(aws: LocalStack, capsys) -> None:
    result = cli(capsys, "parse", "/nonexistent/mail.eml")

    assert (
        result.code == 1
        and result.err == "mail2ticket: error: cannot read /nonexistent/mail.eml: No such file or directory\n"
    )


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_parse_handles_every_corpus_file(aws: LocalStack, capsys) -> None:
    # Given every file of the corpus (replies, HTML replies, malformed MIME)
    files = [p for p in sorted(CORPUS.rglob("*")) if p.is_file() and p.suffix not in (".jsonl", ".md")]
    files = [p for p in files if "LICENSES" not in p.parts]

    # When each is parsed, then each gives facts with a body, never a failure, and nothing is written
    refused = []
    for path in files:
        result = cli(capsys, "parse", str(path), "--json")
        assert result.code == 0, f"{path}: {result.err}"
        found = result.json()
        if "error" in found:
            refused.append(found["error"]["reason"])
        else:
            assert isinstance(found["body_text"], str) and "new_part_text" in found, path
    assert len(files) > 100 and _stored_anything() == []
    # And only a file that is not a mail is refused
    assert all(reason.startswith(("not a mail", "empty input")) for reason in refused), refused
