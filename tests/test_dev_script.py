"""`./dev`, the README's two commands: where `./dev test` looks for the tests' PostgreSQL.

Real runs of the script against this machine's PostgreSQL (nothing of ours is replaced).
"""

from __future__ import annotations

import os
import subprocess
import time

import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL
from tests.servers import ROOT, free_port

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SOCKET_DIR = "/var/run/postgresql"


def dev(*args: str, **env: str) -> subprocess.CompletedProcess:
    """./dev with none of libpq's settings from the environment but those given."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("PG") and k != "DISCLOSURE_TEST_PG_URL"}
    return subprocess.run([str(ROOT / "dev"), *args], env={**clean, **env}, capture_output=True,
                          text=True, timeout=120)


def me() -> str:
    return subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize(("url", "target"), [
    (None, "127.0.0.1 5432 postgres test local"),
    ("postgresql+psycopg://u:secret@db.example.org:6543/x", "db.example.org 6543 u x other"),
    ("postgresql+psycopg://postgres@127.0.0.1:5433/test", "127.0.0.1 5433 postgres test other"),
    ("postgresql+psycopg://u@/x?host=/var/run/postgresql", "/var/run/postgresql 5432 u x local"),
    ("postgresql+psycopg://u@/x?host=/srv/pg&port=5444", "/srv/pg 5444 u x other"),
    ("postgresql+psycopg://u@localhost/x", "localhost 5432 u x local"),
    ("postgresql+psycopg:///test", "- 5432 {me} test local"),  # libpq's default socket
], ids=["unset", "elsewhere", "other-port", "socket", "other-socket", "localhost", "no-host"])
def test_pg_target_reads_the_url_as_libpq_does(url, target):
    run = dev("pg-target", **({"DISCLOSURE_TEST_PG_URL": url} if url else {}))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == target.format(me=me())


def test_a_server_the_url_names_elsewhere_is_asked_there_and_never_started():
    """It asked 127.0.0.1:5432 whatever the URL said, started the local cluster, waited 30 s."""
    port = free_port()
    started = time.monotonic()
    run = dev("test-db", DISCLOSURE_TEST_PG_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    assert run.returncode == 1
    assert f"does not answer at 127.0.0.1:{port}" in run.stderr
    assert "starting PostgreSQL" not in run.stdout and time.monotonic() - started < 25


def test_the_url_given_is_used_as_it_is():
    socket = {"PGHOST": os.environ["PGHOST"]} if "PGHOST" in os.environ else {}  # ./dev test's
    run = dev("test-db", DISCLOSURE_TEST_PG_URL=PG_ADMIN_URL, **socket)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == f"PostgreSQL for the tests: {PG_ADMIN_URL}"


def _default_logs_in() -> bool:
    try:
        psycopg.connect(DEFAULT_URL.replace("+psycopg", ""), connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


def test_the_default_url_is_kept_where_it_logs_in():
    if not _default_logs_in():
        pytest.skip("the local cluster refuses postgres@127.0.0.1 (a fresh Debian cluster)")
    run = dev("test-db")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == f"PostgreSQL for the tests: {DEFAULT_URL}"


# TCP logins fail (no certificate to verify the server with, or a server without TLS); libpq
# ignores sslmode on a Unix socket: the state of a fresh Debian cluster, whose TCP logins
# want a password, without touching this machine's pg_hba.conf.
TCP_REFUSED = {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/nonexistent/root.crt"}


@pytest.mark.skipif(os.geteuid() != 0, reason="makes the PostgreSQL role as postgres (runuser)")
@pytest.mark.skipif(not os.path.exists(f"{SOCKET_DIR}/.s.PGSQL.5432"), reason="no local cluster")
def test_a_refused_tcp_login_falls_back_to_this_user_over_the_socket():
    """A fresh Debian cluster wants a password on 127.0.0.1: the default URL never worked."""
    run = dev("test-db", **TCP_REFUSED)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith(
        f"PostgreSQL for the tests: postgresql+psycopg:///test with PGHOST={SOCKET_DIR} (as {me()} ")
    # over that socket, the tests' own way to a worker's database works
    with psycopg.connect(f"dbname=test host={SOCKET_DIR}", connect_timeout=5) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]


def test_a_refused_login_on_the_url_given_stays_an_error():
    run = dev("test-db", DISCLOSURE_TEST_PG_URL=DEFAULT_URL, **TCP_REFUSED)
    assert run.returncode == 1
    assert run.stderr.startswith(f"FATAL: cannot log in to PostgreSQL as {DEFAULT_URL};")
