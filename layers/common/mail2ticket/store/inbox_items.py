"""pynamodb model of the inboxes table's configuration items.

Apart from the other models: its attributes are derived from the pydantic configuration model, which only
the code that reads or writes inbox configurations needs to import.
"""

from typing import Any

from pynamodb.attributes import Attribute, BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from mail2ticket.config.models import InboxConfig
from mail2ticket.settings import get_settings


def _attribute_for(annotation: Any) -> Attribute[Any]:
    if annotation is bool:
        return BooleanAttribute(null=True)
    if annotation in (int, int | None):
        return NumberAttribute(null=True)
    if annotation == list[str]:
        return ListAttribute(of=UnicodeAttribute, null=True)
    return UnicodeAttribute(null=True)


class InboxList(GlobalSecondaryIndex["InboxItem"]):
    """Every item of the inboxes table by its key, with `active`: about 40 bytes an entry, so the dispatch
    steps read the inbox list from this narrow index, never the items themselves. Keyed on `inbox_id`, which
    every item has however it was written (the global parameters item too: its readers skip it), so that a
    parallel scan spreads the inboxes evenly over its segments, the dispatch shards."""

    class Meta:
        index_name = "inbox_list"
        projection = IncludeProjection(["active"])

    inbox_id = UnicodeAttribute(hash_key=True)


class InboxItem(Model):
    """An inbox configuration item: one attribute per field of InboxConfig, nothing secret."""

    class Meta:
        table_name = get_settings().inboxes_table

    inbox_id = UnicodeAttribute(hash_key=True)
    inbox_list = InboxList()

    def to_config(self) -> InboxConfig:
        values = {k: v for k, v in self.attribute_values.items() if v is not None}
        return InboxConfig.model_validate(values)

    @classmethod
    def from_config(cls, config: InboxConfig) -> "InboxItem":
        return cls(**config.model_dump(mode="json"))


# The item's attributes are derived from the pydantic model, so the two never drift apart.
for _name, _field in InboxConfig.model_fields.items():
    if _name != "inbox_id":
        _attribute = _attribute_for(_field.annotation)
        _attribute.attr_name = _name
        setattr(InboxItem, _name, _attribute)
        InboxItem._attributes[_name] = _attribute
