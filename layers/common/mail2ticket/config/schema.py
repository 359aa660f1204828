"""JSON Schemas of an inbox item and of the global parameters, generated from the models.

`make schemas` writes them; the committed copies check an item edited in the AWS console or with
`aws dynamodb put-item`.
"""

import json
import sys
from pathlib import Path
from typing import Any

from mail2ticket.config.models import GlobalConfig, InboxConfig

SCHEMAS: dict[str, Any] = {"inbox.schema.json": InboxConfig, "global.schema.json": GlobalConfig}


def render(name: str) -> str:
    """The schema file's exact text."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **SCHEMAS[name].model_json_schema()}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = directory / name
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")):
        print(path)
