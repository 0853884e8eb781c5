"""Up-front cost estimates for the long steps of an evaluation.

A long step (fine-tuning, the CNN's training, the edit-distance search) times its first
few units of work and says, before it goes on, about how long the whole step will take:
on a shared 2-core machine the evaluation of a 200k-record table takes minutes, and a
person should know that at the start, not find out at the end. Messages go to stderr,
through the step's progress reporter when it has one (so that a terminal bar is not
broken), and only when progress output is on.
"""

from __future__ import annotations

import sys
import time

__all__ = ["format_seconds", "announce", "FirstUnitsTimer"]


def format_seconds(seconds: float) -> str:
    """``"45 s"``, ``"3.2 min"``, ``"1.4 h"``: a duration a person reads at a glance."""
    if seconds != seconds or seconds < 0:  # NaN or negative: nothing sensible to say
        return "? s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def announce(message: str, bar=None) -> None:
    """Write one line to stderr, through ``bar.write`` when a progress bar is active."""
    if bar is not None:
        bar.write(message)
    else:
        print(message, file=sys.stderr, flush=True)


class FirstUnitsTimer:
    """Times the first units of a step and reports once when it has seen enough.

    Parameters
    ----------
    total : int
        Units in the whole step (batches of all epochs, queries...).
    min_units : int
        Units to time at least before estimating (the first one carries one-time costs).
    min_seconds : float
        Or keep timing until this long has passed, whichever comes later, but never past
        ``max_units``.
    max_units : int
        Estimate at the latest after this many units.

    Use ``timer.tick(n)`` after each unit of work; it returns the estimated seconds for
    the remaining units exactly once (then ``None``).
    """

    def __init__(self, total: int, *, min_units: int = 3, min_seconds: float = 2.0, max_units: int = 50):
        self.total = int(total)
        self.min_units = max(1, int(min_units))
        self.min_seconds = float(min_seconds)
        self.max_units = max(self.min_units, int(max_units))
        self.done = 0
        self.start = time.perf_counter()
        self.per_unit: float | None = None

    def tick(self, n: int = 1) -> float | None:
        """Count ``n`` finished units; the estimate of the remaining seconds, once."""
        if self.per_unit is not None:
            return None
        self.done += n
        elapsed = time.perf_counter() - self.start
        enough = self.done >= self.min_units and (elapsed >= self.min_seconds or self.done >= self.max_units)
        if not (enough or self.done >= self.total):
            return None
        self.per_unit = elapsed / max(self.done, 1)
        return self.per_unit * max(self.total - self.done, 0)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
