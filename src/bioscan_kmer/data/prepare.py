"""``prepare``: cleaned, deduplicated, tokenized shards per split.

Shards written: ``pretrain`` (the BarcodeBERT pretraining set: pretrain +
other_heldout records, barcodes ``rstrip("N")``-ed and deduplicated keeping
the first occurrence, SPEC section 4) and, with labels, ``train``, ``val``,
``test``, ``key_unseen``, ``val_unseen``, ``test_unseen`` and ``other_heldout``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bioscan_kmer.data._arrow import (
    STR_DTYPE, arrow_strings, is_arrow_strings, label_codes, release_unused, take,
)
from bioscan_kmer.data.schema import RANKS, SPLITS
from bioscan_kmer.data.shards import shards_complete, write_shards

__all__ = ["prepare_shards", "LABELLED_SHARDS"]

LABELLED_SHARDS = ("train", "val", "test", "key_unseen", "val_unseen", "test_unseen", "other_heldout")


def _token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32


def prepare_shards(
    df: pd.DataFrame,
    out_dir,
    *,
    k: int = 4,
    max_len: int = 660,
    preset: str = "barcodebert",
    splits: Sequence[str] | None = None,
    seed: int = 0,
    fingerprint: dict | None = None,
    force: bool = False,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Clean, deduplicate and tokenize barcodes per split and write shards.

    Parameters
    ----------
    df : pandas.DataFrame
        Metadata with ``dna_barcode``, the ranks and ``split``. A table without
        ``split`` (or with it empty) is partitioned with ``seed`` first.
    out_dir : str or path-like
    k, max_len, preset : tokenizer settings (see :class:`bioscan_kmer.KmerTokenizer`).
    splits : sequence of str, optional
        Shards to write; default ``pretrain`` and all labelled splits.
    seed : int, default 0
        Seed of the partition, when one is computed.
    fingerprint : dict, optional
        Describes the input (e.g. path, size, mtime); with the options it forms
        the manifest's ``extra``. When a complete shard set with the same
        ``extra`` exists, nothing is redone (resume).
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
    ValueError
        Missing columns, unknown split names, or a barcode the cleaner rejects
        (the core's message names the row, position and character).
    """
    from bioscan_kmer import KmerTokenizer

    t0 = time.perf_counter()
    for col in ("dna_barcode", *RANKS):
        if col not in df.columns:
            raise ValueError(f"prepare needs column {col!r}")
    wanted = list(splits) if splits is not None else ["pretrain", *LABELLED_SHARDS]
    bad = [s for s in wanted if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown split(s) {', '.join(map(repr, bad))}; choose from {', '.join(SPLITS)}")
    options = {"k": k, "max_len": max_len, "preset": preset, "splits": wanted, "seed": seed}
    extra = {"input": dict(fingerprint or {}), "options": options}
    out = Path(os.fspath(out_dir))
    if not force and fingerprint is not None and shards_complete(out, extra=extra, verify=False):
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
    # Split names as codes into SPLITS (no Python str per row); other values: -1.
    split_codes = pc.fill_null(pc.index_in(arrow_strings(split_col), value_set=pa.array(SPLITS)), -1)
    split_codes = np.asarray(split_codes.to_numpy(zero_copy_only=False) if isinstance(split_codes, pa.Array)
                             else split_codes.to_numpy(), dtype=np.int64)
    del split_col

    def rows_of(names):
        return np.flatnonzero(np.isin(split_codes, [SPLITS.index(s) for s in names]))

    tok = KmerTokenizer(k=k, max_len=max_len, preset=preset)
    dtype = _token_dtype(tok.vocab_size)
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
            sel = rows_of(("pretrain", "other_heldout"))
            _check_present(raw, sel)
            seqs = _pretrain_barcodes(raw, sel, threads)
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
            cols["dna_barcode"] = pd.array(seqs, dtype=STR_DTYPE)
            labels = pd.DataFrame(cols)
        if len(seqs):
            ids, mask = _encode(tok, seqs, dtype, threads)
        else:
            ids = np.zeros((0, tok.seq_len), dtype=dtype)
            mask = np.zeros((0, tok.seq_len), dtype=np.uint8)
        del seqs
        payload[name] = (ids, mask, labels)
        rows[name] = len(ids)
    extra["label_maps"] = maps
    manifest = write_shards(out, payload, tok, extra=extra)
    del payload
    # Freed Arrow memory is reused by the next selection within a run (fresh pages
    # cost more than the copy); hand it back once at the end.
    release_unused()
    return {"out_dir": out, "manifest": manifest, "skipped": False, "rows": rows,
            "seconds": time.perf_counter() - t0}


def _barcodes(col: pd.Series):
    """The barcode column as Arrow strings, or (not Arrow-backed) as a NumPy object array."""
    if is_arrow_strings(col):
        return arrow_strings(col)
    return col.to_numpy(dtype=object, na_value=None)


def _take(raw, rows: np.ndarray):
    if isinstance(raw, np.ndarray):
        return raw[rows]
    return take(raw, rows)


def _check_present(raw, rows: np.ndarray) -> None:
    if isinstance(raw, np.ndarray):
        missing = np.flatnonzero(np.fromiter((v is None or isinstance(v, float) for v in raw[rows]),
                                             dtype=bool, count=len(rows)))
    elif raw.null_count:
        missing = np.flatnonzero(_take(raw, rows).is_null().to_numpy(zero_copy_only=False))
    else:
        return
    if len(missing):
        raise ValueError(f"row {int(rows[missing[0]])}: dna_barcode is missing")


_ROW = re.compile(r"^row (\d+):")


def _clean_rows(raw, rows: np.ndarray, threads):
    """Cleaned barcodes of ``rows`` as a pyarrow string array; errors name the table row."""
    from bioscan_kmer import clean

    try:
        return clean(_take(raw, rows), output="arrow", threads=threads)
    except (ValueError, TypeError) as exc:
        m = _ROW.match(str(exc))
        if m is None or int(m.group(1)) >= len(rows):
            raise
        raise type(exc)(f"row {int(rows[int(m.group(1))])}:{str(exc)[m.end():]}") from None


def _pretrain_barcodes(raw, sel: np.ndarray, threads):
    """SPEC 4: the cleaned barcodes of rows ``sel``, deduplicated keeping first occurrences.

    Cleaning is a function of the raw string, so the distinct raw strings are cleaned
    (in the order of their first row) and deduplicated again: the same strings in the
    same order as cleaning every row and deduplicating, with less than half the work.
    """
    from bioscan_kmer import unique

    if len(sel) == 0:
        return pa.array([], type=pa.large_string())
    _, raw_id, _ = unique(raw if isinstance(raw, np.ndarray) or not raw.null_count
                          else pc.fill_null(raw, ""), return_values=False, threads=threads)
    raw_id = np.asarray(raw_id, dtype=np.int64)[sel]
    first = np.full(int(raw_id.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, raw_id, sel)
    del raw_id
    first = np.sort(first[first != np.iinfo(np.int64).max])
    cleaned = _clean_rows(raw, first, threads)
    del first
    uniq, _, _ = unique(cleaned, threads=threads)
    return uniq


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


def _encode(tok, seqs, dtype, threads):
    from bioscan_kmer import tokenize

    cfg = tok.config
    return tokenize(seqs, k=cfg["k"], stride=cfg["stride"], max_len=cfg["max_len"], preset=cfg["preset"],
                    n_nucleotide=cfg["n_nucleotide"], dtype=dtype, mask_dtype=np.uint8,
                    padding=cfg["padding"], add_special_tokens=cfg["add_special_tokens"], threads=threads)
