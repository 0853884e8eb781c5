"""Pre-tokenized shards: flat fixed-width token files plus a JSON manifest.

A shard directory holds, per split, ``<split>.ids.bin`` (row-major token ids,
dtype and shape in the manifest), ``<split>.mask.bin`` (uint8, same shape) and
optionally ``<split>.labels.parquet`` (one row per shard row), and one
``manifest.json`` that describes them all.

Every file is written to a temporary name and renamed into place, and the
manifest is written last and removed first: a directory whose manifest exists
is complete, and an interrupted run leaves no half shard that looks finished.
The manifest stores the size and SHA-256 of every file so that a truncated or
swapped file is reported instead of silently read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bioscan_kmer._atomic import fsync_dir, replacing
from bioscan_kmer.errors import UserError

__all__ = [
    "MANIFEST_NAME",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ShardError",
    "Shard",
    "write_shards",
    "open_shard",
    "read_manifest",
    "verify_shards",
    "shards_complete",
]

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "bioscan-kmer-shards"
FORMAT_VERSION = 1

# Split names become file names, so they are restricted to a portable subset.
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Rows are written in blocks so that hashing and writing never need a second
# copy of a multi-gigabyte array.
_BLOCK_BYTES = 64 << 20


class ShardError(UserError):
    """A shard directory is missing, incomplete or does not match its manifest."""




def _write_array_atomic(path: Path, arr: np.ndarray) -> dict:
    """Write ``arr`` row-major to ``path`` atomically; return size and SHA-256."""
    digest = hashlib.sha256()
    flat = arr.reshape(-1) if arr.flags.c_contiguous else None
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh:
            if flat is not None:
                step = max(1, _BLOCK_BYTES // max(1, arr.itemsize))
                for start in range(0, flat.size, step):
                    block = memoryview(flat[start : start + step]).cast("B")
                    digest.update(block)
                    fh.write(block)
            else:
                rows_per_block = max(1, _BLOCK_BYTES // max(1, arr[0:1].nbytes or 1))
                for start in range(0, arr.shape[0], rows_per_block):
                    block = np.ascontiguousarray(arr[start : start + rows_per_block])
                    view = memoryview(block.reshape(-1)).cast("B")
                    digest.update(view)
                    fh.write(view)
            fh.flush()
            os.fsync(fh.fileno())
    return {"file": path.name, "bytes": int(arr.nbytes), "sha256": digest.hexdigest()}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_BLOCK_BYTES)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def _write_labels_atomic(path: Path, labels) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(labels.reset_index(drop=True), preserve_index=False)
    with replacing(path) as tmp:
        pq.write_table(table, tmp)
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": _sha256_file(path),
        "columns": list(map(str, labels.columns)),
    }


def _json_default(obj: Any):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"manifest value of type {type(obj).__name__} is not JSON-serialisable")


def _tokenizer_record(tokenizer) -> dict:
    if isinstance(tokenizer, Mapping):
        # Already a manifest record (e.g. copied from another shard directory).
        if "config" not in tokenizer or "vocab" not in tokenizer:
            raise TypeError("tokenizer mapping must have 'config' and 'vocab' keys")
        return {"config": dict(tokenizer["config"]), "vocab": dict(tokenizer["vocab"])}
    try:
        config = dict(tokenizer.config)
        vocab = {str(k): int(v) for k, v in tokenizer.vocab.items()}
    except AttributeError as exc:
        raise TypeError(
            "tokenizer must be a KmerTokenizer (with .config and .vocab), "
            f"got {type(tokenizer).__name__}"
        ) from exc
    return {"config": config, "vocab": vocab}


def _check_split(name: str, ids, mask, labels) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(name, str) or not _SPLIT_NAME.match(name):
        raise ValueError(
            f"split name {name!r} is not usable as a file name "
            "(letters, digits, '_', '.', '-'; not starting with '.')"
        )
    ids = np.asarray(ids)
    mask = np.asarray(mask)
    if ids.ndim != 2:
        raise ValueError(f"split {name!r}: ids must be 2-D (rows, seq_len), got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"split {name!r}: ids must be integers, got dtype {ids.dtype}")
    if mask.shape != ids.shape:
        raise ValueError(
            f"split {name!r}: mask shape {mask.shape} differs from ids shape {ids.shape}"
        )
    if mask.dtype != np.uint8:
        if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.integer):
            raise TypeError(f"split {name!r}: mask must be bool or integer, got dtype {mask.dtype}")
        if mask.size and (mask.min() < 0 or mask.max() > 1):
            raise ValueError(f"split {name!r}: mask values must be 0 or 1")
        mask = mask.astype(np.uint8)
    # Files are little-endian whatever the machine, so the manifest needs no byte order.
    ids = ids.astype(ids.dtype.newbyteorder("<"), copy=False)
    if labels is not None:
        if not hasattr(labels, "columns"):
            raise TypeError(
                f"split {name!r}: labels must be a pandas DataFrame or None, "
                f"got {type(labels).__name__}"
            )
        if len(labels) != ids.shape[0]:
            raise ValueError(
                f"split {name!r}: labels have {len(labels)} rows but ids have {ids.shape[0]}"
            )
    return ids, mask


def write_shards(
    out_dir,
    splits: Mapping[str, tuple],
    tokenizer,
    *,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write pre-tokenized splits and their manifest to ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Directory to write to; created if missing. An existing manifest is
        removed before any file is touched, so the directory only looks
        complete again once this call returns.
    splits : mapping of str to tuple
        ``{split: (ids, mask, labels_df_or_None)}``. ``ids`` is an integer
        array ``(rows, seq_len)`` written with its own dtype; ``mask`` has the
        same shape (bool or 0/1 integers) and is stored as uint8; ``labels_df``
        is a DataFrame with one row per shard row, stored as Parquet.
    tokenizer : KmerTokenizer or mapping
        The tokenizer that produced ``ids``; its ``config`` and ``vocab`` go
        into the manifest so that the shard can be decoded later.
    extra : mapping, optional
        JSON-serialisable metadata stored under ``"extra"`` (for example the
        input file and the options used, so that a re-run can tell whether
        the shard is up to date).

    Returns
    -------
    pathlib.Path
        Path of the written manifest.

    Raises
    ------
    ValueError
        A split name is not a safe file name, or shapes do not agree.
    TypeError
        ``ids`` is not an integer array, or ``tokenizer`` lacks config/vocab.
    """
    out = Path(out_dir)
    if not splits:
        raise ValueError("write_shards needs at least one split")
    # Validate everything before touching the directory.
    checked = {}
    for name, value in splits.items():
        if not isinstance(value, (tuple, list)) or len(value) not in (2, 3):
            raise TypeError(f"split {name!r}: expected (ids, mask, labels_df or None)")
        ids, mask, labels = (tuple(value) + (None,))[:3]
        ids, mask = _check_split(name, ids, mask, labels)
        checked[name] = (ids, mask, labels)
    tok = _tokenizer_record(tokenizer)
    extra = dict(extra or {})
    # Fail on non-JSON metadata now, not after gigabytes were written.
    json.dumps(extra, default=_json_default)

    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    manifest_path.unlink(missing_ok=True)
    fsync_dir(out)

    split_records = {}
    for name, (ids, mask, labels) in checked.items():
        rows, seq_len = ids.shape
        record = {
            "rows": int(rows),
            "seq_len": int(seq_len),
            "shape": [int(rows), int(seq_len)],
            "dtype": ids.dtype.name,
            "byteorder": "little",
            "ids": _write_array_atomic(out / f"{name}.ids.bin", ids),
            "mask": {
                "dtype": "uint8",
                **_write_array_atomic(out / f"{name}.mask.bin", mask),
            },
            "labels": None,
        }
        if labels is not None:
            record["labels"] = _write_labels_atomic(out / f"{name}.labels.parquet", labels)
        split_records[name] = record

    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "tokenizer": tok,
        "splits": split_records,
        "extra": extra,
    }
    with replacing(manifest_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=False, default=_json_default)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    fsync_dir(out)
    return manifest_path


def read_manifest(out_dir) -> dict:
    """Read and sanity-check the manifest of a shard directory.

    Raises
    ------
    ShardError
        The directory or manifest is missing (an unfinished write looks like
        this), unreadable, or not a shard manifest of a known version.
    """
    out = Path(out_dir)
    path = out / MANIFEST_NAME
    if not out.is_dir():
        raise ShardError(f"shard directory {str(out)!r} does not exist")
    if not path.is_file():
        raise ShardError(
            f"no {MANIFEST_NAME} in {str(out)!r}: not a shard directory, "
            "or its writing was interrupted (run prepare again)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardError(f"cannot read {str(path)!r}: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ShardError(f"{str(path)!r} is not a {FORMAT_NAME} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ShardError(
            f"{str(path)!r} has format version {manifest.get('version')!r}; "
            f"this version of bioscan-kmer reads version {FORMAT_VERSION}"
        )
    return manifest


def _check_file(out: Path, entry: dict, what: str, verify: bool) -> Path:
    path = out / entry["file"]
    if not path.is_file():
        raise ShardError(f"{what}: file {str(path)!r} listed in the manifest is missing")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise ShardError(
            f"{what}: file {str(path)!r} has {size} bytes, the manifest says {entry['bytes']} "
            "(truncated or replaced; run prepare again)"
        )
    if verify:
        actual = _sha256_file(path)
        if actual != entry["sha256"]:
            raise ShardError(
                f"{what}: checksum of {str(path)!r} does not match the manifest "
                "(file changed after writing; run prepare again)"
            )
    return path


@dataclass
class Shard:
    """One split of a shard directory, memory-mapped read-only.

    Attributes
    ----------
    ids : numpy.memmap
        Token ids, shape ``(rows, seq_len)``.
    mask : numpy.memmap
        uint8 attention mask, same shape.
    labels : pandas.DataFrame or None
        Per-row labels, if the split was written with them.
    manifest : dict
        The whole manifest of the directory.
    split : str
        Name of this split.
    path : pathlib.Path
        The shard directory.
    """

    ids: np.ndarray
    mask: np.ndarray
    labels: Any
    manifest: dict
    split: str
    path: Path
    _tokenizer: Any = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.ids.shape[1])

    @property
    def tokenizer(self):
        """The ``KmerTokenizer`` rebuilt from the manifest (built on first use)."""
        if self._tokenizer is None:
            self._tokenizer = tokenizer_from_manifest(self.manifest)
        return self._tokenizer


def tokenizer_from_manifest(manifest: Mapping) -> Any:
    """Rebuild the ``KmerTokenizer`` recorded in a manifest and check its vocabulary."""
    from bioscan_kmer import KmerTokenizer

    record = manifest["tokenizer"]
    config = dict(record["config"])
    try:
        tok = KmerTokenizer(**config)
    except TypeError:
        # Config may carry derived, read-only entries (vocab_size, seq_len, ...);
        # keep only what the constructor takes.
        import inspect

        params = inspect.signature(KmerTokenizer).parameters
        tok = KmerTokenizer(**{k: v for k, v in config.items() if k in params})
    if {str(k): int(v) for k, v in tok.vocab.items()} != record["vocab"]:
        raise ShardError(
            "the tokenizer rebuilt from the manifest has a different vocabulary "
            "than the one the shard was written with"
        )
    return tok


def open_shard(out_dir, split: str, *, verify: bool = False, labels: bool = True) -> Shard:
    """Open one split of a shard directory.

    Parameters
    ----------
    out_dir : str or path-like
        Directory written by :func:`write_shards`.
    split : str
        Split name, e.g. ``"pretrain"``.
    verify : bool, default False
        Also recompute the SHA-256 of every file of the split (reads the whole
        split once). File sizes are always checked.
    labels : bool, default True
        Load the labels table, when the split has one.

    Returns
    -------
    Shard

    Raises
    ------
    ShardError
        Missing manifest, unknown split, missing file, wrong size or checksum.
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    splits = manifest.get("splits", {})
    if split not in splits:
        raise ShardError(
            f"split {split!r} is not in {str(out / MANIFEST_NAME)!r}; "
            f"available: {', '.join(sorted(splits)) or 'none'}"
        )
    rec = splits[split]
    what = f"shard {str(out)!r} split {split!r}"
    shape = tuple(rec["shape"])
    dtype = np.dtype(rec["dtype"]).newbyteorder("<")
    ids_path = _check_file(out, rec["ids"], what, verify)
    mask_path = _check_file(out, rec["mask"], what, verify)
    expected = int(np.prod(shape)) * dtype.itemsize
    if rec["ids"]["bytes"] != expected or rec["mask"]["bytes"] != int(np.prod(shape)):
        raise ShardError(f"{what}: manifest sizes disagree with shape {shape} and dtype {dtype}")
    if shape[0] == 0:
        # np.memmap refuses empty files.
        ids = np.zeros(shape, dtype=dtype)
        mask = np.zeros(shape, dtype=np.uint8)
    else:
        ids = np.memmap(ids_path, dtype=dtype, mode="r", shape=shape)
        mask = np.memmap(mask_path, dtype=np.uint8, mode="r", shape=shape)
    table = None
    if rec.get("labels"):
        lab_path = _check_file(out, rec["labels"], what, verify)
        if labels:
            import pandas as pd

            table = pd.read_parquet(lab_path)
            if len(table) != shape[0]:
                raise ShardError(
                    f"{what}: labels file has {len(table)} rows, ids have {shape[0]}"
                )
    return Shard(ids=ids, mask=mask, labels=table, manifest=manifest, split=split, path=out)


def verify_shards(out_dir) -> dict:
    """Check every file of a shard directory against its manifest.

    Returns
    -------
    dict
        The manifest, when everything matches.

    Raises
    ------
    ShardError
        On the first missing file, wrong size or checksum mismatch.
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    for split, rec in manifest["splits"].items():
        what = f"shard {str(out)!r} split {split!r}"
        for key in ("ids", "mask", "labels"):
            if rec.get(key):
                _check_file(out, rec[key], what, verify=True)
    return manifest


def shards_complete(out_dir, *, extra: Mapping[str, Any] | None = None, verify: bool = True) -> bool:
    """Whether ``out_dir`` holds a complete shard set, optionally made with ``extra``.

    Used to resume: a re-run with the same inputs and options can skip the work.

    Parameters
    ----------
    out_dir : str or path-like
    extra : mapping, optional
        When given, every key of it must be in the manifest's ``extra`` with an
        equal value (after a JSON round trip, so tuples compare equal to lists);
        other keys of the manifest's ``extra`` are ignored.
    verify : bool, default True
        Recompute checksums; otherwise only sizes are checked.
    """
    try:
        manifest = read_manifest(out_dir)
        out = Path(out_dir)
        for split, rec in manifest["splits"].items():
            for key in ("ids", "mask", "labels"):
                if rec.get(key):
                    _check_file(out, rec[key], split, verify)
    except ShardError:
        return False
    if extra is not None:
        wanted = json.loads(json.dumps(dict(extra), default=_json_default))
        stored = manifest.get("extra") or {}
        if any(key not in stored or stored[key] != value for key, value in wanted.items()):
            return False
    return True
