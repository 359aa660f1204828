"""Record the AWS requests made in this process, by service and operation, through botocore's event hooks.

Every botocore client copies its session's event handlers when it is created, and pynamodb makes its own
botocore sessions; so the recorder hooks the creation of every client and registers its handlers on each new
client. Clients created before `start()` are not seen: `forget_clients()` drops the package's cached ones.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.model import OperationModel
from pynamodb.models import Model


@dataclass(frozen=True)
class AwsCall:
    """One API request: who made it (a label such as the function's name), what, and its parameters."""

    label: str
    service: str
    operation: str
    params: dict[str, Any] = field(compare=False, repr=False)
    response: dict[str, Any] | None = field(default=None, compare=False, repr=False)


class AwsCallRecorder:
    """Collects an `AwsCall` for every request of every botocore client created while it runs."""

    def __init__(self) -> None:
        self.calls: list[AwsCall] = []
        # A context variable: the local runner hands its context to the threads that run parallel polls.
        self._label: ContextVar[str] = ContextVar("aws_call_label", default="unlabelled")
        self._original: Callable[..., Any] | None = None
        self._pending: dict[int, tuple[str, dict[str, Any]]] = {}

    @property
    def current_label(self) -> str:
        return self._label.get()

    @contextmanager
    def label(self, value: str) -> Iterator[None]:
        """Attribute the requests made inside the block to `value` (e.g. "processor")."""
        token = self._label.set(value)
        try:
            yield
        finally:
            self._label.reset(token)

    def start(self) -> AwsCallRecorder:
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            recorder.watch(client)
            return client

        self._original = original
        botocore.session.Session.create_client = create_client
        return self

    def stop(self) -> None:
        if self._original is not None:
            botocore.session.Session.create_client = self._original
            self._original = None

    def watch(self, client: Any) -> None:
        """Register the recording hooks on one client."""
        client.meta.events.register("before-parameter-build", self._before)
        client.meta.events.register("after-call", self._after)

    def _before(self, params: dict[str, Any], model: OperationModel, **kwargs: Any) -> None:
        self._pending[threading.get_ident()] = (self.current_label, dict(params))

    def _after(
        self, http_response: Any, parsed: dict[str, Any], model: OperationModel, **kwargs: Any
    ) -> None:
        label, params = self._pending.pop(threading.get_ident(), (self.current_label, {}))
        service = model.service_model.endpoint_prefix
        self.calls.append(AwsCall(label, service, model.name, params, parsed))

    def counts(self, label: str | None = None) -> Counter[tuple[str, str]]:
        """Requests per (service, operation), for one label or all."""
        return Counter((c.service, c.operation) for c in self.calls if label is None or c.label == label)

    def __enter__(self) -> AwsCallRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------- IAM actions

# Operations whose IAM action is not "<service>:<operation>".
_ACTION_FOR = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("email", "SendRawEmail"): "ses:SendRawEmail",
    ("email", "SendEmail"): "ses:SendEmail",
}
_IAM_PREFIX = {"email": "ses"}
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


@dataclass(frozen=True)
class Grant:
    """What a request needs: an IAM action on a resource ARN."""

    action: str
    resource: str


def grants_needed(call: AwsCall, region: str = "us-east-1", account: str = "123456789012") -> list[Grant]:
    """The (action, resource) pairs IAM checks for `call`; transactions check each item's own action."""
    params = call.params
    table = f"arn:aws:dynamodb:{region}:{account}:table/"
    if call.service == "dynamodb" and call.operation in ("TransactWriteItems", "TransactGetItems"):
        needed = []
        for item in params.get("TransactItems", []):
            ((kind, request),) = item.items()
            needed.append(Grant(_TRANSACT_ACTIONS[kind], table + request["TableName"]))
        return needed
    if call.service == "dynamodb" and call.operation in ("BatchGetItem", "BatchWriteItem"):
        return [Grant(f"dynamodb:{call.operation}", table + name) for name in params.get("RequestItems", {})]
    action = _ACTION_FOR.get(
        (call.service, call.operation), f"{_IAM_PREFIX.get(call.service, call.service)}:{call.operation}"
    )
    if call.service == "dynamodb":
        index = f"/index/{params['IndexName']}" if params.get("IndexName") else ""
        return [Grant(action, table + params["TableName"] + index)]
    if call.service == "s3":
        if call.operation == "DeleteObjects":
            objects = params["Delete"]["Objects"]
            return [Grant(action, f"arn:aws:s3:::{params['Bucket']}/{o['Key']}") for o in objects]
        key = f"/{params['Key']}" if "Key" in params else ""
        return [Grant(action, f"arn:aws:s3:::{params['Bucket']}{key}")]
    if call.service == "sqs":
        name = params.get("QueueUrl", "").rstrip("/").rsplit("/", 1)[-1]
        return [Grant(action, f"arn:aws:sqs:{region}:{account}:{name}")]
    if call.service == "events":
        buses = {entry.get("EventBusName", "default") for entry in params["Entries"]}
        return [Grant(action, f"arn:aws:events:{region}:{account}:event-bus/{bus}") for bus in sorted(buses)]
    if call.service == "secretsmanager":
        secret = params.get("SecretId", "")
        arn = (
            secret
            if secret.startswith("arn:")
            else f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}"
        )
        return [Grant(action, arn)]
    return [Grant(action, "*")]


def forget_clients() -> None:
    """Drop the package's cached clients and pynamodb connections, so that the next ones are hooked."""
    for name, module in list(sys.modules.items()):
        if name == "mail2ticket" or name.startswith("mail2ticket."):
            for value in list(vars(module).values()):
                if getattr(value, "__module__", None) == name and callable(
                    getattr(value, "cache_clear", None)
                ):
                    value.cache_clear()
    pending = list(Model.__subclasses__())
    while pending:
        model = pending.pop()
        model._connection = None
        pending.extend(model.__subclasses__())
