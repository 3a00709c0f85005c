"""Retention of applicants' personal data (个人信息保护法 第十九条: kept no longer than necessary),
run daily by the worker (publishing.worker, job "retention").

1. Requests decided (approved / rejected) more than [retention] personal_data_days ago
   (requests.toml; counted from decided_at) lose the applicant's personal data: contact name,
   mobile and e-mail are blanked, the reason and the notes of the steps before the decision
   become REMOVED_TEXT, and each attachment's file is deleted, its row kept (the review page
   lists it as removed) with the file's name replaced and its stored name set to
   REMOVED_FILE_PREFIX + its id, which names no file. The decision (its reason, the decision
   step), dates, tracking number, record ids, status and the public figures stay. Open requests
   are never touched. Done in batches, each one transaction; the files of a batch are deleted
   after its commit, so a crash leaves at worst a file no row names, which step 2 handles.
2. A sweep of the attachments folder. Stored files no attachment row names, once older than
   SWEEP_MIN_AGE (a younger one may be an upload in progress: its file is stored before its
   row is committed), are not deleted but moved into its quarantine folder
   (attachments.QUARANTINE), and deleted from there only after QUARANTINE_PERIOD: a worker
   pointed at another database than the folder's (an older copy, a restore drill's) or a
   restore whose dump predates an upload (backup.sh dumps before it archives the folder) would
   otherwise delete the evidence of open requests. A quarantined file a row names again (the
   right database, a restore) is moved back. When the unreferenced files are many
   (_looks_like_another_database), nothing is moved: an ERROR, and the result says why.
   Unfinished uploads' `.part` files older than SWEEP_MIN_AGE are deleted at once (no row can
   name them).

One audit entry per run that changed or refused anything (counts only, no personal data).
Running again changes nothing: a request already emptied is not selected again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, String, and_, cast, exists, func, literal, or_, select
from sqlalchemy import update as sql_update

from publishing import attachments, audit, clock
from publishing.db import writer_connection
from publishing.request_config import load_config
from publishing.request_models import (
    APPROVED,
    ATTACHMENTS,
    DECIDED_STATUSES,
    REJECTED,
    REQUESTS,
    STEPS,
)

log = logging.getLogger("publishing.request_retention")

REMOVED_TEXT = "（已按保存期限删除）"
# An attachment row whose file was deleted: stored_name = this + the row's id (unique, as the
# column must be; no file has such a name: attachments.STORED_NAME).
REMOVED_FILE_PREFIX = "removed-"
SWEEP_MIN_AGE = timedelta(days=1)
# How long an unreferenced file waits in the quarantine before it is deleted: long enough for
# someone to notice a worker on the wrong database or a restore that lost rows (the daily
# ERROR, the review page's missing file) and put things right, short enough that orphans
# (a crash between a batch's commit and its deletes) do not pile up.
QUARANTINE_PERIOD = timedelta(days=30)
# The sweep refuses to move anything when more unreferenced files than both of these are found:
# a real orphan is rare (a crash), so many of them mean a database that is not the folder's.
REFUSE_MIN_FILES = 20
REFUSE_SHARE = 0.05  # of the stored files in the folder
BATCH = 200  # requests per transaction
_NAMES_PER_QUERY = 500  # stored names per IN (...) of the sweep
# The decision's own step keeps its note: it is the decision reason, which stays on the request.
_DECISION_STEPS = (APPROVED, REJECTED)


@dataclass
class Counts:
    requests: int = 0  # requests whose personal data was removed
    attachments: int = 0  # attachment rows marked removed (their files deleted)
    quarantined: int = 0  # stored files no row named, moved into the quarantine by the sweep
    restored: int = 0  # quarantined files a row names again, moved back
    quarantine_purged: int = 0  # files deleted after QUARANTINE_PERIOD in the quarantine
    refused: int = 0  # unreferenced files left alone: too many (another database?)
    partial_files: int = 0  # `.part` files of unfinished uploads, deleted by the sweep

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def any(self) -> bool:
        return any(asdict(self).values())


def run(
    engine: Engine,
    *,
    now: datetime | None = None,
    days: int | None = None,
    folder: Path | None = None,
) -> dict[str, int | str]:
    """Apply the retention period and sweep the attachments folder; the counts (the worker's
    result), with "error" when the sweep refused to move anything. days: the retention period
    (default: requests.toml); folder: the attachments folder (default:
    settings.attachments_dir)."""
    from publishing.settings import get_settings

    now = now or clock.now()
    days = days if days is not None else load_config().personal_data_days
    folder = folder or get_settings().attachments_dir
    # the sweep first: its counts go into the audit entry written with the last batch
    totals, refusal = sweep(engine, folder, now)
    cutoff = now - timedelta(days=days)
    while True:
        with writer_connection(engine) as conn, conn.begin():
            batch, stored = _remove_batch(conn, cutoff)
            totals.add(batch)
            last = batch.requests < BATCH
            if last and totals.any():
                _audit(conn, totals, days, now)
        # after the commit: a crash leaves files no row names (swept), never rows naming no file
        for name in stored:
            _unlink(folder, name, attachments.path_of)
        if last:
            return {**asdict(totals), **({"error": refusal} if refusal else {})}


# -- personal data of decided requests --------------------------------------------------------


def _expired(cutoff: datetime):
    """Decided before the cutoff and still holding personal data (a file included)."""
    decided_at = func.coalesce(REQUESTS.c.decided_at, REQUESTS.c.updated_at)
    unremoved_file = exists().where(
        ATTACHMENTS.c.request_id == REQUESTS.c.id,
        ATTACHMENTS.c.stored_name.not_like(f"{REMOVED_FILE_PREFIX}%"),
    )
    return and_(
        REQUESTS.c.status.in_(DECIDED_STATUSES),
        decided_at < cutoff,
        or_(
            REQUESTS.c.reason != REMOVED_TEXT,
            REQUESTS.c.contact_name != "",
            REQUESTS.c.mobile != "",
            REQUESTS.c.email.is_not(None),
            unremoved_file,
        ),
    )


def _remove_batch(conn: Connection, cutoff: datetime) -> tuple[Counts, list[str]]:
    """Empty up to BATCH expired requests in the caller's transaction; their counts and the
    stored names of the files to delete once it commits. (A decision is final: a request
    selected as decided stays so.)"""
    ids = list(
        conn.execute(
            select(REQUESTS.c.id).where(_expired(cutoff)).order_by(REQUESTS.c.id).limit(BATCH)
        ).scalars()
    )
    if not ids:
        return Counts(), []
    conn.execute(
        sql_update(REQUESTS)
        .where(REQUESTS.c.id.in_(ids))
        .values(contact_name="", mobile="", email=None, reason=REMOVED_TEXT)
    )
    conn.execute(
        sql_update(STEPS)
        .where(
            STEPS.c.request_id.in_(ids),
            STEPS.c.note.is_not(None),
            STEPS.c.action.not_in(_DECISION_STEPS),
        )
        .values(note=REMOVED_TEXT)
    )
    files = and_(
        ATTACHMENTS.c.request_id.in_(ids),
        ATTACHMENTS.c.stored_name.not_like(f"{REMOVED_FILE_PREFIX}%"),
    )
    stored = list(conn.execute(select(ATTACHMENTS.c.stored_name).where(files)).scalars())
    conn.execute(
        sql_update(ATTACHMENTS)
        .where(files)
        .values(
            file_name=REMOVED_TEXT,
            stored_name=literal(REMOVED_FILE_PREFIX) + cast(ATTACHMENTS.c.id, String),
        )
    )
    return Counts(requests=len(ids), attachments=len(stored)), stored


def _unlink(folder: Path, name: str, path: Callable[[Path, str], Path]) -> bool:
    """Delete one file (True when it is gone); a failure is logged, not raised: no row names
    the file (any more), so the next day's sweep tries again."""
    try:
        path(folder, name).unlink(missing_ok=True)
    except (OSError, ValueError) as err:
        log.warning("retention: attachment file %s not deleted (%s); the sweep retries", name, err)
        return False
    return True


def _audit(conn: Connection, totals: Counts, days: int, now: datetime) -> None:
    audit.append(
        conn,
        actor="worker",
        action="retention.purge",
        target_type="retention",
        at=now,
        after={"personal_data_days": days, **asdict(totals)},
    )


# -- the sweep of the attachments folder ------------------------------------------------------


def sweep(engine: Engine, folder: Path, now: datetime) -> tuple[Counts, str | None]:
    """Quarantine the stored files no attachment row names, move back those a row names again,
    delete those quarantined longer than QUARANTINE_PERIOD and the unfinished uploads' `.part`
    files; all last written more than SWEEP_MIN_AGE before now. The counts, and why nothing
    was quarantined or deleted from the quarantine, if so."""
    stale = attachments.stale_files(folder, (now - SWEEP_MIN_AGE).timestamp())
    held = attachments.quarantined(folder)
    # `.part` names start with a dot, which path_of refuses; these come from the listing
    counts = Counts(partial_files=sum(_unlink(folder, n, Path.joinpath) for n in stale.partial))
    if not (stale.stored or held):
        return counts, None
    with engine.connect() as conn:
        any_row = bool(conn.execute(select(exists().select_from(ATTACHMENTS))).scalar())
        named = _named(conn, stale.stored + list(held))
    quarantine = attachments.quarantine_of(folder)
    # always safe, and first: the download looks for a row's file in the folder itself
    counts.restored = len(attachments.move([n for n in held if n in named], quarantine, folder))
    unreferenced = [name for name in stale.stored if name not in named]
    refusal = _refusal(len(unreferenced), stale.all_stored, len(held), any_row, folder)
    if refusal:
        counts.refused = len(unreferenced)
        return counts, refusal
    counts.quarantined = len(
        attachments.move(unreferenced, folder, quarantine, mtime=now.timestamp())
    )
    expired = (now - QUARANTINE_PERIOD).timestamp()
    counts.quarantine_purged = sum(
        _unlink(quarantine, name, attachments.path_of)
        for name, since in held.items()
        if name not in named and since < expired
    )
    return counts, None


def _refusal(
    unreferenced: int, stored: int, quarantined: int, any_row: bool, folder: Path
) -> str | None:
    """Why the sweep must neither quarantine nor delete anything (logged as an ERROR), or None:
    files but no attachment row at all, or more unreferenced files than orphans ever are."""
    if any_row:
        if unreferenced <= REFUSE_MIN_FILES or unreferenced <= REFUSE_SHARE * stored:
            return None
        found = f"{unreferenced} of the {stored} stored files in {folder} are named by no row"
    elif unreferenced or quarantined:
        found = (
            f"no attachment row in the database, but {stored} stored and {quarantined} "
            f"quarantined files in {folder}"
        )
    else:
        return None
    refusal = (
        f"{found}; nothing moved to the quarantine or deleted from it. The worker is likely "
        f"pointed at another database or data folder than the portal's "
        f"(DISCLOSURE_DATABASE_URL, DISCLOSURE_DATA_DIR; an older copy, a restore drill's "
        f"database); if these files really are orphans, move them into "
        f"{attachments.quarantine_of(folder)} by hand"
    )
    log.error("retention: %s", refusal)
    return refusal


def _named(conn: Connection, names: list[str]) -> set[str]:
    """Those of `names` that an attachment row names."""
    found: set[str] = set()
    for i in range(0, len(names), _NAMES_PER_QUERY):
        chunk = names[i : i + _NAMES_PER_QUERY]
        found.update(
            conn.execute(
                select(ATTACHMENTS.c.stored_name).where(ATTACHMENTS.c.stored_name.in_(chunk))
            ).scalars()
        )
    return found
