"""Pydantic models of an inbox item (SPEC §1) and of the global parameters (SPEC §2)."""

import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from mail2ticket.config.sizes import parse_size


class Protocol(StrEnum):
    IMAP = "imap"
    POP3 = "pop3"
    IMAP_OAUTH2 = "imap_oauth2"
    GRAPH = "graph"
    # No server: mail is pushed in (received by Amazon SES, or written under inbound/ of the bucket).
    PUSH = "push"


class Security(StrEnum):
    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


class OAuthProvider(StrEnum):
    MICROSOFT = "microsoft"
    GOOGLE = "google"


class Behavior(StrEnum):
    CREATE_OR_UPDATE = "create_or_update"
    CREATE_ONLY = "create_only"
    UPDATE_ONLY = "update_only"


class EmailStorage(StrEnum):
    KEEP = "keep"
    DELETE = "delete"
    MOVE = "move"


class TicketClass(StrEnum):
    USER_REQUEST = "UserRequest"
    INCIDENT = "Incident"
    CHANGE = "Change"
    PROBLEM = "Problem"


class UnknownCallerBehavior(StrEnum):
    REJECT = "reject"
    CREATE_PERSON = "create_person"


class ImportContacts(StrEnum):
    NEVER = "never"
    ALWAYS = "always"
    ONLY_ON_CREATION = "only_on_creation"
    ONLY_ON_UPDATE = "only_on_update"


class ErrorBehavior(StrEnum):
    KEEP = "keep"
    DELETE = "delete"


def _lines(value: Any) -> Any:
    """Accept a list or a newline-separated string (as iTop's text fields are), dropping blank lines."""
    if isinstance(value, str):
        value = value.splitlines()
    if isinstance(value, list | tuple):
        return [str(line).strip() for line in value if str(line).strip()]
    return value


Lines = Annotated[list[str], BeforeValidator(_lines)]

_SECRET_ARN = re.compile(r"^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_DIMENSIONS = re.compile(r"^(\d+)x(\d+)$")
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+*-]*$", re.IGNORECASE)
_LOGS = ("public_log", "private_log")


def _check_pairs(lines: list[str], shape: str) -> list[str]:
    """Every line must be `name:value` with a name; the error names the line and the expected shape."""
    for number, line in enumerate(lines, start=1):
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise ValueError(f"line {number} {line!r} is not {shape}")
        if shape == "state:stimulus" and not value.strip():
            raise ValueError(f"line {number} {line!r} has no stimulus after the colon")
    return lines


# Microsoft Graph's national clouds: the Graph endpoint an inbox names as its `server`, and the Entra ID host
# that issues its tokens.
GRAPH_CLOUDS = {
    "graph.microsoft.com": "login.microsoftonline.com",  # global service
    "graph.microsoft.us": "login.microsoftonline.us",  # US Government L4
    "dod-graph.microsoft.us": "login.microsoftonline.us",  # US Government L5 (DoD)
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",  # China, operated by 21Vianet
}
_HOST = re.compile(r"^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$")
_MAILBOX_ID = re.compile(
    r"^[^@\s/]+@[^@\s/]+$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


# A push inbox's recipients, each an address (`support@example.com`) or a whole domain (`example.com`).
MAX_PUSH_RECIPIENTS = 40
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]{1,64}@([a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+)$")
_DOMAIN = re.compile(r"^@?([a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+)$")


def recipient_of(value: str) -> str | None:
    """The canonical form of a recipient a push inbox owns: a lower-cased address, or a domain (a leading @
    dropped); None if it is neither."""
    text = value.strip().lower().rstrip(".")
    if len(text) > 254:
        return None
    if _ADDRESS.match(text):
        return text
    domain = _DOMAIN.match(text)
    return domain.group(1) if domain else None


def folder_path(value: str) -> list[str]:
    """A Graph folder's display path `Inbox/Support` as its names; an empty name is refused."""
    names = value.split("/")
    if any(not name.strip() for name in names):
        raise ValueError(f"{value!r} has an empty folder name (separate folder names with a single /)")
    return names


def _check_dimensions(value: str, allow_empty: bool) -> str:
    if (allow_empty and not value) or _DIMENSIONS.match(value):
        return value
    raise ValueError(f"invalid size {value!r}: expected WIDTHxHEIGHT in pixels, e.g. 100x20")


_DEFAULT_PORTS = {
    (Protocol.IMAP, Security.SSL): 993,
    (Protocol.IMAP, Security.STARTTLS): 143,
    (Protocol.IMAP, Security.NONE): 143,
    (Protocol.POP3, Security.SSL): 995,
    (Protocol.POP3, Security.STARTTLS): 110,
    (Protocol.POP3, Security.NONE): 110,
}


class InboxConfig(BaseModel):
    """One mailbox the poller reads and the rules the processor applies to its mail."""

    # Validators are built at the first validation, not at import: most CLI commands never validate one.
    model_config = ConfigDict(extra="forbid", use_enum_values=False, defer_build=True)

    inbox_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@+-]+$")
    active: bool = True
    description: str = ""
    protocol: Protocol = Protocol.IMAP
    security: Security = Security.SSL
    verify_certificate: bool = True
    # A host name (at most 253 characters), required but for a push inbox; for graph, the Graph endpoint, e.g.
    # graph.microsoft.com.
    server: str = Field("", max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    # The mailbox's login; for push, the address replies are sent from (by default its first recipient).
    login: str = ""
    mailbox: str = "INBOX"
    secret_arn: str = ""
    periodicity_seconds: int = Field(60, ge=1)
    # A dead server (one that accepts and never answers) costs a poll this long, then the inbox backs off.
    connect_timeout_seconds: int = Field(10, ge=1, le=120)
    operation_timeout_seconds: int = Field(30, ge=1, le=300)
    behavior: Behavior = Behavior.CREATE_OR_UPDATE
    email_storage: EmailStorage = EmailStorage.KEEP
    target_folder: str = ""
    target_class: TicketClass = TicketClass.USER_REQUEST
    ticket_default_values: Lines = []
    ticket_default_title: str = ""
    title_pattern: str = ""
    stimuli: Lines = []
    unknown_caller_behavior: UnknownCallerBehavior = UnknownCallerBehavior.REJECT
    unknown_caller_rejection_reply: str = ""
    caller_default_values: Lines = []
    import_additional_contacts: ImportContacts = ImportContacts.NEVER
    error_behavior: ErrorBehavior = ErrorBehavior.KEEP
    notify_errors_to: str = ""
    notify_errors_from: str = ""
    # OAuth2 (protocols imap_oauth2 and graph); the client secret, certificate or refresh token stays in the
    # secret behind secret_arn.
    oauth_provider: OAuthProvider = OAuthProvider.MICROSOFT
    oauth_tenant_id: str = ""
    oauth_client_id: str = ""
    oauth_authority: str = ""
    oauth_token_url: str = ""
    oauth_scope: str = ""
    # Push: the addresses and domains whose mail this inbox receives, and whether a FAIL spam or virus
    # verdict of Amazon SES makes a mail undesired.
    recipients: Lines = []
    honor_ses_verdicts: bool = True

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.protocol is Protocol.PUSH:
            self._check_push()
        else:
            missing = [f"{name}: required" for name in ("server", "login") if not getattr(self, name)]
            if missing:
                raise ValueError("; ".join(missing))
            if self.recipients:
                raise ValueError("recipients: only a push inbox receives mail by recipient")
        if self.email_storage is EmailStorage.MOVE and not self.target_folder:
            raise ValueError("target_folder: required when email_storage is 'move'")
        if self.protocol is Protocol.GRAPH:
            self._check_graph()
        if self.title_pattern:
            try:
                re.compile(self.title_pattern)
            except re.error as exc:
                raise ValueError(f"title_pattern: invalid regex: {exc}") from exc
        return self

    def _check_push(self) -> None:
        """Push: no server, no mailbox to act on; the recipients it owns are addresses or domains."""
        if self.email_storage is not EmailStorage.KEEP or self.target_folder:
            raise ValueError(
                "email_storage: a push inbox has no mailbox to delete mail from or move it in; its mail "
                "stays in S3 until the cleaner's retention removes it (leave email_storage at keep)"
            )
        if len(self.recipients) > MAX_PUSH_RECIPIENTS:
            raise ValueError(f"recipients: at most {MAX_PUSH_RECIPIENTS} (a domain covers all its addresses)")
        owned = []
        for value in self.recipients:
            recipient = recipient_of(value)
            if recipient is None:
                raise ValueError(f"recipients: {value!r} is neither a mail address nor a domain")
            owned.append(recipient)
        self.recipients = list(dict.fromkeys(owned))
        if not self.login:
            self.login = next((r for r in self.recipients if "@" in r), "")

    def _check_graph(self) -> None:
        """Microsoft Graph: app-only tokens from Entra ID, over HTTPS, for one mailbox and a folder path."""
        if self.security is not Security.SSL:
            raise ValueError("security: Microsoft Graph is reached over HTTPS only (ssl)")
        if self.oauth_provider is not OAuthProvider.MICROSOFT:
            raise ValueError("oauth_provider: graph takes its tokens from Microsoft Entra ID (microsoft)")
        if not self.oauth_client_id:
            raise ValueError("oauth_client_id: required for graph (the application's client id)")
        if not (self.oauth_tenant_id or self.oauth_authority):
            raise ValueError("oauth_tenant_id: required for graph (the Entra ID tenant id or domain)")
        if not _HOST.match(self.server):
            raise ValueError("server: for graph, the Graph endpoint's host name, e.g. graph.microsoft.com")
        if self.server.lower() not in GRAPH_CLOUDS and not self.oauth_authority:
            raise ValueError(
                f"server: not a Microsoft Graph endpoint ({', '.join(GRAPH_CLOUDS)}); "
                "another endpoint needs oauth_authority"
            )
        if not _MAILBOX_ID.match(self.login):
            raise ValueError("login: for graph, the address of a user or shared mailbox, or its object id")
        for name in ("mailbox", "target_folder"):
            if getattr(self, name):
                try:
                    folder_path(getattr(self, name))
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None

    @field_validator("ticket_default_values", "caller_default_values")
    @classmethod
    def _field_values(cls, lines: list[str]) -> list[str]:
        return _check_pairs(lines, "field:value")

    @field_validator("stimuli")
    @classmethod
    def _stimuli(cls, lines: list[str]) -> list[str]:
        return _check_pairs(lines, "state:stimulus")

    @field_validator("secret_arn")
    @classmethod
    def _secret_arn(cls, value: str) -> str:
        # Refusing anything but an ARN also keeps a password pasted here by mistake out of the item.
        if value and not _SECRET_ARN.match(value):
            raise ValueError("not a Secrets Manager secret ARN (set it with `mail2ticket inbox secret`)")
        return value

    @field_validator("mailbox")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the folder name is empty (use INBOX for the main folder)")
        return value

    @field_validator("notify_errors_to", "notify_errors_from")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and "@" not in value:
            raise ValueError(f"{value!r} is not a mail address")
        return value

    @property
    def effective_oauth_scope(self) -> str:
        if self.oauth_scope:
            return self.oauth_scope
        if self.protocol is Protocol.GRAPH:
            return f"https://{self.server.lower()}/.default"
        if self.oauth_provider is OAuthProvider.GOOGLE:
            return "https://mail.google.com/"
        return "https://outlook.office365.com/.default"

    @property
    def microsoft_authority(self) -> str:
        """The Entra ID authority that issues the inbox's tokens: `oauth_authority`, else its cloud's."""
        if self.oauth_authority:
            return self.oauth_authority.rstrip("/")
        host = GRAPH_CLOUDS.get(self.server.lower()) if self.protocol is Protocol.GRAPH else None
        return f"https://{host or 'login.microsoftonline.com'}/{self.oauth_tenant_id}"

    @property
    def graph_endpoint(self) -> str:
        """`https://graph.microsoft.com` (or the national cloud's, or the configured host and port)."""
        port = "" if self.effective_port == 443 else f":{self.effective_port}"
        return f"https://{self.server.lower()}{port}"

    @property
    def effective_port(self) -> int:
        """The configured port, else the protocol's default for the security mode."""
        if self.port:
            return self.port
        if self.protocol is Protocol.GRAPH:
            return 443
        if self.protocol is Protocol.PUSH:
            return 0
        protocol = Protocol.POP3 if self.protocol is Protocol.POP3 else Protocol.IMAP
        return _DEFAULT_PORTS[(protocol, self.security)]


class GlobalConfig(BaseModel):
    """Parameters shared by every inbox, with the documented defaults."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    body_parts_order: str = "text/html,text/plain"
    exclude_attachment_types: Lines = [
        "application/x-msdownload",
        "application/x-ms-installer",
        "application/x-msdos-program",
        "application/x-sh",
        "application/x-bat",
        "application/vnd.microsoft.portable-executable",
    ]
    maximum_email_size: str = "10M"
    introductory_patterns: Lines = [
        r"^On .+ wrote:\s*$",
        r"^Le .+ a écrit\s?:\s*$",
        r"^Am .+ schrieb .+:\s*$",
        r"^El .+ escribió:\s*$",
        r"^Il .+ ha scritto:\s*$",
        r"^Op .+ schreef .+:\s*$",
    ]
    multiline_delimiter_patterns: Lines = [
        r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$",
        r"^\s*-{2,}\s*(Message d'origine|Ursprüngliche Nachricht|Mensaje original|Messaggio originale"
        r"|Oorspronkelijk bericht)\s*-{2,}\s*$",
        r"^\s*_{10,}\s*$",
        r"^\s*(From|De|Von|Da|Van)\s*:.*\n\s*(Sent|Envoyé|Gesendet|Enviado|Inviato|Verzonden)\s*:",
    ]
    delimiter_patterns: Lines = []
    html_tags_to_remove: Lines = ["blockquote", "div.gmail_quote", "div.moz-cite-prefix", "pre.moz-signature"]
    use_message_id_as_uid: bool = False
    images_minimum_size: str = "100x20"
    images_maximum_size: str = ""
    undesired_subject_patterns: Lines = [
        r"^Out Of Office",
        r"^Automatic (answer|reply)",
        r"^Réponse automatique",
        r"^Automatische Antwort",
    ]
    undesired_purge_delay_days: int = Field(7, ge=0)
    # Pushed mail that no inbox owns is kept this long under the catch-all group, then expires.
    unrouted_retention_days: int = Field(30, ge=1)
    retention_period_hours: int = Field(1, ge=0)
    ticket_log: dict[str, str] = {c.value: "public_log" for c in TicketClass}
    aggregate_replies: bool = True
    eml_attachment_mime_type: str = "message/rfc822"
    max_tickets_per_sender_per_hour: int = Field(20, ge=1)

    @field_validator("maximum_email_size")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)
        return value

    @field_validator("images_minimum_size")
    @classmethod
    def _minimum_image(cls, value: str) -> str:
        return _check_dimensions(value, allow_empty=False)

    @field_validator("images_maximum_size")
    @classmethod
    def _maximum_image(cls, value: str) -> str:
        return _check_dimensions(value, allow_empty=True)

    @field_validator("body_parts_order")
    @classmethod
    def _body_parts(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        unknown = [p for p in parts if p not in ("text/html", "text/plain")]
        if not parts or unknown:
            raise ValueError("expected a comma-separated list of text/html and text/plain")
        return ",".join(parts)

    @field_validator("exclude_attachment_types")
    @classmethod
    def _mime_types(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _MIME_TYPE.match(value):
                raise ValueError(f"{value!r} is not a MIME type such as application/x-msdownload")
        return values

    @field_validator("ticket_log")
    @classmethod
    def _ticket_log(cls, values: dict[str, str]) -> dict[str, str]:
        for ticket_class, log in values.items():
            if ticket_class not in {c.value for c in TicketClass}:
                raise ValueError(f"unknown ticket class {ticket_class!r}")
            if log not in _LOGS:
                raise ValueError(f"{ticket_class}: log must be public_log or private_log, not {log!r}")
        return values

    @property
    def maximum_email_bytes(self) -> int:
        return parse_size(self.maximum_email_size)

    @model_validator(mode="after")
    def _check_patterns(self) -> Self:
        for name in (
            "introductory_patterns",
            "multiline_delimiter_patterns",
            "delimiter_patterns",
            "undesired_subject_patterns",
        ):
            for pattern in getattr(self, name):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{name}: invalid regex {pattern!r}: {exc}") from exc
        return self
