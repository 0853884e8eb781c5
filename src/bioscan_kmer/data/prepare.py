"""``prepare``: the cleaned, deduplicated barcodes of each split, as sequence shards.

Shards written: ``pretrain``, BarcodeBERT's pretraining set (:func:`pretraining_barcodes`:
barcodes truncated to ``max_len``, trailing N stripped, duplicates dropped over the whole
table keeping the first occurrence, then the rows of the ``pretrain`` and ``other_heldout``
splits; SPEC section 7) and, with labels, ``train``, ``val``, ``test``, ``key_unseen``,
``val_unseen``, ``test_unseen`` and ``other_heldout`` (every record, cleaned). Nothing is
tokenized here: loaders tokenize at read time (:mod:`bioscan_kmer.data.torch_data`), with
the tokenizer configuration stored in the manifest.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bioscan_kmer.data._arrow import (
    STR_DTYPE, arrow_strings, is_arrow_strings, label_codes, release_unused, take,
)
from bioscan_kmer.data.schema import RANKS, SPLITS
from bioscan_kmer.data.shards import _write_shards, shards_complete
from bioscan_kmer.errors import DataError, UsageError

__all__ = ["prepare_shards", "pretraining_barcodes", "pretraining_form", "read_pretraining_barcodes",
           "LABELLED_SHARDS", "PRETRAINING_SPLITS"]

LABELLED_SHARDS = ("train", "val", "test", "key_unseen", "val_unseen", "test_unseen", "other_heldout")
#: The splits whose records BarcodeBERT pretrains on (``data/data_split.py``).
PRETRAINING_SPLITS = ("pretrain", "other_heldout")


def prepare_shards(
    df: pd.DataFrame,
    out_dir,
    *,
    k: int = 4,
    max_len: int = 660,
    preset: str = "barcodebert",
    splits: Sequence[str] | None = None,
    pretrain_splits: Sequence[str] = PRETRAINING_SPLITS,
    seed: int = 0,
    fingerprint: dict | None = None,
    force: bool = False,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Clean and deduplicate barcodes per split and write sequence shards.

    Parameters
    ----------
    df : pandas.DataFrame
        Metadata with ``dna_barcode``, the ranks and ``split``. A table without
        ``split`` (or with it empty) is partitioned with ``seed`` first.
    out_dir : str or path-like
    k, max_len, preset : tokenizer settings (see :class:`bioscan_kmer.KmerTokenizer`)
        Stored in the manifest: what loaders tokenize with by default. ``max_len`` is also
        the truncation length of the pretraining set (660 in BarcodeBERT).
    splits : sequence of str, optional
        Shards to write; default ``pretrain`` and all labelled splits.
    pretrain_splits : sequence of str, default ("pretrain", "other_heldout")
        The splits whose rows make the ``pretrain`` shard (BarcodeBERT's rule). A table of
        fully labelled records (a BOLD export, where almost nothing is ``pretrain``) may add
        ``train``: its labels are never used in pretraining.
    seed : int, default 0
        Seed of the partition, when one is computed.
    fingerprint : dict, optional
        Describes the input (e.g. path, size, mtime); with the options it forms
        the manifest's ``extra``. When a complete shard set with the same
        ``extra`` exists and its files match their checksums, nothing is redone (resume).
    force : bool, default False
        Rewrite even when an identical complete shard set exists.
    threads : int, optional
    progress : bool, default False
        Show a progress bar over the splits.

    Returns
    -------
    dict
        ``{"out_dir", "manifest", "rows": {split: n}, "skipped": bool, "seconds"}``.

    Raises
    ------
    DataError, UsageError (ValueErrors)
        Missing columns, unknown split names, bad tokenizer settings, a missing barcode or
        one the cleaner rejects (the message names the row, position and character).
    """
    from bioscan_kmer import KmerTokenizer

    t0 = time.perf_counter()
    for col in ("dna_barcode", *RANKS):
        if col not in df.columns:
            raise DataError(f"prepare needs column {col!r}")
    wanted = list(splits) if splits is not None else ["pretrain", *LABELLED_SHARDS]
    bad = [s for s in [*wanted, *pretrain_splits] if s not in SPLITS]
    if bad:
        raise UsageError(f"unknown split(s) {', '.join(map(repr, bad))}; choose from {', '.join(SPLITS)}")
    tok = KmerTokenizer(k=k, max_len=max_len, preset=preset)
    options = {"k": k, "max_len": max_len, "preset": preset, "splits": wanted, "seed": seed}
    if tuple(pretrain_splits) != PRETRAINING_SPLITS:
        options["pretrain_splits"] = list(pretrain_splits)
    extra = {"input": dict(fingerprint or {}), "options": options}
    out = Path(os.fspath(out_dir))
    # Checksums too: a file changed in place keeps its size and must not pass for complete.
    if not force and fingerprint is not None and shards_complete(out, extra=extra, verify=True):
        from bioscan_kmer.data.shards import read_manifest

        manifest = read_manifest(out)
        return {"out_dir": out, "manifest": out / "manifest.json", "skipped": True,
                "rows": {s: r["rows"] for s, r in manifest["splits"].items()},
                "seconds": time.perf_counter() - t0}

    if "split" not in df.columns or df["split"].isna().all():
        from bioscan_kmer.data.splits import partition

        split_col = partition(df, seed=seed)
    else:
        split_col = df["split"]
    codes = split_codes(split_col)
    del split_col

    def rows_of(names):
        return np.flatnonzero(np.isin(codes, [SPLITS.index(s) for s in names]))

    # One global label map per rank; the ids of a map built over the same table are the
    # dense sorted-label codes themselves.
    maps, ids_all = {}, {}
    for rank in RANKS:
        ids_all[rank], maps[rank] = label_codes(df[rank])
    raw = _barcodes(df["dna_barcode"])

    from bioscan_kmer._progress import progress_bar

    payload = {}
    rows = {}
    cat_names: dict = {}
    for name in progress_bar(wanted, desc="prepare", disable=not progress, unit="split"):
        if name == "pretrain":
            # The whole table takes part: a barcode first seen in another split is not
            # pretrained on.
            _check_present(raw, None)
            seqs = _pretraining_set(raw, codes, max_len, threads, pretrain_splits)
            labels = None
        else:
            sel = rows_of((name,))
            _check_present(raw, sel)
            seqs = _clean_rows(raw, sel, threads)
            cols = {"processid": _str_column(df["processid"], sel, cat_names) if "processid" in df.columns
                    else pd.array(pa.nulls(len(sel), pa.large_string()), dtype=STR_DTYPE)}
            for rank in RANKS:
                cols[rank] = _str_column(df[rank], sel, cat_names)
            for rank in RANKS:
                cols[f"{rank}_id"] = ids_all[rank][sel]
            cols["dna_bin"] = (_str_column(df["dna_bin"], sel, cat_names) if "dna_bin" in df.columns
                               else pd.array(pa.nulls(len(sel), pa.large_string()), dtype=STR_DTYPE))
            labels = pd.DataFrame(cols)
        payload[name] = (seqs, labels)
        rows[name] = len(seqs)
    extra["label_maps"] = maps
    # The barcodes come from the core's clean: in the alphabet by construction.
    manifest = _write_shards(out, payload, tok, extra=extra, check_bases=False)
    del payload
    # Freed Arrow memory is reused by the next selection within a run (fresh pages
    # cost more than the copy); hand it back once at the end.
    release_unused()
    return {"out_dir": out, "manifest": manifest, "skipped": False, "rows": rows,
            "seconds": time.perf_counter() - t0}


def split_codes(split_col) -> np.ndarray:
    """Split names as int64 codes into :data:`~bioscan_kmer.data.schema.SPLITS`; -1 for
    anything else (missing, unknown names). No Python string per row."""
    codes = pc.fill_null(pc.index_in(arrow_strings(split_col), value_set=pa.array(SPLITS)), -1)
    return np.asarray(codes.to_numpy(zero_copy_only=False) if isinstance(codes, pa.Array)
                      else codes.to_numpy(), dtype=np.int64)


def pretraining_form(raw: Any, *, max_len: int = 660, threads: int | None = None) -> pa.LargeStringArray:
    """Barcodes in the form BarcodeBERT's pretraining set compares and stores them.

    :func:`bioscan_kmer.clean` without its N trimming (uppercase, ``U`` -> ``T``, gaps and
    whitespace removed, IUPAC codes -> ``N``), truncated to ``max_len`` bases, then runs of
    ``N`` stripped at the end only: BarcodeBERT's ``data/data_split.py`` applies
    ``str.rstrip("N")``, so leading N stay (``NNACGT`` and ``ACGT`` are two barcodes).

    Raises
    ------
    ValueError, TypeError
        As :func:`bioscan_kmer.clean`: a character that is not DNA, a row that is not a
        string (the message names the row of ``raw``).
    """
    from bioscan_kmer import clean

    cleaned = clean(raw, trim_n=False, max_length=max_len, output="arrow", threads=threads)
    return pc.ascii_rtrim(cleaned, characters="N")


def pretraining_barcodes(df: pd.DataFrame, *, max_len: int = 660, threads: int | None = None) -> pa.ChunkedArray:
    """BarcodeBERT's pretraining set of a table (SPEC section 7), as cleaned barcodes.

    Every row's barcode is brought to :func:`pretraining_form`; duplicates are dropped over
    the whole table, keeping the first occurrence; then the rows of the ``pretrain`` and
    ``other_heldout`` splits are kept, in table order. A barcode whose first occurrence is
    in another split (train, test, ...) is therefore not in the set, even if it also occurs
    in ``pretrain``. A table without a ``split`` column (or with it empty) gives all its
    distinct barcodes.

    Parameters
    ----------
    df : pandas.DataFrame
        With ``dna_barcode`` and optionally ``split``.
    max_len : int, default 660
        Truncation length (BarcodeBERT's 660).
    threads : int, optional

    Raises
    ------
    DataError (a ValueError)
        No ``dna_barcode`` column, a missing barcode, or one the cleaner rejects (names the row).
    """
    if "dna_barcode" not in df.columns:
        raise DataError(f"pretraining needs a 'dna_barcode' column; the table has {', '.join(map(str, df.columns))}")
    raw = _barcodes(df["dna_barcode"])
    _check_present(raw, None)
    codes = None
    if "split" in df.columns and not df["split"].isna().all():
        codes = split_codes(df["split"])
    return _pretraining_set(raw, codes, max_len, threads)


def read_pretraining_barcodes(path, *, max_len: int = 660, threads: int | None = None) -> pa.ChunkedArray:
    """:func:`pretraining_barcodes` of a FASTA, BOLD TSV or metadata CSV/TSV file.

    The file is read with :func:`bioscan_kmer.data.reading.read_any`; a table with a
    ``split`` column gives BarcodeBERT's pretraining set, any other all its distinct
    barcodes.

    Raises
    ------
    DataFileError
        The file cannot be read (as ``read_any`` says).
    DataError (a ValueError)
        No barcodes, or a barcode the cleaner rejects.
    """
    from bioscan_kmer.data.reading import read_any

    df = read_any(path)
    if len(df) == 0:
        raise DataError(f"{os.fspath(path)!r} holds no barcodes")
    try:
        return pretraining_barcodes(df, max_len=max_len, threads=threads)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{os.fspath(path)!r}: {exc}") from None


# Table rows per block of _pretraining_set: about 24k distinct barcodes, 15 MB of strings.
_FORM_BLOCK_ROWS = 1 << 16


def _pretraining_set(raw, codes: np.ndarray | None, max_len: int, threads,
                     pretrain_splits: Sequence[str] = PRETRAINING_SPLITS) -> pa.ChunkedArray:
    """The rule of :func:`pretraining_barcodes` on a barcode column and its split codes.

    Cleaning is a function of the raw string, so only the distinct raw strings are brought
    to the pretraining form (in the order of their first row), and the forms deduplicated
    again: each form's first row in the table is the first row of the first raw string
    that gives it. The forms are made block by block of table rows: each block's copies
    are small enough to be recycled by the allocators, where one pass over all distinct
    strings faults in two fresh gigabytes at BIOSCAN-5M scale (seconds on a VM).
    """
    from bioscan_kmer import unique

    n = len(raw)
    if n == 0:
        return pa.chunked_array([], type=pa.large_string())
    first_raw, _, _ = unique(raw, return_values=False, threads=threads)  # rows, ascending
    bounds = np.searchsorted(first_raw, np.arange(0, n + _FORM_BLOCK_ROWS, _FORM_BLOCK_ROWS).clip(max=n))
    chunks = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi > lo:
            rows = first_raw[lo:hi]
            chunks.append(_in_table_rows(lambda: pretraining_form(_take(raw, rows), max_len=max_len,
                                                                  threads=threads), rows))
    first_form, _, _ = unique(pa.chunked_array(chunks, type=pa.large_string()), return_values=False,
                              threads=threads)  # ascending indices into first_raw
    if codes is not None:
        keep = np.isin(codes[first_raw[first_form]], [SPLITS.index(s) for s in pretrain_splits])
        first_form = first_form[keep]
    # Kept rows chunk by chunk, left chunked (write_shards writes chunks one after another),
    # each block of forms let go once its rows are taken.
    starts = np.cumsum([0] + [len(c) for c in chunks])
    cuts = np.searchsorted(first_form, starts)
    kept = []
    for i in range(len(chunks)):
        chunk, chunks[i] = chunks[i], None
        rows = first_form[cuts[i]:cuts[i + 1]] - starts[i]
        if len(rows) == len(chunk):
            kept.append(chunk)
        elif len(rows):
            kept.append(chunk.take(pa.array(rows)))
    return pa.chunked_array(kept, type=pa.large_string())


def _barcodes(col: pd.Series):
    """The barcode column as Arrow strings, or (not Arrow-backed) as a NumPy object array."""
    if is_arrow_strings(col):
        return arrow_strings(col)
    return col.to_numpy(dtype=object, na_value=None)


def _take(raw, rows: np.ndarray):
    if isinstance(raw, np.ndarray):
        return raw[rows]
    return take(raw, rows)


def _check_present(raw, rows: np.ndarray | None) -> None:
    """Raise ValueError naming the first of ``rows`` (None: all) whose barcode is missing."""
    if isinstance(raw, np.ndarray):
        values = raw if rows is None else raw[rows]
        missing = np.flatnonzero(np.fromiter((v is None or isinstance(v, float) for v in values),
                                             dtype=bool, count=len(values)))
    elif raw.null_count:
        missing = np.flatnonzero((raw if rows is None else _take(raw, rows)).is_null()
                                 .to_numpy(zero_copy_only=False))
    else:
        return
    if len(missing):
        row = int(missing[0]) if rows is None else int(rows[missing[0]])
        raise DataError(f"row {row}: dna_barcode is missing")


_ROW = re.compile(r"^row (\d+):")


def _clean_rows(raw, rows: np.ndarray, threads):
    """Cleaned barcodes of ``rows`` as a pyarrow string array; errors name the table row."""
    from bioscan_kmer import clean

    return _in_table_rows(lambda: clean(_take(raw, rows), output="arrow", threads=threads), rows)


def _in_table_rows(compute, rows: np.ndarray):
    """``compute()``, with a core error about "row i" of a selection renamed to its table row."""
    try:
        return compute()
    except (ValueError, TypeError) as exc:
        m = _ROW.match(str(exc))
        if m is None or int(m.group(1)) >= len(rows):
            raise
        # The core names a bad barcode of the user's table: a data error, in table rows.
        raise DataError(f"row {int(rows[int(m.group(1))])}:{str(exc)[m.end():]}") from None


def _str_column(col: pd.Series, rows: np.ndarray, names: dict):
    """Rows of a label or id column as an Arrow-backed ``str`` array (missing = NaN).

    ``names`` caches the categories of categorical columns as Arrow strings.
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()[rows]
        if col.name not in names:
            names[col.name] = pa.array([str(c) for c in col.cat.categories], type=pa.large_string())
        arr = names[col.name].take(pa.array(codes, mask=codes < 0))
    elif is_arrow_strings(col):
        arr = take(arrow_strings(col), rows)
    else:
        return pd.array(col.iloc[rows].astype(STR_DTYPE).to_numpy(), dtype=STR_DTYPE)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pd.array(arr, dtype=STR_DTYPE)

