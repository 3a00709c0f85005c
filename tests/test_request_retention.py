"""Retention of applicants' personal data (publishing.request_retention), on SQLite and
PostgreSQL: a request decided longer ago than [retention] personal_data_days loses its contact,
reason, step notes and attachment files while its decision stays and its pages still render;
one decided within the period and an open one are left alone; a second run changes nothing;
the sweep quarantines old orphans (deleted after the quarantine period), deletes old `.part`
files, never touches young or referenced ones, moves a quarantined file back once a row names
it, and refuses to move anything when a database is not the folder's (no row, too many
orphans): a worker on an older copy of the database leaves an open request's files available;
a purged request's history keeps only its decision's reason; the worker runs it daily; the form
states the period; a bad period refuses to load."""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from publishing import audit, clock, request_config, request_retention, review, users, worker
from publishing import requests as rq
from publishing.attachments import QUARANTINE, Upload
from publishing.db import make_engine
from publishing.request_models import ATTACHMENTS, AUDIT, REQUESTS, STEPS
from publishing.request_retention import REMOVED_TEXT
from publishing.settings import get_settings
from tests.requests_support import PDF, PNG, make_client, objection_on_other, submit_request

PASSWORD = "correct horse battery staple"
DAYS = request_config.load_config(request_config.DEFAULT_FILE).personal_data_days
SUPPLEMENT_NOTE = "补充法定代表人身份证，号码 370602198001011234。"
REJECTION = "异议不成立：处罚决定书载明的罚款金额与公示一致。"
ZERO = {
    "requests": 0,
    "attachments": 0,
    "quarantined": 0,
    "restored": 0,
    "quarantine_purged": 0,
    "refused": 0,
    "partial_files": 0,
}


@pytest.fixture
def approver(engine):
    user, _ = users.add_user(engine, "wang", "approver", PASSWORD)
    return user


def _decided_ago(engine, tracking: str, days: int) -> None:
    """Move the request's decision `days` days into the past."""
    with engine.begin() as conn:
        conn.execute(
            update(REQUESTS)
            .where(REQUESTS.c.tracking_no == tracking)
            .values(decided_at=clock.now() - timedelta(days=days))
        )


def _old_objection(engine, cases, approver) -> rq.Receipt:
    """An objection with notes in every kind of step and two files (submission, supplement),
    rejected; its personal data is due for removal once its decision is moved back."""
    sub = rq.Submission(
        type="objection",
        uscc=cases.other_uscc,
        record_ids=[cases.other],
        contact_name="张三",
        mobile="13912345678",
        email="zhangsan@qiye.example.com",
        reason="罚款金额有误，联系人身份证号 370602198001011234。",
        attachments=[Upload("张三身份证.png", io.BytesIO(PNG))],
    )
    receipt = rq.submit(engine, sub)
    tracking = receipt.tracking_no
    review.act(engine, tracking, approver, "accept", "材料齐全，予以受理。")
    review.act(engine, tracking, approver, "more_info", "请补充法定代表人身份证。")
    rq.supplement(
        engine, tracking, receipt.access_code, SUPPLEMENT_NOTE, [Upload("id.png", io.BytesIO(PNG))]
    )
    review.act(engine, tracking, approver, "reject", REJECTION)
    _decided_ago(engine, tracking, DAYS + 1)
    return receipt


def _rows(engine, tracking: str) -> dict[str, list[dict]]:
    with engine.connect() as conn:
        req = (
            conn.execute(select(REQUESTS).where(REQUESTS.c.tracking_no == tracking))
            .mappings()
            .one()
        )
        return {
            "request": [dict(req)],
            "steps": [
                dict(r)
                for r in conn.execute(
                    select(STEPS).where(STEPS.c.request_id == req["id"]).order_by(STEPS.c.id)
                ).mappings()
            ],
            "attachments": [
                dict(r)
                for r in conn.execute(
                    select(ATTACHMENTS)
                    .where(ATTACHMENTS.c.request_id == req["id"])
                    .order_by(ATTACHMENTS.c.id)
                ).mappings()
            ],
        }


def _files() -> set[str]:
    """The files of the attachments folder (its quarantine folder left out)."""
    folder = get_settings().attachments_dir
    return {p.name for p in folder.iterdir() if p.is_file()} if folder.exists() else set()


def _quarantined() -> set[str]:
    folder = get_settings().attachments_dir / QUARANTINE
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def _purges(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.action == "retention.purge"))
        return [dict(r) for r in rows.mappings()]


def _login(client) -> None:
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answer = client.post("/review/login", data={"name": "wang", "password": PASSWORD, "csrf": csrf})
    assert answer.status_code == 303


def _status_page(client, tracking: str, code: str):
    lookup = client.get(f"/requests/{tracking}")
    token = re.search(r'name="form_token" value="([^"]+)"', lookup.text).group(1)
    return client.post(f"/requests/{tracking}", data={"form_token": token, "code": code})


def test_a_request_decided_longer_ago_loses_its_personal_data(engine, cases, approver):
    old = _old_objection(engine, cases, approver)
    recent = submit_request(engine, "repair", cases.repairable, cases.repairable_uscc)
    review.act(engine, recent, approver, "reject", "不符合信用修复条件。")
    _decided_ago(engine, recent, DAYS - 1)
    # open, on the old one's record (its reviewers see the old one among the related requests),
    # and submitted and changed long ago: never touched, however old
    open_ = rq.submit(engine, objection_on_other(cases)).tracking_no
    with engine.begin() as conn:
        conn.execute(
            update(REQUESTS)
            .where(REQUESTS.c.tracking_no == open_)
            .values(
                submitted_at=datetime(2020, 1, 1, tzinfo=UTC),
                updated_at=datetime(2020, 1, 1, tzinfo=UTC),
            )
        )
    untouched = {t: _rows(engine, t) for t in (recent, open_)}
    before = _rows(engine, old.tracking_no)
    old_files = {f["stored_name"] for f in before["attachments"]}
    assert len(old_files) == 2 and old_files <= _files()

    done = request_retention.run(engine)

    assert done == {**ZERO, "requests": 1, "attachments": 2}
    after = _rows(engine, old.tracking_no)
    req = after["request"][0]
    assert (req["contact_name"], req["mobile"], req["email"], req["reason"]) == (
        "",
        "",
        None,
        REMOVED_TEXT,
    )
    # the decision, its dates, the record ids and the status stay
    kept = ("status", "decision", "decision_reason", "decided_at", "record_ids", "tracking_no")
    assert {k: req[k] for k in kept} == {k: before["request"][0][k] for k in kept}
    assert [(s["action"], s["note"]) for s in after["steps"]] == [
        ("submitted", None),
        ("accepted", REMOVED_TEXT),
        ("more_info", REMOVED_TEXT),
        ("supplemented", REMOVED_TEXT),
        ("rejected", REJECTION),
    ]
    assert [(f["file_name"], f["stored_name"]) for f in after["attachments"]] == [
        (REMOVED_TEXT, f"removed-{f['id']}") for f in before["attachments"]
    ]
    assert not old_files & _files()
    assert {t: _rows(engine, t) for t in (recent, open_)} == untouched
    # one audit entry, counts only
    [entry] = _purges(engine)
    assert entry["actor"] == "worker" and entry["after"] == {"personal_data_days": DAYS, **done}
    assert audit.verify(engine) == (True, None)

    # a second run changes nothing: no row, no file, no audit entry
    snapshot = {t: _rows(engine, t) for t in (old.tracking_no, recent, open_)}
    files = _files()
    assert request_retention.run(engine) == ZERO
    assert {t: _rows(engine, t) for t in (old.tracking_no, recent, open_)} == snapshot
    assert _files() == files and len(_purges(engine)) == 1

    with make_client(engine) as client:
        _pages_after_removal(client, old, after["attachments"], open_)


def _pages_after_removal(client, old: rq.Receipt, removed: list[dict], open_: str) -> None:
    # the applicant's status page: the decision stays, the notes say they were removed
    status = _status_page(client, old.tracking_no, old.access_code)
    assert status.status_code == 200 and 'id="request-status"' in status.text
    assert REJECTION in status.text and REMOVED_TEXT in status.text
    assert SUPPLEMENT_NOTE not in status.text
    _login(client)
    page = client.get(f"/review/requests/{old.tracking_no}")
    assert page.status_code == 200, page.text[:500]
    assert "联系人信息已按保存期限删除" in page.text and "附件已按保存期限删除" in page.text
    for text in ("13912345678", "zhangsan@", "370602198001011234", "张三身份证"):
        assert text not in page.text, text
    for f in removed:
        assert f'href="/review/attachments/{f["id"]}"' not in page.text
        assert client.get(f"/review/attachments/{f['id']}").status_code == 404
    # the open request's reviewers see the old one without its applicant's contact
    other = client.get(f"/review/requests/{open_}")
    assert other.status_code == 200
    related = other.text.split('id="related-title"')[1].split("</section>")[0]
    assert old.tracking_no in related and "联系人信息已按保存期限删除" in related
    assert "13912345678" not in related


def _put(folder: Path, name: str, age: timedelta) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(PNG)
    when = time.time() - age.total_seconds()
    os.utime(path, (when, when))
    return name


def test_the_sweep_quarantines_old_orphans_and_deletes_unfinished_uploads(engine, cases):
    folder = get_settings().attachments_dir
    # with no attachment row at all, the folder belongs to another database: nothing is moved
    stray = _put(folder, secrets.token_hex(16) + ".pdf", timedelta(days=3))
    refused = request_retention.run(engine)
    assert "no attachment row" in refused.pop("error")
    assert refused == {**ZERO, "refused": 1} and stray in _files() and not _quarantined()

    submit_request(engine, "objection", cases.other, cases.other_uscc)  # one row, one file
    [referenced] = _files() - {stray}
    os.utime(folder / referenced, (time.time() - 5 * 86400,) * 2)  # old, but its row names it
    day = timedelta(days=1)
    old_orphan = _put(folder, secrets.token_hex(16) + ".jpg", day + timedelta(minutes=5))
    young_orphan = _put(folder, secrets.token_hex(16) + ".png", day - timedelta(minutes=5))
    _put(folder, f".{secrets.token_hex(16)}.pdf.part", day + timedelta(minutes=5))
    young_part = _put(folder, f".{secrets.token_hex(16)}.pdf.part", timedelta(minutes=1))
    not_ours = _put(folder, "README.txt", timedelta(days=30))

    done = request_retention.run(engine)

    assert done == {**ZERO, "quarantined": 2, "partial_files": 1}
    assert _files() == {referenced, young_orphan, young_part, not_ours}
    assert _quarantined() == {stray, old_orphan}
    first, second = _purges(engine)
    assert first["after"] == {"personal_data_days": DAYS, **ZERO, "refused": 1}
    assert second["after"] == {"personal_data_days": DAYS, **done}
    assert request_retention.run(engine) == ZERO and len(_purges(engine)) == 2


def test_a_quarantined_file_is_deleted_only_after_the_quarantine_period(engine, cases):
    folder = get_settings().attachments_dir
    submit_request(engine, "objection", cases.other, cases.other_uscc)  # the folder's database
    orphan = _put(folder, secrets.token_hex(16) + ".png", timedelta(days=2))
    now = clock.now()
    assert request_retention.run(engine, now=now) == {**ZERO, "quarantined": 1}
    assert orphan not in _files() and _quarantined() == {orphan}

    period = request_retention.QUARANTINE_PERIOD
    assert request_retention.run(engine, now=now + period - timedelta(hours=1)) == ZERO
    assert _quarantined() == {orphan}
    later = now + period + timedelta(hours=1)
    assert request_retention.run(engine, now=later) == {**ZERO, "quarantine_purged": 1}
    assert not _quarantined() and orphan not in _files()


@contextmanager
def _copy_of(engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """A copy of the database as it is now: a backup restored elsewhere, a restore drill's."""
    if engine.url.get_backend_name() == "sqlite":
        path = tmp_path / "older.db"
        source, target = sqlite3.connect(engine.url.database), sqlite3.connect(path)
        with closing(source), closing(target):
            source.backup(target)
        copy = make_engine(f"sqlite:///{path}")
        yield copy
        copy.dispose()
        return
    source, name = engine.url.database, f"{engine.url.database}_older"
    engine.dispose()  # a template database must have no other session
    admin = make_engine(engine.url.set(database="postgres").render_as_string(False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    copy = make_engine(engine.url.set(database=name).render_as_string(False))
    try:
        yield copy
    finally:
        copy.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _stored_names(engine: Engine, tracking: str) -> set[str]:
    return {f["stored_name"] for f in _rows(engine, tracking)["attachments"]}


def test_a_worker_on_an_older_copy_of_the_database_keeps_an_open_requests_files(
    engine, cases, approver, tmp_path
):
    """The review's repro: database B is a copy of A from before an open request; a worker on
    B with A's data folder must not delete that request's files, and A's worker brings them
    back to where the review page finds them."""
    folder = get_settings().attachments_dir
    earlier = submit_request(engine, "repair", cases.repairable, cases.repairable_uscc)
    with _copy_of(engine, tmp_path) as older:
        evidence = [Upload("处罚决定书.png", io.BytesIO(PNG)), Upload("x.pdf", io.BytesIO(PDF))]
        open_ = rq.submit(engine, objection_on_other(cases, attachments=evidence)).tracking_no
        rq_files = _stored_names(engine, open_)
        assert rq_files and rq_files <= _files()
        for name in _files():  # all older than the sweep's minimum age
            os.utime(folder / name, (time.time() - 2 * 86400,) * 2)

        on_b = request_retention.run(older)  # DISCLOSURE_DATA_DIR still A's

        assert on_b == {**ZERO, "quarantined": len(rq_files)}
        assert _quarantined() == rq_files
        assert _stored_names(engine, earlier) <= _files()

    assert request_retention.run(engine) == {**ZERO, "restored": len(rq_files)}
    assert rq_files <= _files() and not _quarantined()
    with make_client(engine) as client:
        _login(client)
        page = client.get(f"/review/requests/{open_}")
        ids = [f["id"] for f in _rows(engine, open_)["attachments"]]
        for id_ in ids:
            assert f'href="/review/attachments/{id_}"' in page.text
            assert client.get(f"/review/attachments/{id_}").status_code == 200
    # A's next run: nothing more to do
    assert request_retention.run(engine) == ZERO


def test_many_unreferenced_files_are_refused_and_nothing_moves(engine, cases, caplog):
    folder = get_settings().attachments_dir
    submit_request(engine, "objection", cases.other, cases.other_uscc)  # one row, one file
    many = request_retention.REFUSE_MIN_FILES + 1
    orphans = [_put(folder, secrets.token_hex(16) + ".png", timedelta(days=2)) for _ in range(many)]
    long_held = _put(folder / QUARANTINE, secrets.token_hex(16) + ".pdf", timedelta(days=90))
    files = _files()

    with caplog.at_level(logging.ERROR, logger="publishing.request_retention"):
        done = request_retention.run(engine)

    error = done.pop("error")
    assert done == {**ZERO, "refused": many}
    assert f"{many} of the {many + 1} stored files" in error and "another database" in error
    assert any(r.levelno == logging.ERROR and error in r.getMessage() for r in caplog.records)
    # nothing moved, nothing deleted from the quarantine either
    assert _files() == files and _quarantined() == {long_held}
    [entry] = _purges(engine)
    assert entry["after"] == {"personal_data_days": DAYS, **done}

    # one orphan fewer: at the limit, a folder of orphans after all
    (folder / orphans.pop()).unlink()
    done = request_retention.run(engine)
    assert done == {**ZERO, "quarantined": many - 1, "quarantine_purged": 1}
    assert _quarantined() == set(orphans)


def _history_of(client, tracking: str) -> str:
    page = client.get(f"/review/requests/{tracking}")
    assert page.status_code == 200
    return page.text.split('id="history-title"', 1)[1]


def test_a_purged_requests_history_keeps_only_the_decisions_reason(engine, cases, approver):
    receipt = _old_objection(engine, cases, approver)
    with make_client(engine) as client:
        _login(client)
        history = _history_of(client, receipt.tracking_no)
        assert "请补充法定代表人身份证" in history and REJECTION in history
        request_retention.run(engine)
        history = _history_of(client, receipt.tracking_no)
    assert "请补充法定代表人身份证" not in history  # the more_info step's reason
    assert REJECTION in history  # the decision's stays (it stays on the request too)


def test_the_worker_runs_it_daily(engine, cases, approver):
    [job] = [j for j in worker.default_jobs() if j.name == "retention"]
    assert job.daily_at is not None and job.every is None
    old = _old_objection(engine, cases, approver)
    morning = datetime.combine(clock.today(), job.daily_at, clock.BEIJING) + timedelta(hours=1)
    done = worker.run_due(engine, [job], now=morning)
    assert done == {"retention": {**ZERO, "requests": 1, "attachments": 2}}
    assert _rows(engine, old.tracking_no)["request"][0]["reason"] == REMOVED_TEXT
    # done for the day
    assert worker.run_due(engine, [job], now=morning + timedelta(hours=2)) == {}


def _requests_file(tmp_path: Path, retention: str | None) -> Path:
    source = request_config.DEFAULT_FILE.read_text(encoding="utf-8")
    edited = re.sub(r"personal_data_days = \d+", retention or "", source)
    if retention is None:
        edited = edited.replace("[retention]", "")
    path = tmp_path / "requests.toml"
    path.write_text(edited, encoding="utf-8")
    return path


def test_the_form_states_the_period_from_the_settings(engine, cases, tmp_path, monkeypatch):
    path = _requests_file(tmp_path, "personal_data_days = 730")
    monkeypatch.setenv("DISCLOSURE_REQUESTS_FILE", str(path))
    get_settings.cache_clear()
    request_config.load_config.cache_clear()
    try:
        with make_client(engine) as client:
            page = client.get(f"/requests/new?uscc={cases.other_uscc}")
    finally:
        request_config.load_config.cache_clear()
    assert page.status_code == 200
    assert "决定作出后保存 730 天，期满删除联系人信息、申请理由和附件" in page.text
    assert "办理异议/信用修复申请及联系申请人" in page.text
    field = re.search(r'<input[^>]*id="f-contact_name"[^>]*>', page.text).group(0)
    assert "h-personal" in re.search(r'aria-describedby="([^"]*)"', field).group(1).split()


@pytest.mark.parametrize("value", ["0", "-30", '"1095"', "1.5", "true"])
def test_a_bad_retention_period_refuses_to_load(tmp_path, value):
    path = _requests_file(tmp_path, f"personal_data_days = {value}")
    with pytest.raises(request_config.RequestConfigError, match="personal_data_days"):
        request_config.load_config(path)


def test_a_file_edited_before_the_retention_period_existed_still_loads(tmp_path):
    config = request_config.load_config(_requests_file(tmp_path, None))
    assert config.personal_data_days == request_config.DEFAULT_PERSONAL_DATA_DAYS


def test_the_unprunable_audit_log_holds_no_name_and_no_free_text(engine, cases, approver):
    """The request row is pruned after the period; the audit log never is: its submit and
    supplement entries carry neither the contact's name nor the note, and the reviewer still
    reads the note (from its step) until the period ends."""
    receipt = _old_objection(engine, cases, approver)
    with engine.connect() as conn:
        entries = audit.for_target(conn, "request", receipt.tracking_no)
    logged = repr([(e["before"], e["after"]) for e in entries])
    assert "张三" not in logged and "370602198001011234" not in logged
    assert SUPPLEMENT_NOTE not in logged
    [supplement] = [e for e in entries if e["action"] == "request.supplement"]
    assert supplement["after"]["note_chars"] == len(SUPPLEMENT_NOTE)

    with make_client(engine) as client:
        client.follow_redirects = False
        _login(client)
        page = client.get(f"/review/requests/{receipt.tracking_no}").text
        history = page.split('id="history-title"', 1)[1]
        assert "身份证，号码" in history  # the step's note, shown with its entry
        request_retention.run(engine)
        history = client.get(f"/review/requests/{receipt.tracking_no}").text.split(
            'id="history-title"', 1)[1]
        assert "身份证，号码" not in history
