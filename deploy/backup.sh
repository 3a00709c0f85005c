#!/usr/bin/env bash
# Back up what cannot be derived: the PostgreSQL database (published data, change log, requests,
# users, audit log), the attachments and, when DISCLOSURE_SECRET_KEY is not set, the key the
# portal made in the data folder (secret.key); plus a Meilisearch dump, which is derived (a
# reindex rebuilds it) but restores faster than a reindex on a large index.
#
#   deploy/backup.sh [BACKUP_ROOT]        (default /var/backups/disclosure)
#
# Environment (the same file the portal reads, /etc/disclosure/disclosure.env or deploy/.env;
# in compose the `backup` service has it: `docker compose run --rm backup`):
#   DISCLOSURE_DATABASE_URL   postgresql+psycopg://user:pass@host:5432/db   (required)
#   DISCLOSURE_DATA_DIR       holds attachments/ (default ./var); when that folder is missing
#                             while the database lists attachments, the backup fails; and
#                             secret.key when DISCLOSURE_SECRET_KEY is not set
#   DISCLOSURE_MEILI_URL, DISCLOSURE_MEILI_KEY   when set, a Meilisearch dump is made too
#   BACKUP_KEEP_DAYS          older backups are deleted                       (default 14)
#   BACKUP_REMOTE             optional rsync target for an off-site copy (host:/path)
#
# Writes BACKUP_ROOT/<UTC timestamp>/ with disclosure.pgdump (pg_dump custom format, checked
# with pg_restore --list), attachments.tar.gz, secret.key (mode 600, when the data folder has
# one: it signs sessions and access codes and keys the audit log's hash chain, so without it
# `disclosure audit verify` fails for good after losing the data folder), meilisearch.json (the
# dump's task and uid; the .dump file itself stays in Meilisearch's dump directory,
# MEILI_DUMP_DIR), MANIFEST (sizes, sha256, the change-log position) — and prints the
# directory. Exit code non-zero on any failure.
set -euo pipefail

root="${1:-${BACKUP_ROOT:-/var/backups/disclosure}}"
keep_days="${BACKUP_KEEP_DAYS:-14}"
data_dir="${DISCLOSURE_DATA_DIR:-./var}"
: "${DISCLOSURE_DATABASE_URL:?DISCLOSURE_DATABASE_URL must be set (PostgreSQL)}"

case "$DISCLOSURE_DATABASE_URL" in
  postgresql*) ;;
  *) echo "backup.sh backs up PostgreSQL; for SQLite copy the file with sqlite3 .backup" >&2; exit 2 ;;
esac
# The URL for libpq (deploy/libpq_url.py: a password may hold `/`, which libpq would misread).
pg_url="$(python3 "$(dirname "$0")/libpq_url.py" "$DISCLOSURE_DATABASE_URL")"

log() { printf '%s backup: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# The attachments are the one thing only the data folder holds: a missing folder while the
# database lists attachments is a wrong DISCLOSURE_DATA_DIR (or working directory), not "none".
if [ ! -d "$data_dir/attachments" ]; then
  listed="$(psql "$pg_url" -XAtqc 'SELECT count(*) FROM request_attachments')"
  if [ "$listed" != 0 ]; then
    echo "backup.sh: $data_dir/attachments not found, but the database lists $listed attachments:" \
      "set DISCLOSURE_DATA_DIR to the portal's data folder. Nothing was backed up." >&2
    exit 1
  fi
  log "no attachments yet ($data_dir/attachments not found, none in the database)"
fi

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
dir="$root/$stamp"
mkdir -p "$dir"
chmod 700 "$dir"

# 1. PostgreSQL: one consistent snapshot (pg_dump runs in a repeatable-read transaction)
seq="$(psql "$pg_url" -XAtqc 'SELECT coalesce(max(seq), 0) FROM changes')"
log "pg_dump (change log at seq $seq)"
pg_dump --format=custom --compress=6 --no-owner --no-privileges --file="$dir/disclosure.pgdump" "$pg_url"
pg_restore --list "$dir/disclosure.pgdump" >/dev/null  # readable, complete table of contents

# 2. attachments (objection / credit-repair evidence): not in the database, not derivable
if [ -d "$data_dir/attachments" ]; then
  log "attachments"
  tar -C "$data_dir" -czf "$dir/attachments.tar.gz" attachments
fi

# 3. the key the portal made in the data folder (DISCLOSURE_SECRET_KEY unset): the audit log is
#    keyed with it (unless DISCLOSURE_AUDIT_KEY is set), so it cannot be made again. A backup
#    holding it lets its reader forge sessions and access codes: better kept in the environment.
if [ -f "$data_dir/secret.key" ]; then
  log "secret.key"
  cp -p "$data_dir/secret.key" "$dir/secret.key"  # -p: its owner too, when run as root
  chmod 600 "$dir/secret.key"
  log "WARNING: this backup holds the portal's secret key ($data_dir/secret.key): whoever reads" \
    "it can forge sessions and request access codes. Better: put its content in" \
    "DISCLOSURE_SECRET_KEY and DISCLOSURE_AUDIT_KEY in the environment file, kept apart from the" \
    "backups (the audit log stays keyed with it), then delete the file"
fi

# 4. Meilisearch: ask for a dump and wait for it (derived data: a failure here is a warning)
if [ -n "${DISCLOSURE_MEILI_URL:-}" ]; then
  meili="${DISCLOSURE_MEILI_URL%/}"
  auth=()
  [ -n "${DISCLOSURE_MEILI_KEY:-}" ] && auth=(-H "Authorization: Bearer $DISCLOSURE_MEILI_KEY")
  log "meilisearch dump"
  if task="$(curl -fsS -X POST "${auth[@]}" "$meili/dumps" | python3 -c 'import json,sys; print(json.load(sys.stdin)["taskUid"])')"; then
    status=""
    for _ in $(seq 1 720); do  # up to an hour
      body="$(curl -fsS "${auth[@]}" "$meili/tasks/$task")"
      status="$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
      case "$status" in succeeded|failed|canceled) break ;; esac
      sleep 5
    done
    printf '%s\n' "$body" >"$dir/meilisearch.json"
    [ "$status" = succeeded ] || log "WARNING: meilisearch dump $status (search is derived: restore can reindex)"
  else
    log "WARNING: meilisearch unreachable, no dump (search is derived: restore can reindex)"
  fi
fi

# 5. manifest
{
  echo "created_utc $stamp"
  echo "change_seq $seq"
  echo "database ${pg_url%%\?*}" | sed -E 's#://[^@]*@#://***@#'
  (cd "$dir" && for f in *; do [ "$f" = MANIFEST ] || echo "file $f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"; done)
} >"$dir/MANIFEST"

# 6. off-site copy, then retention
if [ -n "${BACKUP_REMOTE:-}" ]; then
  log "rsync to $BACKUP_REMOTE"
  rsync -a "$dir" "$BACKUP_REMOTE/"
fi
find "$root" -mindepth 1 -maxdepth 1 -type d -name '20*Z' -mtime "+$keep_days" -exec rm -rf {} +

log "done: $dir"
echo "$dir"
