"""The libpq URL of DISCLOSURE_DATABASE_URL (for psql, pg_dump, pg_restore in backup.sh and
restore.sh): without SQLAlchemy's driver suffix, user and password percent-encoded. SQLAlchemy
takes a password as written (a `/` or `+` of `openssl rand -base64` included) or encoded; libpq
reads a raw `/` as the end of the host part. Parsed here as SQLAlchemy does."""

import re
import sys
from urllib.parse import quote, unquote

m = re.fullmatch(r"postgresql(?:\+\w+)?://(?:([^:/]*)(?::([^@]*))?@)?(.*)", sys.argv[1], re.S)
if m is None:
    sys.exit("DISCLOSURE_DATABASE_URL is not a postgresql:// URL")
user, password, rest = m.groups()
auth = ""
if user is not None:
    auth = quote(unquote(user), safe="")
    if password is not None:
        auth += ":" + quote(unquote(password), safe="")
    auth += "@"
print(f"postgresql://{auth}{rest}")
