"""The worker's nightly expiry applies an edited publicity.toml to the stored records: it
recomputes the periods when the rules' content changed since the last recompute (or none was
recorded), as `disclosure expire --recompute` does, and records the rules' fingerprint only
after a recompute that succeeded. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from portal.cli import main
from publishing import clock, worker
from publishing.commit import BATCHES, EVENTS, RECORDS
from publishing.expire import RULES_CURSOR, recomputed_rules
from publishing.publish import publish
from publishing.rules import (
    DEFAULT_RULES_FILE,
    Rules,
    RulesError,
    add_months,
    load_rules,
    read_rules,
)
from publishing.search.embedded import EmbeddedSearch
from publishing.settings import get_settings
from tests.factories import penalty_row, uscc, write_csv
from tests.requests_support import months_ago

# The worker's expiry runs under the real date (clock.today()); `now` only schedules it.
TODAY = clock.today()
GENERAL = '[penalty.severity."一般"]\npublicity_months = 12\n'  # 一般: 12 months (rules A)


def rules_text(general: str = "12") -> str:
    source = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    assert GENERAL in source
    return source.replace(GENERAL, f'[penalty.severity."一般"]\npublicity_months = {general}\n')


def night(days: int) -> datetime:
    """00:30 Beijing time, `days` after today: the expiry is due."""
    return datetime.combine(TODAY + timedelta(days=days), dtime(0, 30), tzinfo=clock.BEIJING)


def expire_jobs() -> list[worker.Job]:
    """A freshly started worker's expire job, and search-sync beside it."""
    return [j for j in worker.default_jobs() if j.name in ("expire", "search-sync")]


@pytest.fixture
def rules_file(tmp_path, monkeypatch) -> Path:
    """DISCLOSURE_RULES_FILE: the bundled rules (rules A: 一般 12 months)."""
    path = tmp_path / "publicity.toml"
    path.write_text(rules_text(), encoding="utf-8")
    monkeypatch.setenv("DISCLOSURE_RULES_FILE", str(path))
    get_settings.cache_clear()
    load_rules.cache_clear()
    yield path
    load_rules.cache_clear()


# penalty number → (失信程度, months before today it was decided)
PENALTIES = {1: ("一般", 18), 2: ("一般", 6), 3: ("严重", 2)}


@pytest.fixture
def world(engine, rules_file, tmp_path) -> Engine:
    EmbeddedSearch(engine).rebuild([])
    rows = [penalty_row(n, 失信程度=sev, 领域="价格", 处罚决定日期=months_ago(ago))
            for n, (sev, ago) in PENALTIES.items()]
    result = publish([write_csv(tmp_path / "p.csv", rows)], engine=engine, today=TODAY,
                     rules=read_rules(rules_file), show_progress=False)
    assert result.published
    return engine


def records(engine: Engine) -> dict[int, tuple[str, date]]:
    """{penalty number: (status, publicity_until)}."""
    with engine.connect() as conn:
        rows = conn.execute(select(RECORDS.c.entity_id, RECORDS.c.status,
                                   RECORDS.c.publicity_until)).all()
    by_entity = {r.entity_id: (r.status, r.publicity_until) for r in rows}
    return {n: by_entity[uscc(n)] for n in PENALTIES}


def expected(months_general: int) -> dict[int, tuple[str, date]]:
    """What publishing the rows under 一般 = months_general stores (严重: 36 months)."""
    out = {}
    for n, (sev, ago) in PENALTIES.items():
        until = add_months(date.fromisoformat(months_ago(ago)),
                           months_general if sev == "一般" else 36)
        out[n] = ("expired" if until < TODAY else "active", until)
    return out


def written(engine: Engine) -> tuple[int, int]:
    """(change events, recompute batches) so far."""
    with engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(EVENTS)).scalar_one()
        batches = conn.execute(select(func.count()).select_from(BATCHES)
                               .where(BATCHES.c.mode == "recompute")).scalar_one()
    return events, batches


def recorded(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return recomputed_rules(conn)


def run_expire(engine: Engine, days: int, jobs: list[worker.Job] | None = None) -> dict[str, Any]:
    done = worker.run_due(engine, jobs or expire_jobs(), now=night(days))
    assert "expire" in done and "search-sync" in done
    return done


def test_the_nightly_expiry_recomputes_when_the_rules_changed(world, rules_file):
    rules_a = read_rules(rules_file)
    assert records(world) == expected(12)
    assert recorded(world) is None
    events = written(world)[0]

    # first run: no fingerprint recorded yet, so it recomputes (nothing to change) and records
    first = run_expire(world, 0)["expire"]
    assert first["recomputed"] is True and first["period_changed"] == 0
    assert recorded(world) == rules_a.fingerprint
    assert written(world) == (events, 1)
    before_search = EmbeddedSearch(world).count()  # synced by the job

    # the next day, the same rules: a plain expiry
    second = run_expire(world, 1)["expire"]
    assert second["recomputed"] is False and "period_changed" not in second
    assert written(world) == (events, 1)

    # an edit of comments and layout only is no change
    text = rules_file.read_text(encoding="utf-8")
    rules_file.write_text("# edited by the bureau\n\n" + text.replace(" = ", "   =   "),
                          encoding="utf-8")
    assert read_rules(rules_file).fingerprint == rules_a.fingerprint
    third = run_expire(world, 2)["expire"]
    assert third["recomputed"] is False and written(world) == (events, 1)

    # rules B: 一般 24 months; the worker (not restarted) reads the file again
    rules_file.write_text(rules_text("24"), encoding="utf-8")
    fourth = run_expire(world, 3)["expire"]
    assert fourth["recomputed"] is True
    assert (fourth["period_changed"], fourth["period_returned"]) == (2, 1)
    assert records(world) == expected(24)  # 1 is public again, 2 ends a year later
    assert recorded(world) == read_rules(rules_file).fingerprint != rules_a.fingerprint
    assert written(world) == (events + 2, 2)  # 1 added, 2 changed
    # synced: 1 is searchable again, and its entity (which had no public record left)
    assert EmbeddedSearch(world).count() == before_search + 2


def test_a_failed_recompute_is_recorded_nowhere_and_tried_again(world, rules_file):
    run_expire(world, 0)
    rules_a = recorded(world)
    assert rules_a == read_rules(rules_file).fingerprint
    before, events = records(world), written(world)

    # an invalid value: the rules are refused before anything is written
    rules_file.write_text(rules_text('"twelve months"'), encoding="utf-8")
    jobs = expire_jobs()
    done = worker.run_due(world, jobs, now=night(1))
    assert isinstance(done["expire"], RulesError)
    assert done["search-sync"] == 0  # the worker's other jobs keep running
    expire_job = next(j for j in jobs if j.name == "expire")
    assert expire_job.failures == 1
    assert worker.last_day(world, expire_job) == TODAY  # the night's run is still to be done
    assert recorded(world) == rules_a and records(world) == before and written(world) == events

    # the bureau fixes the file (rules B); the retry recomputes under it
    rules_file.write_text(rules_text("24"), encoding="utf-8")
    retry = run_expire(world, 1)["expire"]
    assert retry["recomputed"] is True and retry["period_changed"] == 2
    assert records(world) == expected(24)
    assert recorded(world) == read_rules(rules_file).fingerprint


def test_a_broken_rules_file_does_not_keep_what_is_due_in_publication(world, rules_file):
    """What the stored periods say is due leaves publication that night all the same: search,
    feeds and open data would otherwise go on showing it until the file is fixed. The job still
    fails (logged, retried), and nothing is recomputed."""
    from sqlalchemy import update

    run_expire(world, 0)
    rules_a = recorded(world)
    with world.begin() as conn:  # penalty 2's stored period ended yesterday
        conn.execute(update(RECORDS).where(RECORDS.c.entity_id == uscc(2))
                     .values(publicity_until=TODAY - timedelta(days=1)))
    indexed = EmbeddedSearch(world).count()
    rules_file.write_text(rules_text('"twelve months"'), encoding="utf-8")
    done = worker.run_due(world, expire_jobs(), now=night(1))
    assert isinstance(done["expire"], RulesError)
    assert records(world)[2] == ("expired", TODAY - timedelta(days=1))
    assert records(world)[3][0] == "active"
    with world.connect() as conn:
        ops = conn.execute(select(EVENTS.c.op).where(EVENTS.c.record_id.like("pn-%"))
                           .order_by(EVENTS.c.seq.desc()).limit(1)).scalar_one()
    assert ops == "expire"
    assert EmbeddedSearch(world).count() < indexed  # synced: no longer found
    assert recorded(world) == rules_a  # nothing recomputed under a file it could not read


def test_the_command_line_recompute_spares_the_worker_one(world, rules_file, capsys):
    rules_file.write_text(rules_text("24"), encoding="utf-8")
    load_rules.cache_clear()
    assert main(["expire", "--recompute", "--dry-run"]) == 0
    assert recorded(world) is None  # a dry run records nothing
    assert main(["expire", "--recompute"]) == 0
    assert "公示期变更 2 条" in capsys.readouterr().out
    assert recorded(world) == read_rules(rules_file).fingerprint
    assert records(world) == expected(24)
    events = written(world)

    done = run_expire(world, 0)["expire"]
    assert done["recomputed"] is False and written(world) == events


def test_the_fingerprint_is_of_the_content():
    base = load_rules(DEFAULT_RULES_FILE)
    raw = base.raw
    reordered = Rules(dict(reversed(list(raw.items()))))
    assert reordered.fingerprint == base.fingerprint
    assert 0 < base.fingerprint < 2**63
    changed = Rules({**raw, "blacklist": {"publicity_months": 24}})
    assert changed.fingerprint != base.fingerprint
    as_date = Rules({**raw, "x": date(2026, 1, 1)})
    as_text = Rules({**raw, "x": "2026-01-01"})
    assert as_date.fingerprint != as_text.fingerprint
    assert RULES_CURSOR.startswith("worker:")
