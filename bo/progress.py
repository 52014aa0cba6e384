"""A small progress bar for long CLI work: done/total, rate and ETA on stderr."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int | None, *, stream: TextIO = sys.stderr,
                 every_s: float = 0.5) -> None:
        self.label, self.total, self.stream, self.every_s = label, total, stream, every_s
        self.done = 0
        self._start = self._last = time.monotonic()
        self._tty = stream.isatty()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._draw(final=True)

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._draw()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * 30)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            return (f"{self.label}: [{bar:<30}] {self.done}/{self.total} "
                    f"{rate:,.0f}/s ETA {eta:,.0f}s")
        return f"{self.label}: {self.done} {rate:,.0f}/s"

    def _draw(self, final: bool = False) -> None:
        if self._tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
        elif final:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
