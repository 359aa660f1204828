"""What real DynamoDB refuses, refused before the request leaves: moto serves such requests, AWS does not.

`check` runs on every DynamoDB request of every botocore client (boto3's and pynamodb's alike), through a
handler that every botocore session registers when it is created. It raises RequestOverLimit, a
permanent error that says which value is over which limit, where AWS would answer a ValidationException that
says little (or a transaction error that says nothing). It walks the request once, without copying it: cheap
enough to stay on in Lambda. The keys of each table and index come from the pynamodb models, the one
description of the tables the code has (a unit test compares them with the template).
"""

import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import botocore.handlers

from mail2ticket.errors import RequestOverLimit
from mail2ticket.store.bounds import PARTITION_KEY_BYTES, SORT_KEY_BYTES

ITEM_BYTES = 400 * 1024
TRANSACTION_ITEMS = 100
TRANSACTION_BYTES = 4 * 1024 * 1024
BATCH_WRITE_ITEMS = 25
BATCH_WRITE_BYTES = 16 * 1024 * 1024
BATCH_GET_KEYS = 100
EXPRESSION_BYTES = 4 * 1024
SUBSTITUTION_BYTES = 2 * 1024 * 1024
PLACEHOLDER_BYTES = 255

_EXPRESSIONS = (
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
    "KeyConditionExpression",
    "FilterExpression",
)
_EVENT = "before-parameter-build.dynamodb"


@dataclass
class _Table:
    """A table's key attributes (name -> (role, type), role "partition" or "sort") and its indexes' (index
    name -> attribute name -> role); `types` holds the type of every key attribute of either."""

    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    indexes: dict[str, dict[str, str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def index_role(self, name: str) -> str | None:
        """The strictest role `name` has in any index (a sort key's limit is the lower), or None."""
        roles = {roles[name] for roles in self.indexes.values() if name in roles}
        return ("sort" if "sort" in roles else "partition") if roles else None


_tables: dict[str, _Table] = {}
_models_seen: set[type[Any]] = set()


def check(params: dict[str, Any], model: Any, **_: Any) -> None:
    """The botocore handler: raise RequestOverLimit when DynamoDB would refuse this request."""
    rule = _RULES.get(model.name)
    if rule is not None:
        rule(model.name, params)


def install() -> None:
    """Check every DynamoDB request of every botocore session created from now on, and of boto3's default
    session if it exists already (idempotent)."""
    if (_EVENT, check) not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append((_EVENT, check))
    # Not imported for this: a process that has not imported boto3 has no default session to reach.
    boto3 = sys.modules.get("boto3")
    if boto3 is not None and boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(_EVENT, check, unique_id=_EVENT)


# ------------------------------------------------------------------------------------------ sizes


def value_size(value: dict[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value (without its name)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return _utf8_size(content)
    if kind == "N":
        return _number_size(content)
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8_size(v) for v in content)
    if kind == "NS":
        return sum(_number_size(v) for v in content)
    if kind == "BS":
        return sum(len(v) for v in content)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in content)
    if kind == "M":
        return 3 + sum(_utf8_size(k) + value_size(v) + 1 for k, v in content.items())
    raise RequestOverLimit(f"unknown DynamoDB type {kind!r}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """An item's size as DynamoDB counts it: every attribute's name and value."""
    return sum(_utf8_size(name) + value_size(value) for name, value in item.items())


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise RequestOverLimit(
            f"a string holds a lone surrogate ({text[:40]!r}…): it is not valid UTF-8"
        ) from None


def _number_size(text: str) -> int:
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        raise RequestOverLimit(f"{text[:40]!r} is not a number") from None
    return (len(digits) + 1) // 2 + 1


# ------------------------------------------------------------------------------------------ schemas


def _table(name: str) -> _Table | None:
    models = _models()
    if models - _models_seen:
        _models_seen.update(models)
        _tables.clear()
        for model in _models_seen:
            _describe(model)
    return _tables.get(name)


def _models() -> set[type[Any]]:
    """The pynamodb models defined so far. Not imported for this: a process that defined none (a console
    command reading a table with the plain client) has no model to describe."""
    models = sys.modules.get("pynamodb.models")
    if models is None:
        return set()
    found: set[type[Any]] = set()
    pending = list(models.Model.__subclasses__())
    while pending:
        model = pending.pop()
        if model not in found:
            found.add(model)
            pending.extend(model.__subclasses__())
    return {m for m in found if getattr(getattr(m, "Meta", None), "table_name", None)}


def _describe(model: type[Any]) -> None:
    schema = model._get_schema()
    types = {d["AttributeName"]: d["AttributeType"] for d in schema["attribute_definitions"]}
    table = _tables.setdefault(model.Meta.table_name, _Table())
    table.types.update(types)
    for key in schema["key_schema"]:
        table.keys[key["AttributeName"]] = (_role(key["KeyType"]), types[key["AttributeName"]])
    for index in schema["global_secondary_indexes"]:
        table.indexes[index["index_name"]] = {
            k["AttributeName"]: _role(k["KeyType"]) for k in index["key_schema"]
        }


def _role(key_type: str) -> str:
    return "partition" if key_type == "HASH" else "sort"


# ------------------------------------------------------------------------------------------ checks


def _refuse(operation: str, table: str, what: str) -> RequestOverLimit:
    return RequestOverLimit(f"DynamoDB would refuse {operation} on {table}: {what}")


def _check_key_value(
    operation: str, table: str, name: str, role: str, kind: str, value: Any, index: bool
) -> None:
    what = ("index key" if index else f"{role} key") + f" {name}"
    ((given, content),) = value.items()
    if given != kind:
        raise _refuse(
            operation, table, f"{what} is of type {given}, the {'index' if index else 'table'} says {kind}"
        )
    if given in ("S", "B"):
        size = _utf8_size(content) if given == "S" else len(content)
        limit = PARTITION_KEY_BYTES if role == "partition" else SORT_KEY_BYTES
        if size == 0:
            raise _refuse(operation, table, f"{what} is empty")
        if size > limit:
            raise _refuse(operation, table, f"{what} is {size:,} bytes, over DynamoDB's limit of {limit:,}")


def _check_key(operation: str, table_name: str, key: dict[str, Any]) -> None:
    """A primary key given to read, update or delete one item: exactly the table's key attributes."""
    table = _table(table_name)
    if table is None:
        return
    if set(key) != set(table.keys):
        raise _refuse(
            operation, table_name, f"the key has {sorted(key)}, the table's is {sorted(table.keys)}"
        )
    for name, value in key.items():
        role, kind = table.keys[name]
        _check_key_value(operation, table_name, name, role, kind, value, index=False)


def _check_item(operation: str, table_name: str, item: dict[str, Any]) -> int:
    """A whole item to put: its keys, the index keys it holds, its size; returns its size."""
    table = _table(table_name)
    if table is not None:
        _check_key(operation, table_name, {k: v for k, v in item.items() if k in table.keys})
        # An index key is held to the strictest role it has in any index, whether or not the item enters
        # that index: a sparse index's sort key is then limited on every item (as moto does; AWS accepts it).
        for name in item.keys() & table.types.keys():
            role = table.index_role(name)
            if role is not None:
                kind = table.types[name]
                _check_key_value(operation, table_name, name, role, kind, item[name], index=True)
    size = item_size(item)
    if size > ITEM_BYTES:
        raise _refuse(
            operation, table_name, f"an item of {size:,} bytes is over DynamoDB's limit of {ITEM_BYTES:,}"
        )
    return size


def _check_expressions(operation: str, table_name: str, request: dict[str, Any]) -> int:
    """Expression strings, placeholders and the values they substitute; returns the values' size."""
    for name in _EXPRESSIONS:
        text = request.get(name)
        if text is not None and _utf8_size(text) > EXPRESSION_BYTES:
            raise _refuse(operation, table_name, f"{name} is over {EXPRESSION_BYTES:,} bytes")
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    for placeholder in (*names, *values):
        if _utf8_size(placeholder) > PLACEHOLDER_BYTES:
            raise _refuse(operation, table_name, f"placeholder {placeholder[:40]!r}… is over 255 bytes")
    values_size = sum(value_size(v) for v in values.values())
    total = values_size + sum(_utf8_size(n) + _utf8_size(v) for n, v in names.items())
    if total > SUBSTITUTION_BYTES:
        raise _refuse(operation, table_name, f"expression names and values of {total:,} bytes are over 2 MB")
    if values_size > ITEM_BYTES:
        raise _refuse(operation, table_name, f"expression values of {values_size:,} bytes are over 400 KB")
    return values_size


_SET_ASSIGNMENT = re.compile(r"(#?[\w.\[\]#]+)\s*=\s*(:\w+)\s*(?:,|$)")
_SECTION = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)


def _check_update(operation: str, table_name: str, request: dict[str, Any]) -> int:
    """An update: never of a key attribute, and index key attributes set to values an index accepts."""
    _check_key(operation, table_name, request["Key"])
    size = _check_expressions(operation, table_name, request) + item_size(request["Key"])
    table = _table(table_name)
    expression = request.get("UpdateExpression")
    if table is None or not expression:
        return size
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    for path in _updated_paths(expression, names):
        if path in table.keys:
            raise _refuse(operation, table_name, f"{path} is part of the key and cannot be updated")
    for path, placeholder in _assignments(expression, names):
        role = table.index_role(path)
        if role is not None and placeholder in values:
            _check_key_value(
                operation, table_name, path, role, table.types[path], values[placeholder], index=True
            )
    return size


def _sections(expression: str) -> list[tuple[str, str]]:
    marks = list(_SECTION.finditer(expression))
    return [
        (m.group(1).upper(), expression[m.end() : marks[n + 1].start() if n + 1 < len(marks) else None])
        for n, m in enumerate(marks)
    ]


def _updated_paths(expression: str, names: dict[str, str]) -> set[str]:
    paths = set()
    for _, body in _sections(expression):
        for token in re.findall(r"(?:^|,)\s*(#?[\w]+)", body):
            paths.add(names.get(token, token))
    return paths


def _assignments(expression: str, names: dict[str, str]) -> Iterable[tuple[str, str]]:
    for kind, body in _sections(expression):
        if kind == "SET":
            for path, placeholder in _SET_ASSIGNMENT.findall(body.strip()):
                yield names.get(path, path), placeholder


_KEY_CONDITION = re.compile(
    r"(#?\w+)\s*(?:=|<=|>=|<|>)\s*(:\w+)"
    r"|begins_with\s*\(\s*(#?\w+)\s*,\s*(:\w+)\s*\)"
    r"|(#?\w+)\s+BETWEEN\s+(:\w+)\s+AND\s+(:\w+)",
    re.IGNORECASE,
)


def _check_query(operation: str, table_name: str, request: dict[str, Any]) -> None:
    _check_expressions(operation, table_name, request)
    table = _table(table_name)
    condition = request.get("KeyConditionExpression")
    if table is None or not condition:
        return
    index = request.get("IndexName")
    roles = table.indexes.get(index, {}) if index else {k: role for k, (role, _) in table.keys.items()}
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    for match in _KEY_CONDITION.finditer(condition):
        groups = [g for g in match.groups() if g is not None]
        path, placeholders = names.get(groups[0], groups[0]), groups[1:]
        if path not in roles:
            continue
        kind = table.types[path]
        for placeholder in placeholders:
            if placeholder in values:
                _check_key_value(
                    operation, table_name, path, roles[path], kind, values[placeholder], bool(index)
                )


# ------------------------------------------------------------------------------------------ operations


def _put(operation: str, params: dict[str, Any]) -> None:
    _check_expressions(operation, params["TableName"], params)
    _check_item(operation, params["TableName"], params["Item"])


def _update(operation: str, params: dict[str, Any]) -> None:
    _check_update(operation, params["TableName"], params)


def _by_key(operation: str, params: dict[str, Any]) -> None:
    _check_expressions(operation, params["TableName"], params)
    _check_key(operation, params["TableName"], params["Key"])


def _query(operation: str, params: dict[str, Any]) -> None:
    _check_query(operation, params["TableName"], params)


def _scan(operation: str, params: dict[str, Any]) -> None:
    _check_expressions(operation, params["TableName"], params)


def _transact_write(operation: str, params: dict[str, Any]) -> None:
    items = params.get("TransactItems") or []
    if len(items) > TRANSACTION_ITEMS:
        raise RequestOverLimit(
            f"DynamoDB would refuse {operation}: {len(items)} items, over its limit of 100"
        )
    total = 0
    touched: set[str] = set()
    for entry in items:
        ((kind, request),) = entry.items()
        table_name = request["TableName"]
        if kind == "Put":
            total += _check_expressions(operation, table_name, request)
            total += _check_item(operation, table_name, request["Item"])
            key = _key_of(table_name, request["Item"])
        elif kind == "Update":
            total += _check_update(operation, table_name, request)
            key = request["Key"]
        else:
            total += _check_expressions(operation, table_name, request) + item_size(request["Key"])
            _check_key(operation, table_name, request["Key"])
            key = request["Key"]
        _once(touched, operation, table_name, key, "two operations on one item in one transaction")
    if total > TRANSACTION_BYTES:
        raise RequestOverLimit(f"DynamoDB would refuse {operation}: {total:,} bytes, over its limit of 4 MB")


def _transact_get(operation: str, params: dict[str, Any]) -> None:
    items = params.get("TransactItems") or []
    if len(items) > TRANSACTION_ITEMS:
        raise RequestOverLimit(
            f"DynamoDB would refuse {operation}: {len(items)} items, over its limit of 100"
        )
    for entry in items:
        request = entry["Get"]
        _by_key(operation, request)


def _batch_write(operation: str, params: dict[str, Any]) -> None:
    requests = params.get("RequestItems") or {}
    count = sum(len(entries) for entries in requests.values())
    if count > BATCH_WRITE_ITEMS:
        raise RequestOverLimit(f"DynamoDB would refuse {operation}: {count} requests, over its limit of 25")
    total = 0
    for table_name, entries in requests.items():
        keys: set[str] = set()
        for entry in entries:
            if "PutRequest" in entry:
                item = entry["PutRequest"]["Item"]
                total += _check_item(operation, table_name, item)
                key = _key_of(table_name, item)
            else:
                key = entry["DeleteRequest"]["Key"]
                _check_key(operation, table_name, key)
            _once(keys, operation, table_name, key, "the same item twice in one batch")
    if total > BATCH_WRITE_BYTES:
        raise RequestOverLimit(f"DynamoDB would refuse {operation}: {total:,} bytes, over its limit of 16 MB")


def _batch_get(operation: str, params: dict[str, Any]) -> None:
    requests = params.get("RequestItems") or {}
    count = sum(len(r.get("Keys", [])) for r in requests.values())
    if count > BATCH_GET_KEYS:
        raise RequestOverLimit(f"DynamoDB would refuse {operation}: {count} keys, over its limit of 100")
    for table_name, request in requests.items():
        _check_expressions(operation, table_name, request)
        seen: set[str] = set()
        for key in request.get("Keys", []):
            _check_key(operation, table_name, key)
            _once(seen, operation, table_name, key, "the same key twice in one batch")


def _once(seen: set[str], operation: str, table_name: str, key: dict[str, Any], what: str) -> None:
    """DynamoDB refuses a transaction or batch that names one item twice."""
    identity = f"{table_name}:{sorted(key.items())!r}"
    if identity in seen:
        raise _refuse(operation, table_name, what)
    seen.add(identity)


def _key_of(table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    table = _table(table_name)
    return {k: v for k, v in item.items() if table is None or k in table.keys}


_RULES: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "PutItem": _put,
    "UpdateItem": _update,
    "GetItem": _by_key,
    "DeleteItem": _by_key,
    "Query": _query,
    "Scan": _scan,
    "TransactWriteItems": _transact_write,
    "TransactGetItems": _transact_get,
    "BatchWriteItem": _batch_write,
    "BatchGetItem": _batch_get,
}
