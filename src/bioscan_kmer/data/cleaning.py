"""Cleaning the barcode column of a table, in chunks, with progress (``bioscan-kmer clean``).

The per-sequence rules are :func:`bioscan_kmer.clean`'s (SPEC section 2); this module
adds what a table needs: chunks with a progress bar, and errors that name the column and
the table's row.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bioscan_kmer.data._arrow import STR_DTYPE
from bioscan_kmer.errors import DataError, UsageError

__all__ = ["clean_column"]

_CHUNK = 200_000
_ROW = re.compile(r"^row (\d+): ")


def clean_column(df: pd.DataFrame, column: str = "dna_barcode", *, gaps: str = "remove", iupac: str = "n",
                 trim_n: bool = True, max_length: int | None = None, progress: bool = False) -> pd.Series:
    """The cleaned barcodes of ``df[column]``, as an Arrow-backed string column.

    Parameters
    ----------
    df : pandas.DataFrame
    column : str, default "dna_barcode"
    gaps, iupac, trim_n, max_length
        As :func:`bioscan_kmer.clean`.
    progress : bool, default False
        Show a progress bar over the rows.

    Returns
    -------
    pandas.Series
        Same index as ``df``; empty strings where nothing is left after cleaning.

    Raises
    ------
    bioscan_kmer.errors.UsageError
        A bad option (``gaps``, ``iupac``, ``max_length``), checked before any row.
    bioscan_kmer.errors.DataError
        No such column, a missing barcode, or a character the cleaner rejects (the
        message names the column, the table's row, the position and the character).
    """
    from bioscan_kmer import clean
    from bioscan_kmer._progress import progress_bar

    try:
        clean([], gaps=gaps, iupac=iupac, trim_n=trim_n, max_length=max_length)  # the options alone
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if column not in df.columns:
        raise DataError(f"no column {column!r}; the table has {', '.join(map(str, df.columns))}")
    seqs = df[column]
    if seqs.isna().any():
        i = int(np.flatnonzero(seqs.isna().to_numpy())[0])
        raise DataError(f"column {column!r}, row {i}: the barcode is missing")
    out: list = []
    with progress_bar(total=len(df), desc="clean", unit="seq", disable=not progress) as bar:
        for start in range(0, len(df), _CHUNK):
            try:
                out.extend(clean(seqs.iloc[start:start + _CHUNK], gaps=gaps, iupac=iupac,
                                 trim_n=trim_n, max_length=max_length))
            except ValueError as exc:
                # The core counts rows from the chunk's start: name the table's row.
                text = str(exc)
                m = _ROW.match(text)
                where = f"row {start + int(m[1])}" if m else f"rows from {start}"
                raise DataError(f"column {column!r}, {where}: {text[m.end():] if m else text}") from exc
            bar.update(min(_CHUNK, len(df) - start))
    return pd.Series(pd.array(np.asarray(out, dtype=object), dtype=STR_DTYPE), index=df.index, name=column)
