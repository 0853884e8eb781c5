"""Label coding: one rule for a missing label, one global label map per taxonomic rank.

Every place that turns labels into integer codes goes through this module: the
statistics table, the split algorithm and shard preparation (:func:`label_codes`), the
label maps (:func:`label_maps`, :func:`encode_labels`), the evaluation's
:class:`bioscan_kmer.eval.labels.LabelMap`, and :func:`bioscan_kmer.grouped_shannon`
when it is given labels rather than codes.

A label is **missing** when it is null (None, NaN, pandas NA) or a ``str`` that is empty
or holds only whitespace: SPEC section 1 says empty means unlabelled, and a cell of
spaces names nothing either. Every other value is a label, compared exactly (no
stripping, case kept). BIOSCAN-1M's ``not_classified`` placeholder words are turned into
missing values by the reader (:mod:`bioscan_kmer.data.reading`), not here.

Label ids are codes over the whole table (sorted labels, -1 for missing), as the
official loader's category codes are, so that ids agree across splits. Never build a
map from one split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bioscan_kmer.data._arrow import arrow_strings
from bioscan_kmer.data.schema import RANKS

__all__ = ["is_missing_label", "label_codes", "codes_in_map", "label_maps", "encode_labels",
           "save_label_maps", "load_label_maps"]


def is_missing_label(values: Any) -> np.ndarray:
    """Boolean mask of missing labels (see the module's rule), one entry per value.

    Parameters
    ----------
    values : array_like, pandas Series or Index, or pyarrow array

    Returns
    -------
    ndarray of bool
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pandas()
    obj = np.asarray(values, dtype=object).reshape(-1)
    # Hash the rows once (nulls get -1) and test only the distinct values in Python.
    codes, distinct = pd.factorize(obj, use_na_sentinel=True)
    blank = np.fromiter((isinstance(v, str) and not v.strip() for v in distinct), dtype=bool,
                        count=len(distinct))
    return (codes < 0) | blank[np.maximum(codes, 0)] if len(distinct) else codes < 0


def label_codes(col: Any) -> tuple[np.ndarray, list[str]]:
    """Dense integer codes of a label column, in sorted-label order; -1 = missing.

    ``labels[code]`` is the label of a code; ``labels`` is sorted (code-point order) and
    holds only labels that occur. Labels are compared as their ``str``. A categorical
    column is coded from its categories (whatever their order, unused ones left out);
    any other column (object, Arrow-backed strings, a pyarrow array) is dictionary
    encoded once in Arrow. Every container gives the same codes for the same labels.

    Parameters
    ----------
    col : pandas Series, pyarrow array or array_like

    Returns
    -------
    codes : ndarray of int64, shape (n,)
    labels : list of str
    """
    if isinstance(col, pd.Series) and isinstance(col.dtype, pd.CategoricalDtype):
        cat_codes = col.cat.codes.to_numpy()
        names = np.array([str(c) for c in col.cat.categories], dtype=object)
        valid = cat_codes >= 0
        used = np.bincount(cat_codes[valid], minlength=len(names)) > 0
        keep = used & ~is_missing_label(names)
        per_cat = np.full(len(names), -1, dtype=np.int64)
        labels: list[str] = []
        if keep.any():
            # np.unique sorts in code-point order and merges categories whose str is equal.
            uniq, inv = np.unique(names[keep].astype(str), return_inverse=True)
            per_cat[keep] = inv
            labels = uniq.tolist()
        codes = np.full(len(cat_codes), -1, dtype=np.int64)
        codes[valid] = per_cat[cat_codes[valid]]
        return codes, labels
    arr = arrow_strings(col if isinstance(col, (pd.Series, pa.Array, pa.ChunkedArray)) else pd.Series(col))
    if len(arr) == 0:
        return np.zeros(0, dtype=np.int64), []
    # Arrow's hash kernel: any UTF-8 (the core's unique is for ASCII barcodes) and,
    # on short labels, several times faster. Nulls stay null (-1 below).
    encoded = pc.dictionary_encode(arr)
    chunks = encoded.unify_dictionaries().chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    dictionary = chunks[0].dictionary
    inverse = np.concatenate([pc.fill_null(c.indices.cast(pa.int64()), -1).to_numpy() for c in chunks])
    if len(dictionary) == 0:  # every row null
        return np.full(len(inverse), -1, dtype=np.int64), []
    order = pc.array_sort_indices(dictionary).to_numpy()  # UTF-8 byte order = code-point order
    names = dictionary.take(pa.array(order)).to_pylist()
    keep = ~is_missing_label(names)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.where(keep, np.cumsum(keep) - 1, -1)
    codes = np.where(inverse >= 0, rank[np.maximum(inverse, 0)], -1)
    return codes, [name for name, k in zip(names, keep) if k]


def codes_in_map(col: Any, names: Sequence[str], *, unknown: str = "error", what: str = "label") -> np.ndarray:
    """Codes of a label column in a given map (``names[code]``), -1 for missing labels.

    Parameters
    ----------
    col : pandas Series, pyarrow array or array_like
    names : sequence of str
        The map, from :func:`label_codes` / :func:`label_maps` over the full table.
    unknown : {"error", "missing"}, default "error"
        What to do with a label absent from the map: raise, or code it -1.
    what : str
        How the error names a label ("species label", say).

    Raises
    ------
    ValueError
        A label is not in the map (the message names the row and the label), or
        ``unknown`` is not one of the two choices.
    """
    if unknown not in ("error", "missing"):
        raise ValueError(f"unknown must be 'error' or 'missing', got {unknown!r}")
    # Code the column once, then map each distinct label (not each row) to its id.
    local, labels = label_codes(col)
    per_label = pd.Index(list(names), dtype=object).get_indexer(pd.Index(labels, dtype=object))
    per_label = np.asarray(per_label, dtype=np.int64)
    codes = np.full(len(local), -1, dtype=np.int64)
    has = local >= 0
    codes[has] = per_label[local[has]]
    bad = has & (codes < 0)
    if bad.any() and unknown == "error":
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"row {i}: {what} {labels[local[i]]!r} is not in the global label map "
                         "(build the map over the full table)")
    return codes


def label_maps(df: pd.DataFrame, ranks: Sequence[str] = RANKS) -> dict[str, list[str]]:
    """Sorted distinct non-empty labels per rank of the whole table.

    Parameters
    ----------
    df : pandas.DataFrame
        The full metadata table (not one split).
    ranks : sequence of str, default the seven ranks
        Columns to map.

    Returns
    -------
    dict of str to list of str
        ``maps[rank][i]`` is the label whose id is ``i``.

    Raises
    ------
    ValueError
        A rank column is missing.
    """
    missing = [r for r in ranks if r not in df.columns]
    if missing:
        raise ValueError(f"label columns missing from the table: {', '.join(map(repr, missing))}")
    # label_codes' labels are the sorted distinct labels that are not missing.
    return {rank: label_codes(df[rank])[1] for rank in ranks}


def encode_labels(
    df: pd.DataFrame,
    maps: Mapping[str, Sequence[str]],
    *,
    unknown: str = "error",
) -> pd.DataFrame:
    """Global label ids ``<rank>_id`` (int64, -1 = missing) for every rank in ``maps``.

    Parameters
    ----------
    df : pandas.DataFrame
    maps : mapping of str to sequence of str
        From :func:`label_maps` over the full table.
    unknown : {"error", "missing"}, default "error"
        What to do with a label absent from its map: raise, or code it -1.

    Returns
    -------
    pandas.DataFrame
        One ``<rank>_id`` column per rank, index aligned with ``df``.

    Raises
    ------
    ValueError
        As :func:`codes_in_map`: a label not in its map, or a bad ``unknown``; also
        a rank column missing from the table.
    """
    out = {}
    for rank, values in maps.items():
        if rank not in df.columns:
            raise ValueError(f"label column {rank!r} is missing from the table")
        out[f"{rank}_id"] = codes_in_map(df[rank], values, unknown=unknown, what=f"{rank} label")
    return pd.DataFrame(out, index=df.index)


def save_label_maps(maps: Mapping[str, Sequence[str]], path) -> Path:
    """Write label maps as JSON (rank -> list of labels)."""
    path = Path(path)
    path.write_text(json.dumps({k: list(v) for k, v in maps.items()}, ensure_ascii=False), "utf-8")
    return path


def load_label_maps(path) -> dict[str, list[str]]:
    """Read label maps written by :func:`save_label_maps`."""
    data = json.loads(Path(path).read_text("utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{str(path)!r} is not a label-map JSON file")
    return data
