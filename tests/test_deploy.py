"""deploy/: backup and restore (PostgreSQL + attachments + a Meilisearch dump; restore rebuilds
search from the database), backups with a base64 password and without the attachments folder,
the compose file (networks, the backup service), what the image holds (no secrets), and the
systemd units (parse; the data and backup folders they need)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import shutil
import stat
import subprocess
import uuid
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select, text

from publishing import requests as rq
from publishing.attachments import Upload
from publishing.db import make_engine, upgrade
from publishing.models import ChangeEvent, Entity, Record
from publishing.publish import publish
from publishing.search.base import SearchQuery
from publishing.search.meili import MeiliSearch
from publishing.search.sync import reindex
from publishing.settings import SECRET_FILE, get_settings
from publishing.users import add_user
from tests.conftest import PG_ADMIN_URL, _worker
from tests.factories import credit_mark_row, penalty_row, write_csv
from tests.fake_meili import FakeMeilisearch
from tests.requests_support import PDF, objection_on_other, publish_cases

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


def _with_password(url: str, password: str) -> str:
    return re.sub(r"://([^:@/]+)(?::[^@]*)?@", lambda m: f"://{m[1]}:{password}@", url, count=1)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_backup_takes_a_base64_password_and_finds_the_attachments_or_fails(
    backend, tmp_path, monkeypatch
):
    """A password from `openssl rand -base64` (`/`, `+`, `=`) as the portal takes it (libpq read
    `/` as the end of the host; the server here trusts local connections, so what is checked is
    that the URL reaches it whole). The attachments folder missing while the database lists
    attachments is a wrong DISCLOSURE_DATA_DIR (a unit without it: ./var): the backup fails
    instead of leaving them out; before the first attachment there is nothing to miss."""
    name = f"disclosure_backup_c_{_worker()}"
    url = _db(name)
    engine = make_engine(url)
    data = tmp_path / "data"
    monkeypatch.setenv("DISCLOSURE_DATA_DIR", str(data))
    get_settings.cache_clear()
    env = {
        "DISCLOSURE_DATABASE_URL": _with_password(url, "Zx/9+k=q/w"),
        "DISCLOSURE_DATA_DIR": str(data),
    }
    try:
        upgrade(engine)
        first = _run("backup.sh", str(tmp_path / "b1"), env=env)
        assert first.returncode == 0, first.stderr
        assert "no attachments yet" in first.stderr
        assert "attachments.tar.gz" not in os.listdir(first.stdout.strip().splitlines()[-1])

        cases = publish_cases(engine, tmp_path)
        rq.submit(
            engine,
            objection_on_other(cases, attachments=[Upload("决定书.pdf", io.BytesIO(PDF))]),
        )
        wrong = _run(
            "backup.sh", str(tmp_path / "b2"), env={**env, "DISCLOSURE_DATA_DIR": "var-missing"}
        )
        assert wrong.returncode == 1 and "DISCLOSURE_DATA_DIR" in wrong.stderr
        assert not (tmp_path / "b2").exists()  # nothing half made

        done = _run("backup.sh", str(tmp_path / "b3"), env=env)
        assert done.returncode == 0, done.stderr
        backup = Path(done.stdout.strip().splitlines()[-1])
        assert "attachments.tar.gz" in os.listdir(backup)
        assert "database postgresql://***@" in (backup / "MANIFEST").read_text()
    finally:
        engine.dispose()
        _drop(name)
        get_settings.cache_clear()


def _backup_with_the_kept_key(tmp_path: Path, url: str, data: Path) -> tuple[Path, bytes]:
    """A backup of a database whose audit log is keyed with DATA_DIR/secret.key (the secret
    key unset), with an attachment; the backup folder and the key."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        add_user(engine, "reviewer1", "reviewer", "correct horse battery staple")  # audited
    finally:
        engine.dispose()
    (data / "attachments" / "2026").mkdir(parents=True)
    (data / "attachments" / "2026" / "evidence.pdf").write_bytes(b"%PDF-1.7 evidence")
    done = _run(
        "backup.sh",
        str(tmp_path / "backups"),
        env={"DISCLOSURE_DATABASE_URL": url, "DISCLOSURE_DATA_DIR": str(data)},
    )
    assert done.returncode == 0, done.stderr
    assert "DISCLOSURE_SECRET_KEY" in done.stderr  # the warning: better in the environment
    return Path(done.stdout.strip().splitlines()[-1]), (data / SECRET_FILE).read_bytes()


@pytest.fixture
def kept_key(tmp_path, monkeypatch):
    """Two databases (backed up, restored into) and a data folder whose secret.key keys the
    audit log: DISCLOSURE_SECRET_KEY and DISCLOSURE_AUDIT_KEY unset."""
    for name in ("DISCLOSURE_SECRET_KEY", "DISCLOSURE_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data-a"
    monkeypatch.setenv("DISCLOSURE_DATA_DIR", str(data))
    get_settings.cache_clear()
    names = f"disclosure_key_a_{_worker()}", f"disclosure_key_b_{_worker()}"
    urls = [_db(n) for n in names]
    try:
        backup, key = _backup_with_the_kept_key(tmp_path, urls[0], data)
        yield backup, key, urls[1], data
    finally:
        for n in names:
            _drop(n)
        get_settings.cache_clear()


def _restore_env(url: str, data: Path) -> dict:
    return {
        "DISCLOSURE_DATABASE_URL": url,
        "DISCLOSURE_DATA_DIR": str(data),
        "DISCLOSURE_BIN": str(ROOT / ".venv" / "bin" / "disclosure"),
    }


@pytest.mark.parametrize("backend", ["postgresql"])
def test_the_key_in_the_data_folder_comes_back_with_the_backup(backend, kept_key, tmp_path):
    """Without it the restored audit log never verifies again ("第 1 条起哈希链不再成立") and
    sessions and access codes signed with it fail: the backup holds it (mode 600, in the
    MANIFEST), the restore puts it back into a data folder that has none."""
    backup, key, url, data = kept_key
    saved = backup / SECRET_FILE
    assert saved.read_bytes() == key and stat.S_IMODE(saved.stat().st_mode) == 0o600
    manifest = (backup / "MANIFEST").read_text()
    assert f"file {SECRET_FILE} {len(key)} {hashlib.sha256(key).hexdigest()}" in manifest

    shutil.rmtree(data)  # lost with the database
    fresh = tmp_path / "data-new"
    env = _restore_env(url, fresh)
    done = _run("restore.sh", str(backup), "--yes", "--no-reindex", env=env)
    assert done.returncode == 0, done.stderr
    restored = fresh / SECRET_FILE
    assert restored.read_bytes() == key and stat.S_IMODE(restored.stat().st_mode) == 0o600
    verify = subprocess.run(
        [env["DISCLOSURE_BIN"], "audit", "verify"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "after-restore" in _audit_actors(url)  # its entries keyed with the restored key

    again = _run("restore.sh", str(backup), "--yes", "--no-reindex", env=env)
    assert again.returncode == 0 and "secret.key already in place" in again.stderr


def _audit_actors(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT DISTINCT actor FROM audit_log")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_restore_refuses_a_data_folder_holding_another_key(backend, kept_key, tmp_path):
    """The key there may sign what the backup's does not: the operator decides, and nothing
    is replaced meanwhile (neither the database nor the data folder)."""
    backup, key, url, _ = kept_key
    other = tmp_path / "data-other"
    other.mkdir()
    (other / SECRET_FILE).write_text(secrets.token_urlsafe(48))
    before = (other / SECRET_FILE).read_bytes()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE still_here (n int)"))
        refused = _run("restore.sh", str(backup), "--yes", "--no-reindex", env=_restore_env(url, other))
        assert refused.returncode == 1 and "secret.key differs" in refused.stderr
        assert "Nothing was restored" in refused.stderr and "pg_restore" not in refused.stderr
        assert (other / SECRET_FILE).read_bytes() == before != key
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM still_here")).scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_restore_moves_the_attachments_there_aside(backend, kept_key, tmp_path):
    """A data folder that survived holds the files uploaded after the backup: the only trace of
    the requests the restore loses. They are moved aside, not deleted."""
    backup, key, url, data = kept_key
    (data / "attachments" / "2026" / "late.pdf").write_bytes(b"%PDF-1.7 uploaded later")
    done = _run("restore.sh", str(backup), "--yes", "--no-reindex", env=_restore_env(url, data))
    assert done.returncode == 0, done.stderr
    [aside] = data.glob("attachments.before-restore-*")
    assert (aside / "2026" / "late.pdf").read_bytes() == b"%PDF-1.7 uploaded later"
    assert str(aside) in done.stderr
    assert [p.name for p in (data / "attachments" / "2026").iterdir()] == ["evidence.pdf"]


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


def test_compose_portals_trust_forwarded_addresses_from_nginx_only():
    """The portals take X-Forwarded-For only from the edge network, where only nginx sends
    them requests ("*" let any client name its own address)."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    subnet = compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    on_edge = {name for name, s in services.items() if "edge" in s.get("networks", [])}
    assert on_edge == {"nginx", "portal1", "portal2"}
    assert services["nginx"]["networks"] == ["edge"]
    for name in ("portal1", "portal2"):
        assert services[name]["environment"]["FORWARDED_ALLOW_IPS"] == subnet
    assert "*" not in subnet


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}`, nested ones included."""
    pattern = re.compile(r"\$\{(\w+)(?::([-?])([^${}]*))?\}")
    while m := pattern.search(value):
        name, op, arg = m.groups()
        got = env.get(name) or ""
        if not got and op == "?":
            raise KeyError(arg)
        value = value[: m.start()] + (got or (arg if op == "-" else "")) + value[m.end() :]
    return value


def test_compose_takes_the_meilisearch_key_and_index_from_env_file():
    """`environment:` wins over `env_file:`: a dedicated Meilisearch key (RUNBOOK §3) or index
    name put in deploy/.env must reach the portals through interpolation, not be pinned."""
    env = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["x-app"]["environment"]
    base = {"POSTGRES_PASSWORD": "pw", "MEILI_MASTER_KEY": "master"}
    assert _interpolate(env["DISCLOSURE_MEILI_KEY"], base) == "master"
    assert _interpolate(env["DISCLOSURE_MEILI_INDEX"], base) == "disclosure"
    own = base | {"DISCLOSURE_MEILI_KEY": "search-key", "DISCLOSURE_MEILI_INDEX": "gs"}
    assert _interpolate(env["DISCLOSURE_MEILI_KEY"], own) == "search-key"
    assert _interpolate(env["DISCLOSURE_MEILI_INDEX"], own) == "gs"


def test_compose_backup_service_runs_the_backup_inside():
    """`docker compose run --rm backup`: the image's backup.sh with the portals' environment,
    on the backend network (PostgreSQL), with the attachments and a backups volume."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    backup = compose["services"]["backup"]
    assert backup["profiles"] == ["backup"] and backup["restart"] == "no"
    assert backup["command"] == ["/opt/disclosure/deploy/backup.sh", "/var/backups/disclosure"]
    assert "appdata:/var/lib/disclosure" in backup["volumes"]
    assert any(v.endswith(":/var/backups/disclosure") for v in backup["volumes"])
    assert "backups" in compose["volumes"]
    assert backup["networks"] == ["backend"] and "postgres" in backup["depends_on"]
    env = backup["environment"]
    assert env["DISCLOSURE_DATABASE_URL"].startswith("postgresql") and env["DISCLOSURE_DATA_DIR"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "COPY deploy/backup.sh deploy/restore.sh deploy/libpq_url.py ./deploy/" in dockerfile
    assert "/var/backups/disclosure" in dockerfile  # owned by the image's user: so is the volume


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its folders decides
    (`**` any folders, `*` and `?` within one name, `!` keeps)."""
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        rx = re.escape(pattern.lstrip("!").strip("/"))
        rx = rx.replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        rx = rx.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        parts = path.split("/")
        if any(re.fullmatch(rx, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            ignored = not keep
    return ignored


def test_the_image_holds_no_secrets():
    """deploy/.env and deploy/tls/ are made next to the Dockerfile (RUNBOOK §2): they stay out
    of the build context, and the image copies only the deploy scripts."""
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    for secret in (
        "deploy/.env",
        ".env",
        "deploy/.env.bak",
        "deploy/tls/privkey.pem",
        "deploy/tls/fullchain.pem",
        "elsewhere/server.key",
        "other/cert.pem",
        "var/secret.key",
    ):
        assert _dockerignored(secret, patterns), secret
    for needed in (
        "deploy/backup.sh",
        "deploy/restore.sh",
        "deploy/libpq_url.py",
        "publishing/db.py",
        "pyproject.toml",
        "templates/base.html",
        "static/site.css",
        "alembic.ini",
    ):
        assert not _dockerignored(needed, patterns), needed
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    sources = [
        src
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for src in line.split()[1:-1]
    ]
    assert [s for s in sources if s.startswith("deploy")] == [
        "deploy/backup.sh",
        "deploy/restore.sh",
        "deploy/libpq_url.py",
    ]
    assert "FORWARDED_ALLOW_IPS=*" not in dockerfile


def test_systemd_units_parse():
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed")
    units = sorted(
        str(p) for p in (DEPLOY / "systemd").iterdir() if p.suffix in (".service", ".timer")
    )
    done = subprocess.run([verify, "verify", *units], capture_output=True, text=True)
    # the programs are not installed here: only complaints about that are acceptable
    problems = [
        line for line in done.stderr.splitlines() if line and "is not executable" not in line
    ]
    assert not problems, problems


def _unit(name: str) -> list[str]:
    return (DEPLOY / "systemd" / name).read_text().splitlines()


def test_systemd_units_have_their_folders():
    """The data folder is /var/lib/disclosure for every unit (the default ./var is
    /opt/disclosure/var, read-only under ProtectSystem=strict) and is made (StateDirectory, and
    tmpfiles for the CLI before any unit ran); the backups folder exists before the backup unit
    makes it writable (ReadWritePaths= of a missing folder fails the unit)."""
    for name in (
        "disclosure-portal@.service",
        "disclosure-worker.service",
        "disclosure-backup.service",
    ):
        lines = _unit(name)
        assert "Environment=DISCLOSURE_DATA_DIR=/var/lib/disclosure" in lines, name
        assert "WorkingDirectory=/opt/disclosure" in lines, name
    for name in ("disclosure-portal@.service", "disclosure-worker.service"):
        assert "StateDirectory=disclosure" in _unit(name), name
    tmpfiles = [
        line.split()
        for line in (DEPLOY / "systemd" / "disclosure.tmpfiles.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    made = {t[1]: t for t in tmpfiles}
    assert made["/var/lib/disclosure"][0] == made["/var/backups/disclosure"][0] == "d"
    assert made["/var/backups/disclosure"][3:5] == ["disclosure", "disclosure"]
    assert "ReadWritePaths=/var/backups/disclosure" in _unit("disclosure-backup.service")
    env = (DEPLOY / "env.example").read_text().splitlines()
    assert "DISCLOSURE_DATA_DIR=/var/lib/disclosure" in env
    assert any("openssl rand -hex 32" in line for line in env)
    assert not any("rand -base64" in line for line in env)
