"""The limits check refuses every request real DynamoDB would refuse, and lets the rest through."""

from types import SimpleNamespace
from typing import Any

import pytest

from infra.local.resources import load_template
from mail2ticket.errors import PermanentError, RequestOverLimit
from mail2ticket.store.inbox_items import InboxItem
from mail2ticket.store.limits import check, item_size
from mail2ticket.store.models import MessageLink, Replica, TicketItem

REPLICAS = Replica.Meta.table_name
TICKETS = TicketItem.Meta.table_name


def _request(operation: str, **params: Any) -> None:
    check(params=params, model=SimpleNamespace(name=operation))


def _s(size: int, char: str = "x") -> dict[str, str]:
    return {"S": char * size}


def _replica(sk: int = 10, **extra: Any) -> dict[str, Any]:
    return {"inbox_id": {"S": "support"}, "sk": _s(sk), "sha256": {"S": "ab"}, **extra}


def _refused(operation: str, **params: Any) -> str:
    with pytest.raises(RequestOverLimit) as caught:
        _request(operation, **params)
    assert isinstance(caught.value, PermanentError)
    return caught.value.message


def test_keys_at_their_limits_pass_and_one_byte_more_is_refused() -> None:
    # Given items whose keys are exactly at DynamoDB's limits, then one byte over
    _request("PutItem", TableName=REPLICAS, Item=_replica(sk=1024, message_id=_s(2048)))

    # Then one byte more is refused, with the attribute, its size and the limit
    assert "sort key sk is 1,025 bytes" in _refused("PutItem", TableName=REPLICAS, Item=_replica(sk=1025))
    over = {"inbox_id": _s(2049), "sk": _s(5)}
    assert "partition key inbox_id is 2,049 bytes" in _refused("PutItem", TableName=REPLICAS, Item=over)
    message = _refused("PutItem", TableName=REPLICAS, Item=_replica(message_id=_s(2093)))
    assert "index key message_id is 2,093 bytes, over DynamoDB's limit of 2,048" in message


def test_key_sizes_count_utf8_bytes_not_characters() -> None:
    # 600 characters of 2 bytes each: 1,200 bytes, over the sort key's 1,024
    item = {"inbox_id": {"S": "support"}, "sk": _s(600, "é")}
    assert "1,200 bytes" in _refused("PutItem", TableName=REPLICAS, Item=item)


def test_a_sort_key_of_any_index_is_limited_as_a_sort_key_on_every_item() -> None:
    # Given the tickets table, whose `by_type` index has the item's pk as sort key (1,024 bytes)
    link = {"pk": _s(1500), "sk": {"S": "msgid"}}
    ticket = {"pk": _s(1500), "sk": {"S": "ticket"}, "item_type": {"S": "ticket"}}

    # Then a 1,500-byte pk is refused, on a ticket and on an item outside the index alike
    assert "index key pk is 1,500 bytes" in _refused("PutItem", TableName=TICKETS, Item=ticket)
    assert "index key pk is 1,500 bytes" in _refused("PutItem", TableName=TICKETS, Item=link)
    _request("PutItem", TableName=TICKETS, Item={**link, "pk": _s(1024)})


def test_empty_or_mistyped_index_keys_and_bad_utf8_are_refused() -> None:
    assert "message_id is empty" in _refused("PutItem", TableName=REPLICAS, Item=_replica(message_id=_s(0)))
    typed = _replica(open_since={"S": "12"})
    assert "open_since is of type S" in _refused("PutItem", TableName=REPLICAS, Item=typed)
    surrogate = _replica(subject={"S": "caf\udce9"})
    assert "not valid UTF-8" in _refused("PutItem", TableName=REPLICAS, Item=surrogate)


def test_an_item_over_400_kb_as_dynamodb_counts_it_is_refused() -> None:
    # Given an item whose names and values make 400 KB and one byte
    base = _replica()
    room = 400 * 1024 - item_size(base) - len("subject")
    _request("PutItem", TableName=REPLICAS, Item={**base, "subject": _s(room)})

    assert "over DynamoDB's limit of 409,600" in _refused(
        "PutItem", TableName=REPLICAS, Item={**base, "subject": _s(room + 1)}
    )


def test_item_sizes_follow_dynamodb_rules_for_numbers_lists_and_maps() -> None:
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"n": {"N": "100000"}}) == 1 + 2
    assert item_size({"l": {"L": [{"S": "ab"}, {"BOOL": True}]}}) == 1 + 3 + (2 + 1) + (1 + 1)
    assert item_size({"m": {"M": {"k": {"S": "abc"}}}}) == 1 + 3 + (1 + 3 + 1)
    assert item_size({"b": {"B": b"\x00" * 10}}) == 1 + 10


def test_updates_of_key_attributes_and_index_keys_over_the_limit_are_refused() -> None:
    key = {"inbox_id": {"S": "support"}, "sk": {"S": "m#1"}}
    names = {"#0": "message_id"}

    refused = _refused(
        "UpdateItem",
        TableName=REPLICAS,
        Key=key,
        UpdateExpression="SET #0 = :0",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":0": _s(3000)},
    )
    assert "index key message_id is 3,000 bytes" in refused
    assert "part of the key" in _refused(
        "UpdateItem",
        TableName=REPLICAS,
        Key=key,
        UpdateExpression="SET #0 = :0",
        ExpressionAttributeNames={"#0": "sk"},
        ExpressionAttributeValues={":0": _s(3)},
    )
    _request(
        "UpdateItem",
        TableName=REPLICAS,
        Key=key,
        UpdateExpression="SET #0 = :0 REMOVE #1",
        ExpressionAttributeNames={"#0": "message_id", "#1": "open_since"},
        ExpressionAttributeValues={":0": _s(20)},
    )


def test_a_lookup_by_a_key_over_the_limit_is_refused() -> None:
    long_key = {"pk": _s(2100), "sk": {"S": "msgid"}}
    assert "2,100 bytes" in _refused("GetItem", TableName=TICKETS, Key=long_key)
    assert "2,100 bytes" in _refused(
        "Query",
        TableName=REPLICAS,
        IndexName="by_message_id",
        KeyConditionExpression="#0 = :0",
        ExpressionAttributeNames={"#0": "message_id"},
        ExpressionAttributeValues={":0": _s(2100)},
    )
    assert "1,100 bytes" in _refused(
        "Query",
        TableName=REPLICAS,
        KeyConditionExpression="#0 = :0 AND begins_with (#1, :1)",
        ExpressionAttributeNames={"#0": "inbox_id", "#1": "sk"},
        ExpressionAttributeValues={":0": {"S": "a"}, ":1": _s(1100)},
    )


def test_transactions_over_100_items_4_mb_or_with_one_item_twice_are_refused() -> None:
    def put(n: int, size: int = 10) -> dict[str, Any]:
        return {
            "Put": {"TableName": TICKETS, "Item": {"pk": {"S": f"p{n}"}, "sk": {"S": "s"}, "t": _s(size)}}
        }

    _request("TransactWriteItems", TransactItems=[put(n) for n in range(100)])
    assert "101 items" in _refused("TransactWriteItems", TransactItems=[put(n) for n in range(101)])
    assert "over its limit of 4 MB" in _refused(
        "TransactWriteItems", TransactItems=[put(n, 300 * 1024) for n in range(14)]
    )
    assert "two operations on one item" in _refused("TransactWriteItems", TransactItems=[put(1), put(1)])


def test_batch_writes_over_25_requests_or_with_a_duplicate_are_refused() -> None:
    def put(n: int) -> dict[str, Any]:
        return {"PutRequest": {"Item": {"pk": {"S": f"p{n}"}, "sk": {"S": "s"}}}}

    _request("BatchWriteItem", RequestItems={TICKETS: [put(n) for n in range(25)]})
    assert "26 requests" in _refused("BatchWriteItem", RequestItems={TICKETS: [put(n) for n in range(26)]})
    assert "twice" in _refused("BatchWriteItem", RequestItems={TICKETS: [put(1), put(1)]})


def test_batch_gets_over_100_keys_or_with_a_duplicate_are_refused() -> None:
    keys = [{"pk": {"S": f"p{n}"}, "sk": {"S": "s"}} for n in range(101)]
    assert "101 keys" in _refused("BatchGetItem", RequestItems={TICKETS: {"Keys": keys}})
    assert "twice" in _refused("BatchGetItem", RequestItems={TICKETS: {"Keys": [keys[0], keys[0]]}})


def test_expressions_over_4_kb_are_refused() -> None:
    names = {f"#{n}": "status" for n in range(600)}
    expression = " AND ".join(f"#{n} = :v" for n in range(600))
    assert "ConditionExpression is over 4,096 bytes" in _refused(
        "PutItem",
        TableName=REPLICAS,
        Item=_replica(),
        ConditionExpression=expression,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":v": {"S": "new"}},
    )


def test_the_models_keys_are_the_tables_and_indexes_of_the_template() -> None:
    # The check reads each table's keys from the models: they must be the keys the template creates.
    from mail2ticket.store.limits import _table

    template = load_template()["Resources"]
    for model, logical_id in (
        (InboxItem, "InboxesTable"),
        (Replica, "ReplicasTable"),
        (MessageLink, "TicketsTable"),
    ):
        table = _table(model.Meta.table_name)
        assert table is not None
        props = template[logical_id]["Properties"]
        types = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}
        expected = {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
        assert {name: role for name, (role, _) in table.keys.items()} == {
            name: "partition" if kind == "HASH" else "sort" for name, kind in expected.items()
        }
        indexes = {
            index["IndexName"]: {
                k["AttributeName"]: "partition" if k["KeyType"] == "HASH" else "sort"
                for k in index["KeySchema"]
            }
            for index in props.get("GlobalSecondaryIndexes", [])
        }
        assert table.indexes == indexes
        assert {name: table.types[name] for name in types} == types
