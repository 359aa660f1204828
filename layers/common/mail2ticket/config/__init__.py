"""Inbox and global configuration models."""

from mail2ticket.config.models import GlobalConfig, InboxConfig

__all__ = ["GlobalConfig", "InboxConfig"]
