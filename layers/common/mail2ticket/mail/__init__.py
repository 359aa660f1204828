"""Mail understanding: pure functions, bytes in and dataclasses out."""
