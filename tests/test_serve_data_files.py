"""`disclosure serve` checks its data files before any portal process starts: a missing or
broken requests.toml or publicity.toml is one line naming the file, exit 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from publishing.request_config import RequestConfigError, load_config


def serve(tmp_path: Path, **files: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISCLOSURE_DATA_DIR": str(tmp_path),
           "DISCLOSURE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", **files}
    # port 1: were the checks to pass, binding it would fail (no test waits on a server)
    return subprocess.run([sys.executable, "-m", "portal.cli", "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("content", [None, "deadlines = [", "[deadlines]\npreliminary_review = 1\n"])
def test_a_missing_or_broken_requests_file_stops_serve_with_one_line(tmp_path, content):
    path = tmp_path / "requests.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    proc = serve(tmp_path, DISCLOSURE_REQUESTS_FILE=str(path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"申请设置文件 {path}" in proc.stderr


def test_a_broken_rules_file_does_not_keep_the_site_from_starting(tmp_path):
    """The bureau edits publicity.toml in place: a bad edit and a restart must not take the
    public site down (the pages that need the rules fail; the worker reports the file)."""
    from tests.servers import free_port

    path = tmp_path / "publicity.toml"
    path.write_text("[penalty\n", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "DISCLOSURE_DATA_DIR": str(tmp_path), "DISCLOSURE_RULES_FILE": str(path),
           "DISCLOSURE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    proc = subprocess.Popen([sys.executable, "-m", "portal.cli", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz/live", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_requests_file_value_of_the_wrong_type_is_named_as_invalid(tmp_path):
    source = Path(__file__).parent.parent / "publishing" / "data" / "requests.toml"
    path = tmp_path / "requests.toml"
    path.write_text(source.read_text(encoding="utf-8").replace(
        "max_files = 5", 'max_files = "five"'), encoding="utf-8")
    with pytest.raises(RequestConfigError, match="值无效"):
        load_config.__wrapped__(path)
    assert load_config.__wrapped__(source).max_files == 5
