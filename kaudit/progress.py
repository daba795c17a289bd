"""One status line on standard error while a long step runs, for a person watching a terminal.

Only on a terminal: a pipe, a file or a CI log gets nothing (a log of carriage returns helps no
one). The line is rewritten in place (`\\r`, then erase to the end of the line) and erased at the
end, so what follows starts on a clean line. Thread-safe: cluster lists run concurrently.
"""
from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import Optional, TextIO

ERASE_LINE = "\r\x1b[K"
MIN_INTERVAL = 0.1  # seconds between redraws: a fast scan of many small pages must not flood the terminal


class Progress:
    """An updating status line on `stream`; None: silent (not a terminal, or switched off)."""

    def __init__(self, stream: Optional[TextIO]) -> None:
        self.stream = stream
        self.shown = False
        self.last = 0.0
        self.lock = threading.Lock()

    @classmethod
    def on_stderr(cls, wanted: bool = True) -> "Progress":
        """Progress on standard error when `wanted` and it is a terminal; silent otherwise."""
        stream = sys.stderr
        try:
            terminal = wanted and stream is not None and stream.isatty()
        except (AttributeError, ValueError):  # a replaced or closed stream
            terminal = False
        return cls(stream if terminal else None)

    def update(self, text: str, force: bool = False) -> None:
        if self.stream is None:
            return
        with self.lock:
            now = time.monotonic()
            if self.shown and not force and now - self.last < MIN_INTERVAL:
                return
            width = shutil.get_terminal_size((80, 24)).columns
            self.stream.write(ERASE_LINE + text[:max(width - 1, 10)])
            self.stream.flush()
            self.shown, self.last = True, now

    def done(self) -> None:
        """Erase the line: the report or the next message starts clean."""
        if self.stream is None or not self.shown:
            return
        with self.lock:
            self.stream.write(ERASE_LINE)
            self.stream.flush()
            self.shown = False
