"""index.json's `lineage`: kept from build to build while the change log goes on, new once the
database was restored from a backup. A mirror fed by the delta files needs it: after a restore
and more publishes, the seq it holds is below the new index's, yet the events after it that it
applied were another history (a record that no longer exists, a withdrawal whose seq was reused)."""

from __future__ import annotations

import shutil
from datetime import date

from publishing import opendata
from publishing.db import make_engine, upgrade
from publishing.publish import publish
from tests.factories import penalty_row, write_csv

TODAY = date(2026, 11, 27)


def _publish(engine, path) -> None:
    assert publish([path], engine=engine, today=TODAY, show_progress=False).published


def test_lineage_is_kept_until_the_database_is_restored(tmp_path):
    db, backup, out = tmp_path / "d.db", tmp_path / "backup.db", tmp_path / "opendata"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    _publish(engine, write_csv(tmp_path / "a.csv", [penalty_row(1), penalty_row(2)]))
    first = opendata.build(engine, out)
    _publish(engine, write_csv(tmp_path / "b.csv", [penalty_row(3)]))
    second = opendata.build(engine, out)
    assert second["seq"] > first["seq"] and second["lineage"] == first["lineage"]
    engine.dispose()
    shutil.copyfile(db, backup)  # the backup: before the next publish

    engine = make_engine(f"sqlite:///{db}")
    _publish(engine, write_csv(tmp_path / "c.csv", [penalty_row(4)]))
    mirrored = opendata.build(engine, out)  # what a mirror of the files holds
    engine.dispose()
    shutil.copyfile(backup, db)  # restored; then more is published than was lost
    engine = make_engine(f"sqlite:///{db}")
    _publish(engine, write_csv(tmp_path / "d.csv", [penalty_row(5), penalty_row(6)]))
    after = opendata.build(engine, out)
    engine.dispose()
    # the seq alone tells the mirror nothing: it went up
    assert after["seq"] > mirrored["seq"]
    assert mirrored["lineage"] == first["lineage"] != after["lineage"]
