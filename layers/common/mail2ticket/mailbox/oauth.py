"""OAuth2 access tokens: Microsoft 365 through msal (client credentials: a client secret or a certificate),
for XOAUTH2 and Microsoft Graph; Google through a refresh token. Tokens are cached per execution environment
while valid and renewed before they expire."""

import hashlib
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mail2ticket.config.models import InboxConfig, OAuthProvider
from mail2ticket.mailbox.session import ServerThrottled, retry_after_seconds

if TYPE_CHECKING:
    import msal

# A token with less than this left is renewed, so it cannot expire in the middle of a poll.
RENEW_BEFORE_SECONDS = 300
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"


class OAuthTokenError(Exception):
    """No access token could be obtained; the text is the provider's reason, never a secret or token."""


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


_tokens: dict[tuple[str, ...], _Token] = {}
_apps: dict[tuple[str, ...], "msal.ConfidentialClientApplication"] = {}


def access_token(inbox: InboxConfig, secret: str) -> str:
    """A valid access token for the inbox's account, from the cache when it has long enough to live."""
    credentials = _credentials(secret)
    key = (
        inbox.oauth_provider.value,
        _token_endpoint(inbox),
        inbox.oauth_client_id,
        inbox.effective_oauth_scope,
    )
    cached = _tokens.get(key)
    if cached is not None and cached.expires_at - RENEW_BEFORE_SECONDS > time.time():
        return cached.value
    if inbox.oauth_provider is OAuthProvider.GOOGLE:
        token = _google_token(inbox, credentials)
    else:
        token = _microsoft_token(inbox, credentials)
    _tokens[key] = token
    return token.value


def clear_cache() -> None:
    _tokens.clear()
    _apps.clear()


def _credentials(secret: str) -> dict[str, str]:
    """The secret: JSON with `client_secret` (and `refresh_token` for Google), or a bare client secret."""
    try:
        value = json.loads(secret)
    except ValueError:
        return {"client_secret": secret}
    if not isinstance(value, dict):
        raise OAuthTokenError("the OAuth secret must be a JSON object with client_secret / refresh_token")
    return {k: str(v) for k, v in value.items()}


def _token_endpoint(inbox: InboxConfig) -> str:
    if inbox.oauth_provider is OAuthProvider.GOOGLE:
        return inbox.oauth_token_url or GOOGLE_TOKEN_URL
    return inbox.microsoft_authority


def _client_credential(credentials: dict[str, str]) -> str | dict[str, str]:
    """msal's client credential: the client secret, or a certificate with its private key (PEM)."""
    if credentials.get("private_key"):
        certificate = {"private_key": credentials["private_key"]}
        if credentials.get("certificate"):
            certificate["public_certificate"] = credentials["certificate"]
        for name in ("thumbprint", "passphrase"):
            if credentials.get(name):
                certificate[name] = credentials[name]
        if len(certificate) == 1:
            raise OAuthTokenError("the secret has a private_key but neither its certificate nor a thumbprint")
        return certificate
    if not credentials.get("client_secret"):
        raise OAuthTokenError("the secret holds neither client_secret nor private_key and certificate")
    return credentials["client_secret"]


def _microsoft_app(inbox: InboxConfig, credentials: dict[str, str]) -> "msal.ConfidentialClientApplication":
    """One msal application per authority, client and credential, kept with its token cache."""
    if not inbox.oauth_client_id or not (inbox.oauth_tenant_id or inbox.oauth_authority):
        raise OAuthTokenError("oauth_client_id and oauth_tenant_id are required for Microsoft")
    authority = _token_endpoint(inbox)
    fingerprint = hashlib.sha256(json.dumps(credentials, sort_keys=True).encode()).hexdigest()
    timeout = (inbox.connect_timeout_seconds, inbox.operation_timeout_seconds)
    app_key = (authority, inbox.oauth_client_id, fingerprint, str(inbox.verify_certificate), str(timeout))
    app = _apps.get(app_key)
    if app is None:
        # Imported here: only Microsoft inboxes need it, and it costs every poller cold start ~0.1 s.
        import msal

        custom = bool(inbox.oauth_authority)
        try:
            app = msal.ConfidentialClientApplication(
                inbox.oauth_client_id,
                client_credential=_client_credential(credentials),
                authority=authority,
                # A custom authority (sovereign cloud, test endpoint) is not in Microsoft's instance list.
                validate_authority=not custom,
                instance_discovery=not custom,
                verify=inbox.verify_certificate,
                # requests' (connect, read): the inbox's connect and operation timeouts.
                timeout=timeout,
            )
        except OAuthTokenError:
            raise
        except ValueError as exc:
            # msal's words about a malformed certificate or key; they never quote the key itself.
            raise OAuthTokenError(f"the certificate credential cannot be used: {exc}") from None
        except Exception as exc:
            raise OAuthTokenError(f"cannot reach the authority {authority}: {type(exc).__name__}") from None
        _apps[app_key] = app
    return app


def _acquire(app: "msal.ConfidentialClientApplication", scope: str) -> dict[str, Any]:
    try:
        result: dict[str, Any] = app.acquire_token_for_client(scopes=[scope]) or {}
    except ValueError as exc:
        raise OAuthTokenError(f"the certificate credential cannot be used: {exc}") from None
    except Exception as exc:
        raise OAuthTokenError(f"cannot reach the token endpoint: {type(exc).__name__}") from None
    if "access_token" not in result:
        reason = result.get("error_description") or result.get("error") or "no access_token in the answer"
        raise OAuthTokenError(f"Microsoft refused the token request: {str(reason).splitlines()[0]}")
    return result


def _microsoft_token(inbox: InboxConfig, credentials: dict[str, str]) -> _Token:
    result = _acquire(_microsoft_app(inbox, credentials), inbox.effective_oauth_scope)
    return _Token(result["access_token"], time.time() + float(result.get("expires_in", 0)))


def app_token(inbox: InboxConfig, secret: str, *, renew: bool = False) -> str:
    """An app-only token for Microsoft Graph from msal's cache, which renews it before it expires; `renew`
    drops the cached one first (the API refused it)."""
    app = _microsoft_app(inbox, _credentials(secret))
    if renew:
        for entry in list(app.token_cache.search(app.token_cache.CredentialType.ACCESS_TOKEN)):
            app.token_cache.remove_at(entry)
    return str(_acquire(app, inbox.effective_oauth_scope)["access_token"])


def _google_token(inbox: InboxConfig, credentials: dict[str, str]) -> _Token:
    if "refresh_token" not in credentials:
        raise OAuthTokenError("the Google OAuth secret has no refresh_token")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": credentials["refresh_token"],
        "client_id": inbox.oauth_client_id or credentials.get("client_id", ""),
        "client_secret": credentials.get("client_secret", ""),
    }
    request = urllib.request.Request(
        _token_endpoint(inbox), data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    try:
        context = ssl.create_default_context()
        with urllib.request.urlopen(
            request, timeout=inbox.operation_timeout_seconds, context=context
        ) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            wait = retry_after_seconds(exc.headers.get("Retry-After"))
            raise ServerThrottled("the Google token endpoint asks to slow down (429)", wait) from None
        detail = _error_text(exc.read())
        raise OAuthTokenError(f"Google refused the token request ({exc.code}): {detail}") from None
    except (OSError, ValueError) as exc:
        raise OAuthTokenError(
            f"cannot reach the Google token endpoint: {type(exc).__name__}: {exc}"
        ) from None
    if "access_token" not in answer:
        raise OAuthTokenError("Google answered without an access_token")
    return _Token(answer["access_token"], time.time() + float(answer.get("expires_in", 0)))


def _error_text(body: bytes) -> str:
    try:
        value = json.loads(body)
        return str(value.get("error_description") or value.get("error") or "")[:200]
    except ValueError:
        return ""
