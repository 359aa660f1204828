"""Cost per 10,000 mails: 1,000 realistic mails through the local stack with every AWS request counted.

Also the processor's peak memory on a 25 MB mail and each handler's import time. The last line printed is
`cost_per_10k_usd=<value>`.
"""

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from imap_tools import MailBoxUnencrypted

from bench.mails import big_mail, mail_mix
from infra.local import runner
from infra.local.aws_calls import AwsCall, AwsCallRecorder, forget_clients
from infra.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
MAILS, WAVE = int(os.environ.get("BENCH_MAILS", 1000)), 50  # fewer for a quick look
BIG_MAIL_BYTES = 25 * 1024 * 1024

# us-east-1 list prices, from the AWS pricing pages as of November 2025 (no free tier).
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
DYNAMODB_WRITE_UNIT = 0.625 / 1e6  # on-demand, since the November 2024 price reduction
DYNAMODB_READ_UNIT = 0.125 / 1e6
S3_PUT_LIST = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_GET = 0.0004 / 1000  # GET, HEAD and the rest; DELETE is free
S3_STORAGE_GB_MONTH = 0.023
SQS_REQUEST = 0.40 / 1e6  # standard queue, per 64 KB chunk
EVENTS_PUT = 1.00 / 1e6  # custom events, per 64 KB chunk
SECRETS_API_CALL = 0.05 / 10_000
LOGS_INGEST_GB = 0.50
XRAY_TRACE = 5.00 / 1e6  # upper bound: every invocation traced
TARGET_USD, TARGET_IMPORT_S, TARGET_MEMORY_FACTOR = 0.15, 0.5, 4


class ByteCounter:
    """A write-only text stream that counts the UTF-8 bytes written to it (log and metric lines)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)

    def flush(self) -> None:
        pass


# ------------------------------------------------------------------------------------- run


def memory_sizes_mb(template: dict[str, Any], functions: Iterable[str]) -> dict[str, int]:
    """Each function's memory size in the template (`poller`: PollerFunction's, else the global one)."""
    sizes = {}
    for function in functions:
        own = template["Resources"][f"{function.capitalize()}Function"]["Properties"].get("MemorySize")
        sizes[function] = int(own or template["Globals"]["Function"]["MemorySize"])
    return sizes


def _append(port: int, login: str, password: str, mails: list[bytes]) -> None:
    with MailBoxUnencrypted("127.0.0.1", port).login(login, password) as box:
        for raw in mails:
            box.append(raw, "INBOX", flag_set=())


class Run:
    """Invokes the handlers as Lambda would; times each invocation, counts its requests and log bytes."""

    def __init__(self, recorder: AwsCallRecorder, sink: ByteCounter) -> None:
        self.recorder, self.sink = recorder, sink
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.sqs = boto3.client("sqs")
        self.queue_url = os.environ["PROCESS_QUEUE_URL"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.poll_url = os.environ["POLL_QUEUE_URL"]
        self.dispatch_url = os.environ["DISPATCH_QUEUE_URL"]

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        from contextlib import redirect_stdout

        with self.recorder.label(function), redirect_stdout(self.sink):  # type: ignore[type-var]
            started = time.perf_counter()
            response = runner.invoke(function, event)
            self.durations[function].append(time.perf_counter() - started)
        return response

    def tick(self, now: datetime) -> None:
        """The dispatcher's tick, each shard message to its own dispatcher invocation (the dispatch queue's
        event source), then each poll request to its own poller invocation (the poll queue's)."""
        self.invoke("dispatcher", runner.scheduled_event("poll", now))
        self.each_message(self.dispatch_url, "dispatcher")
        self.each_message(self.poll_url, "poller")

    def each_message(self, queue_url: str, function: str) -> None:
        """An SQS event source with BatchSize 1: each message to its own invocation of `function`."""
        arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        while True:
            with self.recorder.label("sqs-event-source"):
                received = self.sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
                ).get("Messages", [])
            if not received:
                return
            for message in received:
                self.invoke(function, runner.sqs_event([message], arn["QueueArn"]))
                with self.recorder.label("sqs-event-source"):
                    self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def drain(self) -> None:
        """The SQS event source: receive up to 10, invoke, delete the successes (processor's role)."""
        while True:
            with self.recorder.label("sqs-event-source"):
                received = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
                ).get("Messages", [])
            if not received:
                return
            response = self.invoke("processor", runner.sqs_event(received, self.queue_arn))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            done = [m for m in received if m["MessageId"] not in failed]
            if done:
                with self.recorder.label("sqs-event-source"):
                    self.sqs.delete_message_batch(
                        QueueUrl=self.queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                        ],
                    )


# ------------------------------------------------------------------------------------- DynamoDB capacity


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return 1 + (len(data.lstrip("-").replace(".", "")) + 1) // 2
    if kind == "B":
        return len(data) if isinstance(data, bytes) else len(data) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: item}) for item in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(item) for item in data)
    return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in data.items())  # M


def item_size(item: dict[str, Any] | None) -> int:
    """DynamoDB's size of an item: attribute names plus values, as its capacity units count them."""
    return sum(len(name.encode()) + _value_size(value) for name, value in (item or {}).items())


def item_kind(table: str, key: dict[str, Any]) -> str:
    """`ReplicasTable m#`, `TicketsTable ticket#/log#`: the kind of item a key names, for the breakdown (an
    inbox id or a number in the key is left out)."""
    values = [str(next(iter(value.values()))) for value in key.values()]
    kinds = [v if v.startswith("#") else v.split("#")[0] + "#" for v in values if "#" in v]
    return f"{table.rsplit('-', 1)[-1]} {'/'.join(kinds)}"


class GlobalIndex:
    """A global secondary index as the table describes it: which items it holds and what it copies."""

    def __init__(self, description: dict[str, Any], table_keys: list[str]) -> None:
        self.name = description["IndexName"]
        self.keys = [k["AttributeName"] for k in description["KeySchema"]]
        projection = description["Projection"]
        self.all = projection["ProjectionType"] == "ALL"
        self.copied = {*self.keys, *table_keys, *projection.get("NonKeyAttributes", [])}

    def entry_size(self, item: dict[str, Any] | None) -> int | None:
        """The size of the item's index entry (with DynamoDB's 100 bytes of overhead); None if not in it."""
        if not item or any(k not in item for k in self.keys):
            return None
        return 100 + item_size(item if self.all else {k: v for k, v in item.items() if k in self.copied})

    def touched_by(self, names: set[str]) -> bool:
        return bool(names) if self.all else bool(names & self.copied)


_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b")


def _updated_names(request: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The attribute names an update expression writes (SET, ADD, DELETE) and those it removes."""
    aliases = request.get("ExpressionAttributeNames", {})
    parts = _CLAUSE.split(request.get("UpdateExpression", ""))
    written: set[str] = set()
    removed: set[str] = set()
    for keyword, body in zip(parts[1::2], parts[2::2], strict=True):
        names = {aliases.get(token, token) for token in re.findall(r"#\w+", body)}
        (removed if keyword == "REMOVE" else written).update(names)
    return written, removed


class Capacity:
    """Read and write units of the recorded DynamoDB requests. An updated item counts at its final size (an
    upper bound: items only grow here); a transactional write counts twice, as DynamoDB bills it.

    Writes to global secondary indexes are billed too (`index_write`): one write per index whose entry a
    request adds, changes or deletes, by the entry's size. Which attributes an item has is followed from
    request to request, so an update counts only for the indexes the item is in (or leaves) at that time."""

    def __init__(self) -> None:
        self.read = 0.0
        self.write = 0.0
        self.index_write = 0.0
        self.by_item: Counter[str] = Counter()  # write units by request kind and item kind (and index)
        self.client = boto3.client("dynamodb")
        self._final: dict[str, dict[str, Any] | None] = {}
        self._present: dict[str, set[str]] = {}
        self._indexes: dict[str, list[GlobalIndex]] = {}
        self._keys: dict[str, list[str]] = {}

    @staticmethod
    def _item_key(table: str, key: dict[str, Any]) -> str:
        return table + json.dumps(key, sort_keys=True, default=str)

    def _final_item(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        cache_key = self._item_key(table, key)
        if cache_key not in self._final:
            self._final[cache_key] = self.client.get_item(TableName=table, Key=key, ConsistentRead=True).get(
                "Item"
            )
        return self._final[cache_key]

    def _final_size(self, table: str, key: dict[str, Any]) -> int:
        return item_size(self._final_item(table, key))

    def _global_indexes(self, table: str) -> list[GlobalIndex]:
        if table not in self._indexes:
            description = self.client.describe_table(TableName=table)["Table"]
            self._keys[table] = [k["AttributeName"] for k in description["KeySchema"]]
            self._indexes[table] = [
                GlobalIndex(index, self._keys[table])
                for index in description.get("GlobalSecondaryIndexes", [])
            ]
        return self._indexes[table]

    def _to_indexes(
        self, table: str, item: dict[str, Any], written: set[str], removed: set[str], whole: bool
    ) -> None:
        """Index writes of one item write: a put or delete (`whole`), or an update of some attributes."""
        key = {name: item[name] for name in self._table_keys(table)}
        cache_key = self._item_key(table, key)
        if whole:
            before, after = self._present.get(cache_key, set()), written
        else:
            # An item first seen here had its final attributes, but for those this update writes.
            before = self._present.get(cache_key, (set(item) - written) | removed)
            after = (before | written) - removed
        self._present[cache_key] = after
        for index in self._global_indexes(table):
            was_in, is_in = set(index.keys) <= before, set(index.keys) <= after
            if is_in and (whole or not was_in or index.touched_by(written | removed)):
                units = math.ceil((index.entry_size(item) or 100) / 1024)
            elif was_in and not is_in:
                units = 1  # the item left the index: its entry is deleted
            else:
                continue
            self.index_write += units
            self.by_item[f"index {index.name}"] += units

    def _table_keys(self, table: str) -> list[str]:
        self._global_indexes(table)
        return self._keys[table]

    def _put(self, table: str, item: dict[str, Any]) -> None:
        self._to_indexes(table, item, set(item), set(), whole=True)

    def _delete(self, table: str, key: dict[str, Any]) -> None:
        self._to_indexes(table, key, set(), set(), whole=True)

    def _update(self, request: dict[str, Any]) -> None:
        written, removed = _updated_names(request)
        final = self._final_item(request["TableName"], request["Key"]) or {}
        self._to_indexes(request["TableName"], {**final, **request["Key"]}, written, removed, whole=False)

    def _count(self, operation: str, table: str, key: dict[str, Any], size: int, factor: int = 1) -> None:
        units = factor * math.ceil(max(1, size) / 1024)
        self.write += units
        keys = {name: key[name] for name in self._table_keys(table) if name in key}
        self.by_item[f"{operation} {item_kind(table, keys)}"] += units

    @staticmethod
    def _read_units(size: int, consistent: bool) -> float:
        return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)

    def add(self, call: AwsCall) -> None:
        params, response = call.params, call.response or {}
        operation = call.operation
        if operation == "GetItem":
            self.read += self._read_units(item_size(response.get("Item")), bool(params.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            size = sum(item_size(i) for i in response.get("Items", []))
            self.read += self._read_units(size, bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for items in response.get("Responses", {}).values():
                self.read += sum(self._read_units(item_size(i), False) for i in items)
        elif operation == "PutItem":
            self._count(operation, params["TableName"], params["Item"], item_size(params["Item"]))
            self._put(params["TableName"], params["Item"])
        elif operation == "UpdateItem":
            size = self._final_size(params["TableName"], params["Key"])
            self._count(operation, params["TableName"], params["Key"], size)
            self._update(params)
        elif operation == "DeleteItem":
            self._count(operation, params["TableName"], params["Key"], 1)
            self._delete(params["TableName"], params["Key"])
        elif operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((kind, request),) = entry.items()
                if kind == "Put":
                    size = item_size(request["Item"])
                    self._put(request["TableName"], request["Item"])
                elif kind == "Delete":
                    size = 1
                    self._delete(request["TableName"], request["Key"])
                elif kind == "Update":
                    size = self._final_size(request["TableName"], request["Key"])
                    self._update(request)
                else:
                    size = self._final_size(request["TableName"], request["Key"])
                key = request.get("Key") or request["Item"]
                self._count(f"Transact{kind}", request["TableName"], key, size, factor=2)
        elif operation == "TransactGetItems":
            self.read += 2 * len(params["TransactItems"])


# ------------------------------------------------------------------------------------- probes


def _layer(into: Path) -> Path:
    """The layer's packages, for this machine's platform and uncompiled, with the package beside them."""
    target = into / "python"
    requirements = ROOT / "layers" / "common" / "requirements.txt"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"),
            *("--require-hashes", "--no-deps", "--only-binary", ":all:", "-r", requirements, "-t", target),
        ],
        check=True,
        capture_output=True,
    )
    shutil.copytree(ROOT / "layers" / "common" / "mail2ticket", target / "mail2ticket")
    return target


def _compile(layer: Path) -> None:
    """As layers/common/Makefile does: bytecode never checked against its source."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-f",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            layer,
        ],
        check=True,
        capture_output=True,
    )


def _import_seconds(function: str, layer: Path, memory_mb: int) -> float:
    """Median of five cold imports of the handler module, each in a fresh interpreter set up as Lambda's: the
    layer first on the path, read-only (no bytecode written), and the variables Lambda sets (the X-Ray SDK
    then samples locally, as in Lambda, instead of creating a client for the sampling service)."""
    code = (
        "import importlib.util, sys, time\n"
        "started = time.perf_counter()\n"
        "spec = importlib.util.spec_from_file_location('handler', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(time.perf_counter() - started)\n"
    )
    task_root = ROOT / "functions" / function
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")},
        "PYTHONPATH": f"{layer}{os.pathsep}{ROOT}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "mail2ticket",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": f"mail2ticket-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "_HANDLER": "handler.lambda_handler",
    }
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code, str(task_root / "handler.py")],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        for _ in range(5)
    ]
    return statistics.median(runs)


def _memory(stack: LocalStack, login: str, password: str) -> dict[str, Any]:
    """Poll a small mail and a 25 MB one, then let a fresh processor handle them one after the other."""
    assert stack.dovecot is not None
    raw = big_mail(BIG_MAIL_BYTES)
    _append(stack.dovecot.imap_port, login, password, [mail_mix(1, seed=3)[0], raw])
    runner.run_poller(now=datetime.now(UTC) + timedelta(days=1))
    sqs = boto3.client("sqs")
    url = os.environ["PROCESS_QUEUE_URL"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    messages: list[dict[str, Any]] = []
    while len(messages) < 2:
        messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
    messages.sort(key=lambda m: json.loads(m["Body"])["message_key"])
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n, message in enumerate(messages):
            path = Path(tmp) / f"event{n}.json"
            path.write_text(json.dumps(runner.sqs_event([message], arn)))
            paths.append(str(path))
        output = subprocess.run(
            [sys.executable, "-m", "bench.memory_probe", *paths],
            env=os.environ.copy(),
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["mail_bytes"] = len(raw)
    return result


# ------------------------------------------------------------------------------------- main


def polled_inbox(stack: LocalStack) -> tuple[str, str]:
    """The bench's mailbox on the local Dovecot and the IMAP inbox reading it; returns login and password."""
    from mail2ticket.config.models import InboxConfig
    from mail2ticket.store.config import save_inbox

    assert stack.dovecot is not None
    login, password = "bench@example.com", "bench-password-1"
    stack.dovecot.add_user(login, password)
    secret = boto3.client("secretsmanager").create_secret(Name=f"mail2ticket/{login}", SecretString=password)
    inbox = InboxConfig.model_validate(
        {
            "inbox_id": "helpdesk",
            "server": "127.0.0.1",
            "port": stack.dovecot.imaps_port,
            "login": login,
            "secret_arn": secret["ARN"],
            "unknown_caller_behavior": "create_person",
        }
    )
    save_inbox(inbox)
    return login, password


def poll_mails(stack: LocalStack, login: str, password: str, mails: list[bytes], run: Run) -> None:
    """The polled path: mails delivered to the mailbox in waves, each wave polled, then processed."""
    assert stack.dovecot is not None
    now = datetime.now(UTC)
    for tick, start in enumerate(range(0, len(mails), WAVE)):
        _append(stack.dovecot.imap_port, login, password, mails[start : start + WAVE])
        run.tick(now + timedelta(minutes=tick))
        run.drain()


def main() -> None:
    with LocalStack() as stack:
        # The package binds table names at import: import it once the stack's environment is set.
        from mail2ticket.config.models import GlobalConfig
        from mail2ticket.observability import logger
        from mail2ticket.store.config import save_global_config

        login, password = polled_inbox(stack)
        # The 25 MB mail must be parsed, not refused as too big.
        save_global_config(GlobalConfig.model_validate({"maximum_email_size": "30M"}))
        mails = mail_mix(MAILS)

        sink = ByteCounter()
        handler = logger.registered_handler
        handler.stream = sink  # type: ignore[attr-defined]
        recorder = AwsCallRecorder().start()
        forget_clients()
        run = Run(recorder, sink)
        now = datetime.now(UTC)
        started = time.perf_counter()
        poll_mails(stack, login, password, mails, run)
        print(f"{MAILS} mails polled and processed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        run.invoke("cleaner", runner.scheduled_event("clean", now + timedelta(hours=1)))
        calls_before_idle = len(recorder.calls)
        idle_started = time.perf_counter()
        run.tick(now + timedelta(hours=2))
        idle_poll_s = time.perf_counter() - idle_started
        idle_calls = [c for c in recorder.calls[calls_before_idle:] if c.label in ("dispatcher", "poller")]
        idle_counts = dict(Counter((c.service, c.operation) for c in idle_calls))
        print(f"idle poll: {idle_poll_s:.1f} s, requests {idle_counts}", file=sys.stderr)
        recorder.stop()
        handler.stream = sys.stdout  # type: ignore[attr-defined]
        calls = [c for c in recorder.calls if c.label != "unlabelled"]

        capacity = Capacity()
        for call in calls:
            if call.service == "dynamodb":
                capacity.add(call)
        memory = _memory(stack, login, password)
        from mail2ticket.store.tickets import list_tickets

        tickets = len(list(list_tickets()))
        template = stack.template

    with tempfile.TemporaryDirectory() as tmp:
        layer = _layer(Path(tmp))
        functions = memory_sizes_mb(template, ("dispatcher", "poller", "processor", "cleaner", "intake"))
        uncompiled = {f: _import_seconds(f, layer, mb) for f, mb in functions.items()}
        _compile(layer)
        imports = {f: (_import_seconds(f, layer, mb), uncompiled[f]) for f, mb in functions.items()}
    _report(mails, calls, capacity, run, sink, template, idle_poll_s, memory, imports, tickets)


def request_costs(
    calls: list[AwsCall],
    capacity: Capacity,
    durations: dict[str, list[float]],
    memory_mb: dict[str, int],
    log_bytes: int,
) -> dict[str, float]:
    """The list price of a run, by line: the functions' invocations (their wall time billed per ms at their
    memory size), every AWS request recorded, DynamoDB's units, and the log bytes."""
    counts = Counter((c.service, c.operation) for c in calls)
    gb_seconds = sum(
        math.ceil(d * 1000) / 1000 * memory_mb[f] / 1024 for f, ds in durations.items() for d in ds
    )
    invocations = sum(len(ds) for ds in durations.values())
    s3_put = sum(counts[("s3", op)] for op in ("PutObject", "CopyObject", "ListObjectsV2", "ListObjects"))
    s3_get = sum(counts[("s3", op)] for op in ("GetObject", "HeadObject"))
    sqs = sum(
        max(1, math.ceil(len(c.params.get("MessageBody", "")) / 65536))
        for c in calls
        if c.service == "sqs"
        and c.operation
        in ("SendMessage", "ReceiveMessage", "DeleteMessageBatch", "DeleteMessage", "ChangeMessageVisibility")
    )
    return {
        "lambda compute (arm64)": gb_seconds * LAMBDA_ARM_GB_SECOND,
        "lambda requests": invocations * LAMBDA_REQUEST,
        "dynamodb writes": (capacity.write + capacity.index_write) * DYNAMODB_WRITE_UNIT,
        "dynamodb reads": capacity.read * DYNAMODB_READ_UNIT,
        "s3 put/list": s3_put * S3_PUT_LIST,
        "s3 get": s3_get * S3_GET,
        "sqs requests": sqs * SQS_REQUEST,
        "eventbridge events": counts[("events", "PutEvents")] * EVENTS_PUT,
        "secrets manager": counts[("secretsmanager", "GetSecretValue")] * SECRETS_API_CALL,
        "cloudwatch logs ingest": log_bytes / 1024**3 * LOGS_INGEST_GB,
        "x-ray traces": invocations * XRAY_TRACE,
    }


def _body_length(body: Any) -> int:
    if body is None:
        return 0
    return len(body.getbuffer()) if hasattr(body, "getbuffer") else len(body)


def _report(
    mails: list[bytes],
    calls: list[AwsCall],
    capacity: Capacity,
    run: Run,
    sink: ByteCounter,
    template: dict[str, Any],
    idle_poll_s: float,
    memory: dict[str, Any],
    imports: dict[str, tuple[float, float]],
    tickets: int,
) -> None:
    n = len(mails)
    scale = 10_000 / n
    print(f"mails={n} mean_size_kb={sum(map(len, mails)) / n / 1024:.1f} tickets={tickets}")
    print("\nAWS requests per mail (service operation: count per mail)")
    by_label = Counter((c.label, c.service, c.operation) for c in calls)
    for (label, service, operation), count in sorted(by_label.items()):
        print(f"  {label:16} {service:15} {operation:26} {count / n:7.3f}")

    memory_mb = memory_sizes_mb(template, run.durations)
    costs = request_costs(calls, capacity, run.durations, memory_mb, sink.bytes)
    puts = [c for c in calls if c.operation == "PutObject"]
    stored = {c.params["Key"]: _body_length(c.params.get("Body")) for c in puts}
    print("\nLambda (duration measured per invocation here, billed per ms at the template's memory size)")
    for function, ds in sorted(run.durations.items()):
        print(
            f"  {function:10} invocations={len(ds):4} mean_ms={statistics.mean(ds) * 1000:7.1f} "
            f"memory_mb={memory_mb[function]} gb_s_per_mail={sum(ds) * memory_mb[function] / 1024 / n:.5f}"
        )
    print(
        f"  dynamodb units per mail: write={capacity.write / n:.2f} "
        f"index_write={capacity.index_write / n:.2f} read={capacity.read / n:.2f}"
    )
    print("  dynamodb write units per mail, by request and item (transactional writes count twice):")
    for kind, units in capacity.by_item.most_common():
        if units / n >= 0.005:
            print(f"    {kind:40} {units / n:6.2f}")
    print(f"  log and metric bytes per mail: {sink.bytes / n:.0f}")
    print("\nCost per 10,000 mails (USD, us-east-1 list prices)")
    for name, cost in costs.items():
        print(f"  {name:24} {cost * scale:.5f}")
    storage = sum(stored.values()) / 1024**3 * S3_STORAGE_GB_MONTH * scale
    print(f"  (not per mail: S3 storage of the raw mail and attachments, per month kept: {storage:.5f})")
    # Each tick: the tick and one dispatch step per shard (dispatcher), one poll; the shard messages sent (one
    # request per ten), received and deleted, the poll request sent, received and deleted; each step's two
    # index scans (half a read unit at least each).
    shards = int(template["Parameters"]["DispatchShards"]["Default"])
    idle = 43_200 * (
        math.ceil(idle_poll_s * 1000) / 1000 * memory_mb["poller"] / 1024 * LAMBDA_ARM_GB_SECOND
        + (2 + shards) * LAMBDA_REQUEST
        + (math.ceil(shards / 10) + 2 * shards + 3) * SQS_REQUEST
        + 2 * shards * 0.5 * DYNAMODB_READ_UNIT
    )
    print(f"  (not per mail: the tick and the poll of one idle inbox, per month: {idle:.4f})")

    growth = memory["peak"] - memory["baseline"]
    mail_mb = memory["mail_bytes"] / 2**20
    print(
        f"\nprocessor on a {mail_mb:.1f} MB mail: baseline_mb={memory['baseline'] / 2**20:.1f} "
        f"peak_mb={memory['peak'] / 2**20:.1f} growth={growth / memory['mail_bytes']:.2f}x the mail "
        f"(target < {TARGET_MEMORY_FACTOR}x) outcome={memory['response']}"
    )
    for function, (seconds, uncompiled) in imports.items():
        print(
            f"import {function}: {seconds:.3f} s (target < {TARGET_IMPORT_S} s); "
            f"from a layer without bytecode: {uncompiled:.3f} s"
        )
    total = sum(costs.values()) * scale
    print(f"target: cost <= {TARGET_USD} USD per 10,000 mails: {'met' if total <= TARGET_USD else 'MISSED'}")
    print(f"cost_per_10k_usd={total:.4f}")


if __name__ == "__main__":
    main()
