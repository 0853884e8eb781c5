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

from bioscan_kmer.data.labels import codes_in_map
from bioscan_kmer.data.labels import is_missing_label as is_missing
from bioscan_kmer.data.labels import label_codes as _column_codes
from bioscan_kmer.data.schema import RANKS

__all__ = ["RANKS", "LabelMap", "label_codes", "is_missing"]

# Label coding and the rule for a missing label (None, NaN, "" and whitespace-only) live
# in bioscan_kmer.data.labels; this module holds the evaluation's view of them.


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
            Labels of all records; missing ones (see :mod:`bioscan_kmer.data.labels`)
            are skipped.
        """
        return cls(tuple(_column_codes(values)[1]))

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
        return codes_in_map(values, self.names, unknown="error" if strict else "missing")

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
            out[rank] = _column_codes(df[rank])[0]
        else:
            raise ValueError(f"the table has neither a {rank!r} nor a {id_col!r} column")
    return out
