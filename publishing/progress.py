"""Progress for long runs: a rich bar (rows/s) on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Progress:
    def __init__(self, label: str, every_rows: int = 100_000, stream=None):
        self.label = label
        self.every = every_rows
        self.stream = stream or sys.stderr
        self.rows = 0
        self._next_log = every_rows
        self._start = time.perf_counter()
        self._bar = None
        self._task = None

    def advance(self, rows: int) -> None:
        self.rows += rows
        if self._bar is not None:
            self._bar.update(self._task, completed=self.rows)
        elif self.rows >= self._next_log:
            self._next_log += self.every
            self._log()

    def _log(self) -> None:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        print(
            f"{self.label}：{self.rows:,} 行，{self.rows / elapsed:,.0f} 行/秒",
            file=self.stream,
            flush=True,
        )


@contextmanager
def progress(label: str, enabled: bool = True) -> Iterator[Progress]:
    """Yield a Progress; draws a bar only when stderr is a terminal."""
    from publishing.settings import get_settings

    p = Progress(label, every_rows=get_settings().progress_every)
    if enabled and sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import (
            Progress as Bar,
        )

        class RateColumn(TextColumn):
            def render(self, task):  # rows/s, as the issue asks
                speed = task.finished_speed or task.speed or 0
                return super().render(task).__class__(f"{speed:,.0f} 行/秒")

        with Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(""),
            TimeElapsedColumn(),
            transient=False,
        ) as bar:
            p._bar, p._task = bar, bar.add_task(label, total=None)
            yield p
    else:
        yield p
        if enabled and p.rows:
            p._log()
