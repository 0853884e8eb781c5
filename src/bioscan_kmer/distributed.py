"""Scale-out on Dask: clean, deduplicate, count and tokenize partitioned barcode tables.

The same results as the single-machine functions, computed partition by partition on a
Dask cluster (``dask.distributed``) or Dask's local schedulers:

- :func:`read_table` reads CSV/TSV (BIOSCAN-5M or BIOSCAN-1M names) or Parquet into a
  ``dask.dataframe`` with the missing-label words of
  :func:`bioscan_kmer.data.reading.read_metadata`.
- :func:`clean` maps :func:`bioscan_kmer.clean` over the partitions.
- :func:`unique` is a two-stage :func:`bioscan_kmer.unique`: each partition is
  deduplicated by the core, the distinct strings are hash-partitioned into buckets and
  merged per bucket, and global ids follow the global first occurrence. No step holds
  all the distinct strings in one place; one task holds one 8-byte key per distinct
  string.
- :func:`dataset_statistics` gives the table of
  :func:`bioscan_kmer.data.statistics.dataset_statistics` from per-partition counts of
  (label, barcode) pairs.
- :func:`pretrain_shards` writes the BarcodeBERT pretraining shard of
  :func:`bioscan_kmer.data.prepare.prepare_shards` (its barcodes; loaders tokenize them
  at read time) with :func:`bioscan_kmer.data.shards.write_shards`.

Dask is an optional dependency (``pip install 'bioscan-kmer[dask]'``). Every function
runs on whatever scheduler is active: create a ``dask.distributed.Client`` first to use
a cluster (docs/distributed.md).
"""
from __future__ import annotations

import os
import re
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

import bioscan_kmer as bk
from bioscan_kmer.data.schema import RANKS

__all__ = [
    "PartitionRowError",
    "UniqueResult",
    "read_table",
    "clean",
    "unique",
    "dataset_statistics",
    "pretrain_shards",
]

# Local ids of distinct strings within a partition fit in the low bits of a key; the
# partition number goes above them, so sorting keys sorts by (partition, local id).
_LOCAL_BITS = 40
_STRING = pd.StringDtype("pyarrow", na_value=np.nan)


def _dask():
    try:
        import dask
        import dask.dataframe as dd
    except ImportError:
        raise ImportError(
            "bioscan_kmer.distributed needs Dask: pip install 'bioscan-kmer[dask]' "
            "(or: pip install 'dask[dataframe,distributed]')"
        ) from None
    return dask, dd


class PartitionRowError(ValueError):
    """A bad row found inside one partition.

    Attributes
    ----------
    partition : int
        Number of the partition.
    row : int
        Row within the partition.
    """

    def __init__(self, partition: int, row: int, message: str, type_error: bool = False):
        super().__init__(f"partition {partition}, row {row} of it: {message}")
        self.partition, self.row, self.message = partition, row, message
        self.type_error = type_error  # the core raised TypeError (a missing row)

    def __reduce__(self):  # raised on a worker, re-raised on the client
        return (PartitionRowError, (self.partition, self.row, self.message, self.type_error))


def _reraise_in_partition(exc: Exception, partition: int):
    m = re.match(r"row (\d+): (.*)", str(exc), re.S)
    if m is None:
        raise exc
    raise PartitionRowError(partition, int(m.group(1)), m.group(2), isinstance(exc, TypeError)) from None


def _global_row_error(exc: PartitionRowError, lengths: Sequence[int]) -> Exception:
    """The same error, naming the row in the whole input (lengths: rows per partition)."""
    row = int(sum(lengths[: exc.partition])) + exc.row
    return (TypeError if exc.type_error else ValueError)(f"row {row}: {exc.message}")


# --- reading ---------------------------------------------------------------------------

def _natural_key(path: str):
    # part.2.parquet before part.10.parquet, as Dask's to_parquet numbers them.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _parquet_files(paths: Sequence[str]) -> list[str]:
    import fsspec

    files = []
    for p in paths:
        fs, root = fsspec.core.url_to_fs(p)
        if fs.isdir(root):
            found = sorted(fs.glob(root.rstrip("/") + "/*.parquet"), key=_natural_key)
            files += [fs.unstrip_protocol(f) if "://" in p else f for f in found]
        else:
            files += [fs.unstrip_protocol(f) if "://" in p else f
                      for f in sorted(fs.glob(root), key=_natural_key)]
    if not files:
        raise ValueError(f"no Parquet files under {', '.join(paths)}")
    return files


def _read_parquet_file(path: str) -> pd.DataFrame:
    # One file, one partition, read by pyarrow directly (Dask's own reader trips a
    # pandas deprecation warning with pandas 3).
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas(types_mapper=lambda t: _STRING if str(t) in ("string", "large_string")
                                         else None)


def read_table(paths, *, columns: Sequence[str] | None = None, blocksize: str | int = "64MB"):
    """Read partitioned BIOSCAN metadata: CSV, TSV or Parquet.

    Parameters
    ----------
    paths : str, path-like or list of them
        Files or globs (``"meta/part-*.csv"``), local or on any fsspec filesystem the
        workers can reach (``s3://...``). ``.parquet`` files (or directories) are read
        as Parquet; anything else as delimited text, the delimiter (tab or comma)
        detected from the first file's header. BIOSCAN-1M names are mapped
        (``nucraw`` -> ``dna_barcode``, ``uri`` -> ``dna_bin``).
    columns : sequence of str, optional
        Columns to keep (BIOSCAN-5M names).
    blocksize : str or int
        Bytes of text per partition (ignored for Parquet).

    Returns
    -------
    dask.dataframe.DataFrame
        Every column as Arrow-backed strings; the words that
        :func:`bioscan_kmer.data.reading.read_metadata` reads as missing
        (``""``, ``not_classified``, ``NA``...) are missing here too.
    """
    _, dd = _dask()
    from bioscan_kmer.data.reading import _BIOSCAN1M_RENAME, _MISSING_WORDS

    plist = [os.fspath(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    if all(p.endswith(".parquet") or os.path.isdir(p) for p in plist):
        ddf = dd.from_map(_read_parquet_file, _parquet_files(plist))
    else:
        import fsspec

        first = fsspec.open_files(plist[0])[0]
        with first as fh:
            header = fh.readline().decode("utf-8")
        sep = "\t" if header.count("\t") > header.count(",") else ","
        ddf = dd.read_csv(plist, sep=sep, dtype=str, keep_default_na=False, na_filter=False,
                          blocksize=blocksize, quoting=3 if sep == "\t" else 0)
    rename = {k: v for k, v in _BIOSCAN1M_RENAME.items() if k in ddf.columns}
    if "nucraw" in rename or "uri" in rename:
        ddf = ddf.rename(columns=rename)
    if columns is not None:
        missing = [c for c in columns if c not in ddf.columns]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(map(repr, missing))}; the input has "
                             f"{', '.join(map(str, ddf.columns))}")
        ddf = ddf[list(columns)]
    missing_words = list(_MISSING_WORDS)

    def as_strings(part: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for name in part.columns:
            col = part[name].astype(_STRING)
            out[name] = col.mask(col.isin(missing_words))
        return pd.DataFrame(out, index=part.index)

    meta = pd.DataFrame({c: pd.Series([], dtype=_STRING) for c in ddf.columns})
    return ddf.map_partitions(as_strings, meta=meta)


# --- clean -----------------------------------------------------------------------------

def clean(series, *, gaps: str = "remove", iupac: str = "n", trim_n: bool = True,
          max_length: int | None = None, threads: int | None = 1):
    """:func:`bioscan_kmer.clean` of every partition of a Dask series.

    Parameters
    ----------
    series : dask.dataframe.Series
        Raw barcodes.
    gaps, iupac, trim_n, max_length
        As :func:`bioscan_kmer.clean`.
    threads : int, optional
        Core threads per task; 1 by default, as the workers already run one task per core.

    Returns
    -------
    dask.dataframe.Series
        Cleaned barcodes (Python strings), partitioned and indexed as the input.

    Raises
    ------
    PartitionRowError
        When computed: a row the cleaner rejects, named by partition and row within it
        (:func:`unique`, :func:`dataset_statistics` and :func:`pretrain_shards`
        translate it to the global row).
    """
    _dask()
    bk.clean([], gaps=gaps, iupac=iupac, trim_n=trim_n, max_length=max_length)  # check options now
    opts = dict(gaps=gaps, iupac=iupac, trim_n=trim_n, max_length=max_length, threads=threads)

    def clean_part(part: pd.Series, partition_info=None) -> pd.Series:
        try:
            out = bk.clean(part, **opts)
        except (ValueError, TypeError) as e:
            _reraise_in_partition(e, (partition_info or {}).get("number", -1))
        # Object dtype: building Arrow strings from the list costs twice the cleaning.
        return pd.Series(out, index=part.index, name=part.name, dtype=object)

    return series.map_partitions(clean_part, meta=pd.Series([], dtype=object, name=series.name))


# --- unique ----------------------------------------------------------------------------

class UniqueResult(NamedTuple):
    """What :func:`unique` returns; unpacks like :func:`bioscan_kmer.unique`."""

    uniques: Any   # dask Series: distinct strings in global first-occurrence order
    inverse: Any   # dask Series of int64, partitioned as the input: row -> unique id
    counts: Any    # dask Series of int64, aligned with uniques


def _local_unique(part: pd.Series, p: int, n_buckets: int, threads):
    # Stage 1: the core's unique within the partition, then the distinct strings split
    # by a hash that is the same in every process (pandas' fixed-key SipHash).
    try:
        uniques, inverse, counts = bk.unique(part, threads=threads)
    except (ValueError, TypeError) as e:
        _reraise_in_partition(e, p)
    strings = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    # categorize=False: the strings are distinct already, no need to factorize first.
    bucket = pd.util.hash_array(strings.to_numpy(), categorize=False) % np.uint64(n_buckets)
    # One stable sort, then slices: linear in the partition, whatever n_buckets.
    by_bucket = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[by_bucket], np.arange(n_buckets + 1, dtype=np.uint64))
    values = strings.to_numpy()
    pieces = []
    for b in range(n_buckets):
        sel = by_bucket[bounds[b]:bounds[b + 1]]  # ascending local ids (stable sort)
        pieces.append((pd.Series(values[sel], dtype=object), sel.astype(np.int64), counts[sel]))
    return (strings, inverse, *pieces)


def _merge_bucket(n_parts: int, threads, *pieces):
    # Stage 2: one bucket's strings from every partition, in partition order, so the
    # core's first occurrence in this list is the global first occurrence.
    strings = pd.concat([p[0] for p in pieces], ignore_index=True)
    part_of = np.concatenate([np.full(len(p[1]), i, dtype=np.int64) for i, p in enumerate(pieces)])
    local = np.concatenate([p[1] for p in pieces])
    counts = np.concatenate([p[2] for p in pieces])
    _, inv, _ = bk.unique(strings, threads=threads)
    n_u = int(inv.max()) + 1 if len(inv) else 0
    entry_key = (part_of << _LOCAL_BITS) | local
    first_key = np.full(n_u, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_key, inv, entry_key)
    totals = np.zeros(n_u, dtype=np.int64)
    np.add.at(totals, inv, counts)
    # Back to each partition: its local ids, their group's first key and total.
    # part_of is sorted (pieces come in partition order), so each partition is a slice.
    bounds = np.searchsorted(part_of, np.arange(n_parts + 1))
    first_of_entry, total_of_entry = first_key[inv], totals[inv]
    back = [(local[lo:hi], first_of_entry[lo:hi], total_of_entry[lo:hi])
            for lo, hi in zip(bounds[:-1], bounds[1:])]
    return (first_key, *back)


def _number(*first_keys):
    # Global ids are the ranks of the first keys: (partition, local id) order.
    return np.sort(np.concatenate(first_keys)) if first_keys else np.zeros(0, np.int64)


def _finish_partition(p: int, strings: pd.Series, inverse: np.ndarray, order: np.ndarray, *backs):
    local = np.concatenate([b[0] for b in backs])
    first = np.concatenate([b[1] for b in backs])
    total = np.concatenate([b[2] for b in backs])
    gid_of_local = np.empty(len(strings), dtype=np.int64)
    gid_of_local[local] = np.searchsorted(order, first)
    own = first == ((np.int64(p) << _LOCAL_BITS) | local)  # first seen here
    new_local = np.sort(local[own])
    new_total = np.empty(len(strings), dtype=np.int64)
    new_total[local] = total
    return (
        pd.Series(gid_of_local[inverse], dtype=np.int64),
        pd.Series(strings.to_numpy()[new_local], dtype=object),
        pd.Series(new_total[new_local], dtype=np.int64),
    )


def unique(series, *, n_buckets: int | None = None, threads: int | None = 1) -> UniqueResult:
    """Two-stage :func:`bioscan_kmer.unique` of a Dask series.

    Parameters
    ----------
    series : dask.dataframe.Series
        Strings (normally :func:`clean`-ed).
    n_buckets : int, optional
        Hash buckets of the merge; one per input partition by default.
    threads : int, optional
        Core threads per task.

    Returns
    -------
    UniqueResult
        Lazy ``(uniques, inverse, counts)``: after ``dask.compute``, equal to
        ``bioscan_kmer.unique(series.compute())`` (as Series).
    """
    dask, dd = _dask()
    parts = series.to_delayed()
    n_parts = len(parts)
    n_buckets = n_buckets or max(1, n_parts)
    if n_parts >= 1 << (63 - _LOCAL_BITS):
        raise ValueError(f"too many partitions ({n_parts})")
    stage1 = [dask.delayed(_local_unique, nout=2 + n_buckets, pure=True)(part, p, n_buckets, threads)
              for p, part in enumerate(parts)]
    stage2 = [dask.delayed(_merge_bucket, nout=1 + n_parts, pure=True)(n_parts, threads,
                                                                        *[s[2 + b] for s in stage1])
              for b in range(n_buckets)]
    order = dask.delayed(_number, pure=True)(*[m[0] for m in stage2])
    stage3 = [dask.delayed(_finish_partition, nout=3, pure=True)(p, stage1[p][0], stage1[p][1], order,
                                                                  *[m[1 + p] for m in stage2])
              for p in range(n_parts)]
    int_meta = pd.Series([], dtype=np.int64)
    return UniqueResult(
        uniques=dd.from_delayed([s[1] for s in stage3], meta=pd.Series([], dtype=object), verify_meta=False),
        inverse=dd.from_delayed([s[0] for s in stage3], meta=int_meta, verify_meta=False),
        counts=dd.from_delayed([s[2] for s in stage3], meta=int_meta, verify_meta=False),
    )


def _lengths(collection) -> list[int]:
    import dask

    return list(dask.compute(*[dask.delayed(len)(p) for p in collection.to_delayed()]))


# --- statistics ------------------------------------------------------------------------

def _rank_pairs(part: pd.DataFrame, barcode_ids: pd.Series, ranks: Sequence[str]) -> dict:
    from bioscan_kmer.data.labels import is_missing_label

    # Records per (label, barcode id) of one partition, for every rank.
    bid = barcode_ids.to_numpy(dtype=np.int64)
    out = {"rows": len(part)}
    for rank in ranks:
        labels = part[rank]
        keep = ~is_missing_label(labels)  # the one rule: NaN, None, "" and blanks are missing
        frame = pd.DataFrame({"label": labels.to_numpy(dtype=object)[keep], "bid": bid[keep]})
        out[rank] = frame.groupby(["label", "bid"], sort=False).size()
    return out


def dataset_statistics(ddf, ranks: Sequence[str] = RANKS, *, barcode_column: str = "dna_barcode",
                       threads: int | None = 1) -> pd.DataFrame:
    """The paper's statistics table of a partitioned table, as
    :func:`bioscan_kmer.data.statistics.dataset_statistics` computes it in memory.

    Barcodes get global ids from :func:`unique`; each partition then counts records per
    (label, barcode id) and rank; only those counts reach the client. Labels are taken
    in sorted order, as the categorical ranks of
    :func:`bioscan_kmer.data.reading.read_metadata` are, so the per-label SDI values
    are averaged in the same order and the table is identical to
    ``dataset_statistics(read_metadata(path))``.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        With the rank columns and ``barcode_column`` (e.g. from :func:`read_table`).
    ranks : sequence of str
    barcode_column : str
    threads : int, optional
        Core threads per task.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`bioscan_kmer.data.statistics.STAT_COLUMNS`, one row per rank.

    Raises
    ------
    ValueError
        A needed column is missing, or a barcode is missing (names the global row).
    """
    dask, dd = _dask()
    from bioscan_kmer.data.statistics import STAT_COLUMNS

    missing = [c for c in (*ranks, barcode_column) if c not in ddf.columns]
    if missing:
        raise ValueError(f"statistics need column(s) {', '.join(map(repr, missing))}")
    barcodes = ddf[barcode_column]

    def no_missing(part: pd.Series, partition_info=None) -> pd.Series:
        isna = part.isna().to_numpy()
        if isna.any():
            raise PartitionRowError((partition_info or {}).get("number", -1), int(np.flatnonzero(isna)[0]),
                                    f"{barcode_column} is missing")
        return part

    checked = barcodes.map_partitions(no_missing, meta=barcodes._meta)
    _, inverse, _ = unique(checked, threads=threads)
    per_part = [dask.delayed(_rank_pairs, pure=True)(part, inv, list(ranks))
                for part, inv in zip(ddf[list(ranks)].to_delayed(), inverse.to_delayed())]
    try:
        (results,) = dask.compute(per_part)
    except PartitionRowError as e:
        raise _global_row_error(e, _lengths(ddf)) from None
    n = sum(r["rows"] for r in results)
    rows = []
    for rank in ranks:
        pairs = pd.concat([r[rank] for r in results])
        pairs = pairs.groupby(level=[0, 1], sort=False).sum()
        if len(pairs) == 0:
            rows.append((rank, 0, 0.0, 0, 0, 0, np.nan, 0, np.nan))
            continue
        labels = pairs.index.get_level_values(0).to_numpy(dtype=object)
        bids = pairs.index.get_level_values(1).to_numpy(dtype=np.int64)
        reps = pairs.to_numpy(dtype=np.int64)
        names = np.array(sorted(set(labels.tolist())), dtype=object)
        codes = np.searchsorted(names, labels)
        per_label = np.bincount(codes, weights=reps, minlength=len(names)).astype(np.int64)
        n_lab = int(reps.sum())
        # The SDI of a label depends on its per-barcode counts only; rows rebuilt from
        # the counts (ints, 16 bytes a record) give the core the same input as in memory.
        _, sdi = bk.paper_sdi(np.repeat(codes, reps).astype(np.int64), np.repeat(bids, reps), threads=threads)
        rows.append((
            rank, n_lab, n_lab / n, len(names), int(per_label.max()), int(per_label.min()),
            float(per_label.max() / per_label.min()), int(len(np.unique(bids))), float(np.mean(sdi)),
        ))
    table = pd.DataFrame(rows, columns=list(STAT_COLUMNS))
    return table.astype({"labelled": "int64", "categories": "int64", "most_populated": "int64",
                         "least_populated": "int64", "unique_dna": "int64"})


# --- shards ----------------------------------------------------------------------------

def _pretraining_forms(part: pd.Series, max_len: int, barcode_column: str, threads,
                       partition_info=None) -> pd.Series:
    from bioscan_kmer.data.prepare import pretraining_form

    number = (partition_info or {}).get("number", -1)
    isna = part.isna().to_numpy()
    if isna.any():
        raise PartitionRowError(number, int(np.flatnonzero(isna)[0]), f"{barcode_column} is missing")
    try:
        forms = pretraining_form(part, max_len=max_len, threads=threads)
    except (ValueError, TypeError) as e:
        _reraise_in_partition(e, number)
    return pd.Series(pd.array(forms, dtype=_STRING), index=part.index, name=part.name)


def _kept_first_occurrences(new_strings: pd.Series, gids: pd.Series, splits: pd.Series) -> np.ndarray:
    """The strings first seen in this partition whose first row is a pretraining split.

    Global ids number the strings by first occurrence, so the partition's new strings have
    the ids ``base .. base + n_new - 1`` (the largest in it) and each first appears where
    its id exceeds every id before it.
    """
    from bioscan_kmer.data.prepare import PRETRAINING_SPLITS

    n_new = len(new_strings)
    if n_new == 0:
        return np.empty(0, dtype=object)
    g = gids.to_numpy(dtype=np.int64)
    base = int(g.max()) - n_new + 1
    before = np.maximum.accumulate(np.concatenate([[base - 1], g[:-1]]))
    first = g > before
    if int(first.sum()) != n_new:  # cannot happen unless unique() broke its contract
        raise AssertionError(f"{int(first.sum())} first occurrences for {n_new} new strings")
    keep = np.isin(splits.to_numpy(dtype=object)[first], list(PRETRAINING_SPLITS))
    return new_strings.to_numpy(dtype=object)[keep]


def pretrain_shards(ddf, out_dir, *, k: int = 4, max_len: int = 660, preset: str = "barcodebert",
                    split_column: str = "split", barcode_column: str = "dna_barcode",
                    extra: dict | None = None, threads: int | None = 1) -> dict:
    """Write the BarcodeBERT pretraining shard from a partitioned table.

    As the ``pretrain`` shard of :func:`bioscan_kmer.data.prepare.prepare_shards`
    (:func:`bioscan_kmer.data.prepare.pretraining_barcodes`): every barcode brought to its
    pretraining form (cleaned, truncated to ``max_len``, trailing N stripped) on the
    workers, deduplicated over the whole table by the two-stage :func:`unique`, then the
    first occurrences in the ``pretrain`` and ``other_heldout`` splits kept, in table
    order, and written by :func:`bioscan_kmer.data.shards.write_shards`. Byte-identical to
    the single-machine shard.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        With ``split_column`` filled (the split rules need the whole table; compute
        them once with :func:`bioscan_kmer.data.splits.partition`).
    out_dir : str or path-like
        On the client's filesystem.
    k, max_len, preset
        Tokenizer settings stored in the manifest (:class:`bioscan_kmer.KmerTokenizer`);
        ``max_len`` is also the truncation length of the forms.
    extra : dict, optional
        Stored in the manifest.
    threads : int, optional
        Core threads per task.

    Returns
    -------
    dict
        ``{"manifest": path, "rows": n}``.

    Raises
    ------
    ValueError
        A missing column, a missing barcode or one the cleaner rejects (named by its row
        in the whole table).

    Notes
    -----
    The kept barcodes (about 0.7 GB per million) are gathered on the client before
    writing; the cleaning and deduplication run on the workers.
    """
    dask, dd = _dask()
    from bioscan_kmer.data.shards import _write_shards

    for col in (split_column, barcode_column):
        if col not in ddf.columns:
            raise ValueError(f"pretrain_shards needs column {col!r}")
    tok = bk.KmerTokenizer(k=k, max_len=max_len, preset=preset)
    barcodes = ddf[barcode_column]
    forms = barcodes.map_partitions(_pretraining_forms, max_len, barcode_column, threads,
                                    meta=pd.Series([], dtype=_STRING, name=barcodes.name))
    uniques, inverse, _ = unique(forms, threads=threads)
    kept = [dask.delayed(_kept_first_occurrences, pure=True)(new, gids, splits)
            for new, gids, splits in zip(uniques.to_delayed(), inverse.to_delayed(),
                                         ddf[split_column].to_delayed())]
    try:
        (kept,) = dask.compute(kept)
    except PartitionRowError as e:
        raise _global_row_error(e, _lengths(ddf)) from None
    import pyarrow as pa

    seqs = pa.array(np.concatenate(kept) if kept else [], type=pa.large_string())
    # The forms come from the core's clean: in the alphabet by construction.
    manifest = _write_shards(out_dir, {"pretrain": seqs}, tok, extra=extra, check_bases=False)
    return {"manifest": manifest, "rows": len(seqs)}
