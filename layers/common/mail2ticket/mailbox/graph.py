"""Microsoft Graph connector: a folder of a Microsoft 365 mailbox read through its delta query, raw MIME from
`$value`, delete and move by immutable id. App-only tokens come from msal; throttling (Retry-After, else
exponential back-off within the session's budget), paging and an expired token are handled here. Throttling
that outlasts the session's budget raises ServerThrottled with Graph's Retry-After: the inbox then waits that
long before its next poll."""

import random
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import requests

from mail2ticket.config.models import InboxConfig, folder_path
from mail2ticket.mailbox.oauth import app_token
from mail2ticket.mailbox.session import (
    ActionReport,
    DeltaMessage,
    DeltaPage,
    DeltaReset,
    Locator,
    MailboxError,
    ServerThrottled,
    ServerUnavailable,
    retry_after_seconds,
)
from mail2ticket.observability import logger

API_VERSION = "v1.0"
# Messages per delta page: the delta link is saved after each page, so a cut poll redoes at most one page.
PAGE_SIZE = 50
# Time one session may spend waiting on throttling and server faults before it gives up (the next poll resumes
# where the last stored page left the delta link), and no later than the poll's deadline.
WAIT_BUDGET_SECONDS = 20.0
# Statuses by which Graph asks its client to slow down (throttling, a service busy for a while): beyond the
# session's budget they raise ServerThrottled, which holds the inbox back for the Retry-After Graph named.
_THROTTLING = frozenset({429, 503})
BACKOFF_SECONDS = 1.0  # the first wait when the server gives no Retry-After; doubled at each retry
MAX_BACKOFF_SECONDS = 16.0
# Exchange Online refuses messages over 150 MB: anything bigger is not a mail, and is not read into memory.
MAX_MIME_BYTES = 200 * 1024 * 1024
# Immutable ids stay the same when a message moves between folders of the mailbox.
PREFER_IMMUTABLE_IDS = 'IdType="ImmutableId"'
WELL_KNOWN_FOLDERS = frozenset(
    {"archive", "deleteditems", "drafts", "inbox", "junkemail", "outbox", "sentitems", "msgfolderroot"}
)
_RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
_FOLDER_FIELDS = "id,displayName,totalItemCount,childFolderCount"


class GraphError(MailboxError):
    """Microsoft Graph refused a request; the text names what was asked and gives Graph's code and message."""

    def __init__(self, what: str, status: int, code: str, message: str, request_id: str = "") -> None:
        text = f"{what}: {status} {code}: {message}".rstrip(": ")
        super().__init__(f"{text} (request-id {request_id})" if request_id else text)
        self.status = status
        self.code = code


class GraphUnavailable(ServerUnavailable):
    """Graph could not be reached, or stayed faulty beyond the session's budget: a later poll tries again. The
    text says why, never a token or secret."""


class GraphClient:
    """HTTPS requests to one mailbox of Microsoft Graph with a bearer token, retried as Graph asks."""

    def __init__(self, inbox: InboxConfig, secret: str, deadline: float | None = None) -> None:
        self.inbox = inbox
        self._secret = secret
        self.base = inbox.graph_endpoint
        self._host = urllib.parse.urlsplit(self.base).netloc
        self._http = requests.Session()
        self._token: str | None = None
        self._wait_left = WAIT_BUDGET_SECONDS
        self._deadline = deadline
        self.log_keys = {"inbox_id": inbox.inbox_id, "mailbox": inbox.login}

    def close(self) -> None:
        self._http.close()

    def url(self, *path: str, **query: str) -> str:
        """`https://graph.microsoft.com/v1.0/users/<mailbox>/<path>?<query>`, every part quoted."""
        parts = "/".join(urllib.parse.quote(part, safe="$") for part in ("users", self.inbox.login, *path))
        url = f"{self.base}/{API_VERSION}/{parts}"
        return f"{url}?{urllib.parse.urlencode(query, safe='$,()')}" if query else url

    def json(self, method: str, url: str, what: str, **options: Any) -> dict[str, Any]:
        response = self.request(method, url, what, **options)
        try:
            body = response.json()
        except ValueError:
            raise MailboxError(f"{what}: Graph answered {response.status_code} without JSON") from None
        if not isinstance(body, dict):
            raise MailboxError(f"{what}: Graph answered {response.status_code} with unexpected JSON")
        return body

    def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        body: dict[str, Any] | None = None,
        stream: bool = False,
        page_size: int | None = None,
    ) -> requests.Response:
        """Send one request; a refused token is renewed once, throttling and 5xx are waited out."""
        if not url.startswith(f"{self.base}/"):
            # Links come from Graph's answers; the token is only ever sent to the inbox's own endpoint.
            raise MailboxError(f"{what}: Graph gave a link outside {self.base}; not followed")
        prefer = [PREFER_IMMUTABLE_IDS] + ([f"odata.maxpagesize={page_size}"] if page_size else [])
        renewed = False
        attempt = 0
        while True:
            if self._token is None:
                self._token = app_token(self.inbox, self._secret)
            headers = {"Authorization": f"Bearer {self._token}", "Prefer": ", ".join(prefer)}
            response = self._send(method, url, what, headers, body, stream)
            status = response.status_code
            if status == 401 and not renewed:
                # Expired or revoked before its time: drop it from msal's cache and ask for a new one.
                response.close()
                renewed = True
                logger.info("Graph refused the token: renewing it", extra={**self.log_keys, "what": what})
                self._token = app_token(self.inbox, self._secret, renew=True)
                continue
            if status == 429 or status >= 500:
                error = _error(response, what)
                self._wait(response, attempt, error)
                attempt += 1
                continue
            if status >= 400:
                raise _error(response, what)
            return response

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
        stream: bool,
    ) -> requests.Response:
        try:
            return self._http.request(
                method,
                url,
                headers=headers,
                json=body,
                stream=stream,
                # The connection (TCP and TLS) within the inbox's connect timeout; each answer within its
                # operation timeout.
                timeout=(self.inbox.connect_timeout_seconds, self.inbox.operation_timeout_seconds),
                allow_redirects=False,
                verify=self.inbox.verify_certificate,
            )
        except requests.exceptions.SSLError as exc:
            raise GraphUnavailable(f"{what}: TLS failed with {self._host}: {_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise GraphUnavailable(f"{what}: no answer from {self._host} in time") from None
        except requests.exceptions.RequestException as exc:
            raise GraphUnavailable(f"{what}: cannot reach {self._host}: {_reason(exc)}") from None

    def _wait(self, response: requests.Response, attempt: int, error: GraphError) -> None:
        """Sleep as long as Graph asks (Retry-After), else back off exponentially. Past the session's budget
        (or the poll's deadline), throttling raises ServerThrottled with Graph's Retry-After, and another
        fault GraphUnavailable: the inbox backs off, and its next poll goes on from the saved delta link."""
        asked = retry_after_seconds(response.headers.get("Retry-After"))
        response.close()
        wait = asked if asked is not None else min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt)
        if asked is None:
            wait *= 0.5 + random.random() / 2  # jitter: pollers of one tenant do not retry in step
        left = self._wait_left
        if self._deadline is not None:
            left = min(left, self._deadline - time.monotonic())
        if wait > left:
            reason = (
                f"{error}; waiting {wait:.0f} s more is beyond this poll's remaining {max(left, 0):.0f} s"
            )
            if error.status in _THROTTLING:
                raise ServerThrottled(reason, asked)
            raise GraphUnavailable(f"{reason}: the next poll goes on from here")
        self._wait_left -= wait
        logger.warning(
            "Graph throttled or failing: waiting",
            extra={**self.log_keys, "status": error.status, "code": error.code, "wait": round(wait, 1)},
        )
        time.sleep(wait)

    def pages(self, url: str, what: str) -> Iterator[dict[str, Any]]:
        """Every item of a collection, following `@odata.nextLink`."""
        next_url: str | None = url
        while next_url:
            page = self.json("GET", next_url, what)
            yield from (item for item in page.get("value", []) if isinstance(item, dict))
            next_url = page.get("@odata.nextLink")


class GraphSession:
    """One mailbox folder through Microsoft Graph, found by its display path."""

    def __init__(self, client: GraphClient, folder: dict[str, Any]) -> None:
        self._client = client
        self.folder_id = str(folder["id"])
        self.folder_messages: int | None = folder.get("totalItemCount")
        self._folders: dict[str, str] = {}

    # ------------------------------------------------------------------ reading

    def changes(self, link: str | None) -> Iterator[DeltaPage]:
        what = f"delta of folder {self._client.inbox.mailbox!r} of {self._client.inbox.login}"
        if link and not link.startswith(f"{self._client.base}/"):
            raise DeltaReset(f"{what}: the saved delta link belongs to another endpoint")
        url = link or self._client.url(
            "mailFolders", self.folder_id, "messages", "delta", **{"$select": "internetMessageId"}
        )
        while True:
            page = self._client.json("GET", url, what, page_size=PAGE_SIZE)
            # The same message may appear twice in a page (changed, then removed): its last entry counts.
            entries: dict[str, DeltaMessage | None] = {}
            for item in page.get("value", []):
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                locator = str(item["id"])
                entries.pop(locator, None)
                message_id = str(item.get("internetMessageId") or "")
                entries[locator] = None if "@removed" in item else DeltaMessage(locator, message_id)
            next_link, delta_link = page.get("@odata.nextLink"), page.get("@odata.deltaLink")
            if not (next_link or delta_link):
                raise MailboxError(f"{what}: a page without @odata.nextLink or @odata.deltaLink")
            yield DeltaPage(
                messages=[m for m in entries.values() if m is not None],
                removed=[locator for locator, m in entries.items() if m is None],
                link=str(next_link or delta_link),
                complete=not next_link,
            )
            if not next_link:
                return
            url = str(next_link)

    def fetch(self, locators: list[Locator]) -> Iterator[tuple[Locator, bytes]]:
        for locator in locators:
            raw = self._download(str(locator))
            if raw is not None:
                yield locator, raw

    def _download(self, locator: str) -> bytes | None:
        """The message's MIME from `$value`; its size is checked before the body is read (Content-Length),
        then while reading; None when the message left the mailbox meanwhile."""
        what = f"message …{locator[-16:]} of {self._client.inbox.login}"
        try:
            url = self._client.url("messages", locator, "$value")
            response = self._client.request("GET", url, what, stream=True)
        except GraphError as exc:
            if exc.status != 404:
                raise
            logger.info("message gone before its download", extra={**self._client.log_keys, "what": what})
            return None
        with response:
            announced = int(response.headers.get("Content-Length") or 0)
            if announced > MAX_MIME_BYTES:
                raise MailboxError(f"{what}: {announced} bytes, over the {MAX_MIME_BYTES} a mail can be")
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(1 << 20):
                    size += len(chunk)
                    if size > MAX_MIME_BYTES:
                        raise MailboxError(f"{what}: over the {MAX_MIME_BYTES} bytes a mail can be")
                    chunks.append(chunk)
            except requests.exceptions.RequestException as exc:
                raise GraphUnavailable(f"{what}: the download was cut: {_reason(exc)}") from None
        return b"".join(chunks)

    # ------------------------------------------------------------------ actions

    def delete(self, locators: Iterable[Locator]) -> ActionReport:
        """DELETE each message (Exchange keeps it in Deleted Items until its retention ends)."""
        return self._each(locators, "delete", lambda url, what: self._client.request("DELETE", url, what))

    def move(self, locators: Iterable[Locator], folder: str) -> ActionReport:
        """Move each message into `folder` (a display path), which is created when missing."""
        destination = self._folder_id(folder, create=True)
        return self._each(
            locators,
            f"move to {folder!r}",
            lambda url, what: self._client.request(
                "POST", f"{url}/move", what, body={"destinationId": destination}
            ),
        )

    def _each(self, locators: Iterable[Locator], verb: str, act: Any) -> ActionReport:
        report = ActionReport()
        for locator in locators:
            what = f"{verb} of message …{str(locator)[-16:]} of {self._client.inbox.login}"
            try:
                act(self._client.url("messages", str(locator)), what).close()
            except GraphError as exc:
                if exc.status == 404:
                    report.absent.add(locator)
                else:
                    report.failed[locator] = str(exc)
        return report

    # ------------------------------------------------------------------ folders

    def folder_counts(self) -> list[tuple[str, int | None]]:
        """Every folder of the mailbox by display path, with its message count."""
        counts: list[tuple[str, int | None]] = []
        pending: list[tuple[str | None, str]] = [(None, "")]
        while pending:
            parent, prefix = pending.pop(0)
            for folder in children(self._client, parent):
                path = f"{prefix}{folder.get('displayName', '')}"
                counts.append((path, folder.get("totalItemCount")))
                if folder.get("childFolderCount"):
                    pending.append((str(folder["id"]), f"{path}/"))
        return counts

    def _folder_id(self, path: str, *, create: bool) -> str:
        if path not in self._folders:
            self._folders[path] = str(resolve_folder(self._client, path, create=create)["id"])
        return self._folders[path]


def children(client: GraphClient, parent: str | None) -> Iterator[dict[str, Any]]:
    """The folders under `parent` (the top of the mailbox when None)."""
    path = ("mailFolders", parent, "childFolders") if parent else ("mailFolders",)
    what = f"folders of {client.inbox.login}"
    return client.pages(client.url(*path, **{"$select": _FOLDER_FIELDS, "$top": "100"}), what)


def resolve_folder(client: GraphClient, path: str, *, create: bool = False) -> dict[str, Any]:
    """The folder at a display path such as `Inbox/Support`: the first name may be a well-known folder name
    (`Inbox` whatever the mailbox's language); each name matches a display name, in any case."""
    names = folder_path(path)
    mailbox = client.inbox.login
    folder: dict[str, Any] | None = None
    if names[0].lower() in WELL_KNOWN_FOLDERS:
        url = client.url("mailFolders", names[0].lower(), **{"$select": _FOLDER_FIELDS})
        folder = client.json("GET", url, f"folder {names[0]!r} of mailbox {mailbox}")
        names = names[1:]
    done: list[str] = [] if folder is None else [path.split("/")[0]]
    for name in names:
        parent = None if folder is None else str(folder["id"])
        siblings = list(children(client, parent))
        found = next((f for f in siblings if str(f.get("displayName", "")).lower() == name.lower()), None)
        if found is None and create:
            found = _create_folder(client, parent, name)
        if found is None:
            where = f"folder {'/'.join(done)!r}" if done else "the top of the mailbox"
            held = ", ".join(sorted(str(f.get("displayName")) for f in siblings)) or "no folder"
            raise MailboxError(
                f"folder {path!r} not found in mailbox {mailbox}: {where} has no {name!r} (it holds: {held})"
            )
        folder = found
        done.append(name)
    assert folder is not None
    return folder


def _create_folder(client: GraphClient, parent: str | None, name: str) -> dict[str, Any]:
    path = ("mailFolders", parent, "childFolders") if parent else ("mailFolders",)
    what = f"creating folder {name!r} in mailbox {client.inbox.login}"
    try:
        return client.json("POST", client.url(*path), what, body={"displayName": name})
    except GraphError as exc:
        if exc.status != 409:
            raise
    # Created meanwhile by someone else: take theirs.
    return next(f for f in children(client, parent) if str(f.get("displayName", "")).lower() == name.lower())


def _error(response: requests.Response, what: str) -> GraphError:
    """Graph's error body `{"error": {"code", "message", "innerError": {"request-id"}}}` as an exception; an
    expired or reset delta link as DeltaReset."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = str(inner.get("request-id", "")) if isinstance(inner, dict) else ""
    request_id = request_id or response.headers.get("request-id", "")
    code = str(error.get("code") or response.reason or "")
    message = " ".join(str(error.get("message") or "").split())[:300]
    if response.status_code == 410 or code.lower() in _RESYNC_CODES:
        return _DeltaGone(what, response.status_code, code, message, request_id)
    return GraphError(what, response.status_code, code, message, request_id)


class _DeltaGone(GraphError, DeltaReset):
    """A delta link Graph no longer knows (410 Gone, syncStateNotFound, resyncRequired)."""


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, in one line (urllib3 nests several)."""
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


@contextmanager
def open_graph(inbox: InboxConfig, secret: str, deadline: float | None = None) -> Iterator[GraphSession]:
    """Get a token and find the inbox's folder; the HTTP connections are closed at the end. Waits for
    throttling end by `deadline` (time.monotonic()) at the latest."""
    client = GraphClient(inbox, secret, deadline)
    try:
        yield GraphSession(client, resolve_folder(client, inbox.mailbox))
    finally:
        client.close()
