"""deploy/: backup and restore (PostgreSQL + attachments + a Meilisearch dump; restore rebuilds
search from the database), the compose file and the systemd units parse."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text

from publishing.db import make_engine, upgrade
from publishing.models import ChangeEvent, Entity, Record
from publishing.publish import publish
from publishing.search.base import SearchQuery
from publishing.search.meili import MeiliSearch
from publishing.search.sync import reindex
from publishing.users import add_user
from tests.conftest import PG_ADMIN_URL, _worker
from tests.factories import credit_mark_row, penalty_row, write_csv
from tests.fake_meili import FakeMeilisearch

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
KEY = "backup-test-key"


def _db(name: str) -> str:
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop(name: str) -> None:
    admin = make_engine(PG_ADMIN_URL)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _counts(engine) -> dict:
    with engine.connect() as conn:
        return {
            t.__tablename__: conn.execute(select(func.count()).select_from(t.__table__)).scalar()
            for t in (Entity, Record, ChangeEvent)
        } | {
            "seq": conn.execute(select(func.max(ChangeEvent.__table__.c.seq))).scalar(),
            "users": conn.execute(text("SELECT count(*) FROM users")).scalar(),
            "records": sorted(
                tuple(r)
                for r in conn.execute(
                    select(Record.__table__.c.id, Record.__table__.c.content_hash)
                )
            ),
        }


@pytest.fixture(params=["postgresql"])
def fake():
    server = FakeMeilisearch(master_key=KEY).start()
    yield server
    server.stop()


def _run(script: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DEPLOY / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_backup_then_restore_into_an_empty_database(fake, tmp_path):
    a_name, b_name = f"disclosure_backup_a_{_worker()}", f"disclosure_backup_b_{_worker()}"
    a_url, b_url = _db(a_name), _db(b_name)
    a, b = make_engine(a_url), make_engine(b_url)
    try:
        upgrade(a)
        for name, rows in (
            ("p.csv", [penalty_row(i) for i in range(1, 6)]),
            ("m.csv", [credit_mark_row(i, 分类结果="C") for i in range(3, 9)]),
        ):
            assert publish(
                [write_csv(tmp_path / name, rows)],
                engine=a,
                today=date(2026, 11, 27),
                show_progress=False,
            ).published
        add_user(a, "reviewer1", "reviewer", "correct horse battery staple")
        data_a = tmp_path / "data-a"
        (data_a / "attachments" / "2026").mkdir(parents=True)
        (data_a / "attachments" / "2026" / "evidence.pdf").write_bytes(b"%PDF-1.7 evidence")
        index = f"bk_{uuid.uuid4().hex[:8]}"
        live = MeiliSearch(fake.url, KEY, index)
        docs = reindex(a, live)

        env = {
            "DISCLOSURE_DATABASE_URL": a_url,
            "DISCLOSURE_DATA_DIR": str(data_a),
            "DISCLOSURE_MEILI_URL": fake.url,
            "DISCLOSURE_MEILI_KEY": KEY,
        }
        done = _run("backup.sh", str(tmp_path / "backups"), env=env)
        assert done.returncode == 0, done.stderr
        backup = Path(done.stdout.strip().splitlines()[-1])
        assert {p.name for p in backup.iterdir()} == {
            "disclosure.pgdump",
            "attachments.tar.gz",
            "meilisearch.json",
            "MANIFEST",
        }
        manifest = (backup / "MANIFEST").read_text()
        assert (
            f"change_seq {_counts(a)['seq']}" in manifest and "file disclosure.pgdump" in manifest
        )
        assert '"status": "succeeded"' in (backup / "meilisearch.json").read_text().replace(
            '":"', '": "'
        )
        assert fake.dumps == 1

        # restore asks first, and checks the files against the manifest
        data_b = tmp_path / "data-b"
        env_b = {
            "DISCLOSURE_DATABASE_URL": b_url,
            "DISCLOSURE_DATA_DIR": str(data_b),
            "DISCLOSURE_MEILI_URL": fake.url,
            "DISCLOSURE_MEILI_KEY": KEY,
            "DISCLOSURE_MEILI_INDEX": f"{index}_restored",
            "DISCLOSURE_BIN": str(ROOT / ".venv" / "bin" / "disclosure"),
        }
        assert _run("restore.sh", str(backup), env=env_b).returncode == 2
        tampered = tmp_path / "tampered"
        shutil.copytree(backup, tampered)
        with open(tampered / "attachments.tar.gz", "ab") as fh:
            fh.write(b"x")
        bad = _run("restore.sh", str(tampered), "--yes", env=env_b)
        assert bad.returncode == 1 and "checksum" in bad.stderr

        done = _run("restore.sh", str(backup), "--yes", env=env_b)
        assert done.returncode == 0, done.stderr
        assert _counts(b) == _counts(a)
        restored = data_b / "attachments" / "2026" / "evidence.pdf"
        assert restored.read_bytes() == b"%PDF-1.7 evidence"
        # search was rebuilt from the restored database, into the configured index
        again = MeiliSearch(fake.url, KEY, f"{index}_restored")
        assert again.count() == docs
        assert again.search(SearchQuery(q="测试")).total == live.search(SearchQuery(q="测试")).total
        assert again.reconcile(b).ok
    finally:
        a.dispose()
        b.dispose()
        _drop(a_name)
        _drop(b_name)


def test_backup_refuses_sqlite(tmp_path):
    done = _run("backup.sh", str(tmp_path), env={"DISCLOSURE_DATABASE_URL": "sqlite:///x.db"})
    assert done.returncode == 2


def test_compose_file_is_complete():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "meilisearch", "redis", "portal1", "portal2", "worker", "nginx"} <= set(
        services
    )
    assert services["meilisearch"]["image"].startswith("getmeili/meilisearch:v1.")
    assert services["postgres"]["image"].startswith("postgres:15")
    for name in ("portal1", "portal2"):
        assert services[name]["command"][:2] == ["disclosure", "serve"]
    assert services["worker"]["command"][:2] == ["disclosure", "worker"]
    ports = {name for name, s in services.items() if s.get("ports")}
    assert ports == {"nginx"}  # nothing else is reachable from outside


def test_systemd_units_parse():
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed")
    units = sorted(str(p) for p in (DEPLOY / "systemd").iterdir())
    done = subprocess.run([verify, "verify", *units], capture_output=True, text=True)
    # the programs are not installed here: only complaints about that are acceptable
    problems = [
        line for line in done.stderr.splitlines() if line and "is not executable" not in line
    ]
    assert not problems, problems
