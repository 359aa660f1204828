"""Outcome events on the product's EventBridge bus (no mail body, only references)."""

import json
from typing import Any

from mail2ticket.observability import logger
from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client

SOURCE = "mail2ticket"


def publish(detail_type: str, detail: dict[str, Any]) -> None:
    """Best effort: the ticket is committed already, so a failed event is logged, never retried in a loop."""
    try:
        response = client("events").put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": get_settings().event_bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            logger.warning("event not published", extra={"detail_type": detail_type})
    except Exception:
        logger.exception("event not published", extra={"detail_type": detail_type})
