"""Exports of published records in their public shape, streamed (memory stays flat)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from sqlalchemy import Engine, select

from publishing import clock
from publishing.commit import RECORDS
from publishing.contract import KIND_PREFIX
from publishing.db import get_engine
from publishing.models import ACTIVE
from publishing.read import is_visible
from publishing.shape import public_fields, public_record

BATCH = 2000


def iter_public(kind: str, engine: Engine | None = None) -> Iterator[dict]:
    """A kind's records as the pages show them (active, publicity not ended: one whose end has
    passed is left out before the expire run withdraws it), in id order, paged by keyset so no
    query holds them all.

    A kind's ids share a prefix ("cm-…"), so each page is a range scan of the primary key."""
    engine = engine or get_engine()
    today = clock.today()
    of_kind, active = RECORDS.c.kind == kind, RECORDS.c.status == ACTIVE
    if engine.dialect.name == "sqlite":
        # SQLite would serve these from the (kind, status, …) index and sort all the kind's
        # active records by id for every page (6,000 instead of 30,000 rows/s for a million
        # credit marks); `|| ''` keeps them from its planner. PostgreSQL needs no help, and
        # would misjudge the expressions.
        of_kind = RECORDS.c.kind.concat("") == kind
        active = RECORDS.c.status.concat("") == ACTIVE
    last, end = f"{KIND_PREFIX[kind]}-", f"{KIND_PREFIX[kind]}."  # "." sorts right after "-"
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(RECORDS)
                .where(RECORDS.c.id > last, RECORDS.c.id < end, of_kind, active)
                .order_by(RECORDS.c.id)
                .limit(BATCH)
            ).all()
        if not rows:
            return
        for row in rows:
            rec = public_record(row)
            if is_visible(rec, today):
                yield rec
        last = rows[-1].id


def ndjson_lines(records: Iterator[dict]) -> Iterator[str]:
    for rec in records:
        yield json.dumps(rec, ensure_ascii=False) + "\n"


# A spreadsheet runs a text cell starting with one of these as a formula (OWASP, CSV
# injection); a leading ' makes it plain text. Full-width ＝＋－＠ are not formulas: left alone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_value(value: object) -> str:
    if isinstance(value, str):
        return _text_cell(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return _text_cell(";".join(str(v) for v in value))
    if isinstance(value, bool):
        return "是" if value else "否"
    # a number (int: version, days) stays a number; money is canonical text ("50000.00", never
    # negative), so no figure gets the quote
    return str(value)


def csv_lines(kind: str, records: Iterator[dict]) -> Iterator[str]:
    """CSV in UTF-8 with a BOM so that Excel opens Chinese text correctly; text that a
    spreadsheet would run as a formula is prefixed with ' (_text_cell)."""
    fields = public_fields(kind)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(fields)
    yield "\ufeff" + buf.getvalue()
    for rec in records:
        buf.seek(0)
        buf.truncate()
        writer.writerow([_csv_value(rec.get(f)) for f in fields])
        yield buf.getvalue()
