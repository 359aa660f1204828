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
_apps: dict[tuple[str, ...], "_MicrosoftApp"] = {}


@dataclass(frozen=True)
class _MicrosoftApp:
    """An msal application, and the HTTP session it sends its token requests through."""

    app: "msal.ConfidentialClientApplication"
    http: Any


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


def _microsoft_app(inbox: InboxConfig, credentials: dict[str, str]) -> _MicrosoftApp:
    """One msal application per authority, client and credential, kept with its token cache."""
    if not inbox.oauth_client_id or not (inbox.oauth_tenant_id or inbox.oauth_authority):
        raise OAuthTokenError("oauth_client_id and oauth_tenant_id are required for Microsoft")
    authority = _token_endpoint(inbox)
    fingerprint = hashlib.sha256(json.dumps(credentials, sort_keys=True).encode()).hexdigest()
    timeout = (inbox.connect_timeout_seconds, inbox.operation_timeout_seconds)
    app_key = (authority, inbox.oauth_client_id, fingerprint, str(inbox.verify_certificate), str(timeout))
    found = _apps.get(app_key)
    if found is None:
        # Imported here: only Microsoft inboxes need it, and it costs every poller cold start ~0.1 s.
        import msal

        custom = bool(inbox.oauth_authority)
        http = _token_http(inbox.verify_certificate, timeout)
        try:
            app = msal.ConfidentialClientApplication(
                inbox.oauth_client_id,
                client_credential=_client_credential(credentials),
                authority=authority,
                # A custom authority (sovereign cloud, test endpoint) is not in Microsoft's instance list.
                validate_authority=not custom,
                instance_discovery=not custom,
                http_client=http,
            )
        except OAuthTokenError:
            raise
        except ValueError as exc:
            # msal's words about a malformed certificate or key; they never quote the key itself.
            raise OAuthTokenError(f"the certificate credential cannot be used: {exc}") from None
        except Exception as exc:
            raise OAuthTokenError(f"cannot reach the authority {authority}: {type(exc).__name__}") from None
        found = _apps[app_key] = _MicrosoftApp(app, http)
    return found


def _token_http(verify: bool, timeout: tuple[int, int]) -> Any:
    """requests' session as msal makes its own (certificate check, the inbox's (connect, read) timeouts, one
    retry of a failed connection), which also keeps the last throttling answer of the token endpoint: msal
    hands a 429's body back as an error result, without its status or Retry-After, and a 5xx as a bare
    HTTPError."""
    import requests

    class TokenHttp(requests.Session):
        # The last answer asking to slow down (429, or a 5xx naming a Retry-After): status and wait.
        slow_down: tuple[int, float | None] | None = None

        def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            response = super().request(method, url, *args, **kwargs)
            status, retry_after = response.status_code, response.headers.get("Retry-After")
            if status == 429 or (status >= 500 and retry_after):
                self.slow_down = (status, retry_after_seconds(retry_after))
            else:
                self.slow_down = None
            return response

    session = TokenHttp()
    session.verify = verify
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _acquire(microsoft: _MicrosoftApp, scope: str) -> dict[str, Any]:
    """A token from msal's cache or the token endpoint. A refusal of the endpoint's throttling raises
    ServerThrottled with its Retry-After: msal answers a 429 from its own cache until then, without a
    request, so the session's last answer asking to slow down is still the one that counts."""
    try:
        result: dict[str, Any] = microsoft.app.acquire_token_for_client(scopes=[scope]) or {}
    except ValueError as exc:
        raise OAuthTokenError(f"the certificate credential cannot be used: {exc}") from None
    except Exception as exc:
        if microsoft.http.slow_down is not None:
            raise _throttled(microsoft.http.slow_down) from None
        raise OAuthTokenError(f"cannot reach the token endpoint: {type(exc).__name__}") from None
    if "access_token" not in result:
        if microsoft.http.slow_down is not None:
            raise _throttled(microsoft.http.slow_down)
        reason = result.get("error_description") or result.get("error") or "no access_token in the answer"
        raise OAuthTokenError(f"Microsoft refused the token request: {str(reason).splitlines()[0]}")
    return result


def _throttled(slow_down: tuple[int, float | None]) -> ServerThrottled:
    status, wait = slow_down
    return ServerThrottled(f"the Microsoft token endpoint asks to slow down ({status})", wait)


def _microsoft_token(inbox: InboxConfig, credentials: dict[str, str]) -> _Token:
    result = _acquire(_microsoft_app(inbox, credentials), inbox.effective_oauth_scope)
    return _Token(result["access_token"], time.time() + float(result.get("expires_in", 0)))


def app_token(inbox: InboxConfig, secret: str, *, renew: bool = False) -> str:
    """An app-only token for Microsoft Graph from msal's cache, which renews it before it expires; `renew`
    drops the cached one first (the API refused it)."""
    microsoft = _microsoft_app(inbox, _credentials(secret))
    if renew:
        cache = microsoft.app.token_cache
        for entry in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(entry)
    return str(_acquire(microsoft, inbox.effective_oauth_scope)["access_token"])


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
