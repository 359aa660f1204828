"""The local Dovecot from infra/local/dovecot.py speaks IMAP, IMAPS, STARTTLS, POP3, POP3S and STLS."""

from __future__ import annotations

import imaplib
import poplib
import re
import ssl
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from infra.local.dovecot import Dovecot, _process_group_members

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture(scope="module")
def dovecot(dovecot_installed: None) -> Iterator[Dovecot]:
    server = Dovecot()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def tls_context(dovecot: Dovecot) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(dovecot.cert_path))


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    """A fresh mailbox per test, so tests never see each other's messages."""
    login = f"user-{uuid.uuid4().hex[:8]}"
    dovecot.add_user(login, PASSWORD)
    return login


def _message(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "customer@example.com"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message.set_content("Hello, my printer is on fire.\n")
    return message.as_bytes().replace(b"\n", b"\r\n")


def _append(dovecot: Dovecot, login: str, subject: str, folder: str = "INBOX") -> None:
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port) as imap:
        imap.login(login, PASSWORD)
        status, _ = imap.append(folder, None, None, _message(subject))
        assert status == "OK"


def _assert_imap_session_works(imap: imaplib.IMAP4, login: str) -> None:
    assert imap.login(login, PASSWORD)[0] == "OK"
    assert imap.select("INBOX")[0] == "OK"
    assert imap.logout()[0] == "BYE"


@pytest.mark.integration
def test_plain_imap_append_then_fetch(dovecot: Dovecot, user: str) -> None:
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port) as imap:
        imap.login(user, PASSWORD)
        _, capabilities = imap.capability()
        assert {"UIDPLUS", "MOVE", "IDLE"} <= set(capabilities[0].decode().split())
        status, data = imap.append("INBOX", None, None, _message("Printer on fire"))
        assert status == "OK"
        assert b"APPENDUID" in data[0]
        imap.select("INBOX")
        _, found = imap.uid("SEARCH", "ALL")
        uids = found[0].split()
        assert len(uids) == 1
        _, fetched = imap.uid("FETCH", uids[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: Printer on fire" in fetched[0][1]


@pytest.mark.integration
def test_imaps_verifies_against_generated_certificate(
    dovecot: Dovecot, user: str, tls_context: ssl.SSLContext
) -> None:
    for host in (dovecot.host, "localhost"):
        _assert_imap_session_works(imaplib.IMAP4_SSL(host, dovecot.imaps_port, ssl_context=tls_context), user)


@pytest.mark.integration
def test_imaps_rejects_clients_that_do_not_trust_the_certificate(dovecot: Dovecot) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port, ssl_context=ssl.create_default_context())


@pytest.mark.integration
def test_starttls_on_plain_imap_port(dovecot: Dovecot, user: str, tls_context: ssl.SSLContext) -> None:
    imap = imaplib.IMAP4(dovecot.host, dovecot.imap_port)
    assert "STARTTLS" in imap.capabilities
    assert imap.starttls(ssl_context=tls_context)[0] == "OK"
    assert imap.sock.version() in {"TLSv1.2", "TLSv1.3"}
    _assert_imap_session_works(imap, user)


@pytest.mark.integration
def test_imap_authenticate_plain(dovecot: Dovecot, user: str) -> None:
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port) as imap:
        status, _ = imap.authenticate("PLAIN", lambda _: f"\0{user}\0{PASSWORD}".encode())
        assert status == "OK"


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["plain", "pop3s", "stls"])
def test_pop3_sees_appended_message_with_uidl(
    dovecot: Dovecot, user: str, tls_context: ssl.SSLContext, mode: str
) -> None:
    _append(dovecot, user, "For POP3")
    if mode == "pop3s":
        pop = poplib.POP3_SSL(dovecot.host, dovecot.pop3s_port, context=tls_context)
    else:
        pop = poplib.POP3(dovecot.host, dovecot.pop3_port)
        if mode == "stls":
            assert "STLS" in pop.capa()
            pop.stls(context=tls_context)
    try:
        pop.user(user)
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        assert count == 1
        _, listing, _ = pop.uidl()
        number, uidl = listing[0].decode().split()
        assert number == "1"
        # pop3_uidl_format %08Xu%08Xv: the message UID, then UIDVALIDITY, as 8 hex digits each.
        assert re.fullmatch(r"00000001[0-9a-f]{8}", uidl)
        _, lines, _ = pop.retr(1)
        assert b"Subject: For POP3" in lines
    finally:
        pop.quit()


@pytest.mark.integration
def test_user_added_after_start_logs_in_at_once(dovecot: Dovecot) -> None:
    for _ in range(3):
        login = f"late-{uuid.uuid4().hex[:8]}"
        dovecot.add_user(login, PASSWORD)
        _assert_imap_session_works(imaplib.IMAP4(dovecot.host, dovecot.imap_port), login)


@pytest.mark.integration
def test_changed_password_with_special_characters_applies_at_once(dovecot: Dovecot, user: str) -> None:
    new_password = "{SHA}: not a scheme, with spaces"
    dovecot.add_user(user, new_password)
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port) as imap:
        assert imap.login(user, new_password)[0] == "OK"


@pytest.mark.integration
def test_wrong_password_is_refused(dovecot: Dovecot, user: str) -> None:
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port) as imap, pytest.raises(imaplib.IMAP4.error):
        imap.login(user, "wrong-password")
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port)
    try:
        pop.user(user)
        with pytest.raises(poplib.error_proto):
            pop.pass_("wrong-password")
    finally:
        pop.close()


@pytest.mark.integration
def test_nested_folder_can_be_created_selected_and_filled(dovecot: Dovecot, user: str) -> None:
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port) as imap:
        imap.login(user, PASSWORD)
        assert imap.create("INBOX/Support/Sub")[0] == "OK"
        _, listing = imap.list()
        assert any(line.endswith(b'"/" INBOX/Support/Sub') for line in listing)
        imap.append("INBOX", None, None, _message("Move me"))
        imap.select("INBOX")
        assert imap.uid("MOVE", "1:*", "INBOX/Support/Sub")[0] == "OK"
        status, count = imap.select("INBOX/Support/Sub")
        assert (status, count) == ("OK", [b"1"])


@pytest.mark.integration
def test_stop_kills_every_process_and_removes_workdir(dovecot_installed: None) -> None:
    server = Dovecot()
    workdir = server.workdir
    server.start()
    pid = server.pid
    assert pid is not None
    assert _process_group_members(pid)
    server.stop()
    server.stop()
    assert not _process_group_members(pid)
    assert not Path(workdir).exists()
