"""`disclosure after-restore` on SQLite and PostgreSQL: what a restored backup brings back is
taken away again. Every back-office token, session and login ends until `users enable`; today's
tracking numbers skip COUNTER_GAP past the restored counter, so none issued before the loss is
issued again; partner API keys are listed, not revoked; a second run does no harm."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date

import pytest
from sqlalchemy import delete, select, update

from publishing import after_restore, apikeys, audit, clock, users
from publishing import requests as rq
from publishing.request_codes import TRACKING_MAX, tracking_number, valid_tracking_no
from publishing.request_models import AUDIT, COUNTERS
from tests.requests_support import objection_on_other
from tests.servers import free_port

PASSWORD = "correct horse battery staple"
PROBE = "/api/v1/review/requests/YX20990101-000001/decision"


def login(client, name: str = "wang"):
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/review/login", data={"name": name, "password": PASSWORD, "csrf": csrf})


def token_answer(client, token: str) -> int:
    """401 when the decision API refuses the token; 422 (an invalid decision) when it takes it."""
    headers = {"Authorization": f"Bearer {token}"}
    return client.post(PROBE, json={"decision": "maybe"}, headers=headers).status_code


def counter(engine, day: date | None = None) -> int | None:
    key = (day or clock.beijing_date(clock.now())).strftime("%Y%m%d")
    with engine.connect() as conn:
        return conn.execute(select(COUNTERS.c.n).where(COUNTERS.c.day == key)).scalar()


def restore_counter(engine, n: int | None) -> None:
    """What pg_restore does to today's counter: back to its value in the backup (None: the
    backup was taken before today's first request)."""
    key = clock.beijing_date(clock.now()).strftime("%Y%m%d")
    with engine.begin() as conn:
        if n is None:
            conn.execute(delete(COUNTERS).where(COUNTERS.c.day == key))
        else:
            conn.execute(update(COUNTERS).where(COUNTERS.c.day == key).values(n=n))


def entries_by(engine, actor: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.actor == actor).order_by(AUDIT.c.n))
        return [(r.action, r.target_id) for r in rows]


def test_tokens_sessions_and_logins_end_until_users_enable(engine, client):
    users.add_user(engine, "wang", "approver", PASSWORD)
    users.add_user(engine, "li", "reviewer", PASSWORD)
    users.disable_user(engine, "li")  # disabled in the backup already
    token = users.new_token(engine, "wang")
    assert login(client).status_code == 303 and client.get("/review").status_code == 200
    assert token_answer(client, token) == 422

    report = after_restore.run(engine)

    assert [(a.name, a.role, a.was_active) for a in report.accounts] == [
        ("li", "reviewer", False),
        ("wang", "approver", True),
    ]
    assert token_answer(client, token) == 401
    session = client.get("/review")
    assert session.status_code == 303 and session.headers["location"] == "/review/login"
    assert login(client).status_code == 401
    with pytest.raises(users.UserError, match="已停用"):
        users.new_token(engine, "wang")
    users.enable_user(engine, "wang")  # the operator's choice, by name
    assert login(client).status_code == 303 and client.get("/review").status_code == 200
    assert token_answer(client, token) == 401  # the old token never comes back
    assert token_answer(client, users.new_token(engine, "wang")) == 422
    assert users.login(engine, "li", PASSWORD, source="127.0.0.1").user is None  # not enabled
    day = clock.beijing_date(clock.now()).strftime("%Y%m%d")
    assert entries_by(engine, "after-restore") == [
        ("user.disable", "li"),
        ("user.disable", "wang"),
        ("request_counter.skip", day),
    ]
    assert audit.verify(engine) == (True, None)


def test_no_tracking_number_is_issued_twice(engine, cases):
    def submit() -> str:
        return rq.submit(engine, objection_on_other(cases)).tracking_no

    issued = [submit() for _ in range(3)]  # 000001 … 000003
    backed_up = 1  # the backup was taken after the first
    restore_counter(engine, backed_up)

    report = after_restore.run(engine)

    assert (report.counter.before, report.counter.after) == (1, 1 + after_restore.COUNTER_GAP)
    following = [submit() for _ in range(2)]
    numbers = [int(t.rsplit("-", 1)[1]) for t in following]
    assert all(n >= backed_up + after_restore.COUNTER_GAP for n in numbers)
    assert not set(following) & set(issued)
    assert all(valid_tracking_no(t) for t in following)


def test_the_counter_is_made_when_the_backup_had_none_today(engine, cases):
    issued = rq.submit(engine, objection_on_other(cases)).tracking_no
    restore_counter(engine, None)
    report = after_restore.run(engine)
    assert (report.counter.before, report.counter.after) == (0, after_restore.COUNTER_GAP)
    after = rq.submit(engine, objection_on_other(cases)).tracking_no
    assert after != issued and int(after[-6:]) == after_restore.COUNTER_GAP + 1


def test_the_gap_fits_the_tracking_number_and_a_full_counter_stays(engine):
    day = date(2026, 11, 29)
    assert valid_tracking_no(tracking_number(day, TRACKING_MAX))
    assert not valid_tracking_no(tracking_number(day, TRACKING_MAX + 1))
    users.add_user(engine, "wang", "approver", PASSWORD)
    nearly_full = TRACKING_MAX - 2 * after_restore.COUNTER_GAP + 1
    with engine.begin() as conn:
        key = clock.beijing_date(clock.now()).strftime("%Y%m%d")
        conn.execute(COUNTERS.insert().values(day=key, n=nearly_full))
    report = after_restore.run(engine)
    assert report.counter is None and "剩余编号不足" in report.counter_error
    assert counter(engine) == nearly_full  # not moved past what the format holds
    assert [a.name for a in report.accounts] == ["wang"]  # the accounts are disabled all the same
    assert users.login(engine, "wang", PASSWORD, source="127.0.0.1").user is None


def test_cli_twice_lists_accounts_and_keys_and_leaves_keys_alone(engine, database_url, tmp_path):
    env = {
        **os.environ,
        "DISCLOSURE_DATABASE_URL": database_url,
        "DISCLOSURE_DATA_DIR": str(tmp_path / "var"),
    }
    users.add_user(engine, "wang", "approver", PASSWORD)
    users.add_user(engine, "zhao$1", "reviewer", PASSWORD)
    key = apikeys.create_key(engine, "市大数据局")

    def cli():
        return subprocess.run(
            [sys.executable, "-m", "portal.cli", "after-restore"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first, second = cli(), cli()
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    out = first.stdout
    assert "wang\tapprover\t备份中有效\tdisclosure users enable wang" in out
    assert "disclosure users enable 'zhao$1'" in out  # a command to paste as it is
    assert f"市大数据局\t1 个\t密钥 {key[:10]}…" in out and "重新吊销" in out
    assert f"跳过 {after_restore.COUNTER_GAP} 个" in out and "小结" in out
    assert apikeys.lookup(engine, key) is not None  # partners' keys keep working
    assert counter(engine) == 2 * after_restore.COUNTER_GAP  # each run skips ahead again
    assert "备份中已停用" in second.stdout  # the second run finds them disabled by the first
    assert audit.verify(engine) == (True, None)


def test_cli_without_a_database_exits_3(backend, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'missing.db'}"
        if backend == "sqlite"
        else f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    )
    env = {**os.environ, "DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "portal.cli", "after-restore"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert "未做恢复后处置" in result.stderr
    assert not (tmp_path / "missing.db").exists()
