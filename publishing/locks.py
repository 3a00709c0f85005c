"""Every PostgreSQL advisory lock id of the service, in one place: the ids share one space per
database, so two features picking the same number block each other (the worker holds its lock
for its whole life; with the audit log's id it once hung every audited write while it ran).

Single-key locks (pg_advisory_lock(bigint)) and two-key locks (pg_advisory_lock(int, int)) are
separate spaces; RECORD_NAMESPACE is the first key of the two-key submission locks.
"""

from __future__ import annotations

WRITER = 7_261_127  # the one writer of published data (publishing.commit)
SEARCH_INDEX = 7_261_128  # the embedded index's writers and the search sync, together
AUDIT = 7_261_129  # appends to the audit log's hash chain
MIGRATION = 7_261_130  # one process migrates at a time (publishing.db)
WORKER = 7_261_131  # the active worker, held while it runs (was 7_261_129, the audit log's)
SEARCH_REBUILD = 7_261_132  # the one process rebuilding the search index (publishing.search)

RECORD_NAMESPACE = 7_261_130  # two-key: (this, hash of a record id) per submission

SINGLE_KEY = (WRITER, SEARCH_INDEX, AUDIT, MIGRATION, WORKER, SEARCH_REBUILD)
