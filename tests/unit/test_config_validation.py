"""Every wrong configuration is refused with the field's name and the reason, never with its value."""

import pytest

from mail2ticket.config.sizes import parse_size
from mail2ticket.config.validation import validate_global, validate_inbox
from mail2ticket.errors import ConfigurationError

BASE = {"inbox_id": "support", "server": "imap.example.com", "login": "support@example.com"}
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mail2ticket/support-AbCdEf"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"title_pattern": "R-([0-9"}, "title_pattern: invalid regex"),
        ({"email_storage": "move"}, "target_folder: required when email_storage is 'move'"),
        ({"target_class": "Bug"}, "target_class: Input should be 'UserRequest'"),
        ({"ticket_default_values": "service_id:3\norigin mail"}, "ticket_default_values: line 2 'origin"),
        ({"caller_default_values": [":x"]}, "caller_default_values: line 1 ':x' is not field:value"),
        ({"stimuli": "pending:"}, "stimuli: line 1 'pending:' has no stimulus"),
        ({"port": 0}, "port: Input should be greater than or equal to 1"),
        ({"port": 65536}, "port: Input should be less than or equal to 65535"),
        ({"colour": "blue"}, "colour: unknown field"),
        ({"server": None}, "server: Input should be a valid string"),
        ({"server": "a" * 254}, "server: String should have at most 253 characters"),
        (
            {"connect_timeout_seconds": 0},
            "connect_timeout_seconds: Input should be greater than or equal to 1",
        ),
        (
            {"operation_timeout_seconds": 301},
            "operation_timeout_seconds: Input should be less than or equal to 300",
        ),
        ({"inbox_id": "a#b"}, "inbox_id: String should match pattern"),
        ({"mailbox": " "}, "mailbox: the folder name is empty"),
        ({"notify_errors_to": "nobody"}, "notify_errors_to: 'nobody' is not a mail address"),
    ],
)
def test_invalid_inbox_is_refused_with_field_and_reason(change: dict[str, object], expected: str) -> None:
    # Given an inbox with one wrong field / When it is validated / Then the error names the field and why
    with pytest.raises(ConfigurationError) as caught:
        validate_inbox({**BASE, **change})

    assert expected in str(caught.value)


def test_missing_required_fields_are_all_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        validate_inbox({"inbox_id": "support"})

    assert "server: required" in str(caught.value) and "login: required" in str(caught.value)


def test_a_password_pasted_as_secret_arn_is_refused_and_not_repeated() -> None:
    # Given a password where the ARN belongs, and an unknown `password` field
    values = {**BASE, "secret_arn": "hunter2-Secret!", "password": "hunter2-Secret!"}

    # When the inbox is validated
    with pytest.raises(ConfigurationError) as caught:
        validate_inbox(values)

    # Then both fields are named and the value never appears
    message = str(caught.value)
    assert "secret_arn: not a Secrets Manager secret ARN" in message and "password: unknown field" in message
    assert "hunter2" not in message


def test_a_secret_arn_is_accepted() -> None:
    assert validate_inbox({**BASE, "secret_arn": ARN}).secret_arn == ARN


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a mapping"):
        validate_inbox(["support"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"maximum_email_size": "10 megabytes"}, "maximum_email_size: invalid size '10 megabytes'"),
        ({"maximum_email_size": "-3G"}, "maximum_email_size: invalid size"),
        ({"images_minimum_size": ""}, "images_minimum_size: invalid size ''"),
        ({"images_maximum_size": "800"}, "images_maximum_size: invalid size '800'"),
        ({"body_parts_order": "text/rtf"}, "body_parts_order: expected a comma-separated list"),
        ({"exclude_attachment_types": "exe"}, "exclude_attachment_types: 'exe' is not a MIME type"),
        ({"ticket_log": {"Bug": "public_log"}}, "ticket_log: unknown ticket class 'Bug'"),
        ({"ticket_log": {"Incident": "diary"}}, "ticket_log: Incident: log must be public_log"),
        ({"delimiter_patterns": ["[unclosed"]}, "delimiter_patterns: invalid regex '[unclosed'"),
        ({"undesired_purge_delay_days": -1}, "undesired_purge_delay_days: Input should be greater than"),
        ({"colour": "blue"}, "colour: unknown field"),
    ],
)
def test_invalid_global_parameter_is_refused(change: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        validate_global(change)

    assert expected in str(caught.value)


def test_global_sizes_are_read_as_bytes() -> None:
    config = validate_global({"maximum_email_size": "3G", "images_maximum_size": "1024x768"})

    assert config.maximum_email_bytes == 3 * 1024**3
    assert config.images_maximum_size == "1024x768"


@pytest.mark.parametrize(
    ("text", "size"),
    [("10M", 10 * 1024**2), ("3g", 3 * 1024**3), ("512k", 512 * 1024), ("2048", 2048), (" 1 M ", 1024**2)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "10T", "1.5M", "10MB", "-1", "ten"])
def test_parse_size_refuses_and_names_the_value(text: str) -> None:
    with pytest.raises(ValueError, match=f"invalid size {text!r}"):
        parse_size(text)


GRAPH = {
    "inbox_id": "m365",
    "protocol": "graph",
    "server": "graph.microsoft.com",
    "login": "helpdesk@contoso.com",
    "mailbox": "Inbox/Support",
    "oauth_tenant_id": "contoso.onmicrosoft.com",
    "oauth_client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"oauth_client_id": ""}, "oauth_client_id: required for graph"),
        ({"oauth_tenant_id": ""}, "oauth_tenant_id: required for graph"),
        ({"security": "none"}, "security: Microsoft Graph is reached over HTTPS only"),
        ({"oauth_provider": "google"}, "oauth_provider: graph takes its tokens from Microsoft Entra ID"),
        ({"server": "outlook.office365.com"}, "server: not a Microsoft Graph endpoint"),
        ({"server": "https://graph.microsoft.com/v1.0"}, "server: for graph, the Graph endpoint's host name"),
        ({"login": "helpdesk"}, "login: for graph, the address of a user or shared mailbox"),
        ({"mailbox": "Inbox//Support"}, "mailbox: 'Inbox//Support' has an empty folder name"),
        ({"target_folder": "Archive/", "email_storage": "move"}, "target_folder: 'Archive/' has an empty"),
    ],
)
def test_invalid_graph_inbox_is_refused_with_field_and_reason(
    change: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        validate_inbox({**GRAPH, **change})

    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("server", "authority"),
    [
        ("graph.microsoft.com", "https://login.microsoftonline.com/contoso.onmicrosoft.com"),
        ("graph.microsoft.us", "https://login.microsoftonline.us/contoso.onmicrosoft.com"),
        ("dod-graph.microsoft.us", "https://login.microsoftonline.us/contoso.onmicrosoft.com"),
        ("microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn/contoso.onmicrosoft.com"),
    ],
)
def test_a_graph_inbox_takes_its_national_clouds_endpoints(server: str, authority: str) -> None:
    # Given a Graph inbox in a national cloud / When it is validated
    inbox = validate_inbox({**GRAPH, "server": server})

    # Then the Graph endpoint, the authority and the token's scope are that cloud's
    assert (inbox.graph_endpoint, inbox.microsoft_authority) == (f"https://{server}", authority)
    assert inbox.effective_oauth_scope == f"https://{server}/.default"
    assert inbox.effective_port == 443


def test_another_graph_endpoint_needs_its_authority() -> None:
    inbox = validate_inbox(
        {**GRAPH, "server": "127.0.0.1", "port": 8443, "oauth_authority": "https://127.0.0.1:8443/tenant/"}
    )

    assert (inbox.graph_endpoint, inbox.microsoft_authority) == (
        "https://127.0.0.1:8443",
        "https://127.0.0.1:8443/tenant",
    )


def test_a_shared_mailbox_may_be_named_by_its_object_id() -> None:
    inbox = validate_inbox({**GRAPH, "login": "0f0a7c3e-6b4f-4d3a-9a55-1c2b3d4e5f60"})

    assert inbox.login == "0f0a7c3e-6b4f-4d3a-9a55-1c2b3d4e5f60"
