"""Record the AWS requests made in this process, by service and operation, through botocore's event hooks.

Every botocore client copies its session's event handlers when it is created, and pynamodb makes its own
botocore sessions; so the recorder hooks the creation of every client and registers its handlers on each new
client. Clients created before `start()` are not seen: callers clear the package's client caches first.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.model import OperationModel


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
        self._label = threading.local()
        self._original: Callable[..., Any] | None = None
        self._pending: dict[int, tuple[str, dict[str, Any]]] = {}

    @property
    def current_label(self) -> str:
        return getattr(self._label, "value", "unlabelled")

    @contextmanager
    def label(self, value: str) -> Iterator[None]:
        """Attribute the requests made inside the block to `value` (e.g. "processor")."""
        previous = self.current_label
        self._label.value = value
        try:
            yield
        finally:
            self._label.value = previous

    def start(self) -> AwsCallRecorder:
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            recorder.watch(client)
            return client

        self._original = original
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        return self

    def stop(self) -> None:
        if self._original is not None:
            botocore.session.Session.create_client = self._original  # type: ignore[method-assign]
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
    """What a request needs: an IAM action on a resource (a table or an index, a bucket or its objects)."""

    action: str
    kind: str
    name: str


def grants_needed(call: AwsCall) -> list[Grant]:
    """The (action, resource) pairs IAM checks for `call`; transactions check each item's own action."""
    params = call.params
    if call.service == "dynamodb" and call.operation in ("TransactWriteItems", "TransactGetItems"):
        needed = []
        for item in params.get("TransactItems", []):
            ((kind, request),) = item.items()
            needed.append(Grant(_TRANSACT_ACTIONS[kind], "table", request["TableName"]))
        return needed
    if call.service == "dynamodb" and call.operation in ("BatchGetItem", "BatchWriteItem"):
        action = "dynamodb:BatchGetItem" if call.operation == "BatchGetItem" else "dynamodb:BatchWriteItem"
        return [Grant(action, "table", table) for table in params.get("RequestItems", {})]
    action = _ACTION_FOR.get(
        (call.service, call.operation), f"{_IAM_PREFIX.get(call.service, call.service)}:{call.operation}"
    )
    if call.service == "dynamodb":
        if params.get("IndexName"):
            return [Grant(action, "index", params["TableName"])]
        return [Grant(action, "table", params["TableName"])]
    if call.service == "s3":
        kind = "object" if "Key" in params or call.operation == "DeleteObjects" else "bucket"
        return [Grant(action, kind, params["Bucket"])]
    if call.service == "sqs":
        return [Grant(action, "queue", params.get("QueueUrl", ""))]
    if call.service == "events":
        return [Grant(action, "bus", entry.get("EventBusName", "default")) for entry in params["Entries"]]
    if call.service == "secretsmanager":
        return [Grant(action, "secret", params.get("SecretId", ""))]
    return [Grant(action, call.service, "")]
