"""Progress output for the command line: one updating line per stage on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tamale.progress import ProgressEvent


class TerminalProgress:
    """A :data:`~tamale.progress.ProgressCallback` that draws a text bar.

    On a terminal the line is redrawn in place; otherwise (logs, CI) one line is
    written per stage change and at most every ``interval`` seconds.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 30, interval: float = 2.0):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self._stage: str | None = None
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        new_stage = event.stage != self._stage
        finished = event.total is not None and event.step >= event.total
        if not (self._tty or new_stage or finished or now - self._last >= self.interval):
            return
        if new_stage and self._stage is not None and self._tty:
            self.stream.write("\n")
        self._stage = event.stage
        self._last = now
        if event.total:
            frac = event.fraction or 0.0
            filled = round(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"{event.stage:>12} [{bar}] {event.step}/{event.total}"
        else:
            text = f"{event.stage:>12} {event.step}"
        if event.message:
            text += f"  {event.message}"
        if self._tty:
            self.stream.write("\r" + text[:150].ljust(80))
            if finished:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
