"""Running the CLI in this process against the local stack, and putting messages in an inbox's mailbox."""

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_mail


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> Run:
    """`mail2ticket ARGV…` in-process, with stdin from a pipe when given."""
    from mail2ticket.cli.main import main

    capsys.readouterr()
    if stdin is not None:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", io.StringIO(stdin))
            code = main(list(argv))
    else:
        code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def write_inbox(directory: Path, name: str = "inbox.yaml", **fields: Any) -> Path:
    """An inbox file as an operator writes it (YAML unless the name ends in .json)."""
    import yaml

    values = {"inbox_id": "helpdesk", "server": "imap.example.com", "login": "helpdesk@example.com", **fields}
    path = directory / name
    path.write_text(
        json.dumps(values) if name.endswith(".json") else yaml.safe_dump(values), encoding="utf-8"
    )
    return path


def stored_message(inbox_id: str, mail: str, uid: int, status: str = "new", **fields: Any) -> str:
    """A message as the poller leaves it: raw EML in S3 and its replica; returns the message key."""
    from mail2ticket.store.models import Replica
    from mail2ticket.store.raw import put_raw

    raw = read_mail(mail)
    sha256, key = put_raw(raw)
    message_key = f"7:{uid}"
    Replica(
        inbox_id=inbox_id,
        sk=Replica.sort_key(message_key),
        message_key=message_key,
        uid=uid,
        sha256=sha256,
        s3_key=key,
        size=len(raw),
        from_addr=f"sender{uid}@example.org",
        subject=f"mail {uid}",
        status=status,
        created_at=int(time.time()),
        **fields,
    ).save()
    return message_key


def queued() -> list[dict[str, Any]]:
    """Bodies of the messages waiting on the process queue (left there)."""
    import os

    import boto3

    sqs = boto3.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=os.environ["PROCESS_QUEUE_URL"], MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def fake_stack(name: str, outputs: dict[str, str]) -> None:
    """A CloudFormation stack (in moto) whose outputs are `outputs`, as `--stack NAME` reads them."""
    import boto3

    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
