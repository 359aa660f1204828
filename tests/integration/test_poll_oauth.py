"""IMAP with XOAUTH2: Microsoft 365 through msal's client-credentials flow, Google through a refresh token,
against Dovecot's oauth2 passdb, which checks every token at a local token endpoint."""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.oauth import TokenServer
from tests.integration.polling import by_inbox, cycle, mail, poll, replicas, save, ticket_titles

pytestmark = pytest.mark.integration


@dataclass
class OAuthStack:
    dovecot: Any
    tokens: TokenServer


@pytest.fixture(scope="module")
def oauth_stack(dovecot: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthStack]:
    from infra.local.dovecot import Dovecot

    tokens = TokenServer()
    with Dovecot(oauth2_introspection_url=tokens.introspection_url) as server:
        tokens.start(server.cert_path, server.key_path)
        # Clients trust both local servers: the shared Dovecot and this one (which also serves the tokens).
        bundle = tmp_path_factory.mktemp("ca") / "bundle.pem"
        bundle.write_bytes(Path(dovecot.cert_path).read_bytes() + server.cert_path.read_bytes())
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SSL_CERT_FILE", str(bundle))
            patch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
            yield OAuthStack(server, tokens)
        tokens.stop()


@pytest.fixture
def account(aws: Any, oauth_stack: OAuthStack) -> Iterator[tuple[str, str]]:
    """A mailbox on the OAuth Dovecot; returns (login, password used only to deliver mail)."""
    from mail2ticket.mailbox import oauth

    oauth.clear_cache()
    login = f"oauth-{os.urandom(4).hex()}@example.com"
    password = f"pw-{os.urandom(8).hex()}"
    oauth_stack.dovecot.add_user(login, password)
    yield login, password
    oauth.clear_cache()


def _deliver(stack: OAuthStack, login: str, password: str, raw: bytes) -> None:
    from imap_tools import MailBoxUnencrypted

    with MailBoxUnencrypted("127.0.0.1", stack.dovecot.imap_port).login(login, password) as box:
        box.append(raw, "INBOX", flag_set=())


def _inbox(stack: OAuthStack, inbox_id: str, login: str, secret: dict[str, str], **fields: Any) -> Any:
    from mail2ticket.config import InboxConfig

    arn = boto3.client("secretsmanager").create_secret(
        Name=f"mail2ticket/{inbox_id}-{login}", SecretString=json.dumps(secret)
    )["ARN"]
    return InboxConfig.model_validate(
        {
            "inbox_id": inbox_id,
            "protocol": "imap_oauth2",
            "server": "127.0.0.1",
            "port": stack.dovecot.imaps_port,
            "login": login,
            "secret_arn": arn,
            "unknown_caller_behavior": "create_person",
            **fields,
        }
    )


def test_microsoft_client_credentials_token_reads_mail_and_is_reused(
    oauth_stack: OAuthStack, account: tuple[str, str]
) -> None:
    login, password = account
    oauth_stack.tokens.add_client("app-1", "app-secret-1", login)
    issued = oauth_stack.tokens.issued
    save(
        _inbox(
            oauth_stack,
            "m365",
            login,
            {"client_secret": "app-secret-1"},
            oauth_provider="microsoft",
            oauth_client_id="app-1",
            oauth_tenant_id="tenant-1",
            oauth_authority=f"{oauth_stack.tokens.url}/tenant-1",
        )
    )
    _deliver(oauth_stack, login, password, mail("Through Microsoft OAuth"))

    first = by_inbox(cycle())["m365"]
    second = by_inbox(cycle())["m365"]

    assert (first["error"], first["received"], second["error"]) == (None, 1, None)
    assert ticket_titles() == ["Through Microsoft OAuth"]
    # One token served both polls: it is cached while valid.
    assert oauth_stack.tokens.issued == issued + 1


def test_google_refresh_token_is_renewed_before_expiry(
    oauth_stack: OAuthStack, account: tuple[str, str]
) -> None:
    login, password = account
    refresh_token = oauth_stack.tokens.add_refresh_token(login)
    save(
        _inbox(
            oauth_stack,
            "gmail",
            login,
            {"refresh_token": refresh_token, "client_secret": "google-secret"},
            oauth_provider="google",
            oauth_client_id="google-app",
            oauth_token_url=f"{oauth_stack.tokens.url}/token",
        )
    )
    _deliver(oauth_stack, login, password, mail("Through Google OAuth"))
    # Tokens that live less than the renewal margin are renewed at every poll.
    oauth_stack.tokens.expires_in = 60
    issued = oauth_stack.tokens.issued
    try:
        first = by_inbox(cycle())["gmail"]
        second = by_inbox(cycle())["gmail"]
    finally:
        oauth_stack.tokens.expires_in = 3600

    assert (first["error"], first["received"], second["error"]) == (None, 1, None)
    assert [r.subject for r in replicas("gmail")] == ["Through Google OAuth"]
    assert oauth_stack.tokens.issued == issued + 2


@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_refused_token_is_counted_and_reported_without_secrets(
    oauth_stack: OAuthStack, account: tuple[str, str], provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    login, _ = account
    oauth_stack.tokens.add_client("app-2", "right-secret", login)
    fields = (
        {"oauth_client_id": "app-2", "oauth_authority": f"{oauth_stack.tokens.url}/tenant-2"}
        if provider == "microsoft"
        else {"oauth_provider": "google", "oauth_token_url": f"{oauth_stack.tokens.url}/token"}
    )
    secret = {"client_secret": "wrong-secret-42", "refresh_token": "revoked-token-42"}
    save(_inbox(oauth_stack, "broken-oauth", login, secret, **fields))

    [polled] = poll()["polled"]

    assert polled["error"].startswith("OAuth token:")
    assert "wrong-secret-42" not in polled["error"] and "revoked-token-42" not in polled["error"]
    output = capsys.readouterr().out
    assert '"OAuthTokenFailed":[1.0]' in output.replace(" ", "")
    assert "wrong-secret-42" not in output and "revoked-token-42" not in output


def test_a_token_dovecot_does_not_know_is_refused(oauth_stack: OAuthStack, account: tuple[str, str]) -> None:
    from mail2ticket.mailbox import oauth

    login, _ = account
    refresh_token = oauth_stack.tokens.add_refresh_token(login)
    inbox = _inbox(
        oauth_stack,
        "forged",
        login,
        {"refresh_token": refresh_token},
        oauth_provider="google",
        oauth_token_url=f"{oauth_stack.tokens.url}/token",
    )
    save(inbox)
    oauth.access_token(inbox, json.dumps({"refresh_token": refresh_token}))
    # The cached token is replaced by one the token endpoint never issued.
    key = next(iter(oauth._tokens))
    oauth._tokens[key] = oauth._Token("forged-token", oauth._tokens[key].expires_at)

    [polled] = poll()["polled"]

    assert "AUTHENTICATIONFAILED" in (polled["error"] or "")
