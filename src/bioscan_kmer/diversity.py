"""Shannon diversity of counts and of labelled groups (SPEC section 5)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _core
from ._threads import resolve_threads

__all__ = ["shannon", "grouped_shannon", "paper_sdi", "PAPER_EPSILON"]

#: The constant inside ``log2(p + eps)`` of the BIOSCAN-5M statistics code.
PAPER_EPSILON = 1e-12


def _check_base(base: float) -> float:
    base = float(base)
    if not (base > 0) or base == 1 or not math.isfinite(base):
        raise ValueError(f"base must be positive, finite and not 1, got {base}")
    return base


def shannon(counts: Any, *, base: float = math.e) -> float:
    """Shannon index of one count vector, as ``skbio.diversity.alpha.shannon``.

    ``-sum p_i log(p_i) / log(base)`` over the non-zero counts, ``p_i = c_i / sum c``.
    Zeros are dropped; empty or all-zero counts give NaN.

    Raises
    ------
    ValueError
        Negative, non-finite or non-1-D counts, or an invalid base.
    """
    arr = np.asarray(counts)
    if arr.dtype == object or arr.dtype.kind not in "iufb":
        raise TypeError(f"counts must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"counts must be 1-D, got shape {arr.shape}")
    return _core.shannon(arr.astype(np.float64, copy=False), base=_check_base(base), epsilon=0.0)


def _codes(values: Any, name: str) -> tuple[np.ndarray, Any]:
    """Integer codes (negative = missing) and the key of each code."""
    arr = values if isinstance(values, np.ndarray) else None
    if arr is not None and arr.dtype.kind in "iu":
        # Read the largest value before any cast: uint64 codes >= 2**63 would wrap to
        # negative int64, i.e. silently become missing.
        top = int(arr.max()) if arr.size else -1
        n = top + 1 if top >= 0 else 0
        # Integer codes index a table of n entries: sparse codes (ids, hashes) would
        # ask for gigabytes. Such values are labels, not codes.
        if n > 4 * arr.size + (1 << 20):
            raise ValueError(f"{name}: integer codes must be dense (0..n-1); the largest is {n - 1:,} for "
                             f"{arr.size:,} rows. Factorize them first (pandas.factorize) or pass "
                             "them as labels (e.g. strings).")
        return arr.astype(np.int64, copy=False), np.arange(n)
    import pandas as pd

    from bioscan_kmer.data.labels import is_missing_label

    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        codes, keys = values.cat.codes.to_numpy(np.int64), values.cat.categories
    else:
        series = pd.Series(values, copy=False) if not isinstance(values, pd.Series) else values
        if series.dtype.kind in "iu":
            return _codes(series.to_numpy(), name)
        codes, keys = pd.factorize(series, use_na_sentinel=True)
        codes = codes.astype(np.int64, copy=False)
    # The one rule for a missing label (data.labels): None, NaN, "" and whitespace-only,
    # applied to the distinct keys, whichever container the labels came in.
    missing = is_missing_label(keys)
    if missing.any():
        new = np.where(missing, -1, np.cumsum(~missing) - 1)
        codes = np.where(codes >= 0, new[np.maximum(codes, 0)], -1)
        keys = keys[~missing]
    return codes, keys


def grouped_shannon(
    groups: Any,
    items: Any,
    *,
    base: float = 2.0,
    epsilon: float = 0.0,
    threads: int | None = None,
) -> tuple[Any, np.ndarray]:
    """Shannon index of the items' distribution inside every group, for millions of rows.

    For each group g: ``-sum_i p_i log(p_i + epsilon) / log(base)`` where ``p_i`` is the
    fraction of g's rows holding item i. This is the "Avg SDI" engine of the dataset
    statistics (groups = a taxonomic rank's labels, items = barcodes).

    Parameters
    ----------
    groups, items : array-like of the same length
        Integer codes (a NumPy integer array: dense, 0..n-1, negative = missing) or
        labels of any hashable type (missing: None, NaN, and a str that is empty or
        only whitespace, the rule of :mod:`bioscan_kmer.data.labels`). Rows missing
        either value are ignored.
    base : float
        Logarithm base; 2 gives bits.
    epsilon : float
        Added inside the logarithm; :data:`PAPER_EPSILON` reproduces the paper.
    threads : int, optional

    Returns
    -------
    keys
        The group labels (``arange(n_groups)`` for integer codes, else in first-occurrence
        order, or the categories of a categorical less the missing ones such as ``""``).
    values : ndarray of float64
        One index per key; NaN for a group without rows.
    """
    base = _check_base(base)
    if not (epsilon >= 0) or not math.isfinite(epsilon):
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon}")
    g, keys = _codes(groups, "groups")
    it, _ = _codes(items, "items")
    if len(g) != len(it):
        raise ValueError(f"groups and items differ in length: {len(g)} vs {len(it)}")
    values, _rows = _core.grouped_shannon(
        g, it, n_groups=len(keys), base=base, epsilon=float(epsilon), threads=resolve_threads(threads)
    )
    return keys, values


def paper_sdi(groups: Any, items: Any, *, threads: int | None = None) -> tuple[Any, np.ndarray]:
    """The BIOSCAN-5M paper's SDI per group: bits, ``-sum p log2(p + 1e-12)``."""
    return grouped_shannon(groups, items, base=2.0, epsilon=PAPER_EPSILON, threads=threads)
