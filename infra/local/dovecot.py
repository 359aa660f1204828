"""A throw-away Dovecot 2.3 (Debian packages) on 127.0.0.1 for local runs and integration tests."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

DOVECOT_BIN = Path("/usr/sbin/dovecot")
OPENSSL_BIN = "/usr/bin/openssl"
MAIL_USER = "m2tmail"
PACKAGES = ("dovecot-imapd", "dovecot-pop3d")
# The protocol binaries come from separate packages, so dovecot-core alone is not enough.
_REQUIRED_FILES = (DOVECOT_BIN, Path("/usr/lib/dovecot/imap"), Path("/usr/lib/dovecot/pop3"))
START_TIMEOUT = 20.0
STOP_GRACE = 2.0

_CONFIG_TEMPLATE = """\
# Written by infra/local/dovecot.py; every path points into this temporary directory.
instance_name = m2t-{imap_port}
base_dir = {base_dir}
state_dir = {state_dir}
log_path = {log_path}
protocols = imap pop3
listen = 127.0.0.1

ssl = yes
ssl_cert = <{cert_path}
ssl_key = <{key_path}
ssl_min_protocol = TLSv1.2

disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
auth_verbose = yes
{oauth2_passdb}
# A dict passdb rather than passwd-file: Dovecot 2.3 re-stats a passwd-file at most once per second, so a
# user added right after another login would be refused, while the file dict reloads on every inode change.
passdb {{
  driver = dict
  args = {auth_dict_path}{dict_mechanisms}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home_root}/%u
}}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}

mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {{
  inbox = yes
  separator = /
}}
mail_max_userip_connections = {max_connections}
pop3_uidl_format = %08Xu%08Xv

# An unreachable penalty socket switches off anvil's auth penalty, which after any wrong password would
# delay every later login from 127.0.0.1 by up to 15 s and make test timings depend on test order.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = {pop3s_port}
    ssl = yes
  }}
}}
"""

_AUTH_DICT_TEMPLATE = """\
uri = file:{users_path}
default_pass_scheme = PLAIN
iterate_disable = yes
key passdb {{
  key = passdb/%u
  format = json
}}
passdb_objects = passdb
"""

# A private openssl config keeps the certificate independent of the host's /etc/ssl/openssl.cnf; the CA
# extensions let clients use the server certificate itself as their CA file, also under VERIFY_X509_STRICT.
_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no

[dn]
CN = localhost

[ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


# With an introspection URL, XOAUTH2 and OAUTHBEARER logins are checked by Dovecot's oauth2 passdb, which
# asks the token endpoint about each token with a GET (the token appended to the URL).
_OAUTH2_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth2_conf_path}
}}
"""

_OAUTH2_CONF = """\
introspection_mode = get
introspection_url = {introspection_url}
force_introspection = yes
username_attribute = email
active_attribute = active
active_value = true
tls_ca_cert_file = {cert_path}
"""


class SetupError(RuntimeError):
    """The local stack cannot be set up on this machine: one line saying what failed and what to do."""


# apt-get waits this long for another install to release dpkg's lock instead of failing at once.
APT_LOCK_WAIT_S = 600


def ensure_installed() -> None:
    """Install Dovecot's IMAP and POP3 servers from Debian when missing, and create the mail user."""
    packages = " ".join(PACKAGES)
    if not all(path.exists() for path in _REQUIRED_FILES):
        if os.geteuid() != 0:
            raise SetupError(
                "Dovecot is not installed, and installing it needs root: "
                f"run `sudo apt-get install {packages}`, then run this again"
            )
        if shutil.which("apt-get") is None:
            raise SetupError(f"Dovecot is not installed and there is no apt-get: install {packages} by hand")
        print(f"Installing {packages} with apt-get (one-off, takes ~20 s)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        wait = ["-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT_S}"]
        _run(["apt-get", *wait, "update", "-q"], env=env, what="apt-get update")
        _run(["apt-get", *wait, "install", "-y", "-q", *PACKAGES], env=env, what=f"installing {packages}")
        missing = [str(path) for path in _REQUIRED_FILES if not path.exists()]
        if missing:
            raise SetupError(
                f"installing {packages} did not provide {', '.join(missing)}: check apt's sources"
            )
    _ensure_mail_user()


def _ensure_mail_user() -> None:
    try:
        pwd.getpwnam(MAIL_USER)
    except KeyError:
        if os.geteuid() != 0:
            raise SetupError(
                f"Dovecot needs the unprivileged mail user {MAIL_USER}, and creating it needs root: run "
                f"`sudo useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {MAIL_USER}`"
            ) from None
        _run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                MAIL_USER,
            ],
            what=f"creating the mail user {MAIL_USER}",
        )


def _run(command: list[str], *, what: str, env: dict[str, str] | None = None) -> None:
    """Run a setup command; a failure is one line: what failed, the command's last word on it, what to do."""
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except OSError as error:
        raise SetupError(f"{what} failed: {error.strerror} ({command[0]})") from None
    if result.returncode != 0:
        output = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        reason = next((line for line in reversed(output) if line.startswith(("E:", "useradd:"))), None)
        reason = reason or (output[-1] if output else f"exit code {result.returncode}")
        raise SetupError(f"{what} failed: {reason} (run `{' '.join(command)}` to see all of it)")


def _free_ports(count: int) -> list[int]:
    # All sockets stay open until every port is picked, so the kernel cannot hand out the same one twice.
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _process_group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in field 2 may contain spaces, so the fields are counted from its closing ")".
        fields = line[line.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _terminate_group(process: subprocess.Popen[bytes]) -> None:
    # The whole group (the master leads it) is signalled, and again every 0.2 s: a login process that is
    # forked at that moment loses the signal before its exec, and told alone the master waits 5 s for it.
    pgid = process.pid
    started = next_signal = time.monotonic()
    while process.poll() is None or _process_group_members(pgid):
        now = time.monotonic()
        if now - started > 2 * STOP_GRACE:
            break
        if now >= next_signal:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM if now - started < STOP_GRACE else signal.SIGKILL)
            next_signal = now + 0.2
        time.sleep(0.01)
    process.wait()


class Dovecot:
    """A Dovecot instance with its own config, certificate, users and Maildirs in a private directory."""

    host: str
    imap_port: int
    imaps_port: int
    pop3_port: int
    pop3s_port: int
    cert_path: Path

    def __init__(
        self,
        workdir: Path | None = None,
        oauth2_introspection_url: str | None = None,
        max_connections: int = 100,
    ) -> None:
        """`max_connections`: IMAP or POP3 sessions a user may hold from one address; one more is refused."""
        self._owns_workdir = workdir is None
        self.max_connections = max_connections
        # Short /tmp paths matter: base_dir holds unix sockets whose paths may not exceed 108 bytes.
        self.workdir = Path(tempfile.mkdtemp(prefix="m2t-dovecot-")) if workdir is None else workdir
        self.host = "127.0.0.1"
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = 0
        self.cert_path = self.workdir / "cert.pem"
        self.key_path = self.workdir / "key.pem"
        self.config_path = self.workdir / "dovecot.conf"
        self.users_path = self.workdir / "users.dict"
        self._auth_dict_path = self.workdir / "auth-dict.conf"
        self.log_path = self.workdir / "dovecot.log"
        self._stderr_path = self.workdir / "dovecot.stderr"
        self._users: dict[str, str] = {}
        self._users_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self.oauth2_introspection_url = oauth2_introspection_url

    @property
    def pid(self) -> int | None:
        """The master process id while running (it also leads the process group of all Dovecot children)."""
        return self._process.pid if self._process is not None else None

    def details(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "imap_port": self.imap_port,
            "imaps_port": self.imaps_port,
            "pop3_port": self.pop3_port,
            "pop3s_port": self.pop3s_port,
            "cert_file": str(self.cert_path),
            "workdir": str(self.workdir),
            "pid": self.pid,
            "command": "dovecot",
            "process_group": True,
        }

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client_environment(self) -> dict[str, str]:
        # Mail clients verify the local server's self-signed certificate, as they would a real one.
        return {"SSL_CERT_FILE": str(self.cert_path)}

    def start(self) -> Dovecot:
        """Write certificate, config and user list, start Dovecot and wait until every port answers."""
        if self._process is not None:
            raise RuntimeError("Dovecot is already running")
        mail_user = pwd.getpwnam(MAIL_USER)
        self._prepare_dirs(mail_user)
        self._write_certificate()
        with self._users_lock:
            self._write_users()
        self._auth_dict_path.write_text(_AUTH_DICT_TEMPLATE.format(users_path=self.users_path))
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = _free_ports(4)
        self.config_path.write_text(
            _CONFIG_TEMPLATE.format(
                base_dir=self.workdir / "run",
                state_dir=self.workdir / "state",
                log_path=self.log_path,
                cert_path=self.cert_path,
                key_path=self.key_path,
                auth_dict_path=self._auth_dict_path,
                home_root=self.workdir / "home",
                uid=mail_user.pw_uid,
                gid=mail_user.pw_gid,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
                pop3_port=self.pop3_port,
                pop3s_port=self.pop3s_port,
                max_connections=self.max_connections,
                **self._oauth2_settings(),
            )
        )
        with self._stderr_path.open("wb") as stderr:
            # A session of its own makes the master the leader of a process group that stop() can sweep.
            self._process = subprocess.Popen(
                [str(DOVECOT_BIN), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _oauth2_settings(self) -> dict[str, str]:
        if not self.oauth2_introspection_url:
            return {"oauth2_mechanisms": "", "oauth2_passdb": "", "dict_mechanisms": ""}
        oauth2_conf_path = self.workdir / "oauth2.conf.ext"
        oauth2_conf_path.write_text(
            _OAUTH2_CONF.format(introspection_url=self.oauth2_introspection_url, cert_path=self.cert_path)
        )
        return {
            "oauth2_mechanisms": " xoauth2 oauthbearer",
            "oauth2_passdb": _OAUTH2_PASSDB.format(oauth2_conf_path=oauth2_conf_path),
            "dict_mechanisms": "\n  mechanisms = plain login",
        }

    def stop(self) -> None:
        """Stop Dovecot and all its children; remove the working directory if this object created it."""
        process, self._process = self._process, None
        if process is not None:
            _terminate_group(process)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def add_user(self, login: str, password: str) -> None:
        """Add (or replace) a mail user; Dovecot accepts the login as soon as this returns."""
        if not login or any(char in login for char in "/\n\r\0") or login.startswith("."):
            raise ValueError(
                f"login must be a usable directory name (no '/', newlines, leading '.'): {login!r}"
            )
        if not password or any(char in password for char in "\n\r\0"):
            raise ValueError("password must be non-empty, without newlines or NUL")
        with self._users_lock:
            self._users[login] = password
            if self.workdir.exists():
                self._write_users()

    def _prepare_dirs(self, mail_user: pwd.struct_passwd) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # mkdtemp creates 0700; the mail user and dovecot's internal users must be able to traverse it.
        self.workdir.chmod(0o755)
        for parent in self.workdir.resolve().parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                raise PermissionError(
                    f"{parent} is not searchable by others, so {MAIL_USER} cannot reach its home"
                )
        home_root = self.workdir / "home"
        home_root.mkdir(exist_ok=True)
        # Dovecot creates each user's home on first login as the mail user, so the parent must be theirs.
        os.chown(home_root, mail_user.pw_uid, mail_user.pw_gid)
        home_root.chmod(0o755)

    def _write_certificate(self) -> None:
        openssl_config = self.workdir / "openssl.cnf"
        openssl_config.write_text(_OPENSSL_CONFIG)
        command = [
            OPENSSL_BIN,
            "req",
            "-x509",
            "-config",
            str(openssl_config),
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(self.key_path),
            "-out",
            str(self.cert_path),
            "-days",
            "30",
        ]
        _run(command, what="making the local TLS certificate with openssl")
        # Only the master (root) reads the key; clients need the certificate as their CA file.
        self.key_path.chmod(0o600)
        self.cert_path.chmod(0o644)

    def _write_users(self) -> None:
        # Dovecot's file dict holds alternating key and value lines; auth looks keys up under "shared/".
        # The explicit {PLAIN} keeps a password that itself starts with "{...}" from being read as a scheme.
        lines = "".join(
            f"shared/passdb/{login}\n{json.dumps({'password': '{PLAIN}' + password})}\n"
            for login, password in self._users.items()
        )
        # A rename gives the file a new inode, which the file dict watches; no reader ever sees half a file.
        tmp_path = self.users_path.with_name(self.users_path.name + ".tmp")
        tmp_path.write_text(lines)
        # The auth worker reads this file with dropped privileges.
        tmp_path.chmod(0o644)
        tmp_path.replace(self.users_path)

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT
        pending = {
            self.imap_port: b"* OK",
            self.pop3_port: b"+OK",
            self.imaps_port: b"",
            self.pop3s_port: b"",
        }
        while pending:
            if self._process.poll() is not None:
                raise RuntimeError(f"Dovecot exited with code {self._process.returncode}\n{self._log_tail()}")
            if time.monotonic() > deadline:
                waited = f"Dovecot ports {sorted(pending)} not ready after {START_TIMEOUT:.0f} s"
                raise TimeoutError(f"{waited}\n{self._log_tail()}")
            for port, greeting in list(pending.items()):
                if self._answers(port, greeting):
                    del pending[port]
            if pending:
                time.sleep(0.05)

    def _answers(self, port: int, greeting: bytes) -> bool:
        # On the plain ports the greeting proves that login processes and auth are up, not only the listener.
        try:
            with socket.create_connection((self.host, port), timeout=2) as sock:
                return not greeting or sock.recv(64).startswith(greeting)
        except OSError:
            return False

    def _log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self._stderr_path, self.log_path):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    parts.append(f"--- {path.name} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts) or "(Dovecot wrote no log)"
