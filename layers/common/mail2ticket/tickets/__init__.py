"""Ticket domain rules: matching, callers, create or update."""
