"""Inbox configuration items and the global parameters item."""

from collections.abc import Iterator
from contextlib import suppress
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from pynamodb.attributes import MapAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from mail2ticket.config.models import GlobalConfig, InboxConfig, Protocol
from mail2ticket.config.validation import validate_global, validate_inbox
from mail2ticket.errors import ConfigurationError
from mail2ticket.observability import logger
from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client
from mail2ticket.store.inbox_items import InboxItem
from mail2ticket.store.routes import RouteItem, route_key, routes_of

# Inbox ids cannot contain '#': keys that start with it (this one, the routes of push inboxes) never name an
# inbox.
GLOBAL_ID = "#global"
# Attributes earlier versions wrote on every inbox item and that nothing reads any more: left out when an item
# is read, so that such an item stays valid (and goes at its next write).
RETIRED_ATTRIBUTES = frozenset({"trace"})


class GlobalConfigItem(Model):
    """The global parameters, one item beside the inboxes."""

    class Meta:
        table_name = get_settings().inboxes_table

    inbox_id = UnicodeAttribute(hash_key=True, default=GLOBAL_ID)
    values = MapAttribute[str, Any](default=dict)


def load_inbox(inbox_id: str) -> InboxConfig:
    try:
        return InboxItem.get(inbox_id).to_config()
    except DoesNotExist:
        raise ConfigurationError(f"inbox {inbox_id!r} does not exist") from None


def save_inbox(config: InboxConfig) -> None:
    """Write the inbox; a push inbox's routes are written with it, and those of recipients it no longer owns
    removed. Refused when another inbox owns one of its recipients."""
    item = InboxItem.from_config(config)
    owned = config.recipients if config.protocol is Protocol.PUSH else []
    stale = _own_routes(config.inbox_id, set(_stored_recipients(config.inbox_id)) - set(owned))
    if not owned and not stale:
        item.save()
        return
    mine = RouteItem.owner.does_not_exist() | (RouteItem.owner == config.inbox_id)
    try:
        with TransactWrite(connection=Connection()) as tx:
            for recipient in stale:
                tx.delete(RouteItem(route_key(recipient)), condition=RouteItem.owner == config.inbox_id)
            tx.save(item)
            for recipient in owned:
                tx.save(RouteItem(route_key(recipient), owner=config.inbox_id), condition=mine)
    except TransactWriteError as exc:
        # DynamoDB gives one reason per request, in the order pynamodb sends them: deletes, then puts.
        reasons = (exc.cancellation_reasons or [])[len(stale) + 1 :]
        taken = [
            r for r, why in zip(owned, reasons, strict=False) if why and why.code == "ConditionalCheckFailed"
        ]
        if not taken:
            raise
        others = routes_of(taken)
        raise ConfigurationError(
            "recipients: " + "; ".join(f"{r} belongs to inbox {others.get(r, '?')}" for r in taken)
        ) from None


def _stored_recipients(inbox_id: str) -> list[str]:
    """The recipients the stored item of this inbox names (none if it has no item)."""
    try:
        stored = InboxItem.get(inbox_id, consistent_read=True, attributes_to_get=["recipients"])
    except DoesNotExist:
        return []
    return list(getattr(stored, "recipients", None) or [])


def _own_routes(inbox_id: str, recipients: set[str]) -> list[str]:
    return sorted(r for r, owner in routes_of(recipients).items() if owner == inbox_id) if recipients else []


def inboxes() -> Iterator[InboxConfig]:
    """Every inbox item, valid ones only; an invalid item is reported, not fatal to the others."""
    for values in inbox_items():
        try:
            yield validate_inbox(values)
        except ConfigurationError as exc:
            logger.error(
                "invalid inbox item skipped", extra={"inbox_id": values.get("inbox_id"), "reason": str(exc)}
            )


def inbox_items() -> Iterator[dict[str, Any]]:
    """Every inbox item as stored, attributes unknown to the model included (retired ones left out)."""
    paginator = client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=get_settings().inboxes_table):
        for item in page["Items"]:
            values = _plain(item)
            if not str(values.get("inbox_id", "")).startswith("#"):
                yield values


def listed_inboxes(segment: tuple[int, int] | None = None) -> Iterator[tuple[str, bool]]:
    """Every inbox id with whether it is active, read from the narrow `inbox_list` index, not the items;
    with `segment` (k, n), the k-th of n parallel scan segments only. DynamoDB puts each item in exactly one
    segment by its key, so the segments split every inbox item, however it was written, without an attribute
    of its own.

    Read with the plain client: an item edited by hand may hold `active` in any type, and one such item must
    not stop the list (the poll of that inbox reports it as invalid)."""
    options: dict[str, Any] = {}
    if segment is not None:
        options = {"Segment": segment[0], "TotalSegments": segment[1]}
    paginator = client("dynamodb").get_paginator("scan")
    pages = paginator.paginate(
        TableName=get_settings().inboxes_table, IndexName=InboxItem.inbox_list.Meta.index_name, **options
    )
    for page in pages:
        for item in page["Items"]:
            inbox_id = item["inbox_id"]["S"]
            # Inbox ids cannot start with '#': `#global` and push routes (`#route#…`) are not inboxes.
            if not inbox_id.startswith("#"):
                yield inbox_id, item.get("active") != {"BOOL": False}


def inbox_item(inbox_id: str) -> dict[str, Any]:
    """One inbox item as stored (an item edited in the console may hold anything; retired attributes left
    out)."""
    found = client("dynamodb").get_item(
        TableName=get_settings().inboxes_table, Key={"inbox_id": {"S": inbox_id}}, ConsistentRead=True
    )
    if inbox_id.startswith("#") or "Item" not in found:
        raise ConfigurationError(f"inbox {inbox_id!r} does not exist")
    return _plain(found["Item"])


def set_inbox_attribute(inbox_id: str, name: str, value: Any) -> None:
    """Change one attribute of an existing inbox item."""
    attribute = getattr(InboxItem, name)
    try:
        InboxItem(inbox_id=inbox_id).update(
            actions=[attribute.set(value)], condition=InboxItem.inbox_id.exists()
        )
    except UpdateError as exc:
        _raise_missing(exc, inbox_id)


def delete_inbox(inbox_id: str) -> None:
    """Delete the inbox item; a push inbox's routes go too (its mail then goes to the catch-all group)."""
    routes = _own_routes(inbox_id, set(_stored_recipients(inbox_id)))
    try:
        InboxItem(inbox_id=inbox_id).delete(condition=InboxItem.inbox_id.exists())
    except DeleteError as exc:
        _raise_missing(exc, inbox_id)
    for recipient in routes:
        with suppress(DeleteError):
            RouteItem(route_key(recipient)).delete(condition=RouteItem.owner == inbox_id)


def _raise_missing(exc: Exception, inbox_id: str) -> None:
    if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
        raise ConfigurationError(f"inbox {inbox_id!r} does not exist") from None
    raise exc


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {
        name: _number(deserializer.deserialize(value))
        for name, value in item.items()
        if name not in RETIRED_ATTRIBUTES
    }


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    return value


def load_global_config() -> GlobalConfig:
    return GlobalConfig.model_validate(global_values())


def global_values() -> dict[str, Any]:
    """The parameters set explicitly; the others take their defaults."""
    try:
        item = GlobalConfigItem.get(GLOBAL_ID)
    except DoesNotExist:
        return {}
    values = item.values.as_dict() if hasattr(item.values, "as_dict") else item.values
    return {name: _number(value) for name, value in dict(values).items()}


def save_global_values(values: dict[str, Any]) -> GlobalConfig:
    """Validate, then store only the parameters given, so the others keep following the defaults."""
    config = validate_global(values)
    GlobalConfigItem(values=config.model_dump(mode="json", include=set(values))).save()
    return config


def save_global_config(config: GlobalConfig) -> None:
    GlobalConfigItem(values=config.model_dump(mode="json", exclude_unset=True)).save()
