"""Exact deduplication of barcodes (SPEC section 4)."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._sequences import as_sequences, take
from ._threads import resolve_threads

__all__ = ["unique"]


def unique(seqs: Any, *, return_values: bool = True, threads: int | None = None
           ) -> tuple[Any, np.ndarray, np.ndarray]:
    """Distinct sequences in first-occurrence order, like ``pandas.factorize`` plus counts.

    Parameters
    ----------
    seqs : list of str, NumPy array, pandas Series or pyarrow array
    return_values : bool
        False returns, in place of the distinct rows, the int64 row index of each one's
        first occurrence (``uniques == seqs[first_index]``): callers that only need the
        codes skip copying the distinct strings, gigabytes at BIOSCAN-5M scale.
    threads : int, optional

    Returns
    -------
    uniques
        The distinct rows in order of first occurrence, in the container type of the
        input (a list for lists and tuples; the original objects are reused); or their
        first row indices with ``return_values=False``.
    inverse : ndarray of int64, shape (n,)
        ``uniques[inverse[i]] == seqs[i]``.
    counts : ndarray of int64, shape (n_unique,)
        Rows per distinct sequence.

    Notes
    -----
    Comparison is exact and byte-wise: clean first (:func:`bioscan_kmer.clean`) to
    merge case or gap variants, as BarcodeBERT's pretraining set does.
    """
    first, inverse, counts = _core.unique(as_sequences(seqs), threads=resolve_threads(threads))
    return (take(seqs, first) if return_values else first), inverse, counts
