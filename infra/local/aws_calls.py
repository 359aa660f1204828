"""Record the AWS requests made in this process, or make them fail, through botocore's event hooks.

Every botocore client copies its session's event handlers when it is created, and pynamodb makes its own
botocore sessions; so the recorder and the fault injector hook the creation of every client and register their
handlers on each new client. Clients created before `start()` are not seen: `forget_clients()` drops the
package's cached ones.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import botocore.session
from botocore.awsrequest import AWSResponse
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


class ClientHooks:
    """Registers handlers on every botocore client created while it runs (boto3's and pynamodb's alike)."""

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None

    def start(self) -> Self:
        original = botocore.session.Session.create_client
        hooks = self

        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            hooks.watch(client)
            return client

        self._original = original
        botocore.session.Session.create_client = create_client
        return self

    def stop(self) -> None:
        if self._original is not None:
            botocore.session.Session.create_client = self._original
            self._original = None

    def watch(self, client: Any) -> None:
        """Register the hooks on one client."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AwsCallRecorder(ClientHooks):
    """Collects an `AwsCall` for every request of every botocore client created while it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[AwsCall] = []
        self._label = threading.local()
        # The label of threads that set none: the worker threads a function starts work its requests too.
        self._shared_label = "unlabelled"
        self._pending: dict[int, tuple[str, dict[str, Any]]] = {}

    @property
    def current_label(self) -> str:
        return getattr(self._label, "value", self._shared_label)

    @contextmanager
    def label(self, value: str) -> Iterator[None]:
        """Attribute the requests made inside the block to `value` (e.g. "processor"), and those of the
        threads it starts."""
        previous, shared = self.current_label, self._shared_label
        self._label.value = self._shared_label = value
        try:
            yield
        finally:
            self._label.value, self._shared_label = previous, shared

    def watch(self, client: Any) -> None:
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


# ------------------------------------------------------------------------------------- faults


class Killed(BaseException):
    """The function's process ended (timeout, out of memory): no `except Exception` of the code sees it."""


# The error each service answers when it throttles a request (after the SDK's own retries gave up).
_THROTTLING = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "s3": ("SlowDown", 503),
    "sqs": ("RequestThrottled", 403),
    "events": ("ThrottlingException", 400),
    "secretsmanager": ("ThrottlingException", 400),
    "email": ("Throttling", 400),
}
FAULTS = ("kill_before", "kill_after", "throttle")
# Besides: `refuse`, the answer AWS gives a request it will never accept (ValidationException).
REFUSE = "refuse"


class FaultInjector(ClientHooks):
    """Fails AWS requests made while `running`, the way an unlucky day would.

    - `kill_before`: the process dies before the request is sent; `kill_after`: after AWS did what it asked,
      before the code sees the answer. The rest of that run makes no request (each fails the same way), as a
      dead process makes none: no clean-up code of the product (a `finally` that writes) has any effect.
    - `throttle`: the request is answered with the service's throttling error; later ones go through.
    - `refuse`: the request is answered with a ValidationException, as AWS answers what it never accepts.

    `arm(at=N)` fails the Nth request (from 0) made from then on; `arm(when=...)` fails every request the
    predicate picks, in every run (a mail that kills each processor that reads it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[AwsCall] = []
        self._active = False
        self._at: int | None = None
        self._when: Callable[[AwsCall], bool] | None = None
        self._fault = "throttle"
        self._dead = False
        self._params: dict[int, dict[str, Any]] = {}

    def arm(
        self, at: int | None = None, fault: str = "throttle", when: Callable[[AwsCall], bool] | None = None
    ) -> None:
        assert fault in (*FAULTS, REFUSE), fault
        self.seen, self._at, self._when, self._fault = [], at, when, fault

    @contextmanager
    def running(self) -> Iterator[None]:
        """The block is one run of the function under test: its requests are counted, and may fail."""
        self._active, self._dead = True, False
        try:
            yield
        finally:
            self._active = False

    @property
    def fired(self) -> bool:
        """Whether the request `at` was reached."""
        return self._at is not None and len(self.seen) > self._at

    def watch(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build", self._params_of)
        client.meta.events.register("before-call", self._before)
        client.meta.events.register("after-call", self._after)

    def _params_of(self, params: dict[str, Any], **kwargs: Any) -> None:
        self._params[threading.get_ident()] = dict(params)

    def _hit(self, call: AwsCall, number: int) -> bool:
        return number == self._at or (self._when is not None and self._when(call))

    def _before(self, model: OperationModel, **kwargs: Any) -> Any:
        if not self._active:
            return None
        if self._dead:
            raise Killed(f"the process is dead: no {model.name}")
        service = model.service_model.endpoint_prefix
        call = AwsCall("", service, model.name, self._params.pop(threading.get_ident(), {}))
        number = len(self.seen)
        self.seen.append(call)
        if not self._hit(call, number):
            return None
        if self._fault == "kill_before":
            self._dead = True
            raise Killed(f"killed before request {number}: {model.name}")
        if self._fault in ("throttle", REFUSE):
            code, status = (
                ("ValidationException", 400)
                if self._fault == REFUSE
                else _THROTTLING.get(service, ("ThrottlingException", 400))
            )
            parsed = {
                "Error": {"Code": code, "Message": f"{code} (injected)"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
            return AWSResponse("https://throttled.invalid", status, {}, None), parsed
        return None

    def _after(self, model: OperationModel, **kwargs: Any) -> None:
        if not self._active or self._dead or self._fault != "kill_after" or not self.seen:
            return
        if self._hit(self.seen[-1], len(self.seen) - 1):
            self._dead = True
            raise Killed(f"killed after request {len(self.seen) - 1}: {model.name}")


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
        # Deleting a given version of an object is an action of its own.
        if call.operation == "DeleteObjects":
            return [
                Grant(
                    "s3:DeleteObjectVersion" if o.get("VersionId") else action,
                    f"arn:aws:s3:::{params['Bucket']}/{o['Key']}",
                )
                for o in params["Delete"]["Objects"]
            ]
        if call.operation == "DeleteObject" and params.get("VersionId"):
            action = "s3:DeleteObjectVersion"
        if call.operation in ("GetObject", "HeadObject") and params.get("VersionId"):
            action = "s3:GetObjectVersion"
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
    if call.service == "email" and params.get("Source"):
        # SES checks the identity a mail is sent from (its address; a domain identity covers it too).
        address = params["Source"].rsplit("<", 1)[-1].rstrip(">")
        return [Grant(action, f"arn:aws:ses:{region}:{account}:identity/{address}")]
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
