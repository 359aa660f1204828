"""Pure pieces of the Microsoft Graph connector: Graph's error bodies, URLs, secrets' shapes (Retry-After is
read as for every protocol: test_poll_backoff)."""

import json

import pytest
import requests

from mail2ticket.config.models import InboxConfig
from mail2ticket.mailbox.graph import GraphClient, GraphError, _error
from mail2ticket.mailbox.oauth import OAuthTokenError, _client_credential
from mail2ticket.mailbox.session import DeltaReset


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    response.headers.update(headers or {})
    return response


def test_graphs_error_body_gives_the_code_the_message_and_the_request_id() -> None:
    body = {
        "error": {
            "code": "ErrorAccessDenied",
            "message": "Access to OData is disabled: [RAOP] : Blocked by AppOnly AccessPolicy.",
            "innerError": {
                "date": "2025-11-04T08:41:07",
                "request-id": "9c1d-42",
                "client-request-id": "9c1d-42",
            },
        }
    }

    error = _error(_response(403, body), "folder 'Inbox' of mailbox helpdesk@contoso.com")

    assert isinstance(error, GraphError) and not isinstance(error, DeltaReset)
    assert (error.status, error.code) == (403, "ErrorAccessDenied")
    assert str(error) == (
        "folder 'Inbox' of mailbox helpdesk@contoso.com: 403 ErrorAccessDenied: Access to OData is disabled: "
        "[RAOP] : Blocked by AppOnly AccessPolicy. (request-id 9c1d-42)"
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [(410, "syncStateNotFound"), (410, "resyncRequired"), (400, "SyncStateInvalid"), (410, "")],
)
def test_an_expired_or_reset_delta_link_is_a_delta_reset(status: int, code: str) -> None:
    error = _error(_response(status, {"error": {"code": code, "message": "restart the sync"}}), "delta")

    assert isinstance(error, DeltaReset) and error.status == status


def test_an_answer_without_graphs_error_body_still_names_the_status() -> None:
    response = _response(502, "<html>Bad Gateway</html>")
    response.reason = "Bad Gateway"

    assert str(_error(response, "delta")) == "delta: 502 Bad Gateway"


def test_urls_quote_the_mailbox_and_the_ids() -> None:
    inbox = InboxConfig(
        inbox_id="m365",
        protocol="graph",
        server="graph.microsoft.com",
        login="help+desk@contoso.com",
        oauth_tenant_id="contoso.com",
        oauth_client_id="app",
    )

    url = GraphClient(inbox, "secret").url("messages", "AAkALg/+=", "$value")

    assert (
        url
        == "https://graph.microsoft.com/v1.0/users/help%2Bdesk%40contoso.com/messages/AAkALg%2F%2B%3D/$value"
    )


def test_a_certificate_secret_becomes_msals_credential_and_an_empty_one_is_refused() -> None:
    certificate = {
        "certificate": "-----BEGIN CERTIFICATE-----…",
        "private_key": "-----BEGIN PRIVATE KEY-----…",
    }

    assert _client_credential(certificate) == {
        "private_key": certificate["private_key"],
        "public_certificate": certificate["certificate"],
    }
    assert _client_credential({"client_secret": "s"}) == "s"
    with pytest.raises(OAuthTokenError, match="neither its certificate nor a thumbprint"):
        _client_credential({"private_key": "-----BEGIN PRIVATE KEY-----…"})
    with pytest.raises(OAuthTokenError, match="neither client_secret nor private_key"):
        _client_credential({"refresh_token": "r"})
