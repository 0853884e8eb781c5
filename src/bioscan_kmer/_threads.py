"""How many worker threads a core call uses when the caller says ``threads=None``."""
from __future__ import annotations

import os
import sys

ENV_VAR = "BIOSCAN_KMER_THREADS"


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _in_dataloader_worker() -> bool:
    # Only look if torch is already loaded: importing it here would cost seconds.
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return torch.utils.data.get_worker_info() is not None
    except AttributeError:
        return False


def resolve_threads(threads: int | None) -> int:
    """Return the number of threads to use.

    ``None`` means: ``BIOSCAN_KMER_THREADS`` if set; 1 inside a PyTorch DataLoader worker
    (each worker is already one process per core, more threads would oversubscribe);
    otherwise every core this process may run on.
    """
    if threads is None:
        env = os.environ.get(ENV_VAR)
        if env:
            try:
                value = int(env)
            except ValueError:
                raise ValueError(f"{ENV_VAR} must be a positive integer, got {env!r}") from None
            if value < 1:
                raise ValueError(f"{ENV_VAR} must be a positive integer, got {env!r}")
            return value
        return 1 if _in_dataloader_worker() else _cpu_count()
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads
