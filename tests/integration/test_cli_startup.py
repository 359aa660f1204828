"""The CLI starts fast because a command loads only what it uses (timed by `make bench-cli`)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

_PROBE = """
import sys
from mail2ticket.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in {"aws_xray_sdk", "bs4", "boto3",
      "botocore", "pynamodb", "pydantic"} or m in {"mail2ticket.mail.parse", "mail2ticket.config.models",
      "mail2ticket.store.models"})))
"""


def _loaded(*argv: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.splitlines()[-1].split())


def test_help_loads_neither_the_aws_sdk_nor_pydantic(aws: object) -> None:
    assert _loaded("--help") == set()
    assert _loaded("tickets", "--help") == set()


def test_a_table_command_loads_botocore_only(aws: object) -> None:
    loaded = _loaded("tickets", "ls")

    assert "botocore.client" in loaded
    assert not {m for m in loaded if m.startswith(("aws_xray_sdk", "bs4", "boto3", "pydantic", "pynamodb"))}
    assert not loaded & {"mail2ticket.mail.parse", "mail2ticket.config.models"}


def test_a_ticket_read_through_the_item_models_loads_no_pydantic(aws: object) -> None:
    loaded = _loaded("tickets", "show", "R-000001")

    assert "mail2ticket.store.models" in loaded
    assert not {m for m in loaded if m.startswith(("pydantic", "mail2ticket.config"))}
