"""Turning the sequence containers users have into the core's zero-copy views.

Lists, tuples and NumPy arrays go straight to the core. pandas Series backed by Arrow
and pyarrow arrays are read from their Arrow buffers, without a Python object per row.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from . import _core


def _arrow_chunks(arr: Any) -> list[tuple]:
    import pyarrow as pa

    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = []
    for chunk in chunks:
        t = chunk.type
        if pa.types.is_dictionary(t):
            chunk = chunk.cast(t.value_type)
            t = chunk.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                or pa.types.is_large_binary(t)):
            if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
                chunk = chunk.cast(pa.large_string())
                t = chunk.type
            elif pa.types.is_null(t) and len(chunk) > 0:
                raise TypeError("row 0: sequence is missing (null)")
            elif pa.types.is_null(t):
                continue
            else:
                raise TypeError(f"expected an Arrow array of strings, got type {t}")
        validity, offsets, data = chunk.buffers()[:3]
        large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
        off_dtype = np.int64 if large else np.int32
        offsets_np = np.frombuffer(offsets, dtype=off_dtype) if offsets is not None else np.zeros(1, off_dtype)
        data_np = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        out.append((validity, offsets_np, data_np, chunk.offset, len(chunk)))
    return out


def as_sequences(seqs: Any) -> _core.Sequences:
    """Wrap ``seqs`` for the core, raising TypeError/ValueError that name the bad row."""
    if isinstance(seqs, _core.Sequences):
        return seqs
    if isinstance(seqs, (str, bytes)):
        raise TypeError("expected a collection of sequences, got a single string; wrap it in a list")
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(seqs, (pd.Series, pd.Index)):
        return _from_pandas(seqs)
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(seqs, (pa.Array, pa.ChunkedArray)):
        return _core.Sequences.from_arrow(_arrow_chunks(seqs))
    return _core.Sequences(seqs)


def _from_pandas(series: Any) -> _core.Sequences:
    import pandas as pd

    values = series.array
    # Arrow-backed strings (pandas 3's default "str" dtype, or "string[pyarrow]").
    pa_array = getattr(values, "_pa_array", None)
    if pa_array is not None:
        return _core.Sequences.from_arrow(_arrow_chunks(pa_array))
    if isinstance(series.dtype, pd.CategoricalDtype):
        return as_sequences(np.asarray(series.astype(object)))
    obj = series.to_numpy(dtype=object, na_value=None)
    return _core.Sequences(obj)


def take(seqs: Any, indices: np.ndarray) -> Any:
    """Rows ``indices`` of ``seqs``, in the container type the user gave."""
    if isinstance(seqs, (list, tuple)):
        return [seqs[i] for i in indices.tolist()]
    if isinstance(seqs, np.ndarray):
        return seqs[indices]
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(seqs, pd.Series):
        return seqs.iloc[indices].reset_index(drop=True)
    if pd is not None and isinstance(seqs, pd.Index):
        return seqs[indices]
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(seqs, pa.ChunkedArray):
        return _take_chunked(seqs, indices)
    if pa is not None and isinstance(seqs, pa.Array):
        if pa.types.is_string_view(seqs.type):  # no take kernel for views yet
            seqs = seqs.cast(pa.large_string())
        return seqs.take(pa.array(indices))
    return [seqs[i] for i in indices.tolist()]


def _take_chunked(arr: Any, indices: np.ndarray) -> Any:
    """``arr.take(indices)`` chunk by chunk.

    pyarrow's take on a ChunkedArray first concatenates every chunk: a full copy of a
    multi-gigabyte column to pick a few rows.
    """
    import pyarrow as pa

    indices = np.asarray(indices, dtype=np.int64)
    starts = np.cumsum([0] + [len(c) for c in arr.chunks])
    which = np.searchsorted(starts, indices, side="right") - 1
    ascending = indices.size < 2 or bool(np.all(indices[1:] >= indices[:-1]))
    order = np.arange(indices.size) if ascending else np.argsort(which, kind="stable")
    parts = []
    for c in np.unique(which):
        sel = order[which[order] == c]
        chunk = arr.chunk(int(c))
        if pa.types.is_string_view(chunk.type):
            chunk = chunk.cast(pa.large_string())
        parts.append(chunk.take(pa.array(indices[sel] - starts[c])))
    if not parts:
        return arr.take(pa.array(indices))  # empty selection: keep the type
    out = pa.chunked_array(parts)
    if not ascending:
        # Back to the caller's order; this take is on the (small) selection only.
        out = pa.chunked_array([pa.concat_arrays(out.chunks).take(pa.array(np.argsort(order, kind="stable")))])
    return out
