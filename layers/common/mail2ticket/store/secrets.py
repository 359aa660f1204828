"""Mailbox credentials from Secrets Manager, cached for a few minutes per execution environment."""

from functools import cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from mail2ticket.errors import ConfigurationError
from mail2ticket.store.clients import client

_MAX_AGE_SECONDS = 300


@cache
def _provider() -> SecretsProvider:
    return SecretsProvider(boto3_client=client("secretsmanager"))


def get_secret(arn: str) -> str:
    """The secret string behind `arn`; errors name the ARN and AWS's reason, never the value."""
    if not arn:
        raise ConfigurationError("secret_arn is empty: store the password with the CLI first")
    try:
        value = _provider().get(arn, max_age=_MAX_AGE_SECONDS)
    except GetParameterError as exc:
        raise ConfigurationError(f"cannot read secret {arn}: {exc}") from None
    return str(value)


def clear_cache() -> None:
    """Forget cached secrets (after a rotation)."""
    _provider().clear_cache()
