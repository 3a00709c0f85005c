#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh: PostgreSQL (pg_restore), the attachments, then the
# search index rebuilt from the restored database (search is derived: `disclosure reindex`).
# The open-data files (DATA_DIR/opendata) are derived too: they describe the change log as it
# was before the restore, whose seqs the restored database will issue again for other events, so
# they are rebuilt from it (`disclosure opendata` notices the replaced log by index.json's
# seq_event, starts the delta history again and gives the snapshot a version never used before;
# index.json is kept for that). The portal serves none of the old files meanwhile.
#
#   deploy/restore.sh BACKUP_DIR --yes [--no-reindex]
#
# Stop the portals and the worker first (nothing may write meanwhile); start them afterwards.
# The target database (DISCLOSURE_DATABASE_URL) must exist; its contents are replaced. After
# pg_restore the schema is upgraded to this release's migrations (a backup from an older
# release restores into a newer one).
#
# Environment: as deploy/backup.sh; DISCLOSURE_BIN (default: `disclosure` on PATH).
set -euo pipefail

dir="${1:?usage: restore.sh BACKUP_DIR --yes [--no-reindex]}"
shift
yes=0
reindex=1
for arg in "$@"; do
  case "$arg" in
    --yes) yes=1 ;;
    --no-reindex) reindex=0 ;;
    *) echo "unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ -f "$dir/disclosure.pgdump" ] || { echo "$dir/disclosure.pgdump not found" >&2; exit 2; }
: "${DISCLOSURE_DATABASE_URL:?DISCLOSURE_DATABASE_URL must be set (PostgreSQL)}"
if [ "$yes" != 1 ]; then
  echo "This replaces the database ${DISCLOSURE_DATABASE_URL%%@*}@… and the attachments. Re-run with --yes." >&2
  exit 2
fi
# The URL for libpq (deploy/libpq_url.py: a password may hold `/`, which libpq would misread).
pg_url="$(python3 "$(dirname "$0")/libpq_url.py" "$DISCLOSURE_DATABASE_URL")"
data_dir="${DISCLOSURE_DATA_DIR:-./var}"
bin="${DISCLOSURE_BIN:-disclosure}"
log() { printf '%s restore: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# 0. the files are what the manifest says
if [ -f "$dir/MANIFEST" ]; then
  while read -r kind name size sum; do
    [ "$kind" = file ] || continue
    [ "$(sha256sum "$dir/$name" | cut -d' ' -f1)" = "$sum" ] || { echo "checksum mismatch: $name" >&2; exit 1; }
  done <"$dir/MANIFEST"
fi

# 1. PostgreSQL: drop what is there, restore in one transaction
log "pg_restore"
psql "$pg_url" -Xqv ON_ERROR_STOP=1 <<'SQL'
DROP SCHEMA public CASCADE;
CREATE SCHEMA public;
SQL
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
  --dbname="$pg_url" "$dir/disclosure.pgdump"

# 2. attachments
if [ -f "$dir/attachments.tar.gz" ]; then
  log "attachments"
  mkdir -p "$data_dir"
  rm -rf "$data_dir/attachments"
  tar -C "$data_dir" -xzf "$dir/attachments.tar.gz"
fi

# 3. schema up to this release, then search rebuilt from the database (derived data).
#    `disclosure reindex` runs the migrations first; the index is built aside and swapped in.
#    Then the open-data files, rebuilt from the restored change log.
if [ "$reindex" = 1 ]; then
  log "disclosure reindex"
  "$bin" reindex
  log "disclosure opendata"
  "$bin" opendata >/dev/null
else
  log "skipped reindex and open data: run \`disclosure reindex\` before serving search;"
  log "the worker rebuilds the open-data files (the old ones are not served meanwhile)"
fi
log "done: change log at seq $(psql "$pg_url" -XAtqc 'SELECT coalesce(max(seq), 0) FROM changes')"
