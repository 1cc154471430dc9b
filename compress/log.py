"""Progress and log lines: a live bar on a terminal, plain lines otherwise, JSON for machines."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class Log:
    def __init__(self, quiet: bool = False, json_lines: bool = False, stream: TextIO | None = None):
        self.quiet, self.json_lines = quiet, json_lines
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() and not json_lines and not quiet

    def info(self, message: str, **fields: Any) -> None:
        if self.quiet:
            return
        if self.json_lines:
            line = json.dumps({"time": round(time.time(), 3), "message": message, **fields})
        else:
            line = message
        print(line, file=self.stream, flush=True)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Progress]:
        if self.live:
            from rich.progress import Progress as RichProgress

            with RichProgress(transient=True) as bar:
                task = bar.add_task(description, total=total)
                yield Progress(self, description, total, lambda n: bar.update(task, completed=n))
        else:
            yield Progress(self, description, total, None)


class Progress:
    """Counts steps; without a live bar it prints a line at every tenth of the way, with ETA."""

    def __init__(self, log: Log, description: str, total: int, redraw: Any) -> None:
        self.log, self.description, self.total, self.redraw = log, description, total, redraw
        self.done, self.start, self.next_print = 0, time.perf_counter(), max(1, total // 10)

    def advance(self, steps: int = 1, **fields: Any) -> None:
        self.done += steps
        if self.redraw:
            self.redraw(self.done)
        elif self.done >= self.next_print or self.done == self.total:
            self.next_print += max(1, self.total // 10)
            elapsed = time.perf_counter() - self.start
            eta = elapsed / self.done * (self.total - self.done)
            shown = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in fields.items())  # fmt: skip
            self.log.info(
                f"  {self.description}: {self.done}/{self.total} {shown} eta {eta:.0f}s",
                step=self.done, total=self.total, eta_s=round(eta, 1), **fields,
            )  # fmt: skip
