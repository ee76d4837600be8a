"""A rich progress bar over rows, with rows per second (on stderr; silent when off)."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s", style="progress.data.speed")


class RowProgress:
    """Counts scored rows against `total`; `counted` wraps a stream of tables."""

    def __init__(self, total: int, *, enabled: bool, description: str = "scoring") -> None:
        self.progress: Progress | None = None
        if enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RowsPerSecond(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.task = self.progress.add_task(description, total=total)

    def __enter__(self) -> RowProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def counted(self, tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """`tables`, advancing the bar by each table's rows."""
        try:
            for table in tables:
                if self.progress is not None:
                    self.progress.advance(self.task, table.num_rows)
                yield table
        finally:
            close = getattr(tables, "close", None)
            if close is not None:
                close()  # stops a producer thread or a Ray session at once
