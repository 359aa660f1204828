"""Inbox configuration items and the global parameters item."""

from collections.abc import Iterator
from typing import Any

from pynamodb.attributes import MapAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.errors import ConfigurationError
from mail2ticket.settings import get_settings
from mail2ticket.store.models import InboxItem

GLOBAL_ID = "#global"  # inbox ids cannot contain '#', so this key never names an inbox


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
    InboxItem.from_config(config).save()


def inboxes() -> Iterator[InboxConfig]:
    """Every inbox item, valid ones only; an invalid item is reported, not fatal to the others."""
    for item in InboxItem.scan(InboxItem.inbox_id != GLOBAL_ID):
        yield item.to_config()


def load_global_config() -> GlobalConfig:
    try:
        item = GlobalConfigItem.get(GLOBAL_ID)
    except DoesNotExist:
        return GlobalConfig()
    return GlobalConfig.model_validate(
        item.values.as_dict() if hasattr(item.values, "as_dict") else item.values
    )


def save_global_config(config: GlobalConfig) -> None:
    GlobalConfigItem(values=config.model_dump(mode="json")).save()
