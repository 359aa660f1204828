"""The deployed stack: its outputs (resource and function names) and direct invocations of its functions."""

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mail2ticket.errors import Mail2TicketError
from mail2ticket.store.clients import client

# Stack output -> the environment variable the functions read it from (see settings.py).
OUTPUT_VARIABLES = {
    "InboxesTableName": "INBOXES_TABLE",
    "ReplicasTableName": "REPLICAS_TABLE",
    "TicketsTableName": "TICKETS_TABLE",
    "RawMailBucketName": "RAW_BUCKET",
    "ProcessQueueUrl": "PROCESS_QUEUE_URL",
    "ProcessDeadLetterQueueUrl": "PROCESS_DLQ_URL",
    "PollQueueUrl": "POLL_QUEUE_URL",
    "DispatchQueueUrl": "DISPATCH_QUEUE_URL",
    "EventBusName": "EVENT_BUS_NAME",
}


class DeployedError(Mail2TicketError):
    """The stack or function cannot be found or reached."""


def stack_outputs(stack_name: str) -> dict[str, str]:
    try:
        stacks = client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise DeployedError(f"cannot read stack {stack_name!r}: {_reason(exc)}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def stack_function(stack_name: str, output: str) -> str:
    """A function's name from the stack's outputs: PollerFunctionName, ProcessorFunctionName, ..."""
    name = stack_outputs(stack_name).get(output)
    if not name:
        raise DeployedError(f"stack {stack_name!r} has no {output} output")
    return name


def invoke_function(function_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Invoke synchronously and return the function's answer; a failed function is a DeployedError."""
    try:
        response = client("lambda").invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
        )
    except (BotoCoreError, ClientError) as exc:
        raise DeployedError(f"cannot invoke {function_name!r}: {_reason(exc)}") from None
    body = response["Payload"].read().decode("utf-8", errors="replace")
    try:
        answer = json.loads(body) if body else {}
    except json.JSONDecodeError:
        raise DeployedError(f"{function_name} answered something that is not JSON: {body[:200]!r}") from None
    if response.get("FunctionError"):
        detail = answer if isinstance(answer, dict) else {}
        message = f"{detail.get('errorType', response['FunctionError'])}: {detail.get('errorMessage', body)}"
        raise DeployedError(f"{function_name} failed: {' '.join(message.split())}")
    if not isinstance(answer, dict):
        raise DeployedError(f"{function_name} answered {answer!r} instead of an outcome")
    return answer


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}"
    return str(exc)
