"""Progress reporting: a tqdm bar on a terminal, plain lines anywhere else.

A bar redraws itself with carriage returns; written to a log file or a pipe (a batch
job, CI, ``nohup``) that leaves one enormous line of ``\\r`` fragments. So every long
step of the package asks :func:`progress_bar` for its reporter: when the stream is a
terminal it gets a tqdm bar; otherwise a :class:`LineProgress` that writes an ordinary
line now and then (at most one per ``every`` seconds and per ``1/lines`` of the total,
plus the last one).

``BIOSCAN_KMER_PROGRESS=bar`` or ``=lines`` overrides the choice; ``=off`` silences both.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator

__all__ = ["progress_bar", "LineProgress", "is_terminal"]

_ENV = "BIOSCAN_KMER_PROGRESS"
_MODES = ("auto", "bar", "lines", "off")


def is_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default: ``sys.stderr``) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        # Closed or replaced streams (pytest's capture, a file object without a fd).
        return False


def _mode() -> str:
    mode = os.environ.get(_ENV, "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"{_ENV}={mode!r}: expected one of {', '.join(_MODES)}")
    return mode


def _fmt(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


class LineProgress:
    """The subset of tqdm's interface the package uses, writing plain lines.

    Parameters
    ----------
    iterable : iterable, optional
        Iterate through it, counting one step per item.
    total : int, optional
        Steps expected (``len(iterable)`` when it has one).
    desc, unit : str
        Shown at the start of each line and after the count.
    initial : int
        Steps already done (a resumed run).
    disable : bool
        Write nothing.
    file : file object
        Where lines go (default ``sys.stderr``).
    every : float
        Minimum seconds between two lines (the last line is always written).
    lines : int
        With a known total, at most about this many lines over the whole run.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, disable: bool = False, file: Any = None,
                 every: float = 10.0, lines: int = 20, **_ignored: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.disable = disable
        self.file = file
        self.every = every
        self.step = max(1.0, total / max(1, lines)) if total else None
        self.postfix = ""
        self._start = time.monotonic()
        self._last_time = -float("inf")
        self._last_n = initial
        self._closed = False

    # tqdm's interface ------------------------------------------------------------------

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("this progress reporter was made without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        if self.disable:
            return
        now = time.monotonic()
        due_count = self.step is None or self.n - self._last_n >= self.step
        if due_count and now - self._last_time >= self.every:
            self._write(now)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def write(self, text: str) -> None:
        if not self.disable:
            print(text, file=self.file or sys.stderr, flush=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.disable and self.n != self._last_n:
            self._write(time.monotonic())

    # ------------------------------------------------------------------------------------

    def _write(self, now: float) -> None:
        elapsed = now - self._start
        count = f"{_fmt(self.n)}/{_fmt(self.total)}" if self.total else _fmt(self.n)
        pct = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        line = f"{self.desc}: {count} {self.unit}{pct}, {elapsed:.0f} s"
        if self.postfix:
            line += f" [{self.postfix}]"
        print(line, file=self.file or sys.stderr, flush=True)
        self._last_time, self._last_n = now, self.n


def progress_bar(iterable: Iterable | None = None, *, disable: bool = False, file: Any = None, **kwargs: Any):
    """A progress reporter with tqdm's interface: a bar on a terminal, lines elsewhere.

    Parameters
    ----------
    iterable : iterable, optional
    disable : bool
        No output at all (library calls default to quiet; the CLI turns progress on).
    file : file object, optional
        Default ``sys.stderr``; the terminal test is made on it.
    **kwargs
        tqdm's ``total``, ``desc``, ``unit``, ``initial``, ``leave``, ``dynamic_ncols``...;
        :class:`LineProgress` ignores the ones about drawing.

    Raises
    ------
    ValueError
        ``BIOSCAN_KMER_PROGRESS`` holds an unknown mode.
    """
    mode = _mode()
    if mode == "off":
        disable = True
    if mode == "bar" or (mode == "auto" and is_terminal(file)):
        from tqdm import tqdm

        return tqdm(iterable, disable=disable, file=file, **kwargs)
    return LineProgress(iterable, disable=disable, file=file, **kwargs)
