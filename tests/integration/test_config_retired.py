"""An inbox item written by an earlier version, with attributes nothing reads any more, is still polled."""

import boto3
import pytest

from mail2ticket.settings import get_settings
from mail2ticket.store.config import inbox_item, inboxes, load_inbox

pytestmark = pytest.mark.integration


def test_an_item_with_the_retired_trace_attribute_stays_valid(aws: object) -> None:
    # Given an inbox item as earlier versions wrote it, `trace` included
    boto3.client("dynamodb").put_item(
        TableName=get_settings().inboxes_table,
        Item={
            "inbox_id": {"S": "legacy"},
            "server": {"S": "mail.example.com"},
            "login": {"S": "support@example.com"},
            "trace": {"BOOL": False},
        },
    )

    # When the poller lists the inboxes, and the CLI reads the item
    listed = [inbox.inbox_id for inbox in inboxes()]

    # Then the inbox is listed and loads, and `trace` is not shown as an unknown field
    assert listed == ["legacy"]
    assert load_inbox("legacy").server == "mail.example.com"
    assert "trace" not in inbox_item("legacy")
