"""A local Microsoft Graph mail API on loopback over HTTPS, written from Microsoft's v1.0 reference.

It serves what the product uses, with Graph's field names, paging and error bodies: Entra ID's v2.0 token
endpoint for client credentials (a client secret, or a client assertion JWT signed with a registered
certificate) and its OpenID configuration; a user's `mailFolders` and `childFolders` (list, get, create);
a folder's `messages/delta` (pages of `odata.maxpagesize`, `@odata.nextLink`/`@odata.deltaLink`, `@removed`
entries, `$select`); `messages/{id}/$value`, `move` and `DELETE`. Ids are immutable ids with
`Prefer: IdType="ImmutableId"` and REST ids (which change when a message moves) without it. On demand: 429
with or without Retry-After, 5xx, revoked tokens (401), expired or reset delta links (410), connections cut
in the middle of a download, an application access policy (403), and a mailbox whose ids all change (a
migration). Mail is delivered as real EML bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TENANT = "11111111-2222-3333-4444-555555555555"
# Display names Exchange gives the well-known folders of an English mailbox.
WELL_KNOWN = {
    "inbox": "Inbox",
    "archive": "Archive",
    "deleteditems": "Deleted Items",
    "drafts": "Drafts",
    "junkemail": "Junk Email",
    "outbox": "Outbox",
    "sentitems": "Sent Items",
}
DEFAULT_PAGE_SIZE = 10
TOKEN_LIFETIME = 3599
_SELECTABLE_FOLDER = (
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
)


def make_certificate(common_name: str, *, server: bool = False) -> tuple[bytes, bytes]:
    """A self-signed certificate and its private key (PEM): the loopback server's, or an application's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
    )
    if server:
        import ipaddress

        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def _new_id(prefix: bytes, size: int) -> str:
    """An Exchange-looking id: base64 (URL-safe alphabet, padded) of a fixed header and random bytes."""
    return base64.urlsafe_b64encode(prefix + secrets.token_bytes(size)).decode()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Folder:
    id: str
    name: str
    parent: Folder | None
    well_known: str | None = None
    children: list[Folder] = field(default_factory=list)
    # Every message that entered, changed in or left this folder, with the last change's sequence number.
    changes: dict[str, int] = field(default_factory=dict)

    def path(self) -> str:
        names: list[str] = []
        folder: Folder | None = self
        while folder is not None and folder.parent is not None:
            names.append(folder.name)
            folder = folder.parent
        return "/".join(reversed(names))


@dataclass
class Message:
    id: str  # the immutable id
    raw: bytes
    folder: Folder
    received: str
    internet_message_id: str
    subject: str
    sender: tuple[str, str]
    is_read: bool = False
    change_key: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    modified: str = field(default_factory=_now)


@dataclass
class Mailbox:
    address: str
    object_id: str
    root: Folder
    folders: dict[str, Folder] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    seq: int = 0

    def touch(self, message: Message, *folders: Folder) -> None:
        self.seq += 1
        for folder in folders:
            folder.changes[message.id] = self.seq


@dataclass
class App:
    client_id: str
    secret: str | None
    certificate: x509.Certificate | None
    mailboxes: set[str] | None  # an application access policy: only these mailboxes (None: every mailbox)
    permissions: set[str]


@dataclass
class Fault:
    """An answer given instead of the real one to the next `times` API requests whose `METHOD path`
    contains `match`: an error (status, Graph code, message, Retry-After), or a body cut after `cut_after`
    bytes."""

    match: str
    status: int = 0
    code: str = ""
    message: str = ""
    retry_after: str | None = None
    times: int = 1
    cut_after: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after is not None else {}


@dataclass
class _DeltaState:
    mailbox: Mailbox
    folder: Folder
    since: int  # changes after this sequence number (0 and `initial`: every message in the folder)
    select: list[str] | None
    pending: list[str] | None = None  # ids still to return in this round
    until: int = 0  # the sequence number the round's deltaLink starts from
    initial: bool = False
    refused: str = ""  # the error code the link now answers with (410), once Graph forgot it


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class GraphServer:
    """The loopback Graph service: `url` is both the authority host (`{url}/{tenant}`) and the Graph
    endpoint (`server` 127.0.0.1 and `port`). `requests` records every API request as `METHOD path`."""

    def __init__(self, tenant: str = TENANT) -> None:
        self.tenant = tenant
        self.mailboxes: dict[str, Mailbox] = {}
        self.apps: dict[str, App] = {}
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self.issued = 0
        self._tokens: dict[str, tuple[str, float]] = {}
        self._states: dict[str, _DeltaState] = {}
        self._rest_ids: dict[str, str] = {}
        self._lock = threading.RLock()
        self._workdir = Path(tempfile.mkdtemp(prefix="m2t-graph-"))
        self._thread: threading.Thread | None = None
        self.cert_path = self._workdir / "graph-cert.pem"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.authority = f"{self.url}/{tenant}"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GraphServer:
        cert, key = make_certificate("127.0.0.1", server=True)
        self.cert_path.write_bytes(cert)
        key_path = self._workdir / "graph-key.pem"
        key_path.write_bytes(key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever, which only a started server runs
            self._thread = None
        self._server.server_close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def details(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "url": self.url, "cert_file": str(self.cert_path)}

    def client_environment(self) -> dict[str, str]:
        # HTTPS clients (requests, under msal and the Graph connector) verify its certificate as a real one's.
        return {"REQUESTS_CA_BUNDLE": str(self.cert_path)}

    def __enter__(self) -> GraphServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ directory

    def add_app(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        certificate: bytes | None = None,
        mailboxes: list[str] | None = None,
        permissions: tuple[str, ...] = ("Mail.ReadWrite",),
    ) -> None:
        """Register an application with a client secret or a certificate (PEM), Mail.ReadWrite granted; an
        application access policy limits it to `mailboxes`."""
        cert = x509.load_pem_x509_certificate(certificate) if certificate else None
        allowed = {m.lower() for m in mailboxes} if mailboxes is not None else None
        self.apps[client_id] = App(client_id, secret, cert, allowed, set(permissions))

    def add_mailbox(self, address: str) -> Mailbox:
        root = Folder(_new_id(b"\x00\x00\x0e\x00", 60), "Top of Information Store", None, "msgfolderroot")
        mailbox = Mailbox(address, str(uuid.uuid4()), root, {root.id: root})
        for well_known, name in WELL_KNOWN.items():
            self._new_folder(mailbox, root, name, well_known)
        self.mailboxes[address.lower()] = mailbox
        return mailbox

    def add_folder(self, address: str, path: str) -> str:
        """Create the folders of a display path (`Inbox/Support`) that do not exist; returns the last's id."""
        with self._lock:
            return self._folder_at(self.mailboxes[address.lower()], path, create=True).id

    def revoke_tokens(self) -> None:
        """Every token issued so far is refused from now on (401), as after a credential change."""
        with self._lock:
            self._tokens.clear()

    def fail(self, match: str, status: int, code: str, message: str = "", **options: Any) -> Fault:
        fault = Fault(match, status, code, message or code, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def cut(self, match: str, after: int) -> Fault:
        """The next matching download stops after `after` bytes of its body and the connection closes."""
        fault = Fault(match, cut_after=after)
        with self._lock:
            self.faults.append(fault)
        return fault

    # ------------------------------------------------------------------ mail, as other clients change it

    def deliver(self, address: str, raw: bytes, folder: str = "Inbox") -> str:
        """A mail arriving in a folder; returns its immutable id."""
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        senders = getaddresses([str(headers.get("from", ""))])
        with self._lock:
            mailbox = self.mailboxes[address.lower()]
            target = self._folder_at(mailbox, folder)
            message = Message(
                id=_new_id(b"\x00\x00\x09\x00", 108),
                raw=raw,
                folder=target,
                received=_now(),
                internet_message_id=" ".join(str(headers.get("message-id", "")).split()),
                subject=" ".join(str(headers.get("subject", "")).split()),
                sender=senders[0] if senders else ("", ""),
            )
            mailbox.messages[message.id] = message
            mailbox.touch(message, target)
            return message.id

    def move(self, address: str, message_id: str, folder: str) -> None:
        with self._lock:
            mailbox = self.mailboxes[address.lower()]
            self._move(mailbox, mailbox.messages[message_id], self._folder_at(mailbox, folder))

    def remove(self, address: str, message_id: str) -> None:
        """Delete for good (another client emptying Deleted Items, or a shift-delete)."""
        with self._lock:
            mailbox = self.mailboxes[address.lower()]
            message = mailbox.messages.pop(message_id)
            mailbox.touch(message, message.folder)

    def mark_read(self, address: str, message_id: str) -> None:
        with self._lock:
            mailbox = self.mailboxes[address.lower()]
            message = mailbox.messages[message_id]
            message.is_read, message.change_key, message.modified = True, secrets.token_urlsafe(12), _now()
            mailbox.touch(message, message.folder)

    def messages(self, address: str, folder: str = "Inbox") -> list[tuple[str, str]]:
        """(immutable id, subject) of each message of a folder."""
        with self._lock:
            mailbox = self.mailboxes[address.lower()]
            target = self._folder_at(mailbox, folder)
            return [(m.id, m.subject) for m in mailbox.messages.values() if m.folder is target]

    def subjects(self, address: str, folder: str = "Inbox") -> list[str]:
        return sorted(subject for _, subject in self.messages(address, folder))

    def expire_delta_links(self, address: str) -> None:
        """Graph forgets every delta and skip token of the mailbox (410 syncStateNotFound)."""
        self._drop_states(address, "syncStateNotFound")

    def reset_delta(self, address: str) -> None:
        """The tenant was maintained or moved: every link answers 410 resyncRequired with a Location."""
        self._drop_states(address, "resyncRequired")

    def migrate(self, address: str) -> None:
        """Every message of the mailbox gets a new immutable id (a move to another tenant), and every delta
        link is refused."""
        with self._lock:
            mailbox = self.mailboxes[address.lower()]
            for message in list(mailbox.messages.values()):
                del mailbox.messages[message.id]
                message.id = _new_id(b"\x00\x00\x09\x00", 108)
                mailbox.messages[message.id] = message
            for folder in mailbox.folders.values():
                folder.changes.clear()
        self._drop_states(address, "resyncRequired")

    def delta_link(self, address: str, folder: str = "Inbox") -> str:
        """A deltaLink from now on, as the last page of a full round would give (for benchmarks)."""
        with self._lock:
            mailbox = self.mailboxes[address.lower()]
            target = self._folder_at(mailbox, folder)
            token = self._state(_DeltaState(mailbox, target, mailbox.seq, ["internetMessageId"]))
            return self._delta_url(mailbox, target, "$deltatoken", token)

    def _drop_states(self, address: str, reason: str) -> None:
        with self._lock:
            for state in self._states.values():
                if state.mailbox.address.lower() == address.lower():
                    state.refused = reason

    # ------------------------------------------------------------------ internals

    def _new_folder(
        self, mailbox: Mailbox, parent: Folder, name: str, well_known: str | None = None
    ) -> Folder:
        folder = Folder(_new_id(b"\x00\x00\x0e\x00", 84), name, parent, well_known)
        parent.children.append(folder)
        mailbox.folders[folder.id] = folder
        return folder

    def _folder_at(self, mailbox: Mailbox, path: str, create: bool = False) -> Folder:
        folder = mailbox.root
        for index, name in enumerate(path.split("/")):
            found = next((f for f in folder.children if f.name.lower() == name.lower()), None)
            if found is None and index == 0 and name.lower() in WELL_KNOWN:
                found = next(f for f in mailbox.folders.values() if f.well_known == name.lower())
            if found is None:
                if not create:
                    raise KeyError(path)
                found = self._new_folder(mailbox, folder, name)
            folder = found
        return folder

    def _move(self, mailbox: Mailbox, message: Message, target: Folder) -> None:
        source = message.folder
        message.folder, message.change_key, message.modified = target, secrets.token_urlsafe(12), _now()
        mailbox.touch(message, source, target)

    def _state(self, state: _DeltaState) -> str:
        token = secrets.token_urlsafe(24)
        self._states[token] = state
        return token

    def _delta_url(self, mailbox: Mailbox, folder: Folder, kind: str, token: str) -> str:
        # Graph's links name the folder with the key syntax: mailFolders('<id>').
        return (
            f"{self.url}/v1.0/users('{mailbox.object_id}')/mailFolders('{folder.id}')/messages/delta"
            f"?{kind}={token}"
        )

    # ------------------------------------------------------------------ the API, called by the handler

    def _take_fault(self, method: str, raw_path: str) -> Fault | None:
        """Note a request, and take the fault set for it, if any (each fault answers `times` requests)."""
        with self._lock:
            self.requests.append(f"{method} {raw_path}")
            fault = next((f for f in self.faults if f.match in f"{method} {raw_path}" and f.times > 0), None)
            if fault is not None:
                fault.times -= 1
            return fault

    def token(
        self, tenant: str, form: dict[str, str], raw_path: str = ""
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The v2.0 token endpoint, client credentials flow, with Entra ID's error shapes; a fault set with
        `fail` on its path answers as Entra ID throttles a client (`temporarily_unavailable`, AADSTS90055),
        with its status and Retry-After."""
        fault = self._take_fault("POST", raw_path)
        if fault is not None:
            status, answer = self._token_refusal(
                fault.status, "temporarily_unavailable", 90055, "There are too many incoming requests."
            )
            return status, answer, fault.headers
        status, answer = self._token(tenant, form)
        return status, answer, {}

    @staticmethod
    def _token_refusal(status: int, error: str, code: int, description: str) -> tuple[int, dict[str, Any]]:
        return status, {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} "
            f"Correlation ID: {uuid.uuid4()} Timestamp: {_now()}",
            "error_codes": [code],
            "timestamp": _now(),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }

    def _token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:

        refuse = self._token_refusal
        if tenant != self.tenant:
            return refuse(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return refuse(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        app = self.apps.get(form.get("client_id", ""))
        if app is None:
            return refuse(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id')}' was not found in the directory.",
            )
        scope = form.get("scope", "")
        resource = scope.removesuffix("/.default")
        known = {"https://graph.microsoft.com", "https://127.0.0.1", self.url, "https://localhost"}
        if not scope.endswith("/.default") or resource not in known:
            return refuse(
                400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid."
            )
        if form.get("client_assertion"):
            problem = self._check_assertion(app, form, tenant)
            if problem:
                return refuse(401, "invalid_client", 700027, problem)
        elif app.secret is None or form.get("client_secret") != app.secret:
            return refuse(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{app.client_id}'.",
            )
        access = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[access] = (app.client_id, time.time() + TOKEN_LIFETIME)
            self.issued += 1
        return 200, {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": access,
        }

    def _check_assertion(self, app: App, form: dict[str, str], tenant: str) -> str:
        """Why a client assertion is refused ('' when it is good): a JWT signed with the registered
        certificate's key, naming it by thumbprint, for this token endpoint, issued by the client itself."""
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return "The client_assertion_type is not supported."
        if app.certificate is None:
            return "The application has no certificate registered."
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            return "Client assertion is not well formed."
        der = app.certificate.public_bytes(serialization.Encoding.DER)
        thumbprints = {
            "x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("="),
            "x5t": base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("="),
        }
        # RFC 7515 drops base64url's padding; msal keeps it, and Entra ID takes both.
        if not any(str(header.get(name, "")).rstrip("=") == value for name, value in thumbprints.items()):
            return (
                "The certificate with identifier used to sign the client assertion is not registered on "
                "application."
            )
        try:
            claims = jwt.decode(
                assertion,
                app.certificate.public_key(),  # type: ignore[arg-type]
                algorithms=["PS256", "RS256"],
                audience=f"{self.url}/{tenant}/oauth2/v2.0/token",
                issuer=app.client_id,
            )
        except jwt.ExpiredSignatureError:
            return "Client assertion is not within its valid time range."
        except jwt.InvalidTokenError as exc:
            return f"Client assertion failed signature validation. ({type(exc).__name__})"
        if claims.get("sub") != app.client_id:
            return "Client assertion subject does not match the client id."
        return ""

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """One Graph API request: (status, JSON body or raw bytes, headers)."""
        with self._lock:
            fault = self._take_fault(method, raw_path)
            if fault is not None and fault.cut_after is None:
                raise GraphError(fault.status, fault.code, fault.message, fault.headers)
            app = self._authenticate(headers.get("authorization", ""))
            immutable = 'idtype="immutableid"' in headers.get("prefer", "").lower()
            url = urllib.parse.urlsplit(raw_path)
            query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            segments = _segments(url.path)
            if segments[:1] != ["v1.0"] or len(segments) < 4 or segments[1] != "users":
                raise GraphError(
                    400, "BadRequest", f"Resource not found for the segment '{'/'.join(segments[1:2])}'."
                )
            mailbox = self._mailbox(segments[2])
            if app.mailboxes is not None and mailbox.address.lower() not in app.mailboxes:
                raise GraphError(
                    403,
                    "ErrorAccessDenied",
                    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy "
                    "settings.",
                )
            if method != "GET" and "Mail.ReadWrite" not in app.permissions:
                raise GraphError(
                    403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
                )
            status, answer, extra_headers = self._route(
                method, mailbox, segments[3:], query, headers, body, immutable
            )
            if fault is not None and fault.cut_after is not None:
                extra_headers["X-Cut-After"] = str(fault.cut_after)
            return status, answer, extra_headers

    def _authenticate(self, authorization: str) -> App:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        grant = self._tokens.get(token)
        if grant is None or grant[1] < time.time():
            raise GraphError(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            )
        return self.apps[grant[0]]

    def _mailbox(self, user: str) -> Mailbox:
        mailbox = self.mailboxes.get(user.lower()) or next(
            (m for m in self.mailboxes.values() if m.object_id == user.lower()), None
        )
        if mailbox is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        return mailbox

    def _folder(self, mailbox: Mailbox, key: str) -> Folder:
        folder = mailbox.folders.get(key) or next(
            (f for f in mailbox.folders.values() if f.well_known == key.lower()), None
        )
        if folder is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return folder

    def _message(self, mailbox: Mailbox, key: str) -> Message:
        message = mailbox.messages.get(key) or mailbox.messages.get(self._rest_ids.get(key, ""))
        if message is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return message

    def _route(
        self,
        method: str,
        mailbox: Mailbox,
        path: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        immutable: bool,
    ) -> tuple[int, Any, dict[str, str]]:
        applied = {"Preference-Applied": 'IdType="ImmutableId"'} if immutable else {}
        match (method, path):
            case ("GET", ["mailFolders"]):
                return 200, self._folder_page(mailbox, mailbox.root, query), {}
            case ("POST", ["mailFolders"]):
                return 201, self._create_folder(mailbox, mailbox.root, body), {}
            case ("GET", ["mailFolders", key]):
                return 200, _selected(self._folder_json(self._folder(mailbox, key)), query), {}
            case ("GET", ["mailFolders", key, "childFolders"]):
                return 200, self._folder_page(mailbox, self._folder(mailbox, key), query), {}
            case ("POST", ["mailFolders", key, "childFolders"]):
                return 201, self._create_folder(mailbox, self._folder(mailbox, key), body), {}
            case (
                "GET",
                ["mailFolders", key, "messages", "delta"]
                | ["mailFolders", key, "messages", "microsoft.graph.delta"],
            ):
                page_size = _page_size(headers.get("prefer", ""))
                answer = self._delta(mailbox, self._folder(mailbox, key), query, page_size, immutable)
                applied["Preference-Applied"] = ", ".join(
                    [*applied.values(), f"odata.maxpagesize={page_size}"]
                )
                return 200, answer, applied
            case ("GET", ["messages", key]):
                return (
                    200,
                    _selected(self._message_json(self._message(mailbox, key), immutable), query),
                    applied,
                )
            case ("GET", ["messages", key, "$value"]):
                return 200, self._message(mailbox, key).raw, {"Content-Type": "message/rfc822"}
            case ("DELETE", ["messages", key]):
                message = self._message(mailbox, key)
                deleted = next(f for f in mailbox.folders.values() if f.well_known == "deleteditems")
                if message.folder is deleted:
                    self.remove(mailbox.address, message.id)
                else:
                    self._move(mailbox, message, deleted)
                return 204, None, {}
            case ("POST", ["messages", key, "move"]):
                message = self._message(mailbox, key)
                destination = _json_body(body).get("destinationId")
                if not isinstance(destination, str) or not destination:
                    raise GraphError(
                        400, "ErrorInvalidParameter", "The value of the parameter 'DestinationId' is empty."
                    )
                self._move(mailbox, message, self._folder(mailbox, destination))
                return 201, self._message_json(message, immutable), applied
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{'/'.join(path)}'.")

    def _folder_json(self, folder: Folder) -> dict[str, Any]:
        mailbox = next(m for m in self.mailboxes.values() if folder.id in m.folders)
        inside = [m for m in mailbox.messages.values() if m.folder is folder]
        return {
            "id": folder.id,
            "displayName": folder.name,
            "parentFolderId": folder.parent.id if folder.parent else None,
            "childFolderCount": len(folder.children),
            "unreadItemCount": sum(1 for m in inside if not m.is_read),
            "totalItemCount": len(inside),
            "isHidden": False,
        }

    def _folder_page(self, mailbox: Mailbox, parent: Folder, query: dict[str, str]) -> dict[str, Any]:
        top = int(query.get("$top", "10"))
        skip = int(query.get("$skip", "0"))
        folders = parent.children[skip : skip + top]
        page: dict[str, Any] = {
            "@odata.context": f"{self.url}/v1.0/$metadata#users('{mailbox.address}')/mailFolders",
            "value": [_selected(self._folder_json(f), query) for f in folders],
        }
        if skip + top < len(parent.children):
            rest = {**query, "$skip": str(skip + top)}
            base = f"{self.url}/v1.0/users('{mailbox.object_id}')/mailFolders"
            base += f"('{parent.id}')/childFolders" if parent is not mailbox.root else ""
            page["@odata.nextLink"] = f"{base}?{urllib.parse.urlencode(rest, safe='$,')}"
        return page

    def _create_folder(self, mailbox: Mailbox, parent: Folder, body: bytes) -> dict[str, Any]:
        name = _json_body(body).get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise GraphError(
                400, "ErrorInvalidParameter", "The value of the parameter 'DisplayName' is empty."
            )
        if any(f.name.lower() == name.lower() for f in parent.children):
            raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
        return self._folder_json(self._new_folder(mailbox, parent, name))

    def _message_json(self, message: Message, immutable: bool) -> dict[str, Any]:
        if immutable:
            key = message.id
        else:
            # A REST id names the message in its folder: it changes when the message moves.
            key = (
                "AAMk"
                + base64.urlsafe_b64encode(
                    hashlib.sha256(f"{message.folder.id}/{message.id}".encode()).digest() * 3
                ).decode()
            )
            self._rest_ids[key] = message.id
        name, address = message.sender
        return {
            "@odata.type": "#microsoft.graph.message",
            "@odata.etag": f'W/"{message.change_key}"',
            "id": key,
            "createdDateTime": message.received,
            "lastModifiedDateTime": message.modified,
            "changeKey": message.change_key,
            "receivedDateTime": message.received,
            "sentDateTime": message.received,
            "hasAttachments": b"Content-Disposition: attachment" in message.raw,
            "internetMessageId": message.internet_message_id or None,
            "subject": message.subject,
            "importance": "normal",
            "parentFolderId": message.folder.id,
            "conversationId": base64.urlsafe_b64encode(
                hashlib.sha256(message.subject.encode()).digest()
            ).decode(),
            "isRead": message.is_read,
            "isDraft": False,
            "from": {"emailAddress": {"name": name or address, "address": address}},
            "sender": {"emailAddress": {"name": name or address, "address": address}},
        }

    def _delta(
        self, mailbox: Mailbox, folder: Folder, query: dict[str, str], page_size: int, immutable: bool
    ) -> dict[str, Any]:
        """A page of a delta round: a new round (no token), the next page ($skiptoken) or the next round
        ($deltatoken)."""
        token = query.get("$skiptoken") or query.get("$deltatoken")
        if token is None:
            select = query["$select"].split(",") if "$select" in query else None
            state = _DeltaState(mailbox, folder, 0, select, initial=True)
        else:
            found = self._states.get(token)
            if found is None or found.folder is not folder:
                raise GraphError(
                    410,
                    "syncStateNotFound",
                    "The sync state generation is not found. Please restart the sync.",
                )
            if found.refused == "resyncRequired":
                # The Location is the initial request again: an empty $deltatoken.
                location = {"Location": self._delta_url(mailbox, folder, "$deltatoken", "")}
                raise GraphError(
                    410,
                    "resyncRequired",
                    "Resync required. Replace any local cached copy with the results of a full delta "
                    "synchronization.",
                    location,
                )
            if found.refused:
                raise GraphError(
                    410,
                    "syncStateNotFound",
                    "The sync state generation is not found. Please restart the sync.",
                )
            state = found
        if state.pending is None:
            # A new round: what changed since its start (every message of the folder for the first round).
            if state.initial:
                state.pending = [m.id for m in mailbox.messages.values() if m.folder is folder]
            else:
                state.pending = [i for i, seq in folder.changes.items() if seq > state.since]
            state.until = mailbox.seq
        page, rest = state.pending[:page_size], state.pending[page_size:]
        values = []
        for message_id in page:
            message = mailbox.messages.get(message_id)
            if message is None or message.folder is not folder:
                values.append(
                    {
                        "@odata.type": "#microsoft.graph.message",
                        "id": message_id,
                        "@removed": {"reason": "deleted"},
                    }
                )
            else:
                values.append(
                    _selected(
                        self._message_json(message, immutable),
                        {"$select": ",".join(state.select)} if state.select else {},
                    )
                )
        answer: dict[str, Any] = {
            "@odata.context": f"{self.url}/v1.0/$metadata#Collection(message)",
            "value": values,
        }
        if rest:
            following = _DeltaState(
                mailbox, folder, state.since, state.select, pending=rest, until=state.until
            )
            answer["@odata.nextLink"] = self._delta_url(mailbox, folder, "$skiptoken", self._state(following))
        else:
            following = _DeltaState(mailbox, folder, state.until, state.select)
            answer["@odata.deltaLink"] = self._delta_url(
                mailbox, folder, "$deltatoken", self._state(following)
            )
        return answer


def _segments(path: str) -> list[str]:
    """`/v1.0/users('a@b')/mailFolders('X')/messages/delta` as [v1.0, users, a@b, mailFolders, X, …]."""
    segments: list[str] = []
    for part in path.strip("/").split("/"):
        part = urllib.parse.unquote(part)
        if part.endswith("')") and "('" in part:
            name, _, key = part[:-2].partition("('")
            segments += [name, key]
        elif part:
            segments.append(part)
    return segments


def _selected(item: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    if "$select" not in query:
        return item
    wanted = {"id", "@odata.type", "@odata.etag", *query["$select"].split(",")}
    return {k: v for k, v in item.items() if k in wanted}


def _page_size(prefer: str) -> int:
    for preference in prefer.split(","):
        name, _, value = preference.strip().partition("=")
        if name.lower() == "odata.maxpagesize" and value.strip().isdigit():
            return max(1, int(value))
    return DEFAULT_PAGE_SIZE


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None
    return value if isinstance(value, dict) else {}


def _handler_for(server: GraphServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Graph's front doors
        # Headers and body leave in separate writes: without this, Nagle's algorithm holds the body back until
        # the client's delayed ACK, 40 ms per answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path.endswith("/v2.0/.well-known/openid-configuration"):
                tenant = url.path.strip("/").split("/")[0]
                base = f"{server.url}/{tenant}"
                self._json(
                    200,
                    {
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "issuer": f"{base}/v2.0",
                        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                    },
                )
                return
            self._api("GET", b"")

        def do_POST(self) -> None:
            body = self._body()
            url = urllib.parse.urlsplit(self.path)
            if url.path.endswith("/oauth2/v2.0/token"):
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
                status, answer, extra = server.token(url.path.strip("/").split("/")[0], form, self.path)
                self._json(status, answer, extra)
                return
            self._api("POST", body)

        def do_DELETE(self) -> None:
            self._api("DELETE", self._body())

        def _api(self, method: str, body: bytes) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, answer, extra = server.handle(method, self.path, headers, body)
            except GraphError as error:
                request_id = str(uuid.uuid4())
                self._json(
                    error.status,
                    {
                        "error": {
                            "code": error.code,
                            "message": error.message,
                            "innerError": {
                                "date": _now(),
                                "request-id": request_id,
                                "client-request-id": request_id,
                            },
                        }
                    },
                    {"request-id": request_id, **error.headers},
                )
                return
            cut = extra.pop("X-Cut-After", None)
            if isinstance(answer, bytes):
                self._send(status, answer, extra, cut=int(cut) if cut else None)
            elif answer is None:
                self._send(status, b"", extra)
            else:
                self._json(status, answer, extra)

        def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self._send(
                status, data, {"Content-Type": "application/json; odata.metadata=minimal", **(headers or {})}
            )

        def _send(self, status: int, data: bytes, headers: dict[str, str], cut: int | None = None) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if cut is None:
                self.wfile.write(data)
                return
            self.wfile.write(data[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)

    return Handler
