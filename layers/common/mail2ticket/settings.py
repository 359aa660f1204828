"""Environment settings: every variable the functions read, declared and validated once.

A frozen dataclass, not a pydantic model: this module is imported by every command of the `mail2ticket`
console and every function, and pydantic's import alone costs more than a table command's own work. The
declarations stay as strict as a model's: a variable that is not a whole number, or is outside its bounds,
stops the function at start with the variable's name.
"""

import os
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from mail2ticket.errors import ConfigurationError


def _setting(variable: str, default: Any, low: int | None = None, high: int | None = None) -> Any:
    return field(default=default, metadata={"variable": variable, "low": low, "high": high})


@dataclass(frozen=True)
class Settings:
    """Names of the AWS resources and the functions' tuning, as the template passes them to every function."""

    inboxes_table: str = _setting("INBOXES_TABLE", "mail2ticket-inboxes")
    replicas_table: str = _setting("REPLICAS_TABLE", "mail2ticket-replicas")
    tickets_table: str = _setting("TICKETS_TABLE", "mail2ticket-tickets")
    raw_bucket: str = _setting("RAW_BUCKET", "mail2ticket-raw")
    process_queue_url: str = _setting("PROCESS_QUEUE_URL", "")
    process_dlq_url: str = _setting("PROCESS_DLQ_URL", "")
    poll_queue_url: str = _setting("POLL_QUEUE_URL", "")
    dispatch_queue_url: str = _setting("DISPATCH_QUEUE_URL", "")
    # The tick spreads the inboxes over this many shards, one dispatch-queue message each; each shard's step
    # then queues the polls of its due inboxes (the template's DispatchShards).
    dispatch_shards: int = _setting("DISPATCH_SHARDS", 10, 1, 100)
    event_bus_name: str = _setting("EVENT_BUS_NAME", "default")
    max_attempts: int = _setting("MAX_PROCESS_ATTEMPTS", 5, 1)
    # How long a claim keeps other attempts off a replica: at least the processor's timeout (a claim made
    # late in an invocation outlives it), below the queue's visibility timeout (the next delivery of a
    # message whose invocation died can claim the replica again). The template sets it from the timeout.
    processing_lease_seconds: int = _setting("PROCESSING_LEASE_SECONDS", 150, 1)
    poll_lease_seconds: int = _setting("POLL_LEASE_SECONDS", 300, 1)
    # A failing inbox waits base x 2^failures before its next attempt, at most the cap.
    poll_backoff_base_seconds: int = _setting("POLL_BACKOFF_BASE_SECONDS", 60, 1)
    poll_backoff_max_seconds: int = _setting("POLL_BACKOFF_MAX_SECONDS", 900, 1)
    # A poll stops reading new mail when less than this (beyond one operation timeout of its inbox) is left
    # of its invocation: time to store the last message, save the mark and release the lease.
    poll_reserve_seconds: int = _setting("POLL_RESERVE_SECONDS", 10, 0)
    smtp_host: str = _setting("SMTP_HOST", "")
    smtp_port: int = _setting("SMTP_PORT", 587, 1, 65535)
    smtp_secret_arn: str = _setting("SMTP_SECRET_ARN", "")
    # A replica still new (or stuck processing) this long after it was queued is queued again.
    requeue_after_seconds: int = _setting("REQUEUE_AFTER_SECONDS", 600, 1)
    # Each cleaner rule handles at most this many items per run; the next run goes on where it stopped.
    clean_batch_size: int = _setting("CLEAN_BATCH_SIZE", 1000, 1)
    # An S3 object written this recently is never removed: a poller may be between its S3 write and its
    # replica.
    clean_object_grace_seconds: int = _setting("CLEAN_OBJECT_GRACE_SECONDS", 86400, 0)

    @classmethod
    def from_environment(cls, environment: dict[str, str]) -> "Settings":
        """The settings the variables set, each checked; a variable not set keeps its default."""
        values: dict[str, Any] = {}
        for declared in fields(cls):
            variable = declared.metadata["variable"]
            if variable in environment:
                values[declared.name] = _parsed(declared, variable, environment[variable])
        return cls(**values)


def _parsed(declared: Any, variable: str, text: str) -> Any:
    if declared.type is str:
        return text
    try:
        number = int(text.strip())
    except ValueError:
        raise ConfigurationError(f"{variable} must be a whole number, not {text!r}") from None
    low, high = declared.metadata["low"], declared.metadata["high"]
    if (low is not None and number < low) or (high is not None and number > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ConfigurationError(f"{variable} must be {bounds}, not {number}")
    return number


@cache
def get_settings() -> Settings:
    """Read the environment once per execution environment."""
    return Settings.from_environment(dict(os.environ))
