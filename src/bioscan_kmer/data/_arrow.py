"""Arrow views of table columns, so that millions of strings never become Python objects.

The data layer keeps strings in Arrow memory (pandas' Arrow-backed ``str`` dtype, or
pyarrow arrays) and hands them to the core as Arrow buffers; these helpers get at
those arrays without copies and turn string label columns into integer codes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["arrow_strings", "is_arrow_strings", "take", "label_codes", "release_unused", "STR_DTYPE"]

# pandas' Arrow-backed string dtype with NaN as the missing value (pandas 3's ``str``).
STR_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)


def _is_string_type(t) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_arrow_strings(values) -> bool:
    """Whether ``values`` holds strings in Arrow memory (a Series or a pyarrow array)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _is_string_type(values.type)
    if isinstance(values, pd.Series):
        dtype = values.dtype
        if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
            return True
        if isinstance(dtype, pd.ArrowDtype) and _is_string_type(dtype.pyarrow_dtype):
            return True
    return False


def arrow_strings(values):
    """``values`` as a pyarrow (chunked) string array.

    Arrow-backed Series and pyarrow arrays are returned without a copy; anything else
    (object columns, categoricals) is converted once, with missing values as nulls and
    other values as their ``str``.
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)) and _is_string_type(values.type):
        return values
    if is_arrow_strings(values):
        return pa.array(values, from_pandas=True)
    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    return pa.array(series.astype(STR_DTYPE), from_pandas=True)


def take(arr, rows) -> pa.Array:
    """Rows ``rows`` (any order) of an Arrow array or chunked array, as one array.

    pyarrow's own ``take`` on a chunked string array concatenates all chunks first (a
    copy of the whole column per call); here each chunk gives its own rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks == 1:
            arr = arr.chunk(0)
        else:
            chunks = [c for c in arr.chunks if len(c)]
            if not chunks:
                return pa.array([], type=arr.type).take(pa.array(rows))  # IndexError unless empty
            bounds = np.cumsum([0] + [len(c) for c in chunks])
            if len(rows) and (rows.min() < 0 or rows.max() >= bounds[-1]):
                raise IndexError(f"row index out of bounds for {bounds[-1]} rows")
            which = np.searchsorted(bounds, rows, side="right") - 1
            monotone = bool(np.all(which[1:] >= which[:-1])) if len(rows) > 1 else True
            order = None if monotone else np.argsort(which, kind="stable")
            by_chunk = rows if order is None else rows[order]
            w = which if order is None else which[order]
            cut = np.searchsorted(w, np.arange(len(chunks) + 1))
            parts = [chunks[c].take(pa.array(by_chunk[cut[c]:cut[c + 1]] - bounds[c]))
                     for c in range(len(chunks)) if cut[c + 1] > cut[c]]
            out = pa.concat_arrays(parts) if parts else pa.array([], type=arr.type)
            if order is not None:
                back = np.empty_like(order)
                back[order] = np.arange(len(order))
                out = out.take(pa.array(back))
            return out
    return arr.take(pa.array(rows))


def release_unused() -> None:
    """Give memory Arrow's allocator holds but no longer uses back to the system."""
    pa.default_memory_pool().release_unused()


def label_codes(col) -> tuple[np.ndarray, list[str]]:
    """Dense integer codes of a label column, in sorted-label order; -1 = missing.

    Missing values and empty strings are missing labels. ``labels[code]`` is the
    label of a code; ``labels`` is sorted (code-point order) and holds only labels
    that occur. A categorical column is coded from its categories (whatever their
    order); any other column is factorized once by the core's ``unique`` over its
    Arrow strings. Both give the same codes for the same labels.

    Returns
    -------
    codes : ndarray of int64, shape (n,)
    labels : list of str
    """
    from bioscan_kmer import unique

    if isinstance(col, pd.Series) and isinstance(col.dtype, pd.CategoricalDtype):
        cat_codes = col.cat.codes.to_numpy()
        cats = col.cat.categories
        valid = cat_codes >= 0
        used = np.bincount(cat_codes[valid], minlength=len(cats)) > 0 if len(cats) else np.zeros(0, bool)
        names = np.array([str(c) for c in cats], dtype=object)
        per_cat = np.full(len(cats), -1, dtype=np.int64)
        keep = used & (names != "") if len(cats) else used
        labels = []
        if keep.any():
            # np.unique sorts in code-point order and merges categories whose str is equal.
            uniq, inv = np.unique(names[keep].astype(str), return_inverse=True)
            per_cat[keep] = inv
            labels = uniq.tolist()
        codes = np.full(len(cat_codes), -1, dtype=np.int64)
        codes[valid] = per_cat[cat_codes[valid]]
        return codes, labels
    arr = arrow_strings(col)
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64), []
    if arr.null_count:
        # The core's unique refuses null rows: missing and "" are both "no label".
        arr = pc.fill_null(arr, "")
    uniq, inverse, _ = unique(arr)
    uniq = uniq.combine_chunks() if isinstance(uniq, pa.ChunkedArray) else uniq
    order = pc.array_sort_indices(uniq).to_numpy()
    labels = uniq.take(pa.array(order)).to_pylist()
    skip = 1 if labels and labels[0] == "" else 0  # "" sorts first
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64) - skip
    codes = rank[np.asarray(inverse, dtype=np.int64)]
    return codes, labels[skip:]
