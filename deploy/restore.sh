#!/usr/bin/env bash
# Restore a backup made by deploy/backup.sh: the data folder's secret.key (when the backup has
# one), PostgreSQL (pg_restore), `disclosure after-restore` (what the backup must not bring back:
# sessions, tokens and accounts revoked since; today's request numbers issued since), the
# attachments, then the search index rebuilt from the restored database (search is derived:
# `disclosure reindex`).
# The open-data files (DATA_DIR/opendata) are derived too: they describe the change log as it
# was before the restore, whose seqs the restored database will issue again for other events, so
# they are rebuilt from it (`disclosure opendata` notices the replaced log by index.json's
# seq_event, starts the delta history again and gives the snapshot a version never used before;
# index.json is kept for that, and without it the versions carry a build number counted from the
# clock). The portal serves none of the old files meanwhile.
#
#   deploy/restore.sh BACKUP_DIR --yes [--no-reindex]
#
# Stop the portals and the worker first (nothing may write meanwhile); start them afterwards.
# The target database (DISCLOSURE_DATABASE_URL) must exist and be OWNED by the role in that URL
# (the restore drops and recreates its schema public: "must be owner of schema public"
# otherwise). Create it so, as the postgres superuser:
#   createdb -O ROLE DB        (in psql: CREATE DATABASE db OWNER role;)
# Its contents are replaced. After pg_restore the schema is upgraded to this release's
# migrations (a backup from an older release restores into a newer one).
#
# secret.key is put back only into a data folder without one; a data folder holding another
# key stops the restore before anything is replaced (the key there may sign what the backup's
# does not: decide which one is right, move the other away). The attachments folder found in
# the data folder is moved aside (attachments.before-restore-<UTC time>), not deleted: files
# uploaded after the backup are the only trace of the requests the restore loses.
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
  echo "This replaces the database ${DISCLOSURE_DATABASE_URL%%@*}@… and the attachments (the folder there is moved aside). Re-run with --yes." >&2
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

# 0b. the secret key kept in the data folder (DISCLOSURE_SECRET_KEY unset): the restored audit
#     log is keyed with it, sessions and access codes signed. Checked before anything is
#     replaced; put back before after-restore writes audit entries keyed with it.
if [ -f "$dir/secret.key" ]; then
  if [ ! -e "$data_dir/secret.key" ]; then
    log "secret.key"
    mkdir -p "$data_dir"
    cp -p "$dir/secret.key" "$data_dir/secret.key"  # -p: its owner too, when run as root
    chmod 600 "$data_dir/secret.key"
  elif cmp -s "$dir/secret.key" "$data_dir/secret.key"; then
    log "secret.key already in place"
  else
    echo "restore.sh: $data_dir/secret.key differs from the backup's secret.key: the audit log" \
      "and the access codes of the backup are keyed with the backup's. Move one of them away" \
      "(keep it: what was signed with it needs it) and run again. Nothing was restored." >&2
    exit 1
  fi
fi

# 1. PostgreSQL: drop what is there, restore in one transaction
log "pg_restore"
psql "$pg_url" -Xqv ON_ERROR_STOP=1 <<'SQL'
DROP SCHEMA public CASCADE;
CREATE SCHEMA public;
SQL
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
  --dbname="$pg_url" "$dir/disclosure.pgdump"

# 2. what the backup must not bring back (accounts, sessions and tokens revoked since, today's
#    request numbers issued since); it migrates the schema first. Exit 1: the request counter
#    could not move (the accounts are disabled all the same): the restore goes on, and fails.
after_restore=0
log "disclosure after-restore"
"$bin" after-restore || after_restore=$?

# 3. attachments; the folder that was there moved aside: the files uploaded after the backup
#    are the only trace of the requests made since
if [ -f "$dir/attachments.tar.gz" ]; then
  log "attachments"
  mkdir -p "$data_dir"
  if [ -e "$data_dir/attachments" ]; then
    aside="$data_dir/attachments.before-restore-$(date -u +%Y%m%dT%H%M%SZ)"
    mv "$data_dir/attachments" "$aside"
    log "the attachments that were there are in $aside (files uploaded after the backup are" \
      "only there: look at them before deleting the folder)"
  fi
  tar -C "$data_dir" -xzf "$dir/attachments.tar.gz"
fi

# 4. schema up to this release, then search rebuilt from the database (derived data).
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
if [ "$after_restore" != 0 ]; then
  log "FAILED: disclosure after-restore exited $after_restore (see its output above)"
  exit 1
fi
