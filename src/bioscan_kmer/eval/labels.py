"""One global label map per taxonomic rank.

The public BarcodeBERT code rebuilt its label set from each split's own labels, so the
same species got different ids in train and test (SPEC section 7, "labels re-indexed
per split"). Here a rank's codes are fixed once over the whole table, before any split
is taken, and every split is read through that one map: a label keeps its id whatever
subset it ends up in, and a label that exists only in one split still has an id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["RANKS", "LabelMap", "label_codes", "is_missing"]

RANKS = ("phylum", "class", "order", "family", "subfamily", "genus", "species")


def is_missing(values) -> np.ndarray:
    """Boolean mask of missing labels: None, NaN, pandas NA or the empty string."""
    s = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    s = s.astype(object)
    return (s.isna() | (s.astype(str).str.strip() == "")).to_numpy()


@dataclass(frozen=True)
class LabelMap:
    """Sorted label names and their integer codes; -1 means missing.

    Attributes
    ----------
    names : tuple of str
        The distinct non-missing labels in sorted order; ``names[i]`` has code ``i``.
    """

    names: tuple

    @classmethod
    def fit(cls, values) -> "LabelMap":
        """Build the map from every label of the full table (all splits together).

        Parameters
        ----------
        values : array_like or pandas.Series
            Labels of all records; missing ones (None, NaN, "") are skipped.
        """
        s = pd.Series(values).astype(object)
        s = s[~is_missing(s)].astype(str)
        return cls(tuple(sorted(set(s.tolist()))))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, values, *, strict: bool = True) -> np.ndarray:
        """Codes of ``values``; missing labels become -1.

        Parameters
        ----------
        values : array_like
        strict : bool, default True
            Raise on a label the map has never seen (it would otherwise be silently
            treated as missing); with ``strict=False`` unknown labels become -1.

        Raises
        ------
        ValueError
            On an unknown label when ``strict``.
        """
        s = pd.Series(values).astype(object)
        missing = is_missing(s)
        # A hash-index lookup in C; unknown names and missing values both come back as -1.
        out = pd.Index(self.names, dtype=object).get_indexer(s.astype(str).to_numpy(dtype=object))
        out = np.asarray(out, dtype=np.int64)
        out[missing] = -1
        unknown = (out < 0) & ~missing
        if strict and unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ValueError(f"row {row}: label {s.iloc[row]!r} is not in the label map")
        return out

    def decode(self, codes) -> list:
        """Label names of ``codes``; -1 decodes to None."""
        return [self.names[c] if c >= 0 else None for c in np.asarray(codes, dtype=np.int64)]


def label_codes(df: pd.DataFrame, ranks=RANKS) -> dict:
    """Global integer codes of each rank for every row of ``df``.

    Uses the ``<rank>_id`` columns when the table carries them (the data layer writes its
    global codes there), otherwise fits one :class:`LabelMap` over the whole of ``df``.
    Either way the codes are computed once for the full table, so selecting a split
    afterwards (``codes[rank][df.split == "test"]``) never re-indexes labels.

    Parameters
    ----------
    df : pandas.DataFrame
        All records, every split.
    ranks : iterable of str
        Taxonomic ranks to encode.

    Returns
    -------
    dict
        ``{rank: int64 array (len(df),)}`` with -1 for missing labels.

    Raises
    ------
    ValueError
        When neither ``<rank>`` nor ``<rank>_id`` is a column of ``df``.
    """
    out = {}
    for rank in ranks:
        id_col = f"{rank}_id"
        if id_col in df.columns:
            codes = pd.to_numeric(df[id_col], errors="raise").fillna(-1).to_numpy(np.int64)
            out[rank] = codes
        elif rank in df.columns:
            out[rank] = LabelMap.fit(df[rank]).encode(df[rank])
        else:
            raise ValueError(f"the table has neither a {rank!r} nor a {id_col!r} column")
    return out
