"""Mailbox credentials from Secrets Manager, cached for a few minutes per execution environment."""

from functools import cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from mail2ticket.errors import ConfigurationError, TransientError, is_transient
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
        if is_transient(exc):
            raise TransientError(f"cannot read secret {arn} now: {exc}") from None
        raise ConfigurationError(f"cannot read secret {arn}: {exc}") from None
    return str(value)


def clear_cache() -> None:
    """Forget cached secrets (after a rotation)."""
    _provider().clear_cache()


def secret_name(inbox_id: str) -> str:
    """The functions may read secrets under `mail2ticket/` only (see the template's IAM policy)."""
    return f"mail2ticket/{inbox_id}"


def put_secret(inbox_id: str, value: str) -> str:
    """Create or update the inbox's secret; returns its ARN. Errors never carry the value."""
    secrets = client("secretsmanager")
    name = secret_name(inbox_id)
    try:
        try:
            described = secrets.describe_secret(SecretId=name)
        except secrets.exceptions.ResourceNotFoundException:
            arn = secrets.create_secret(
                Name=name, SecretString=value, Description=f"mail2ticket: credential of inbox {inbox_id}"
            )["ARN"]
        else:
            arn = described["ARN"]
            if described.get("DeletedDate"):
                secrets.restore_secret(SecretId=arn)
            secrets.put_secret_value(SecretId=arn, SecretString=value)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigurationError(f"cannot store secret {name}: {_reason(exc)}") from None
    clear_cache()
    return str(arn)


def delete_secret(arn: str) -> None:
    """Schedule the secret's deletion (recoverable for 7 days)."""
    try:
        client("secretsmanager").delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigurationError(f"cannot delete secret {arn}: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}"
    return type(exc).__name__
