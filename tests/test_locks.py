"""PostgreSQL advisory locks of different jobs never block each other: a running worker holds
its lock for its whole life, and audited writes (submissions, decisions, account commands) must
still go through."""

from __future__ import annotations

import threading

from publishing import locks, users, worker
from publishing.db import make_engine


def test_lock_ids_are_distinct():
    assert len(set(locks.SINGLE_KEY)) == len(locks.SINGLE_KEY)


def test_an_audited_write_goes_through_while_the_worker_runs(pg_url):
    engine = make_engine(pg_url)
    try:
        with worker.leadership(engine, wait=False) as leading:
            assert leading
            done = threading.Event()

            def add() -> None:
                users.add_user(engine, "li", "reviewer", "correct horse battery staple")
                done.set()

            threading.Thread(target=add, daemon=True).start()
            assert done.wait(10), "an audited write waited for the worker's lock"
    finally:
        engine.dispose()
