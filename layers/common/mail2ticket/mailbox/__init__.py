"""Connectors: the only code that talks to mail servers."""
