"""Every AWS request a function makes, recorded on the local stack, is allowed by that function's role."""

import fnmatch
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

import pytest

from infra.local import runner
from infra.local.aws_calls import AwsCall, AwsCallRecorder, forget_clients, grants_needed
from infra.local.resources import LOCAL_ACCOUNT_ID
from infra.local.stack import LocalStack
from tests.conftest import MailAccount

pytestmark = pytest.mark.integration

REGION = "us-east-1"


def _mail(subject: str, in_reply_to: str | None = None, **headers: str) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = "Alice Martin <alice@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = message_id = make_msgid(domain="example.org")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Some words.")
    message.add_attachment(b"%PDF-1.4 tiny", maintype="application", subtype="pdf", filename="a.pdf")
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


def _allowed(stack: LocalStack, function: str, call: AwsCall) -> list[str]:
    """The grants `call` needs that the function's role lacks."""
    role_id = stack.template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in stack.template["Resources"][role_id]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            statements.append(statement["Fn::If"][1] if "Fn::If" in statement else statement)
    missing = []
    for grant in grants_needed(call, REGION, LOCAL_ACCOUNT_ID):
        if not any(
            grant.action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            and any(
                fnmatch.fnmatchcase(grant.resource, pattern)
                for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
                for pattern in _arn_patterns(stack, resource)
            )
            for s in statements
        ):
            missing.append(f"{function}: {grant.action} on {grant.resource}")
    return missing


@pytest.fixture
def recorder() -> Iterator[AwsCallRecorder]:
    with AwsCallRecorder() as calls:
        forget_clients()
        yield calls
    forget_clients()


def test_each_function_role_allows_every_request_the_function_makes(
    mail_account: MailAccount, aws: LocalStack, recorder: AwsCallRecorder
) -> None:
    from mail2ticket.store.config import save_inbox

    # Given an inbox whose replies resolve then close a ticket: a request with an attachment, two replies to
    # it and an auto-reply, so that every rule of the cleaner has work later
    save_inbox(mail_account.inbox("helpdesk", stimuli=["new:ev_resolve", "resolved:ev_close"]))
    first, first_id = _mail("Printer jammed")
    mail_account.append(first)
    mail_account.append(_mail("Re: Printer jammed", in_reply_to=first_id)[0])
    mail_account.append(_mail("Re: Printer jammed", in_reply_to=first_id)[0])
    mail_account.append(_mail("Out of office", Auto_Submitted="auto-replied")[0])
    now = datetime.now(UTC)

    # When each function runs, its requests labelled with its name (a queue's event source uses its
    # function's role, so its receives and deletes count as the dispatcher's, the poller's or the processor's)
    with recorder.label("DispatcherFunction"):
        runner.run_dispatcher(now=now)
        runner.run_shards()
    with recorder.label("PollerFunction"):
        runner.run_polls()
    with recorder.label("ProcessorFunction"):
        runner.drain_queue()
        runner.retry("helpdesk", "1:1")
    # (the cleaner asks for the closed ticket's mails to go, polls delete them, the undesired one is purged,
    # and the replicas of mails gone from the server expire with their raw mail)
    for day in (1, 2, 10, 11, 30):
        with recorder.label("CleanerFunction"):
            runner.run_cleaner(now=now + timedelta(days=day))
        with recorder.label("DispatcherFunction"):
            runner.run_dispatcher(now=now + timedelta(days=day, hours=1))
            runner.run_shards()
        with recorder.label("PollerFunction"):
            runner.run_polls()
    with recorder.label("CleanerFunction"):
        runner.run_cleaner(now=now + timedelta(days=40))

    # Then each function made requests, and its role allows every one of them
    labels = {call.label for call in recorder.calls}
    assert labels >= {"DispatcherFunction", "PollerFunction", "ProcessorFunction", "CleanerFunction"}
    missing = [
        m for call in recorder.calls if call.label != "unlabelled" for m in _allowed(aws, call.label, call)
    ]
    assert missing == []
    assert recorder.counts("ProcessorFunction")[("dynamodb", "TransactWriteItems")] >= 4
    cleaner = recorder.counts("CleanerFunction")
    assert cleaner[("dynamodb", "DeleteItem")] >= 1 and cleaner[("s3", "DeleteObjects")] >= 1
    assert recorder.counts("PollerFunction")[("dynamodb", "UpdateItem")] >= 1
    dispatcher = recorder.counts("DispatcherFunction")
    assert dispatcher[("sqs", "SendMessageBatch")] >= 2 and dispatcher[("dynamodb", "Scan")] >= 2


def test_a_request_outside_the_role_is_reported(aws: LocalStack) -> None:
    # Given a cleaner request to publish an event, which its role does not allow
    call = AwsCall("CleanerFunction", "events", "PutEvents", {"Entries": [{"EventBusName": "b"}]})

    assert _allowed(aws, "CleanerFunction", call) == [
        f"CleanerFunction: events:PutEvents on arn:aws:events:{REGION}:{LOCAL_ACCOUNT_ID}:event-bus/b"
    ]
