"""Typed errors, and the one rule that tells a transient failure from a permanent one by the error itself.

Transient failures are retried (through SQS for the processor, by the next run for the poller and the
cleaner); permanent ones are recorded on the replica. Whatever step raised it, throttling, a timeout, a 5xx or
a broken connection from any AWS call is transient: `is_transient` looks at the error and its causes, never at
the step.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes stored on a replica in error."""

    UNKNOWN_CALLER = "unknown_caller"
    DECODE_FAILED = "decode_failed"
    NOTHING_TO_UPDATE = "nothing_to_update"
    TOO_BIG = "too_big"
    FAILED_TO_CREATE_PERSON = "failed_to_create_person"
    REJECTED_ATTACHMENTS = "rejected_attachments"
    INTERNAL = "internal"
    # A pushed mail that no push inbox owns (recorded in the catch-all group).
    NO_INBOX = "no_inbox"


class Mail2TicketError(Exception):
    """Base of the product's errors."""


class TransientError(Mail2TicketError):
    """A failure that another attempt may not meet (throttling, a server away)."""


class PermanentError(Mail2TicketError):
    """A failure that another attempt would meet again: recorded on the replica, not retried."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RequestOverLimit(PermanentError):
    """A request real DynamoDB would refuse (a key, an item or a transaction over its limits): refused here,
    before it leaves, with what is over which limit."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INTERNAL, message)


class ConfigurationError(Mail2TicketError):
    """An inbox or global configuration that cannot be used."""


# Error codes AWS services answer when a request may succeed later: throttling (every service's spelling of
# it, DynamoDB's transaction conflicts included), server-side timeouts and failures. botocore's own retry
# codes are a subset (tests/unit/test_transient.py checks it), so what the SDK retried and gave up on is
# retried here too.
TRANSIENT_CODES = frozenset(
    {
        # throttling
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "EC2ThrottledException",
        "KMSThrottlingException",
        # conflicts with a request in progress
        "TransactionConflictException",
        "TransactionInProgressException",
        "PriorRequestNotComplete",
        # timeouts and failures on the service's side
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalServerError",
        "InternalServerException",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
# Why DynamoDB cancelled one item of a transaction, when another attempt may commit it.
TRANSIENT_CANCELLATIONS = frozenset(
    {"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"}
)


def is_transient(exc: BaseException | None) -> bool:
    """Whether another attempt may succeed: the error, or any error it was raised from, is transient."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if _transient_itself(exc):
            return True
        # pynamodb keeps botocore's error as `cause`; Python chains keep the rest.
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException) and _transient_itself(cause):
            return True
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return False


def _transient_itself(exc: BaseException) -> bool:
    # Imported here: the CLI names these errors at start, and would pay for botocore before any request.
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as EndpointError

    if isinstance(exc, TransientError):
        return True
    # botocore's connection and HTTP errors (timeouts included), and the socket's own.
    if isinstance(exc, EndpointError | HTTPClientError | ConnectionError | TimeoutError):
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    if any(getattr(r, "code", None) in TRANSIENT_CANCELLATIONS for r in reasons if r is not None):
        return True
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        reasons = exc.response.get("CancellationReasons") or []
        return (
            error.get("Code") in TRANSIENT_CODES
            or int(status) >= 500
            or int(status) == 429
            or any(r.get("Code") in TRANSIENT_CANCELLATIONS for r in reasons)
        )
    return False
