"""Stopping a run cleanly when the job scheduler asks: SIGTERM, and SIGUSR1.

Schedulers end a job with SIGTERM (Slurm, Kubernetes, torchrun passing it on) and warn of a
pre-emption with SIGUSR1 (Slurm's ``--signal=USR1@90``). Without a handler SIGTERM kills
Python on the spot: no checkpoint since the last periodic one, and temporary files left
behind. :class:`StopSignals` handles both in two phases:

- **setup** (opening data, building the model): the handler raises :class:`Stopped`. The
  native core runs Python's signal handlers while it works and cancels a long call when a
  handler raises (``python/bindings.cpp``, docs/hardening.md), so a long tokenization or
  cleaning call stops within ~20 ms, exactly as on Ctrl-C.
- **training** (after :meth:`StopSignals.defer`): the handler only records the signal; the
  loop finishes its optimizer step, writes the checkpoint and returns. A run resumed from
  that checkpoint computes what the uninterrupted run would have.

Handlers are installed only in the main thread (Python's rule) and the previous ones are
restored on exit.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["Stopped", "StopSignals", "STOP_SIGNALS"]

#: The signals that stop a run (SIGUSR1 does not exist on Windows).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))


class Stopped(BaseException):
    """A stop signal arrived before training started; nothing was written.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` on the
    way (a reader turning foreign errors into its own) can swallow it.

    Attributes
    ----------
    signum : int
        The signal; a command line exits with ``128 + signum`` (143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"stopped by {signal.Signals(signum).name} before training started")


class StopSignals:
    """Context manager: SIGTERM/SIGUSR1 raise :class:`Stopped` until :meth:`defer`, then set
    :attr:`signum`, which the training loop polls between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._deferred = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        if not self._deferred:
            raise Stopped(signum)

    def defer(self) -> None:
        """From now on a signal only requests a stop; a signal already received still counts."""
        self._deferred = True

    @property
    def name(self) -> str | None:
        """Name of the signal received (``"SIGTERM"``), or None."""
        return None if self.signum is None else signal.Signals(self.signum).name

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
