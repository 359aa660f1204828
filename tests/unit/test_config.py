"""Inbox and global configuration validation."""

import pytest
from pydantic import ValidationError

from mail2ticket.config import GlobalConfig, InboxConfig

BASE = {"inbox_id": "support", "server": "imap.example.com", "login": "support@example.com"}


def test_defaults_follow_the_documentation() -> None:
    inbox = InboxConfig.model_validate(BASE)

    assert (inbox.protocol, inbox.security, inbox.effective_port) == ("imap", "ssl", 993)
    assert (inbox.mailbox, inbox.behavior, inbox.email_storage) == ("INBOX", "create_or_update", "keep")
    assert (inbox.target_class, inbox.unknown_caller_behavior, inbox.error_behavior) == (
        "UserRequest",
        "reject",
        "keep",
    )


@pytest.mark.parametrize(
    ("protocol", "security", "port"),
    [("imap", "starttls", 143), ("imap", "none", 143), ("pop3", "ssl", 995), ("pop3", "none", 110)],
)
def test_default_port_depends_on_protocol_and_security(protocol: str, security: str, port: int) -> None:
    assert (
        InboxConfig.model_validate({**BASE, "protocol": protocol, "security": security}).effective_port
        == port
    )


def test_text_lines_accept_a_string_or_a_list() -> None:
    inbox = InboxConfig.model_validate({**BASE, "stimuli": "pending:ev_assign\n\nresolved:ev_reopen\n"})

    assert inbox.stimuli == ["pending:ev_assign", "resolved:ev_reopen"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email_storage": "move"}, "target_folder"),
        ({"title_pattern": "R-([0-9"}, "title_pattern"),
        ({"port": 70000}, "port"),
        ({"target_class": "Bug"}, "target_class"),
        ({"password": "secret"}, "password"),
    ],
)
def test_invalid_inbox_names_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        InboxConfig.model_validate({**BASE, **change})


def test_invalid_global_pattern_names_the_field() -> None:
    with pytest.raises(ValidationError, match="undesired_subject_patterns"):
        GlobalConfig.model_validate({"undesired_subject_patterns": ["(unclosed"]})
