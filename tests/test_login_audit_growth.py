"""Anonymous login traffic cannot grow the (unprunable) audit log without bound, on SQLite and
PostgreSQL: the login rate limit counts per IPv6 /64 as the lockout does, so new addresses in one
/64 get 429 after the limit; attempts refused by an address lock add one entry, not one each,
and their count is audited once when the lock is over ("login.locked_attempts")."""

from __future__ import annotations

import re
from datetime import timedelta

from litestar.testing import TestClient
from sqlalchemy import func, select, update
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from publishing import audit, clock, request_config, users
from publishing.request_models import AUDIT, LOGIN_SOURCES

PASSWORD = "correct horse battery staple"
STRANGER = "198.51.100.44"


def audit_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()


def login_entries(engine, name: str) -> list[dict]:
    with engine.connect() as conn:
        return [e for e in audit.for_target(conn, "user", name) if e["action"].startswith("login")]


def proxied_client(engine) -> TestClient:
    """The portal behind the proxy it trusts: uvicorn's ProxyHeadersMiddleware (what
    FORWARDED_ALLOW_IPS turns on in production) takes the client address from X-Forwarded-For."""
    from portal.app import create_app

    app = ProxyHeadersMiddleware(create_app(engine), trusted_hosts="testclient")
    client = TestClient(app, base_url="https://testserver.local")
    client.follow_redirects = False
    return client


def test_new_addresses_in_one_ipv6_64_share_the_login_rate_limit(engine):
    users.add_user(engine, "wang", "approver", PASSWORD)
    allowed, _window = request_config.load_config().limits["login"]
    before = audit_rows(engine)
    with proxied_client(engine) as client:
        page = client.get("/review/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

        def attempt(address: str) -> int:
            return client.post(
                "/review/login",
                data={"name": "wang", "password": "wrong password!", "csrf": csrf},
                headers={"X-Forwarded-For": address},
            ).status_code

        statuses = [attempt(f"2001:db8:7:7::{i + 1:x}") for i in range(30)]
        elsewhere = attempt("2001:db8:7:8::1")  # another /64: another subscriber
    assert statuses[:allowed] == [401] * 5 + [423] * (allowed - 5)
    assert statuses[allowed:] == [429] * (30 - allowed)
    assert elsewhere == 401
    # five wrong passwords, the first refusal, the other /64's wrong password: nothing more
    assert audit_rows(engine) - before == 7
    assert audit.verify(engine) == (True, None)


def test_new_addresses_in_one_ipv6_64_share_the_status_lookup_limit(engine):
    allowed, _window = request_config.load_config().limits["status"]
    with proxied_client(engine) as client:

        def lookup(address: str) -> int:
            return client.get(
                "/api/v1/requests/YX20261129-000001",
                headers={"X-Forwarded-For": address, "X-Access-Code": "ABCD-EFGH-JK"},
            ).status_code

        statuses = [lookup(f"2001:db8:9:9::{i + 1:x}") for i in range(allowed + 3)]
        elsewhere = lookup("2001:db8:9:a::1")
    assert statuses == [404] * allowed + [429] * 3  # guessing access codes from a whole /64
    assert elsewhere == 404


def _lock_out(engine, name: str, source: str) -> None:
    for _ in range(5):
        assert users.login(engine, name, "wrong password!", source=source).locked_until is None


def _end_of_lock(engine, name: str) -> None:
    """15 minutes later: the lock on the name is over."""
    with engine.begin() as conn:
        conn.execute(
            update(LOGIN_SOURCES)
            .where(LOGIN_SOURCES.c.name == users.login_key(name))
            .values(locked_until=clock.now() - timedelta(seconds=1))
        )


def _refused(engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(LOGIN_SOURCES.c.failures).where(LOGIN_SOURCES.c.name == users.login_key(name))
        ).scalar_one()


def test_attempts_refused_by_a_lock_add_one_entry_and_their_count_when_it_ends(engine):
    users.add_user(engine, "wang", "approver", PASSWORD)
    _lock_out(engine, "wang", STRANGER)
    before = audit_rows(engine)
    for _ in range(20):
        assert users.login(engine, "wang", PASSWORD, source=STRANGER).locked_until
    assert audit_rows(engine) - before == 1  # the first refusal only
    assert _refused(engine, "wang") == 20  # counted while the lock holds
    _end_of_lock(engine, "wang")
    assert users.login(engine, "wang", PASSWORD, source=STRANGER).user.name == "wang"
    actions = [(e["action"], e["after"].get("refused")) for e in login_entries(engine, "wang")]
    assert actions == [
        *[("login.failed", None)] * 5,
        ("login.locked", None),
        ("login.locked_attempts", 20),  # what an operator reads: the name was hammered 20 times
        ("login", None),
    ]
    assert audit.verify(engine) == (True, None)


def test_the_worker_and_a_reset_audit_the_count_of_a_lock_nobody_tries_again(engine):
    users.add_user(engine, "wang", "approver", PASSWORD)
    users.add_user(engine, "li", "reviewer", PASSWORD)
    for name in ("wang", "li", "no-such-user"):
        _lock_out(engine, name, STRANGER)
        for _ in range(3):
            users.login(engine, name, PASSWORD, source=STRANGER)
    # an admin's reset lifts li's lock: its count is audited then
    users.add_user(engine, "li", "reviewer", PASSWORD)
    assert [e["after"].get("refused") for e in login_entries(engine, "li")][-1] == 3
    # the worker's daily pass audits the counts of locks that are over, then forgets the rows
    users.forget_logins(engine, now=clock.now() + timedelta(days=2))
    with engine.connect() as conn:
        ended = conn.execute(
            select(AUDIT.c.target_id, AUDIT.c.after)
            .where(AUDIT.c.action == "login.locked_attempts")
            .order_by(AUDIT.c.n)
        ).all()
        left = conn.execute(select(func.count()).select_from(LOGIN_SOURCES)).scalar_one()
    assert sorted((target, after["refused"]) for target, after in ended) == [
        ("li", 3),
        (users.UNLOCKED_UNKNOWN, 3),
        ("wang", 3),
    ]
    assert left == 0
    written = audit_rows(engine)
    assert users.forget_logins(engine, now=clock.now() + timedelta(days=3)) == 0
    assert audit_rows(engine) == written  # each count once
    assert audit.verify(engine) == (True, None)
