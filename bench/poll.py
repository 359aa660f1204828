"""Poll cost against the mailbox's size: 10 new mails in a folder that holds 10,000 processed ones, and the
same 10 new mails in an empty folder, polled side by side against Dovecot and moto. Prints `poll_ratio=`.
The same is measured for Microsoft 365 mailboxes on the local Graph service (`graph_poll_ratio=`, printed
before it).

Both inboxes share the replicas table, and moto answers an index query by reading the whole table, so both
polls pay that equally here; DynamoDB reads only the index's few items. The size-dependent part is Dovecot's
folder sync on SELECT and the ESEARCH answer (a range); through Graph, the delta link brings only the
changes since the last poll, whatever the folder holds."""

import hashlib
import json
import os
import pwd
import statistics
import sys
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import boto3
from imap_tools import MailBoxUnencrypted

from infra.local.dovecot import MAIL_USER
from infra.local.graph_server import GraphServer
from infra.local.stack import LocalStack

OLD_MAILS = 10_000
NEW_MAILS = 10
ROUNDS = 5


def _mail(n: int, subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Sender {n} <sender{n}@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Date"] = "Mon, 03 Nov 2025 10:12:00 +0100"
    message["Message-ID"] = f"<bench-{n}-{uuid.uuid4().hex}@example.org>"
    message.set_content(f"Mail number {n}.\n" + "Some text of an ordinary request. " * 20)
    return message.as_bytes(policy=SMTP)


def _fill_maildir(stack: LocalStack, login: str, password: str) -> None:
    """Write the old mails straight into the user's Maildir (APPEND of 10,000 mails is slow), then index."""
    assert stack.dovecot is not None
    with MailBoxUnencrypted("127.0.0.1", stack.dovecot.imap_port).login(login, password):
        pass  # the first login creates the home and its Maildir
    cur = stack.dovecot.workdir / "home" / login / "Maildir" / "cur"
    cur.mkdir(parents=True, exist_ok=True)
    user = pwd.getpwnam(MAIL_USER)
    base = int(time.time()) - OLD_MAILS
    for n in range(OLD_MAILS):
        path = cur / f"{base + n}.M{n}P{os.getpid()}.bench:2,S"
        path.write_bytes(_mail(n, f"Old request {n}"))
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chown(cur, user.pw_uid, user.pw_gid)
    with MailBoxUnencrypted("127.0.0.1", stack.dovecot.imap_port).login(login, password) as box:
        assert len(box.uids()) == OLD_MAILS


def _write_processed(inbox_id: str, mails: list[tuple[str, bytes, dict[str, Any]]]) -> None:
    """Processed replicas of (message key, raw mail, where it is) written straight to the table."""
    from mail2ticket.settings import get_settings

    now = int(time.time())
    items = []
    for n, (key, raw, place) in enumerate(mails):
        sha256 = hashlib.sha256(raw).hexdigest()
        items.append(
            {
                "inbox_id": {"S": inbox_id},
                "sk": {"S": f"m#{key}"},
                "message_key": {"S": key},
                **place,
                "sha256": {"S": sha256},
                "s3_key": {"S": f"raw/{sha256}.eml"},
                "size": {"N": str(len(raw))},
                "status": {"S": "processed"},
                "ticket_ref": {"S": f"R-{n:06d}"},
                "created_at": {"N": str(now)},
                "last_seen": {"N": str(now)},
            }
        )
    dynamodb = boto3.client("dynamodb")
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={get_settings().replicas_table: batch})


def _as_poller(inbox_id: str, save: Any) -> None:
    """Save a poll mark the way a poller holding the inbox's lease does."""
    from mail2ticket.store.models import PollState

    state = PollState(inbox_id=inbox_id)
    state.update(actions=[PollState.lease_owner.set("bench")])
    save(state, "bench")
    state.update(actions=[PollState.lease_owner.remove()])


def _record_processed(inbox: Any, password: str) -> None:
    """The state a real poll and processing of the old mails leaves: processed replicas and the poll mark."""
    from mail2ticket.mailbox.imap import open_imap
    from mail2ticket.store.replicas import poll_state, save_mark

    with open_imap(inbox, password=password) as session:
        uidvalidity = session.uidvalidity
        mails = [
            (f"{uidvalidity}:{uid}", raw, {"uid": {"N": str(uid)}, "uidvalidity": {"N": str(uidvalidity)}})
            for uid, raw in session.fetch(session.present())
        ]
    _write_processed(inbox.inbox_id, mails)
    _as_poller(
        inbox.inbox_id,
        lambda state, owner: save_mark(state, owner, uidvalidity, len(mails), f"1-{len(mails)}"),
    )
    assert poll_state(inbox.inbox_id).high_water == OLD_MAILS


def _timed_poll(inbox: Any, now: int) -> float:
    from mail2ticket.poll import poll_inbox
    from mail2ticket.store.replicas import acquire_lease

    lease = acquire_lease(inbox.inbox_id, "bench-poller", now, 300)
    assert lease is not None
    started = time.perf_counter()
    result = poll_inbox(inbox, lease, "bench-poller", now)
    elapsed = time.perf_counter() - started
    assert result.error is None, result.error
    return elapsed


def _graph_inboxes(stack: LocalStack) -> dict[str, tuple[Any, str]]:
    """Two Microsoft 365 mailboxes on the local Graph service, one application reading both."""
    from mail2ticket.config import InboxConfig
    from mail2ticket.store.config import save_inbox

    graph = stack.graph
    assert graph is not None
    client_id, client_secret = str(uuid.uuid4()), uuid.uuid4().hex
    graph.add_app(client_id, secret=client_secret)
    arn = boto3.client("secretsmanager").create_secret(
        Name="mail2ticket/bench-graph", SecretString=json.dumps({"client_secret": client_secret})
    )["ARN"]
    inboxes = {}
    for name in ("graph-big", "graph-small"):
        address = f"{name}@contoso.example"
        graph.add_mailbox(address)
        inbox = InboxConfig(
            inbox_id=name,
            protocol="graph",
            server="127.0.0.1",
            port=graph.port,
            login=address,
            oauth_tenant_id=graph.tenant,
            oauth_client_id=client_id,
            oauth_authority=graph.authority,
            secret_arn=arn,
        )
        save_inbox(inbox)
        inboxes[name] = (inbox, address)
    return inboxes


def _record_processed_graph(graph: GraphServer, inbox: Any, address: str) -> None:
    """The state a real poll and processing of the old mails leaves: processed replicas and the delta link."""
    from mail2ticket.store.models import graph_message_key
    from mail2ticket.store.replicas import save_delta

    mails = []
    for n in range(OLD_MAILS):
        raw = _mail(n, f"Old request {n}")
        graph_id = graph.deliver(address, raw)
        mails.append((graph_message_key(graph_id), raw, {"graph_id": {"S": graph_id}}))
    _write_processed(inbox.inbox_id, mails)
    folder, link = graph.add_folder(address, "Inbox"), graph.delta_link(address)
    _as_poller(inbox.inbox_id, lambda state, owner: save_delta(state, owner, folder, link, full=False))


def _median_polls(deliver: Any, inboxes: dict[str, Any], now: int) -> tuple[dict[str, float], int]:
    """Each inbox polled ROUNDS times with NEW_MAILS new mails each time, alternating which goes first."""
    names = list(inboxes)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(ROUNDS):
        for name in names if round_ % 2 == 0 else reversed(names):
            deliver(name, [_mail(100_000 + n, f"New request {round_}.{n}") for n in range(NEW_MAILS)])
            now += 60
            times[name].append(_timed_poll(inboxes[name], now))
    return {name: statistics.median(values) for name, values in times.items()}, now


def main() -> None:
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "mail2ticket")
    # The figures are the output: logs and metric lines would bury them (the stack sets LOG_LEVEL from the
    # template, so the Powertools-specific variables are the ones that hold).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    with LocalStack() as stack:
        assert stack.dovecot is not None
        from mail2ticket.config import InboxConfig
        from mail2ticket.store.config import save_inbox

        accounts = {}
        for name in ("big", "small"):
            login, password = f"bench-{name}@example.com", f"pw-{uuid.uuid4().hex}"
            stack.dovecot.add_user(login, password)
            arn = boto3.client("secretsmanager").create_secret(
                Name=f"mail2ticket/bench-{name}", SecretString=password
            )["ARN"]
            inbox = InboxConfig(
                inbox_id=name, server="127.0.0.1", port=stack.dovecot.imaps_port, login=login, secret_arn=arn
            )
            save_inbox(inbox)
            accounts[name] = (inbox, login, password)

        setup = time.perf_counter()
        inbox, login, password = accounts["big"]
        _fill_maildir(stack, login, password)
        _record_processed(inbox, password)
        print(f"setup: {OLD_MAILS} old mails indexed and recorded in {time.perf_counter() - setup:.1f} s")

        now = int(time.time())
        for name in ("big", "small"):  # warm-up: connections, caches, the small inbox's first mark
            now += 60
            _timed_poll(accounts[name][0], now)

        def append(name: str, mails: list[bytes]) -> None:
            _, login, password = accounts[name]
            assert stack.dovecot is not None
            with MailBoxUnencrypted("127.0.0.1", stack.dovecot.imap_port).login(login, password) as box:
                for raw in mails:
                    box.append(raw, "INBOX", flag_set=())

        imap, now = _median_polls(append, {name: accounts[name][0] for name in accounts}, now)

        assert stack.graph is not None
        graph = stack.graph
        setup = time.perf_counter()
        graph_inboxes = _graph_inboxes(stack)
        _record_processed_graph(graph, *graph_inboxes["graph-big"])
        took = time.perf_counter() - setup
        print(f"setup: {OLD_MAILS} old mails in a Graph mailbox, recorded in {took:.1f} s")
        for name in graph_inboxes:  # warm-up: the token, connections, the small inbox's first delta round
            now += 60
            _timed_poll(graph_inboxes[name][0], now)

        def deliver(name: str, mails: list[bytes]) -> None:
            for raw in mails:
                graph.deliver(graph_inboxes[name][1], raw)

        m365, now = _median_polls(deliver, {name: graph_inboxes[name][0] for name in graph_inboxes}, now)

        beside = f"{NEW_MAILS} new mails beside {OLD_MAILS} processed ones"
        for label, big, small in (
            ("IMAP: ", imap["big"], imap["small"]),
            ("Graph:", m365["graph-big"], m365["graph-small"]),
        ):
            print(f"{label} poll of {beside}: {big * 1000:.0f} ms, in an empty inbox: {small * 1000:.0f} ms")
        print(f"graph_poll_ratio={m365['graph-big'] / m365['graph-small']:.2f}")
        sys.stdout.flush()
        print(f"poll_ratio={imap['big'] / imap['small']:.2f}")


if __name__ == "__main__":
    main()
