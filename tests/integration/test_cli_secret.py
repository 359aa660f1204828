"""A secret value never appears in a DynamoDB item, a log line, the CLI's output or an error message."""

import logging
import os
from pathlib import Path

import boto3
import pytest

from tests.conftest import MailAccount
from tests.integration.cli_helpers import cli, stored_message, write_inbox

pytestmark = pytest.mark.integration


def _every_item() -> str:
    dynamodb = boto3.client("dynamodb")
    return "\n".join(
        str(item)
        for table in dynamodb.list_tables()["TableNames"]
        for item in dynamodb.scan(TableName=table)["Items"]
    )


def test_secret_values_appear_nowhere(
    mail_account: MailAccount, tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an inbox on the local Dovecot, a right password and a wrong one (both secrets)
    # Every log record of the product, and INFO and above of the libraries (botocore's DEBUG dumps requests)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="mail2ticket")
    right, wrong = mail_account.password, f"wrong-{os.urandom(6).hex()}"
    inbox = write_inbox(
        tmp_path, server="127.0.0.1", port=mail_account.server.imaps_port, login=mail_account.login
    )
    runs = [cli(capsys, "--verbose", "inbox", "put", str(inbox))]

    # When an operator stores and tests each of them, inspects the inbox, and retries a failing message
    for secret in (wrong, right):
        runs.append(cli(capsys, "--verbose", "inbox", "secret", "helpdesk", stdin=secret + "\n"))
        runs.append(cli(capsys, "--verbose", "inbox", "test", "helpdesk"))
        runs.append(cli(capsys, "--verbose", "inbox", "test", "helpdesk", "--json"))
    runs += [
        cli(capsys, "--verbose", "inbox", "get", "helpdesk"),
        cli(capsys, "--verbose", "inbox", "get", "helpdesk", "--json"),
        cli(capsys, "--verbose", "inbox", "list"),
        cli(capsys, "--verbose", "inbox", "validate", "helpdesk"),
        cli(
            capsys,
            "--verbose",
            "retry",
            "helpdesk",
            stored_message("helpdesk", "outlook_new_request_en.eml", 1),
        ),
        cli(capsys, "--verbose", "mailbox", "ls", "helpdesk"),
    ]
    # And pastes a password where the ARN belongs
    pasted = write_inbox(tmp_path, "pasted.yaml", secret_arn=right, password=right)
    runs.append(cli(capsys, "--verbose", "inbox", "put", str(pasted)))
    runs.append(cli(capsys, "--verbose", "inbox", "validate", str(pasted)))

    # Then the commands did what they should (the wrong password failed, the right one worked)
    assert [r.code for r in runs[1:7]] == [0, 1, 1, 0, 0, 0]
    assert "login refused" in runs[2].err and runs[-1].code == runs[-2].code == 1
    assert '"level":"WARNING"' in runs[11].err  # JSON log lines were captured too
    # And neither value appears in any output, log record or DynamoDB item
    seen = "\n".join(r.out + r.err for r in runs) + caplog.text + _every_item()
    for secret in (right, wrong):
        assert secret not in seen
    # While the secret itself is in Secrets Manager
    arn = runs[8].json()["secret_arn"]
    assert boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"] == right
