"""k-mer spectra: features for k-mer-frequency baselines and composition checks."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._sequences import as_sequences
from ._threads import resolve_threads

__all__ = ["kmer_counts"]


def kmer_counts(
    seqs: Any,
    *,
    k: int,
    per_sequence: bool = True,
    dtype: Any = np.int32,
    threads: int | None = None,
) -> np.ndarray:
    """Overlapping k-mer counts in ``itertools.product("ACGT")`` order.

    Every window of k bases (stride 1) that holds only uppercase ``A``, ``C``, ``G``,
    ``T`` is counted; windows with any other letter are skipped.

    Parameters
    ----------
    seqs : sequences (see :func:`bioscan_kmer.tokenize`)
    k : int
        1 to 12. Per-sequence output has ``4**k`` columns: mind the memory for large k.
    per_sequence : bool
        True: one row per sequence, shape ``(n, 4**k)`` of ``dtype``. False: the summed
        spectrum, shape ``(4**k,)`` of int64.
    dtype : {int32, int64}
    threads : int, optional
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if not 1 <= k <= 12:
        raise ValueError(f"k must be between 1 and 12, got {k}")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise TypeError(f"dtype must be int32 or int64, got {dt}")
    return _core.kmer_counts(as_sequences(seqs), k=int(k), per_row=bool(per_sequence), dtype=dt,
                             threads=resolve_threads(threads))
