"""The functions' environment settings: read from the variables the template sets, each one checked."""

import re

import pytest

from mail2ticket.errors import ConfigurationError
from mail2ticket.settings import Settings


def test_a_variable_not_set_keeps_its_default() -> None:
    # Given an environment without any of the variables
    # When the settings are read
    settings = Settings.from_environment({})
    # Then every setting has its default
    assert settings == Settings()
    assert settings.dispatch_shards == 10


def test_each_variable_sets_its_setting_as_text_or_as_a_number() -> None:
    # Given the variables the template passes
    environment = {"REPLICAS_TABLE": "stack-replicas", "DISPATCH_SHARDS": " 25 ", "SMTP_PORT": "2525"}
    # When the settings are read
    settings = Settings.from_environment(environment)
    # Then texts are kept as they are and numbers are numbers
    assert settings.replicas_table == "stack-replicas"
    assert settings.dispatch_shards == 25
    assert settings.smtp_port == 2525


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("DISPATCH_SHARDS", "ten", "DISPATCH_SHARDS must be a whole number, not 'ten'"),
        ("DISPATCH_SHARDS", "0", "DISPATCH_SHARDS must be between 1 and 100, not 0"),
        ("DISPATCH_SHARDS", "101", "DISPATCH_SHARDS must be between 1 and 100, not 101"),
        ("SMTP_PORT", "70000", "SMTP_PORT must be between 1 and 65535, not 70000"),
        ("POLL_RESERVE_SECONDS", "-1", "POLL_RESERVE_SECONDS must be at least 0, not -1"),
        ("MAX_PROCESS_ATTEMPTS", "2.5", "MAX_PROCESS_ATTEMPTS must be a whole number, not '2.5'"),
    ],
)
def test_a_variable_out_of_its_bounds_stops_with_its_name(variable: str, value: str, says: str) -> None:
    # Given a variable that is not a number or is outside its bounds
    # When the settings are read
    # Then the error names the variable and what it must be
    with pytest.raises(ConfigurationError, match=f"^{re.escape(says)}$"):
        Settings.from_environment({variable: value})


def test_every_setting_is_read_from_a_variable_of_its_own() -> None:
    # Given the declared settings
    from dataclasses import fields

    variables = [declared.metadata["variable"] for declared in fields(Settings)]
    # Then no two settings read the same variable, and each has a name in the template's spelling
    assert len(variables) == len(set(variables))
    assert all(v == v.upper() and v.replace("_", "").isalnum() for v in variables)
