"""The distribution as a deployment installs it (a wheel, not an editable checkout): it carries
the templates, static files, data files and migrations, and a portal run from it, outside the
repository, serves its pages."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from the committed files (a copy of the tree: no build/ in the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    src = base / "src"
    for name in filter(None, files):
        path = ROOT / name.decode()
        if path.is_file():
            (src / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            (src / name.decode()).write_bytes(path.read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "out"),
                    str(src)], check=True, capture_output=True)
    return next((base / "out").glob("disclosure-*.whl"))


def test_the_wheel_carries_templates_static_data_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").glob("*.html"):
        assert f"portal/templates/{template.name}" in names
    for asset in (ROOT / "static").iterdir():
        assert f"portal/static/{asset.name}" in names
    for data in (ROOT / "publishing" / "data").iterdir():
        assert f"publishing/data/{data.name}" in names
    for migration in (ROOT / "publishing" / "migrations" / "versions").glob("*.py"):
        assert f"publishing/migrations/versions/{migration.name}" in names
    assert "publishing/migrations/env.py" in names


def test_a_portal_installed_from_the_wheel_serves_pages(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    code = (
        "import portal, publishing.db as db; from litestar.testing import TestClient;"
        "from portal.app import create_app; e = db.get_engine(); db.upgrade(e);"
        "c = TestClient(create_app(e)).__enter__();"
        "print('WHERE', portal.__file__); print('CODES', c.get('/').status_code, c.get('/open-data').status_code,"
        " c.get('/static/site.css').status_code, c.get('/nowhere').status_code)"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "DISCLOSURE_DATA_DIR": str(tmp_path / "var")}
    env.pop("DISCLOSURE_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    # marked lines: the portal's own log lines (text, on stdout) come between them
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines()
                 if line.startswith(("WHERE ", "CODES ")))
    where, codes = lines["WHERE"], lines["CODES"]
    assert where.startswith(str(target))  # the installed copy, not the checkout
    assert codes == "200 200 200 404"
