"""Configuration checked before it is written, with errors that name each field and the reason."""

from typing import Any

from pydantic import BaseModel, ValidationError

from mail2ticket.config.models import GlobalConfig, InboxConfig
from mail2ticket.errors import ConfigurationError

_MESSAGES = {"extra_forbidden": "unknown field", "missing": "required"}


def describe(error: ValidationError) -> str:
    """`field: reason; field: reason`, without the offending input (it could be a pasted password)."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in detail["loc"])
        message = _MESSAGES.get(detail["type"], detail["msg"]).removeprefix("Value error, ")
        problems.append(f"{location}: {message}" if location else message)
    return "; ".join(problems)


def _validate[M: BaseModel](model: type[M], values: Any, what: str) -> M:
    if not isinstance(values, dict):
        raise ConfigurationError(f"{what} must be a mapping of field names to values")
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid {what}: {describe(exc)}") from None


def validate_inbox(values: Any) -> InboxConfig:
    """An InboxConfig, or a ConfigurationError naming every wrong field."""
    return _validate(InboxConfig, values, "inbox")


def validate_global(values: Any) -> GlobalConfig:
    """A GlobalConfig, or a ConfigurationError naming every wrong parameter."""
    return _validate(GlobalConfig, values, "global parameters")
