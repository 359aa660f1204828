"""Outgoing mail: through SES, or through an SMTP relay when SMTP_HOST is set."""

import json
import smtplib
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses

from mail2ticket.errors import ConfigurationError
from mail2ticket.settings import get_settings
from mail2ticket.store.clients import client
from mail2ticket.store.secrets import get_secret


def send(message: EmailMessage) -> None:
    """Send one mail to its To/Cc recipients, from its From address."""
    settings = get_settings()
    sender = getaddresses([str(message["From"])])[0][1]
    recipients = [addr for _, addr in getaddresses([str(v) for v in message.get_all("To", [])]) if addr]
    recipients += [addr for _, addr in getaddresses([str(v) for v in message.get_all("Cc", [])]) if addr]
    data = message.as_bytes(policy=SMTP)
    if settings.smtp_host:
        _send_smtp(sender, recipients, data)
    else:
        client("ses").send_raw_email(Source=sender, Destinations=recipients, RawMessage={"Data": data})


def _send_smtp(sender: str, recipients: list[str], data: bytes) -> None:
    settings = get_settings()
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls()
            smtp.ehlo()
        if settings.smtp_secret_arn:
            username, password = _credentials(settings.smtp_secret_arn)
            smtp.login(username, password)
        smtp.sendmail(sender, recipients, data)


def _credentials(arn: str) -> tuple[str, str]:
    """The relay's `{"username": ..., "password": ...}` secret."""
    try:
        values = json.loads(get_secret(arn))
        return str(values["username"]), str(values["password"])
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(f"secret {arn} is not a JSON object with username and password") from None
