"""Environment settings: every variable the functions read, modelled and validated once."""

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Names of the AWS resources, as the template passes them to every function."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    inboxes_table: str = Field("mail2ticket-inboxes", alias="INBOXES_TABLE")
    replicas_table: str = Field("mail2ticket-replicas", alias="REPLICAS_TABLE")
    tickets_table: str = Field("mail2ticket-tickets", alias="TICKETS_TABLE")
    raw_bucket: str = Field("mail2ticket-raw", alias="RAW_BUCKET")
    process_queue_url: str = Field("", alias="PROCESS_QUEUE_URL")
    process_dlq_url: str = Field("", alias="PROCESS_DLQ_URL")
    poll_queue_url: str = Field("", alias="POLL_QUEUE_URL")
    dispatch_queue_url: str = Field("", alias="DISPATCH_QUEUE_URL")
    # The tick spreads the inboxes over this many shards, one dispatch-queue message each; each shard's step
    # then queues the polls of its due inboxes (the template's DispatchShards).
    dispatch_shards: int = Field(10, alias="DISPATCH_SHARDS", ge=1, le=100)
    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME")
    max_attempts: int = Field(5, alias="MAX_PROCESS_ATTEMPTS", ge=1)
    # How long a claim keeps other attempts off a replica: at least the processor's timeout (a claim made
    # late in an invocation outlives it), below the queue's visibility timeout (the next delivery of a
    # message whose invocation died can claim the replica again). The template sets it from the timeout.
    processing_lease_seconds: int = Field(150, alias="PROCESSING_LEASE_SECONDS", ge=1)
    poll_lease_seconds: int = Field(300, alias="POLL_LEASE_SECONDS", ge=1)
    # A failing inbox waits base x 2^failures before its next attempt, at most the cap.
    poll_backoff_base_seconds: int = Field(60, alias="POLL_BACKOFF_BASE_SECONDS", ge=1)
    poll_backoff_max_seconds: int = Field(900, alias="POLL_BACKOFF_MAX_SECONDS", ge=1)
    # A poll stops reading new mail when less than this (beyond one operation timeout of its inbox) is left
    # of its invocation: time to store the last message, save the mark and release the lease.
    poll_reserve_seconds: int = Field(10, alias="POLL_RESERVE_SECONDS", ge=0)
    smtp_host: str = Field("", alias="SMTP_HOST")
    smtp_port: int = Field(587, alias="SMTP_PORT", ge=1, le=65535)
    smtp_secret_arn: str = Field("", alias="SMTP_SECRET_ARN")
    # A replica still new (or stuck processing) this long after it was queued is queued again.
    requeue_after_seconds: int = Field(600, alias="REQUEUE_AFTER_SECONDS", ge=1)
    # Each cleaner rule handles at most this many items per run; the next run goes on where it stopped.
    clean_batch_size: int = Field(1000, alias="CLEAN_BATCH_SIZE", ge=1)
    # An S3 object written this recently is never removed: a poller may be between its S3 write and its
    # replica.
    clean_object_grace_seconds: int = Field(86400, alias="CLEAN_OBJECT_GRACE_SECONDS", ge=0)


@cache
def get_settings() -> Settings:
    """Read the environment once per execution environment."""
    return Settings.model_validate(dict(os.environ))
