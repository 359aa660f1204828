"""`mail2ticket inbox …` against the local stack: items written only when valid, secrets, connection tests."""

from pathlib import Path

import boto3
import pytest

from infra.local.moto_server import free_port
from infra.local.stack import LocalStack
from tests.conftest import MailAccount
from tests.integration.cli_helpers import cli, write_inbox

pytestmark = pytest.mark.integration


def _items() -> list[dict]:
    import os

    return boto3.client("dynamodb").scan(TableName=os.environ["INBOXES_TABLE"])["Items"]


def test_put_get_list_enable_disable_delete(aws: LocalStack, tmp_path: Path, capsys) -> None:
    # Given an inbox file in YAML and another in JSON
    first = write_inbox(tmp_path, stimuli="pending:ev_assign\nresolved:ev_reopen", port=1993)
    second = write_inbox(tmp_path, "other.json", inbox_id="sales", login="sales@example.com", active=False)

    # When both are put
    put = cli(capsys, "inbox", "put", str(first))
    put_json = cli(capsys, "inbox", "put", str(second))

    # Then both items exist, with lines stored as lists, and the operator is told to store a secret
    assert put.code == 0 and "inbox helpdesk created" in put.out and "inbox secret helpdesk" in put.out
    assert put_json.code == 0 and "inbox sales created" in put_json.out
    item = cli(capsys, "inbox", "get", "helpdesk", "--json").json()
    assert item["stimuli"] == ["pending:ev_assign", "resolved:ev_reopen"] and item["port"] == 1993
    shown = cli(capsys, "inbox", "get", "helpdesk").out.splitlines()
    assert any(line.startswith("stimuli") and line.endswith("pending:ev_assign") for line in shown)
    assert any(line.strip() == "resolved:ev_reopen" for line in shown)
    listed = {row["inbox_id"]: row for row in cli(capsys, "inbox", "list", "--json").json()}
    assert (listed["helpdesk"]["active"], listed["sales"]["active"]) == (True, False)
    assert listed["helpdesk"]["port"] == 1993 and listed["sales"]["port"] == 993
    assert cli(capsys, "inbox", "list").out.splitlines()[0].split()[:3] == ["INBOX_ID", "ACTIVE", "PROTOCOL"]

    # When one is disabled and the other enabled
    assert cli(capsys, "inbox", "disable", "helpdesk").code == 0
    assert cli(capsys, "inbox", "enable", "sales").code == 0

    # Then their items say so
    listed = {row["inbox_id"]: row for row in cli(capsys, "inbox", "list", "--json").json()}
    assert (listed["helpdesk"]["active"], listed["sales"]["active"]) == (False, True)

    # When one is deleted (confirmation given), then it is gone and getting it is an error
    assert cli(capsys, "inbox", "delete", "sales", "--yes").code == 0
    missing = cli(capsys, "inbox", "get", "sales")
    assert missing.code == 1 and missing.err == "mail2ticket: error: inbox 'sales' does not exist\n"


def test_delete_without_confirmation_from_a_script_deletes_nothing(
    aws: LocalStack, tmp_path: Path, capsys
) -> None:
    cli(capsys, "inbox", "put", str(write_inbox(tmp_path)))

    refused = cli(capsys, "inbox", "delete", "helpdesk", stdin="")

    assert refused.code == 1 and "pass --yes" in refused.err
    assert cli(capsys, "inbox", "get", "helpdesk").code == 0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title_pattern": "R-([0-9"}, "title_pattern: invalid regex"),
        ({"email_storage": "move"}, "target_folder: required when email_storage is 'move'"),
        ({"target_class": "Bug"}, "target_class: Input should be"),
        ({"ticket_default_values": ["service_id"]}, "ticket_default_values: line 1 'service_id' is not"),
        ({"port": 99999}, "port: Input should be less than or equal to 65535"),
        ({"colour": "blue"}, "colour: unknown field"),
    ],
)
def test_an_invalid_file_never_reaches_dynamodb(
    aws: LocalStack, tmp_path: Path, capsys, fields: dict, reason: str
) -> None:
    # Given an inbox file with one invalid field
    path = write_inbox(tmp_path, **fields)

    # When it is put, then it is refused in one line naming the field, and nothing is written
    result = cli(capsys, "inbox", "put", str(path))

    assert result.code == 1 and result.out == ""
    assert result.err.startswith("mail2ticket: error: ") and reason in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert _items() == []
    assert cli(capsys, "inbox", "validate", str(path)).code == 1


def test_put_refuses_a_second_inbox_on_the_same_folder_and_keeps_the_stored_secret_arn(
    aws: LocalStack, tmp_path: Path, capsys
) -> None:
    # Given a stored inbox whose secret is set
    cli(capsys, "inbox", "put", str(write_inbox(tmp_path)))
    cli(capsys, "inbox", "secret", "helpdesk", stdin="pw\n")
    arn = cli(capsys, "inbox", "get", "helpdesk", "--json").json()["secret_arn"]

    # When another inbox reads the same folder of the same account, then it is refused
    clash = cli(capsys, "inbox", "put", str(write_inbox(tmp_path, "b.yaml", inbox_id="copy")))
    assert clash.code == 1 and "inbox helpdesk already reads folder INBOX" in clash.err

    # When the first inbox's file (without secret_arn) is put again, then its ARN is kept
    assert cli(capsys, "inbox", "put", str(write_inbox(tmp_path, description="edited"))).code == 0
    item = cli(capsys, "inbox", "get", "helpdesk", "--json").json()
    assert (item["description"], item["secret_arn"]) == ("edited", arn)


def test_validate_a_file_and_a_stored_item(aws: LocalStack, tmp_path: Path, capsys) -> None:
    # Given a valid file, and an item edited by hand in DynamoDB with a bad port and an unknown attribute
    valid = write_inbox(tmp_path)
    import os

    boto3.client("dynamodb").put_item(
        TableName=os.environ["INBOXES_TABLE"],
        Item={
            "inbox_id": {"S": "console"},
            "server": {"S": "imap.example.com"},
            "login": {"S": "x@example.com"},
            "port": {"N": "0"},
            "colour": {"S": "blue"},
        },
    )
    cli(capsys, "inbox", "put", str(valid))

    # Then the file and the stored valid item pass, the edited item fails naming both problems
    assert cli(capsys, "inbox", "validate", str(valid)).out == f"{valid}: inbox helpdesk is valid\n"
    assert cli(capsys, "inbox", "validate", "helpdesk").out == "stored item helpdesk is valid\n"
    broken = cli(capsys, "inbox", "validate", "console")
    assert broken.code == 1 and "port: Input should be greater than or equal to 1" in broken.err
    assert "colour: unknown field" in broken.err
    # And the list shows the broken item with its problem instead of failing
    listed = {row["inbox_id"]: row for row in cli(capsys, "inbox", "list", "--json").json()}
    assert "colour: unknown field" in listed["console"]["problem"]
    assert (
        cli(capsys, "inbox", "validate", "nowhere").err
        == "mail2ticket: error: inbox 'nowhere' does not exist\n"
    )
    assert "no such file" in cli(capsys, "inbox", "validate", "missing.yaml").err


def test_secret_is_stored_in_secrets_manager_and_only_its_arn_in_the_item(
    aws: LocalStack, tmp_path: Path, capsys
) -> None:
    # Given an inbox
    cli(capsys, "inbox", "put", str(write_inbox(tmp_path)))

    # When its secret is given on stdin, twice (a rotation)
    first = cli(capsys, "inbox", "secret", "helpdesk", stdin="first-Pw\n")
    second = cli(capsys, "inbox", "secret", "helpdesk", stdin="second-Pw\n")

    # Then one secret named mail2ticket/helpdesk holds the latest value and the item holds its ARN
    arn = cli(capsys, "inbox", "get", "helpdesk", "--json").json()["secret_arn"]
    assert first.code == second.code == 0 and arn in second.out and "Pw" not in first.out + second.out
    secrets = boto3.client("secretsmanager")
    assert secrets.describe_secret(SecretId=arn)["Name"] == "mail2ticket/helpdesk"
    assert secrets.get_secret_value(SecretId=arn)["SecretString"] == "second-Pw"
    assert cli(capsys, "inbox", "secret", "helpdesk", stdin="\n").err == (
        "mail2ticket: error: empty secret: nothing stored\n"
    )
    assert cli(capsys, "inbox", "secret", "nobody", stdin="x").code == 1

    # When the inbox is deleted with its secret, then the secret is scheduled for deletion
    assert cli(capsys, "inbox", "delete", "helpdesk", "--yes", "--delete-secret").code == 0
    assert "DeletedDate" in secrets.describe_secret(SecretId=arn)


def _closed_port() -> int:
    return free_port()


def test_inbox_test_lists_folders_or_names_the_failure(
    mail_account: MailAccount, tmp_path: Path, capsys, monkeypatch
) -> None:
    # Given an inbox on the local Dovecot over IMAPS, with one mail in INBOX and one in a sub-folder
    mail_account.append(b"From: a@example.org\r\nSubject: one\r\n\r\nbody\r\n")
    mail_account.append(b"From: a@example.org\r\nSubject: two\r\n\r\nbody\r\n", folder="Archive")
    port = mail_account.server.imaps_port
    path = write_inbox(tmp_path, server="127.0.0.1", port=port, login=mail_account.login)
    cli(capsys, "inbox", "put", str(path))

    # When the right password is stored and the inbox tested
    cli(capsys, "inbox", "secret", "helpdesk", stdin=mail_account.password)
    ok = cli(capsys, "inbox", "test", "helpdesk", "--json")

    # Then the folders and their message counts are listed
    assert ok.code == 0, ok.err
    folders = {f["folder"]: f["messages"] for f in ok.json()["folders"]}
    assert folders["INBOX"] == 1 and folders["Archive"] == 1
    assert f"connected to 127.0.0.1:{port} (ssl)" in cli(capsys, "inbox", "test", "helpdesk").out

    # When the password is wrong, then the login refusal is reported in one line
    cli(capsys, "inbox", "secret", "helpdesk", stdin="wrong-password")
    refused = cli(capsys, "inbox", "test", "helpdesk")
    assert refused.code == 1 and f"login refused for {mail_account.login} on 127.0.0.1:{port}" in refused.err
    assert "AUTHENTICATIONFAILED" in refused.err and refused.err.count("\n") == 1

    # When nothing listens on the port, then the refused connection is reported
    closed = _closed_port()
    closed_file = write_inbox(
        tmp_path, "closed.yaml", server="127.0.0.1", port=closed, login=mail_account.login
    )
    cli(capsys, "inbox", "put", str(closed_file))
    assert f"connection refused by 127.0.0.1:{closed}" in cli(capsys, "inbox", "test", "helpdesk").err

    # When the server's certificate cannot be verified, then TLS verification is named
    cli(capsys, "inbox", "put", str(path))
    monkeypatch.delenv("SSL_CERT_FILE")
    assert "TLS certificate verification failed for 127.0.0.1" in cli(capsys, "inbox", "test", "helpdesk").err

    # When the host name does not resolve, then the DNS lookup is named
    cli(
        capsys,
        "inbox",
        "put",
        str(write_inbox(tmp_path, "dns.yaml", server="imap.invalid", login=mail_account.login)),
    )
    assert "DNS lookup of imap.invalid failed" in cli(capsys, "inbox", "test", "helpdesk").err


def test_inbox_test_without_a_secret_says_what_to_do(aws: LocalStack, tmp_path: Path, capsys) -> None:
    cli(capsys, "inbox", "put", str(write_inbox(tmp_path)))

    result = cli(capsys, "inbox", "test", "helpdesk")

    assert result.code == 1 and "secret_arn is empty: store the password with the CLI first" in result.err
    assert result.err.count("\n") == 1


def test_push_inboxes_are_put_listed_and_tested_by_what_they_receive(
    aws: LocalStack, tmp_path: Path, capsys
) -> None:
    import yaml

    # Given a file with two push inboxes, and another file claiming an address of the first
    path = tmp_path / "push.yaml"
    path.write_text(
        yaml.safe_dump(
            [
                {
                    "inbox_id": "support",
                    "protocol": "push",
                    "recipients": ["support@example.com", "example.org"],
                },
                {"inbox_id": "drops", "protocol": "push"},
            ]
        )
    )
    claim = tmp_path / "claim.yaml"
    claim.write_text(
        yaml.safe_dump({"inbox_id": "sales", "protocol": "push", "recipients": ["Support@Example.com"]})
    )

    # When they are put, listed and tested, and the claim is put
    put = cli(capsys, "inbox", "put", str(path))
    listed = {row["inbox_id"]: row for row in cli(capsys, "inbox", "list", "--json").json()}
    tested = cli(capsys, "inbox", "test", "support")
    refused = cli(capsys, "inbox", "put", str(claim))

    # Then no secret is asked for, the list shows what each receives, the test each recipient's route, and
    # the claim is refused naming the owner, nothing written
    assert put.code == 0 and "inbox secret" not in put.out
    assert (listed["support"]["mailbox"], listed["support"]["secret"]) == (
        "support@example.com, example.org",
        "",
    )
    assert listed["drops"]["problem"] == ""
    assert tested.code == 0 and "push inbox support: no server to connect to" in tested.out
    assert [line.split() for line in tested.out.splitlines()[-2:]] == [
        ["support@example.com", "ok"],
        ["example.org", "ok"],
    ]
    assert refused.code == 1 and "recipients: support@example.com belongs to inbox support" in refused.err
    assert "sales" not in {row["inbox_id"] for row in cli(capsys, "inbox", "list", "--json").json()}
