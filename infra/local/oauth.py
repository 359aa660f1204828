"""A local OAuth2 token endpoint over HTTPS: Microsoft-style client credentials (what msal asks for),
Google-style refresh tokens, and the token introspection that Dovecot's oauth2 passdb calls with GET."""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any


@dataclass
class _Grant:
    user: str
    expires_at: float


@dataclass
class TokenServer:
    """Issues tokens to registered clients; `issued` counts the tokens handed out."""

    expires_in: int = 3600
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # client_id -> (secret, mailbox user)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> mailbox user
    issued: int = 0
    introspected: int = 0

    def __post_init__(self) -> None:
        self._tokens: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect?token="

    def add_client(self, client_id: str, client_secret: str, user: str) -> None:
        self.clients[client_id] = (client_secret, user)

    def add_refresh_token(self, user: str) -> str:
        token = secrets.token_urlsafe(24)
        self.refresh_tokens[token] = user
        return token

    def start(self, cert_path: Path, key_path: Path) -> TokenServer:
        """Serve TLS with this certificate (the listening port was bound, and is known, before)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TokenServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def issue(self, user: str) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Grant(user, time.time() + self.expires_in)
            self.issued += 1
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}

    def lookup(self, token: str) -> str | None:
        with self._lock:
            self.introspected += 1
            grant = self._tokens.get(token)
        return grant.user if grant and grant.expires_at > time.time() else None


def _handler_for(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/introspect":
                token = urllib.parse.parse_qs(url.query).get("token", [""])[0]
                user = server.lookup(token)
                if user is None:
                    # An inactive answer is a refusal; an HTTP error would read as "temporary failure".
                    self._reply(200, {"active": "false"})
                else:
                    self._reply(200, {"email": user, "active": "true"})
            elif url.path.endswith("/v2.0/.well-known/openid-configuration"):
                tenant = url.path.split("/")[1]
                base = f"{server.url}/{tenant}"
                self._reply(
                    200,
                    {
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "issuer": f"{base}/v2.0",
                    },
                )
            else:
                self._reply(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
            grant = form.get("grant_type")
            if grant == "client_credentials":
                registered = server.clients.get(form.get("client_id", ""))
                if registered is None or registered[0] != form.get("client_secret"):
                    self._reply(
                        401, {"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}
                    )
                    return
                self._reply(200, server.issue(registered[1]))
            elif grant == "refresh_token":
                user = server.refresh_tokens.get(form.get("refresh_token", ""))
                if user is None:
                    self._reply(
                        400, {"error": "invalid_grant", "error_description": "Token has been revoked."}
                    )
                    return
                self._reply(200, server.issue(user))
            else:
                self._reply(400, {"error": "unsupported_grant_type"})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
