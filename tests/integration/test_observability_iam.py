"""Every AWS request a function makes, recorded on the local stack, is allowed by that function's role."""

import fnmatch
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import boto3
import pytest

from infra.local import runner
from infra.local.aws_calls import (
    REFUSE,
    AwsCall,
    AwsCallRecorder,
    FaultInjector,
    forget_clients,
    grants_needed,
)
from infra.local.resources import LOCAL_ACCOUNT_ID
from infra.local.ses_inbound import drop, receive
from infra.local.stack import FUNCTIONS, LocalStack
from tests.conftest import MailAccount
from tests.integration.polling import doveadm

pytestmark = pytest.mark.integration

REGION = "us-east-1"


def _mail(
    subject: str,
    in_reply_to: str | None = None,
    attachments: int = 1,
    sender: str = "Alice Martin <alice@example.org>",
    **headers: str,
) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = message_id = make_msgid(domain="example.org")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Some words.")
    for n in range(attachments):
        content = b"%PDF-1.4 tiny " + subject.encode() + str(n).encode()
        message.add_attachment(content, maintype="application", subtype="pdf", filename=f"a{n}.pdf")
    return message.as_bytes(policy=SMTP), message_id


def _arn_patterns(stack: LocalStack, resource: Any) -> list[str]:
    """A statement resource as the ARN pattern it grants on the local stack (other helpers' ids resolved)."""
    template = stack.template["Resources"]

    def arn_of(logical_id: str) -> str:
        ref, kind = stack.refs.get(logical_id, ""), template[logical_id]["Type"]
        return {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{LOCAL_ACCOUNT_ID}:table/{ref}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{ref}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{LOCAL_ACCOUNT_ID}:{ref.rsplit('/', 1)[-1]}",
            "AWS::Events::EventBus": f"arn:aws:events:{REGION}:{LOCAL_ACCOUNT_ID}:event-bus/{ref}",
        }.get(kind, f"arn:aws:{kind}:not-local")

    if resource == "*":
        return ["*"]
    if "Fn::GetAtt" in resource:
        return [arn_of(resource["Fn::GetAtt"][0])]
    text = resource["Fn::Sub"]
    values = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": LOCAL_ACCOUNT_ID}
    # The SES identity is a deployment parameter: any identity stands for it here.
    values["SesIdentity"] = "*"
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    for logical_id in template:
        text = text.replace("${" + logical_id + ".Arn}", arn_of(logical_id))
    return [text]


def _statements(stack: LocalStack, function: str) -> list[dict[str, Any]]:
    role_id = stack.template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in stack.template["Resources"][role_id]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            statements.append(statement["Fn::If"][1] if "Fn::If" in statement else statement)
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(stack: LocalStack, function: str) -> list[tuple[str, str, str]]:
    """Each (action, ARN pattern, how the template writes the resource) the function's role grants."""
    return [
        (action, pattern, json.dumps(resource))
        for statement in _statements(stack, function)
        for action in _as_list(statement["Action"])
        for resource in _as_list(statement["Resource"])
        for pattern in _arn_patterns(stack, resource)
    ]


def _allowed(stack: LocalStack, function: str, call: AwsCall) -> list[str]:
    """The grants `call` needs that the function's role lacks."""
    grants = _grants(stack, function)
    return [
        f"{function}: {grant.action} on {grant.resource}"
        for grant in grants_needed(call, REGION, LOCAL_ACCOUNT_ID)
        if not any(grant.action == a and fnmatch.fnmatchcase(grant.resource, p) for a, p, _ in grants)
    ]


# The Lambda service writes the functions' logs and traces with their roles; the code makes no such request.
RUNTIME_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def _unused(stack: LocalStack, function: str, calls: list[AwsCall]) -> list[str]:
    """The grants of the function's role that none of its requests needed."""
    needed = [
        grant
        for call in calls
        if call.label == function
        for grant in grants_needed(call, REGION, LOCAL_ACCOUNT_ID)
    ]
    return sorted(
        {
            f"{function}: {action} on {written}"
            for action, pattern, written in _grants(stack, function)
            if action not in RUNTIME_ACTIONS
            and not any(g.action == action and fnmatch.fnmatchcase(g.resource, pattern) for g in needed)
        }
    )


@pytest.fixture
def recorder() -> Iterator[AwsCallRecorder]:
    with AwsCallRecorder() as calls:
        forget_clients()
        yield calls
    forget_clients()


def test_each_function_role_grants_exactly_what_the_function_uses(
    mail_account: MailAccount,
    aws: LocalStack,
    recorder: AwsCallRecorder,
    smtp: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mail2ticket.record import content_key
    from mail2ticket.settings import get_settings
    from mail2ticket.store import raw as objects
    from mail2ticket.store.config import save_inbox

    # Given an inbox whose replies resolve then close a ticket: a request with an attachment, two replies to
    # it, an auto-reply and a mail with 300 attachments (more than a transaction holds), so that every rule
    # of the cleaner has work later; errors are forwarded to the administrators through SES
    boto3.client("ses").verify_email_identity(EmailAddress="support@example.com")
    save_inbox(
        mail_account.inbox(
            "helpdesk",
            stimuli=["new:ev_resolve", "resolved:ev_close"],
            notify_errors_to="admin@example.com",
            notify_errors_from="support@example.com",
        )
    )
    first, first_id = _mail("Printer jammed")
    mail_account.append(first)
    # (a reply that also refers to a mail the system never saw: looked for among every inbox's replicas)
    mail_account.append(
        _mail("Re: Printer jammed", in_reply_to=first_id, References="<unknown@example.org>")[0]
    )
    mail_account.append(_mail("Re: Printer jammed", in_reply_to=first_id)[0])
    mail_account.append(_mail("Out of office", Auto_Submitted="auto-replied")[0])
    mail_account.append(_mail("Many files", attachments=300)[0])
    # and a mail from an unknown sender on a strict inbox, its error forwarded to the administrators
    save_inbox(
        mail_account.inbox(
            "strict",
            mailbox="Strict",
            unknown_caller_behavior="reject",
            notify_errors_to="admin@example.com",
            notify_errors_from="support@example.com",
        )
    )
    mail_account.append(_mail("From a stranger", sender="stranger@example.net")[0], folder="Strict")
    # and a mail whose replica could not be written once, held by a skip record
    skipped = _mail("Skipped once")[0]
    sha256, s3_key = objects.put_raw(skipped)
    record = {"inbox_id": "helpdesk", "message_key": content_key(None, sha256), "sha256": sha256}
    objects.put_skip_record(
        objects.skip_key(sha256, "helpdesk", record["message_key"]), {**record, "s3_key": s3_key, "size": 1}
    )
    now = datetime.now(UTC)

    # When each function runs over every path, its requests labelled with its name (a queue's event source
    # uses its function's role, so its receives and deletes count as the dispatcher's, the poller's or the
    # processor's): ticks (the second queues again what is still new), the skipped mail recorded again,
    # processing, a retry
    _tick(recorder, now)
    _tick(recorder, now + timedelta(minutes=15))
    with recorder.label("PollerFunction"):
        runner.invoke("poller", {"retry_skipped": {}})
    with recorder.label("ProcessorFunction"):
        runner.drain_queue()
        runner.retry("helpdesk", "1:1")
    # another stranger, its error forwarded through an SMTP relay with a login
    _through_smtp_relay(smtp, monkeypatch)
    mail_account.append(_mail("From another stranger", sender="stranger@example.net")[0], folder="Strict")
    _tick(recorder, now + timedelta(minutes=30))
    with recorder.label("ProcessorFunction"):
        runner.drain_queue()
    monkeypatch.delenv("SMTP_HOST")
    get_settings.cache_clear()
    # the server renumbers the folder: the poll relocates what it knows
    doveadm(
        mail_account.server, "mailbox", "update", "-u", mail_account.login, "--uid-validity", "99", "INBOX"
    )
    _tick(recorder, now + timedelta(minutes=45))
    # (the cleaner asks for the closed ticket's mails to go, polls delete them, the undesired one is purged,
    # and the replicas of mails gone from the server expire with their raw mail)
    for day in (1, 2, 10, 11, 30):
        with recorder.label("CleanerFunction"):
            runner.run_cleaner(now=now + timedelta(days=day))
        _tick(recorder, now + timedelta(days=day, hours=1))
    with recorder.label("CleanerFunction"):
        runner.run_cleaner(now=now + timedelta(days=40))
    _push_paths(recorder, now + timedelta(days=41))

    # Then each function made requests, and its role allows every one of them
    labels = {call.label for call in recorder.calls}
    assert labels >= {
        "DispatcherFunction",
        "PollerFunction",
        "ProcessorFunction",
        "CleanerFunction",
        "IntakeFunction",
    }
    missing = [
        m for call in recorder.calls if call.label != "unlabelled" for m in _allowed(aws, call.label, call)
    ]
    assert missing == []
    # and grants nothing that none of its requests needed
    unused = [u for function in FUNCTIONS for u in _unused(aws, function, recorder.calls)]
    assert unused == []
    processor = recorder.counts("ProcessorFunction")
    assert (
        processor[("dynamodb", "TransactWriteItems")] >= 4 and processor[("dynamodb", "BatchWriteItem")] >= 1
    )
    cleaner = recorder.counts("CleanerFunction")
    assert cleaner[("dynamodb", "DeleteItem")] >= 1 and cleaner[("s3", "DeleteObjects")] >= 1
    assert recorder.counts("PollerFunction")[("dynamodb", "UpdateItem")] >= 1
    dispatcher = recorder.counts("DispatcherFunction")
    assert dispatcher[("sqs", "SendMessageBatch")] >= 2 and dispatcher[("dynamodb", "Scan")] >= 2


def _tick(recorder: AwsCallRecorder, now: datetime) -> None:
    """A tick as the deployed functions run it, each request labelled with the function making it."""
    with recorder.label("DispatcherFunction"):
        runner.run_dispatcher(now=now)
        runner.run_shards()
    with recorder.label("PollerFunction"):
        runner.run_polls()


PUSHED = "support@push.example.com"


def _push_paths(recorder: AwsCallRecorder, now: datetime) -> None:
    """The intake over every path: mail SES stores (a request, spam, one nobody owns, one too big), a mail
    another system writes whose event names its version, a mail received again after its deletion, and one
    whose replicas DynamoDB refuses; the processor and the push inbox's poll after them."""
    from mail2ticket.config.models import GlobalConfig, InboxConfig
    from mail2ticket.record import content_key
    from mail2ticket.store.config import save_global_config, save_inbox
    from mail2ticket.store.replicas import request_delete

    values = {"protocol": "push", "recipients": [PUSHED], "unknown_caller_behavior": "create_person"}
    save_inbox(InboxConfig.model_validate({"inbox_id": "pushed", **values}))
    request, request_id = _mail("Pushed request")
    receive(request, [PUSHED])
    receive(_mail("Pushed spam")[0], [PUSHED], spam="FAIL")
    receive(_mail("For nobody")[0], ["nobody@push.example.com"])
    with recorder.label("IntakeFunction"):
        runner.run_intake()
    save_global_config(GlobalConfig.model_validate({"maximum_email_size": "2K"}))
    receive(_mail("Pushed and too big", attachments=5)[0], [PUSHED])
    with recorder.label("IntakeFunction"):
        runner.run_intake()
    save_global_config(GlobalConfig())
    # (S3 names the version in a versioned bucket's events; moto does not: one as S3 writes it)
    key = drop(_mail("Written by a script")[0], "pushed", "script.eml")
    version = boto3.client("s3").head_object(Bucket=os.environ["RAW_BUCKET"], Key=key)["VersionId"]
    record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}
    record["s3"] = {
        "bucket": {"name": os.environ["RAW_BUCKET"]},
        "object": {"key": key, "versionId": version},
    }
    boto3.client("sqs").send_message(
        QueueUrl=os.environ["INTAKE_QUEUE_URL"], MessageBody=json.dumps({"Records": [record]})
    )
    with recorder.label("IntakeFunction"):
        runner.run_intake()
    with recorder.label("ProcessorFunction"):
        runner.drain_queue()
    request_delete("pushed", content_key(request_id.strip("<>"), ""), int(now.timestamp()))
    _tick(recorder, now)
    receive(request, [PUSHED])
    with recorder.label("IntakeFunction"):
        runner.run_intake()
    receive(_mail("Refused")[0], [PUSHED])
    with FaultInjector() as injector:
        forget_clients()
        injector.arm(fault=REFUSE, when=lambda c: c.operation == "PutItem" and "status" in c.params["Item"])
        with injector.running(), recorder.label("IntakeFunction"):
            runner.run_intake()
    forget_clients()


def _through_smtp_relay(smtp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mail2ticket.settings import get_settings

    secret = boto3.client("secretsmanager").create_secret(
        Name="mail2ticket/smtp-relay", SecretString=json.dumps({"username": "u", "password": "p"})
    )
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("SMTP_SECRET_ARN", secret["ARN"])
    get_settings.cache_clear()


def test_a_request_outside_the_role_is_reported(aws: LocalStack) -> None:
    # Given a cleaner request to publish an event, which its role does not allow
    call = AwsCall("CleanerFunction", "events", "PutEvents", {"Entries": [{"EventBusName": "b"}]})

    assert _allowed(aws, "CleanerFunction", call) == [
        f"CleanerFunction: events:PutEvents on arn:aws:events:{REGION}:{LOCAL_ACCOUNT_ID}:event-bus/b"
    ]
