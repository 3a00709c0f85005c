"""Revoking partners' API keys: a revocation reaches every portal process within a second (each
caches keys but checks the keys' generation in the database), and `apikeys revoke NAME --prefix P`
revokes one key of a holder, refusing a prefix that is too short or names more than one key.
On SQLite and PostgreSQL, through the real CLI verbs and real portal apps."""

from __future__ import annotations

import secrets
import time

from litestar.testing import TestClient
from sqlalchemy import update

from portal.app import create_app
from portal.cli import build_parser
from portal.ratelimit import GENERATION_SECONDS
from publishing import apikeys, audit
from tests.api_helpers import GENEROUS

HOLDER = "烟台日报社"
KEYED_LIMIT = str(GENEROUS.api.requests * GENEROUS.key_factor)


def run_cli(*argv: str) -> int:
    """A `disclosure` verb as the console script runs it (parser and verb), in this process."""
    args = build_parser().parse_args(list(argv))
    return args.func(args)


def _portal(engine) -> TestClient:
    app = create_app(engine)  # a process of its own: its own key cache, no shared memory
    app.state.rate_limits = GENEROUS
    return TestClient(app)


def _changes(client: TestClient, key: str):
    return client.get("/api/v1/changes", headers={"X-API-Key": key})


def test_a_revoked_key_is_refused_by_every_process_within_a_second(engine):
    key = apikeys.create_key(engine, HOLDER)
    with _portal(engine) as one, _portal(engine) as two:
        for client in (one, two, one, two):  # known, then served from each process's cache
            answer = _changes(client, key)
            assert answer.status_code == 200
            assert answer.headers["ratelimit-limit"] == KEYED_LIMIT  # the key's limit applies

        assert run_cli("apikeys", "revoke", HOLDER) == 0
        time.sleep(GENERATION_SECONDS + 0.05)

        for client in (one, two):
            refused = _changes(client, key)
            assert refused.status_code == 401, refused.text
            assert "X-API-Key 无效或已停用" in refused.json()["detail"]
        assert _changes(one, "").status_code == 200  # keyless requests are unaffected


def _key_starting(monkeypatch, engine, start: str, per_minute: int | None = None) -> str:
    """A real key (create_key) whose random part begins with `start`."""
    real = secrets.token_urlsafe
    with monkeypatch.context() as m:
        m.setattr(secrets, "token_urlsafe", lambda n: start + real(n)[len(start) :])
        return apikeys.create_key(engine, HOLDER, per_minute)


def test_revoke_one_key_by_its_prefix(engine, monkeypatch, capsys):
    leaked = _key_starting(monkeypatch, engine, "abcdE")
    twin = _key_starting(monkeypatch, engine, "abcdX")  # shares "dk_abcd" with `leaked`
    kept = apikeys.create_key(engine, HOLDER, per_minute=600)
    elsewhere = apikeys.create_key(engine, "烟台市发展和改革委员会")

    assert run_cli("apikeys", "list") == 0
    listed = capsys.readouterr().out
    for key in (leaked, twin, kept):
        assert f"{key[: apikeys.HINT_LENGTH]}…" in listed
    assert f"{HOLDER}\t3 个" in listed

    assert run_cli("apikeys", "revoke", HOLDER, "--prefix", leaked[:6]) == 2
    assert "至少写 7 个字符" in capsys.readouterr().err
    assert run_cli("apikeys", "revoke", HOLDER, "--prefix", "dk_abcd") == 2
    ambiguous = capsys.readouterr().err
    assert "2 个密钥" in ambiguous and leaked[:10] in ambiguous and twin[:10] in ambiguous
    assert run_cli("apikeys", "revoke", HOLDER, "--prefix", elsewhere[:10]) == 1  # not theirs
    assert "没有以" in capsys.readouterr().err
    assert all(apikeys.lookup(engine, k) for k in (leaked, twin, kept, elsewhere))

    # as `apikeys list` shows it, ellipsis and all
    assert run_cli("apikeys", "revoke", HOLDER, "--prefix", f"{leaked[:10]}…") == 0
    assert leaked[:10] in capsys.readouterr().out
    assert apikeys.lookup(engine, leaked) is None
    assert all(apikeys.lookup(engine, k) for k in (twin, kept, elsewhere))
    assert run_cli("apikeys", "revoke", HOLDER, "--prefix", "dk_abcd") == 0  # no longer ambiguous
    assert apikeys.lookup(engine, twin) is None and apikeys.lookup(engine, kept) is not None

    with engine.connect() as conn:
        entries = audit.for_target(conn, "apikey", HOLDER)
    revoked = [e["after"]["hints"] for e in entries if e["action"] == "apikey.revoke"]
    assert revoked == [[leaked[:10]], [twin[:10]]]
    assert leaked not in str(entries)  # only hints of keys are kept


def test_a_key_made_before_hints_were_kept_is_revoked_by_the_whole_key(engine, capsys):
    old = apikeys.create_key(engine, HOLDER)
    new = apikeys.create_key(engine, HOLDER)
    with engine.begin() as conn:  # as migration 0007 left the keys made before it
        conn.execute(
            update(apikeys.API_KEYS)
            .where(apikeys.API_KEYS.c.key_hash == apikeys.hash_key(old))
            .values(hint=None)
        )
    run_cli("apikeys", "list")
    assert "早期密钥，未记前缀" in capsys.readouterr().out
    assert run_cli("apikeys", "revoke", HOLDER, "--prefix", old[:10]) == 1  # no hint to match
    assert run_cli("apikeys", "revoke", HOLDER, "--prefix", old) == 0
    assert apikeys.lookup(engine, old) is None and apikeys.lookup(engine, new) is not None


def test_a_key_made_in_the_beijing_evening_is_listed_under_its_beijing_date(
    engine, monkeypatch, capsys
):
    """17:00 UTC is the next day in Beijing; the column keeps UTC wall time whatever the
    database server's time zone (an aware value was stored in the server's own zone)."""
    from datetime import UTC, datetime

    from portal import cli_casework
    from publishing import clock

    with engine.begin() as conn:  # a server session in Beijing time, as a bureau's may be
        if conn.dialect.name == "postgresql":
            name = conn.exec_driver_sql("SELECT current_database()").scalar_one()
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET timezone = \'Asia/Shanghai\'')
    engine.dispose()
    try:
        monkeypatch.setattr(clock, "now", lambda: datetime(2026, 11, 29, 17, 0, tzinfo=UTC))
        apikeys.create_key(engine, HOLDER)
        monkeypatch.setattr(cli_casework, "open_database", lambda: engine)
        capsys.readouterr()
        assert run_cli("apikeys", "list") == 0
        assert "最近生成 2026-11-30" in capsys.readouterr().out
    finally:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                name = conn.exec_driver_sql("SELECT current_database()").scalar_one()
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" RESET timezone')
        engine.dispose()
