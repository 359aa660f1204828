"""One classification of transient failures, decided by the error (and its causes), never by the step."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError

from mail2ticket.errors import (
    TRANSIENT_CODES,
    ConfigurationError,
    ErrorCode,
    PermanentError,
    RequestOverLimit,
    TransientError,
    is_transient,
)


def _client_error(code: str, status: int = 400, **extra: object) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, "PutItem")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "SlowDown",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestTimeout",
    ],
)
def test_throttling_conflicts_and_server_failures_are_transient(code: str) -> None:
    assert is_transient(_client_error(code))


def test_any_5xx_or_429_is_transient_whatever_its_code() -> None:
    assert is_transient(_client_error("Whatever", 503))
    assert is_transient(_client_error("Whatever", 429))


def test_connection_failures_and_timeouts_are_transient() -> None:
    assert is_transient(EndpointConnectionError(endpoint_url="https://dynamodb"))
    assert is_transient(ReadTimeoutError(endpoint_url="https://s3"))
    assert is_transient(TimeoutError("timed out"))
    assert is_transient(ConnectionResetError())


def test_wrapped_errors_are_classified_by_their_cause() -> None:
    # pynamodb keeps botocore's error as `cause`
    throttled = PutError("Failed to put item", _client_error("ProvisionedThroughputExceededException"))
    assert is_transient(throttled)
    # a step that turned it into a permanent error (e.g. a person that could not be created)
    try:
        try:
            raise throttled
        except Exception as exc:
            raise PermanentError(ErrorCode.FAILED_TO_CREATE_PERSON, str(exc)) from exc
    except PermanentError as wrapped:
        assert is_transient(wrapped)
    # and an error raised while another was handled, unless it said `from None`
    try:
        try:
            raise throttled
        except Exception:
            raise RuntimeError("while handling") from None
    except RuntimeError as hidden:
        assert not is_transient(hidden)


def test_a_transaction_cancelled_by_throttling_or_a_conflict_is_transient() -> None:
    conflict = _client_error(
        "TransactionCanceledException",
        CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
    )
    assert is_transient(conflict)
    refused = _client_error(
        "TransactionCanceledException", CancellationReasons=[{"Code": "ConditionalCheckFailed"}]
    )
    assert not is_transient(refused)
    assert not is_transient(TransactWriteError("Failed", refused))


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ValidationException"),
        _client_error("ConditionalCheckFailedException"),
        _client_error("AccessDeniedException"),
        _client_error("NoSuchKey", 404),
        UpdateError("Failed", _client_error("ConditionalCheckFailedException")),
        RequestOverLimit("an item of 500,000 bytes"),
        PermanentError(ErrorCode.DECODE_FAILED, "unreadable"),
        ConfigurationError("no such inbox"),
        KeyError("bug"),
    ],
)
def test_refusals_bugs_and_permanent_errors_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_transient_error_is_transient() -> None:
    assert is_transient(TransientError("the original is not processed yet"))


def test_every_code_botocore_retries_is_transient_here_too() -> None:
    # What the SDK retried and gave up on is retried by the product as well.
    botocore_codes = set(ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
    botocore_codes |= set(TransientRetryableChecker._TRANSIENT_ERROR_CODES)
    assert botocore_codes <= TRANSIENT_CODES
