"""Arrow views of table columns, so that millions of strings never become Python objects.

The data layer keeps strings in Arrow memory (pandas' Arrow-backed ``str`` dtype, or
pyarrow arrays) and hands them to the core as Arrow buffers; these helpers get at
those arrays without copies. (Label coding, once here, is in :mod:`bioscan_kmer.data.labels`.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

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


def __getattr__(name: str):
    # label_codes lives with the rest of label coding in data.labels (which imports this
    # module, hence the lazy re-export); the old import path keeps working.
    if name == "label_codes":
        from bioscan_kmer.data.labels import label_codes

        return label_codes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
