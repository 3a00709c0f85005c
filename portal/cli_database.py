"""The database as the command line opens it, and the one-line ending of a verb that cannot
reach it; shared by portal.cli and portal.cli_casework (which portal.cli loads lazily)."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

EXIT_DATABASE = 3


class NoDatabase(Exception):
    """The SQLite database file named by the settings does not exist."""


def open_database(create: bool = True):
    """The database, migrated. Commands that only work on what was published (create=False)
    do not create a SQLite file that is not there: a mistyped path or data directory made an
    empty database, and `export` wrote no records, `opendata` empty snapshots, with exit 0."""
    from publishing.db import get_engine, sqlite_file, upgrade
    from publishing.settings import get_settings

    url = get_settings().effective_database_url
    if not create and (path := sqlite_file(url)) is not None and not path.exists():
        raise NoDatabase(path)
    engine = get_engine(url)
    upgrade(engine)
    return engine


def database_errors(consequence: str) -> Callable:
    """A database that cannot be reached (or fails midway) ends the command with one line and
    EXIT_DATABASE, not a traceback and the exit code of rejected rows."""

    def wrap(cmd: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(cmd)
        def run(args: argparse.Namespace) -> int:
            from sqlalchemy.exc import InterfaceError, OperationalError

            try:
                return cmd(args)
            except (OperationalError, InterfaceError) as err:
                cause = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
                print(f"错误：无法访问数据库（{cause}）：{consequence}。", file=sys.stderr)
                return EXIT_DATABASE
            except NoDatabase as err:
                print(
                    f"错误：数据库文件 {err} 不存在（请检查 DISCLOSURE_DATABASE_URL 和 "
                    f"DISCLOSURE_DATA_DIR；新数据库由 disclosure publish 创建）：{consequence}。",
                    file=sys.stderr,
                )
                return EXIT_DATABASE

        return run

    return wrap
