"""A one-line progress bar on stderr, drawn only when stderr is a terminal (never in a pipe or a log)."""

import shutil
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_WIDTH = 30
_REDRAW_S = 0.2


class Progress:
    """`with Progress("processing", total) as bar: bar.advance("R-000001")`; a total of None shows a count.

    The line is redrawn every 0.2 s, so the elapsed time moves while one long step runs.
    """

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label, self.total, self.done, self.note = label, total, 0, ""
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._redraw, daemon=True)

    def __enter__(self) -> "Progress":
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
            with self._lock:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def advance(self, note: str = "", steps: int = 1) -> None:
        with self._lock:
            self.done += steps
            self.note = note
            if self.total is not None:
                self.total = max(self.total, self.done)

    def start(self, note: str) -> None:
        """Name the step now running, without counting it yet."""
        with self._lock:
            self.note = note

    def line(self) -> str:
        elapsed = f"{time.monotonic() - self._started:.1f} s"
        if self.total:
            filled = _WIDTH * self.done // self.total
            bar = "#" * filled + "." * (_WIDTH - filled)
            return f"{self.label} [{bar}] {self.done}/{self.total} {elapsed} {self.note}".rstrip()
        return f"{self.label}: {self.done} done, {elapsed} {self.note}".rstrip()

    def draw(self) -> None:
        columns = shutil.get_terminal_size().columns - 1
        with self._lock:
            self.stream.write("\r\033[K" + self.line()[:columns])
            self.stream.flush()

    def _redraw(self) -> None:
        while not self._stop.wait(_REDRAW_S):
            self.draw()
