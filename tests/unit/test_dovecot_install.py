"""Installing Dovecot: apt-get waits for another install; a failure is one line saying what to do."""

import os
import stat
from pathlib import Path

import pytest

from infra.local import dovecot
from infra.local.dovecot import SetupError, ensure_installed


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(dovecot, "_REQUIRED_FILES", (tmp_path / "sbin" / "dovecot",))
    return tmp_path


def fake_apt(bin_dir: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An apt-get on PATH that records its arguments and then runs `script`."""
    bin_dir.mkdir()
    calls = bin_dir / "calls"
    apt = bin_dir / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n{script}\n')
    apt.chmod(apt.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(dovecot.os, "geteuid", lambda: 0)
    return calls


def test_without_root_the_missing_install_is_one_line_saying_what_to_run(
    not_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dovecot.os, "geteuid", lambda: 1000)
    with pytest.raises(SetupError) as raised:
        ensure_installed()
    message = str(raised.value)
    assert "\n" not in message
    assert "sudo apt-get install dovecot-imapd dovecot-pop3d" in message


def test_apt_get_waits_for_the_dpkg_lock_of_another_install(
    not_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an apt-get that installs nothing (so the files are still missing afterwards)
    calls = fake_apt(not_installed / "bin", "exit 0", monkeypatch)

    with pytest.raises(SetupError, match="did not provide"):
        ensure_installed()

    # Then both apt-get runs were told to wait for the lock rather than fail at once
    lines = calls.read_text().splitlines()
    assert [line.split()[2] for line in lines] == ["update", "install"]
    assert all(f"DPkg::Lock::Timeout={dovecot.APT_LOCK_WAIT_S}" in line for line in lines)


def test_a_failed_install_is_apts_own_error_on_one_line(
    not_installed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = (
        'case "$*" in *install*) echo "Reading package lists..."; '
        'echo "E: Unable to locate package dovecot-imapd" >&2; exit 100;; esac'
    )
    fake_apt(not_installed / "bin", script, monkeypatch)

    with pytest.raises(SetupError) as raised:
        ensure_installed()

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("installing dovecot-imapd dovecot-pop3d failed: E: Unable to locate package")
