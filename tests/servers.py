"""A real portal server for tests and benchmarks: a free port, a readiness wait, a clean stop,
and the headless Chromium of the browser tests (path, options, a Playwright launch).

Why: the browser tests, the two-process test and the bench scripts each carried their own copy
of this code; one copy keeps their start-up and shutdown behaviour the same and fixed in one place.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, driven by Playwright and Lighthouse
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def self_signed_cert(folder: Path) -> None:
    """privkey.pem and fullchain.pem for localhost in a new folder (nginx's TLS, one day)."""
    folder.mkdir(parents=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(folder / "privkey.pem"),
         "-out", str(folder / "fullchain.pem")],
        check=True, capture_output=True,
    )


def free_port() -> int:
    """A localhost TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(
    url: str,
    timeout: float,
    proc: subprocess.Popen | None = None,
    interval: float = 0.1,
) -> None:
    """Return once GET `url` answers 200; RuntimeError when `proc` (the server) exits first or
    `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:  # refused, reset, timed out, or an HTTP error status
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {proc.returncode} at start")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server for {url} did not start within {timeout:g} s")
        time.sleep(interval)


def stop(proc: subprocess.Popen, timeout: float) -> None:
    """Terminate `proc`; kill it if it has not exited after `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def portal_server(
    env: Mapping[str, str],
    *,
    workers: int | None = None,
    access_log: bool = True,
    log_level: str = "warning",
    start_timeout: float = 30,
    stop_timeout: float = 15,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`uvicorn portal.app:create_app --factory` on a free localhost port, with `env` over this
    process's environment; yields (base URL, process) once /healthz answers 200, and stops the
    server on the way out."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "portal.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    if not access_log:
        command.append("--no-access-log")
    command += ["--log-level", log_level]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(base + "/healthz", start_timeout, proc)
        yield base, proc
    finally:
        stop(proc, stop_timeout)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian chromium launched through Playwright with CHROME_ARGS; closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            yield browser
        finally:
            browser.close()
