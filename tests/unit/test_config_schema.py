"""The committed JSON Schemas are the ones the models generate, and they check items as the models do."""

import json
from pathlib import Path

import jsonschema
import pytest

from mail2ticket.config.schema import SCHEMAS, render

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_matches_the_models(name: str) -> None:
    committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")

    assert committed == render(name), f"schemas/{name} is stale: run `make schemas` and commit it"


def test_inbox_schema_accepts_a_valid_item_and_refuses_wrong_ones() -> None:
    # Given the committed inbox schema
    schema = json.loads((SCHEMA_DIR / "inbox.schema.json").read_text(encoding="utf-8"))
    item = {"inbox_id": "support", "server": "imap.example.com", "login": "support@example.com", "port": 993}

    # Then a valid item passes, and an unknown key, a bad port or an unknown class do not
    jsonschema.validate(item, schema)
    for wrong in ({"password": "x"}, {"port": 70000}, {"target_class": "Bug"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**item, **wrong}, schema)
