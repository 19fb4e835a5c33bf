"""Broken settings and unusable folders, as a user meets them at the command line: one line
naming what is wrong, a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.integration.conftest import ROOT, settings_env

UNRESOLVABLE_SRV = "mongodb+srv://nonexistent.invalid/"
BAD_PORT = "mongodb://127.0.0.1:notaport"
NO_CA_FILE = "mongodb://127.0.0.1:27017/?tls=true&tlsCAFile=/nonexistent/ca.pem"


def run(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finpipe", *args],
        env=settings_env(settings, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("uri", "args"),
    [
        (UNRESOLVABLE_SRV, ("facts",)),
        (BAD_PORT, ("facts",)),
        (NO_CA_FILE, ("facts",)),
        (UNRESOLVABLE_SRV, ("worker", "--burst")),
        (BAD_PORT, ("export",)),
        (NO_CA_FILE, ("serve", "--port", "0")),
    ],
)
def test_a_broken_mongodb_url_is_one_line_naming_the_variable(
    settings: Settings, uri: str, args: tuple[str, ...]
) -> None:
    done = run(settings, *args, FINPIPE_MONGO_URI=uri)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"finpipe: configuration error: FINPIPE_MONGO_URI='{uri}'")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (UNRESOLVABLE_SRV, "DNS"),
        (NO_CA_FILE, "not readable"),
        # the handshake fails or times out: pymongo says which only if it finished in time
        ("mongodb://127.0.0.1:27017/?tls=true", "MongoDB ping failed"),
    ],
)
def test_status_shows_mongodb_unreachable_for_a_broken_url_or_an_ssl_failure(
    settings: Settings, uri: str, reason: str
) -> None:
    done = run(settings, "status", FINPIPE_MONGO_URI=uri)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[1:]}
    assert lines["rabbitmq"].endswith("reachable")
    assert "UNREACHABLE (" in lines["mongodb"] and reason in lines["mongodb"]


@pytest.mark.parametrize("where", ["a-file/exports", "/proc/finpipe-exports", "/dev/null/x"])
def test_export_to_a_folder_that_cannot_be_written_is_one_line_naming_it(
    settings: Settings, tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / where
    done = run(settings, "export", "--out", str(out))
    assert done.returncode == 1
    assert done.stderr.startswith(f"finpipe export: cannot write to {out}: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_serve_on_an_address_it_cannot_listen_on_is_one_line_naming_it(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(settings, "serve", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    done = run(settings, "serve", "--host", "256.1.1.1", "--port", "8080")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot listen on 256.1.1.1:8080: ")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
