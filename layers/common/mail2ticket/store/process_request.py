"""The body of a process-queue message, and of a direct `{"retry": {...}}` invocation, as its readers check
it.

Apart from the queue module: writing a body needs no model, and the console's table commands, which write
none, need not import pydantic.
"""

from pydantic import BaseModel, ConfigDict


class ProcessRequest(BaseModel):
    """One replica to process."""

    model_config = ConfigDict(extra="forbid")

    inbox_id: str
    message_key: str
