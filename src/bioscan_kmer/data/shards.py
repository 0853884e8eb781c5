"""Sequence shards: the cleaned barcodes of each split, memory-mapped, plus a JSON manifest.

A shard directory holds, per split, ``<split>.seq.bin`` (the barcodes' letters, one byte
per base, concatenated), ``<split>.offsets.bin`` (int64 little-endian, rows + 1 entries:
row ``i`` is ``seq[offsets[i]:offsets[i + 1]]``) and optionally ``<split>.labels.parquet``
(one row per shard row), and one ``manifest.json`` that describes them all, with the
configuration of the tokenizer that readers apply at read time (never its vocabulary).
Loaders tokenize with the core per batch (:mod:`bioscan_kmer.data.torch_data`), at offset
0 or at BarcodeBERT's random offset in ``[0, k)``: one stored copy serves every reading
frame and every tokenizer.

Every file is written to a temporary name and renamed into place, and the manifest is
written last and removed first: a directory whose manifest exists is complete, and an
interrupted run leaves no half shard that looks finished. The manifest stores the size
and SHA-256 of every file; sizes and offsets are checked on every open, checksums on
request (``verify=True``, ``prepare`` re-runs, resumed pretraining). A manifest is
validated before anything is built from it: file names stay inside the directory, the
tokenizer configuration is the constructor's, sizes agree with the row counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bioscan_kmer._atomic import fsync_dir, replacing
from bioscan_kmer.data.packed import PackedBarcodes, first_bad_base
from bioscan_kmer.errors import UserError

__all__ = [
    "MANIFEST_NAME",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_LEN_LIMIT",
    "ShardError",
    "Shard",
    "write_shards",
    "open_shard",
    "read_manifest",
    "verify_shards",
    "shards_complete",
    "tokenizer_from_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "bioscan-kmer-shards"
#: 1: pre-tokenized ids and masks (until 2026-12). 2: the barcodes themselves.
FORMAT_VERSION = 2
#: Largest ``max_len`` a manifest may ask for: a barcode is ~660 bases, and a reader
#: allocates (batch, max_len / stride) ids, so an edited manifest must not ask for terabytes.
MAX_LEN_LIMIT = 1 << 20

# Split names become file names, so they are restricted to a portable subset.
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Rows are written in blocks so that hashing and writing never need a second copy.
_BLOCK_BYTES = 64 << 20
# The constructor arguments of KmerTokenizer a manifest may hold, with their JSON types.
_TOKENIZER_FIELDS = {"k": int, "stride": int, "max_len": int, "preset": str, "n_nucleotide": bool,
                     "padding": bool, "add_special_tokens": bool, "dtype": str}
_PREPARE_AGAIN = "run `bioscan-kmer prepare` again"


class ShardError(UserError):
    """A shard directory is missing, incomplete or does not match its manifest."""


# Writing ---------------------------------------------------------------------------------

def _write_buffer_atomic(path: Path, arrays) -> dict:
    """Write the bytes of a 1-D array (or of several, one after the other) to ``path``
    atomically; return name, size and SHA-256.

    Each block is hashed on a second thread while it is written (both release the GIL):
    for a 512 MiB file, 1.4 s instead of 3.3 s hashing then writing (2-core VM).
    """
    from concurrent.futures import ThreadPoolExecutor

    digest = hashlib.sha256()
    size = 0
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh, ThreadPoolExecutor(1) as hasher:
            hashed = None
            for arr in ([arrays] if isinstance(arrays, np.ndarray) else arrays):
                flat = memoryview(np.ascontiguousarray(arr)).cast("B")
                size += len(flat)
                for start in range(0, len(flat), _BLOCK_BYTES):
                    block = flat[start:start + _BLOCK_BYTES]
                    if hashed is not None:
                        hashed.result()  # blocks enter the digest in order
                    hashed = hasher.submit(digest.update, block)
                    fh.write(block)
            if hashed is not None:
                hashed.result()
            fh.flush()
            os.fsync(fh.fileno())
    return {"file": path.name, "bytes": size, "sha256": digest.hexdigest()}


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
    """``{"config": ...}`` of a KmerTokenizer, or of a mapping holding one (validated)."""
    if isinstance(tokenizer, Mapping):
        config = tokenizer.get("config", tokenizer)
        if not isinstance(config, Mapping):
            raise TypeError("tokenizer mapping must be a tokenizer config or hold one under 'config'")
        config = dict(config)
    else:
        try:
            config = dict(tokenizer.config)
        except AttributeError as exc:
            raise TypeError(
                f"tokenizer must be a KmerTokenizer (or its config), got {type(tokenizer).__name__}"
            ) from exc
    try:
        tok = _tokenizer_from_config(config, "tokenizer")
    except ShardError as exc:
        raise ValueError(str(exc)) from None
    return {"config": dict(tok.config)}


def _check_split_name(name: Any) -> None:
    if not isinstance(name, str) or not _SPLIT_NAME.match(name):
        raise ValueError(
            f"split name {name!r} is not usable as a file name "
            "(letters, digits, '_', '.', '-'; not starting with '.')"
        )


def _split_value(name: str, value: Any) -> tuple[Any, Any]:
    """``(sequences, labels or None)`` of one entry of ``write_shards``' ``splits``."""
    if isinstance(value, tuple) and len(value) == 3:
        raise TypeError(
            f"split {name!r}: write_shards takes (sequences, labels_df or None) since shard format "
            f"version {FORMAT_VERSION}: shards hold the barcodes, tokenized when read"
        )
    if isinstance(value, tuple) and len(value) == 2 and (value[1] is None or hasattr(value[1], "columns")):
        return value
    return value, None


def _pack_split(name: str, value: Any, check_bases: bool) -> tuple[list[PackedBarcodes], Any]:
    """A split's barcodes as packed parts (one per chunk of a chunked Arrow array, so that
    chunks are written one after the other, never concatenated), and its labels."""
    seqs, labels = _split_value(name, value)
    chunked = _is_chunked(seqs)
    parts, rows = [], 0
    for chunk in (seqs.chunks if chunked else [seqs]):
        try:
            part = PackedBarcodes.from_sequences(chunk)
        except TypeError as exc:
            raise TypeError(f"split {name!r}: {_shift_row(str(exc), rows)}") from None
        if check_bases:
            bad = first_bad_base(part.bases, part.offsets)
            if bad is not None:
                row, pos, byte = bad
                raise ValueError(
                    f"split {name!r}: sequence {rows + row} has {chr(byte)!r} at position {pos}; shards "
                    "hold A, C, G, T and N only: clean the barcodes first (bioscan_kmer.clean)"
                )
        parts.append(part)
        rows += len(part)
    if labels is not None:
        if not hasattr(labels, "columns"):
            raise TypeError(f"split {name!r}: labels must be a pandas DataFrame or None, "
                            f"got {type(labels).__name__}")
        if len(labels) != rows:
            raise ValueError(f"split {name!r}: labels have {len(labels)} rows but there are "
                             f"{rows} sequences")
    return parts, labels


def _is_chunked(seqs: Any) -> bool:
    import sys

    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(seqs, pa.ChunkedArray)


def _shift_row(message: str, rows: int) -> str:
    """``message`` about "sequence i" of a chunk, about the split's row instead."""
    m = re.match(r"sequence (\d+)", message)
    return message if m is None else f"sequence {int(m.group(1)) + rows}{message[m.end():]}"


def _offsets_of(parts: list[PackedBarcodes]) -> np.ndarray:
    """The split's row offsets (int64 little-endian, rows + 1) from its parts'."""
    out = [np.zeros(1, dtype="<i8")]
    base = 0
    for part in parts:
        out.append(np.asarray(part.offsets[1:], dtype="<i8") + base)
        base += len(part.bases)
    return np.concatenate(out)


def write_shards(
    out_dir,
    splits: Mapping[str, Any],
    tokenizer,
    *,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the barcodes of each split, and their manifest, to ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Directory to write to; created if missing. An existing manifest is removed before
        any file is touched, so the directory only looks complete again once this call
        returns.
    splits : mapping of str to sequences or (sequences, labels)
        ``{split: seqs}`` or ``{split: (seqs, labels_df or None)}``. ``seqs`` are cleaned
        barcodes (letters ``ACGTN`` only; :func:`bioscan_kmer.clean` makes them) as a
        pyarrow string array (stored without a Python string per row; the chunks of a
        chunked array are written one after the other, never concatenated), a pandas Series
        or a list of ``str``; ``labels_df`` is a DataFrame with one row per barcode, stored
        as Parquet.
    tokenizer : KmerTokenizer or mapping
        The tokenizer readers apply (its configuration, or the configuration itself):
        stored in the manifest and the default of every loader of the shards.
    extra : mapping, optional
        JSON-serialisable metadata stored under ``"extra"`` (for example the input file and
        the options used, so that a re-run can tell whether the shard is up to date).

    Returns
    -------
    pathlib.Path
        Path of the written manifest.

    Raises
    ------
    ValueError
        A split name is not a safe file name, a barcode holds a letter outside ``ACGTN``
        (the message names the split, row, position and letter), labels do not match.
    TypeError
        A barcode is not a string or is missing, or ``tokenizer`` is not a tokenizer.
    """
    return _write_shards(out_dir, splits, tokenizer, extra=extra, check_bases=True)


def _write_shards(out_dir, splits: Mapping[str, Any], tokenizer, *, extra, check_bases: bool) -> Path:
    """:func:`write_shards`; ``check_bases=False`` for barcodes that come straight from
    :func:`bioscan_kmer.clean`, which are in the alphabet by construction."""
    out = Path(out_dir)
    if not splits:
        raise ValueError("write_shards needs at least one split")
    # Validate everything before touching the directory.
    for name in splits:
        _check_split_name(name)
    checked = {name: _pack_split(name, value, check_bases) for name, value in splits.items()}
    tok = _tokenizer_record(tokenizer)
    extra = dict(extra or {})
    # Fail on non-JSON metadata now, not after gigabytes were written.
    json.dumps(extra, default=_json_default)

    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    manifest_path.unlink(missing_ok=True)
    fsync_dir(out)

    split_records = {}
    for name, (parts, labels) in checked.items():
        record = {
            "rows": sum(map(len, parts)),
            "bases": sum(len(part.bases) for part in parts),
            "sequences": _write_buffer_atomic(out / f"{name}.seq.bin", [part.bases for part in parts]),
            "offsets": _write_buffer_atomic(out / f"{name}.offsets.bin", _offsets_of(parts)),
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


# Reading and validating the manifest -------------------------------------------------------

def _tokenizer_from_config(config: Any, where: str):
    """A ``KmerTokenizer`` from a stored configuration; ShardError for anything else.

    Only the constructor's arguments, with their JSON types, are accepted, and ``max_len``
    is bounded: nothing is built from an edited configuration before it is checked (the
    vocabulary dictionary is never built here; ``k=12, n_nucleotide`` is legal and cheap).
    """
    from bioscan_kmer import KmerTokenizer

    if not isinstance(config, Mapping):
        raise ShardError(f"{where}: the tokenizer configuration is not a JSON object")
    unknown = sorted(set(config) - set(_TOKENIZER_FIELDS))
    if unknown:
        raise ShardError(f"{where}: unknown tokenizer setting(s) {', '.join(map(repr, unknown))}")
    for key, value in config.items():
        kind = _TOKENIZER_FIELDS[key]
        if value is None and key == "stride":
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ShardError(f"{where}: tokenizer setting {key!r} must be {kind.__name__}, got {value!r}")
    if config.get("max_len", 660) > MAX_LEN_LIMIT:
        raise ShardError(f"{where}: tokenizer max_len {config['max_len']} is above {MAX_LEN_LIMIT:,}")
    try:
        return KmerTokenizer(**config)
    except (TypeError, ValueError) as exc:
        raise ShardError(f"{where}: bad tokenizer configuration: {exc}") from None


def _check_file_entry(entry: Any, what: str, where: str) -> None:
    if not isinstance(entry, Mapping):
        raise ShardError(f"{where}: {what} entry is not a JSON object")
    name = entry.get("file")
    # A bare file name inside the shard directory: nothing that climbs out or is absolute.
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
            or "\0" in name or Path(name).is_absolute()):
        raise ShardError(f"{where}: {what} file name {name!r} is not a plain file name inside the "
                         "shard directory")
    size = entry.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ShardError(f"{where}: {what} size {size!r} is not a byte count")
    if not isinstance(entry.get("sha256"), str) or not _SHA256.match(entry["sha256"]):
        raise ShardError(f"{where}: {what} checksum {entry.get('sha256')!r} is not a SHA-256 digest")


def _check_split_record(name: Any, rec: Any, where: str) -> None:
    if not isinstance(name, str) or not _SPLIT_NAME.match(name):
        raise ShardError(f"{where}: split name {name!r} is not a plain name")
    where = f"{where} split {name!r}"
    if not isinstance(rec, Mapping):
        raise ShardError(f"{where}: the split record is not a JSON object")
    for key in ("rows", "bases"):
        value = rec.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ShardError(f"{where}: {key} {value!r} is not a count")
    _check_file_entry(rec.get("sequences"), "sequences", where)
    _check_file_entry(rec.get("offsets"), "offsets", where)
    if rec["sequences"]["bytes"] != rec["bases"]:
        raise ShardError(f"{where}: the sequences file should hold {rec['bases']} bytes, the manifest "
                         f"says {rec['sequences']['bytes']}")
    if rec["offsets"]["bytes"] != 8 * (rec["rows"] + 1):
        raise ShardError(f"{where}: the offsets file should hold {8 * (rec['rows'] + 1)} bytes for "
                         f"{rec['rows']} rows, the manifest says {rec['offsets']['bytes']}")
    if rec.get("labels") is not None:
        _check_file_entry(rec["labels"], "labels", where)


def read_manifest(out_dir) -> dict:
    """Read and validate the manifest of a shard directory.

    Raises
    ------
    ShardError
        The directory or manifest is missing (an unfinished write looks like this),
        unreadable, of another format or version (version 1, pre-tokenized shards: run
        ``prepare`` again), or malformed: no tokenizer, a file name that leaves the
        directory, a bad tokenizer setting, sizes that disagree with the row counts.
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
    where = repr(str(path))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ShardError(f"{where} is not a {FORMAT_NAME} manifest")
    version = manifest.get("version")
    if version == 1:
        raise ShardError(f"{where} holds pre-tokenized shards (format version 1), which this version "
                         f"of bioscan-kmer no longer reads; {_PREPARE_AGAIN} to write sequence shards "
                         f"(format version {FORMAT_VERSION})")
    if version != FORMAT_VERSION:
        raise ShardError(f"{where} has format version {version!r}; this version of bioscan-kmer "
                         f"reads version {FORMAT_VERSION}")
    if "tokenizer" not in manifest:
        raise ShardError(f"{where} has no tokenizer configuration; {_PREPARE_AGAIN}")
    tok = manifest["tokenizer"]
    if not isinstance(tok, Mapping) or not isinstance(tok.get("config"), Mapping):
        raise ShardError(f"{where}: 'tokenizer' must hold a 'config' object; {_PREPARE_AGAIN}")
    splits = manifest.get("splits")
    if not isinstance(splits, Mapping):
        raise ShardError(f"{where} has no 'splits' object")
    for name, rec in splits.items():
        _check_split_record(name, rec, where)
    return manifest


def tokenizer_from_manifest(manifest: Mapping) -> Any:
    """The ``KmerTokenizer`` whose configuration a (validated) manifest holds.

    Raises
    ------
    ShardError
        Unknown settings, settings of the wrong type or range.
    """
    return _tokenizer_from_config(manifest["tokenizer"]["config"], "manifest tokenizer")


def _check_file(out: Path, entry: dict, what: str, verify: bool) -> Path:
    path = out / entry["file"]
    if not path.is_file():
        raise ShardError(f"{what}: file {str(path)!r} listed in the manifest is missing")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise ShardError(
            f"{what}: file {str(path)!r} has {size} bytes, the manifest says {entry['bytes']} "
            f"(truncated or replaced; {_PREPARE_AGAIN})"
        )
    if verify:
        actual = _sha256_file(path)
        if actual != entry["sha256"]:
            raise ShardError(
                f"{what}: checksum of {str(path)!r} does not match the manifest "
                f"(file changed after writing; {_PREPARE_AGAIN})"
            )
    return path


_FILE_KEYS = ("sequences", "offsets", "labels")


# Opening -----------------------------------------------------------------------------------

@dataclass
class Shard:
    """One split of a shard directory, memory-mapped read-only.

    Attributes
    ----------
    barcodes : PackedBarcodes
        The split's barcodes (``.bases`` uint8 and ``.offsets`` int64, memory maps);
        ``barcodes.row(i)`` is row ``i`` as ``str``, ``barcodes.to_arrow()`` all of them.
    labels : pandas.DataFrame or None
        Per-row labels, if the split was written with them.
    manifest : dict
        The whole manifest of the directory.
    split : str
        Name of this split.
    path : pathlib.Path
        The shard directory.
    """

    barcodes: PackedBarcodes
    labels: Any
    manifest: dict
    split: str
    path: Path

    def __len__(self) -> int:
        return len(self.barcodes)

    @property
    def tokenizer(self):
        """The ``KmerTokenizer`` of the manifest: what loaders apply by default."""
        return tokenizer_from_manifest(self.manifest)


def open_shard(out_dir, split: str, *, verify: bool = False, labels: bool = True) -> Shard:
    """Open one split of a shard directory.

    Parameters
    ----------
    out_dir : str or path-like
        Directory written by :func:`write_shards`.
    split : str
        Split name, e.g. ``"pretrain"``.
    verify : bool, default False
        Also recompute the SHA-256 of every file of the split (reads the whole split once).
        File sizes and the row offsets are always checked.
    labels : bool, default True
        Load the labels table, when the split has one.

    Returns
    -------
    Shard

    Raises
    ------
    ShardError
        Missing or malformed manifest, unknown split, missing file, wrong size, row offsets
        that do not fit the sequences, or (``verify``) a checksum mismatch.
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    splits = manifest["splits"]
    if split not in splits:
        raise ShardError(
            f"split {split!r} is not in {str(out / MANIFEST_NAME)!r}; "
            f"available: {', '.join(sorted(splits)) or 'none'}"
        )
    rec = splits[split]
    what = f"shard {str(out)!r} split {split!r}"
    tokenizer_from_manifest(manifest)  # a bad configuration fails on open, not in a worker
    seq_path = _check_file(out, rec["sequences"], what, verify)
    off_path = _check_file(out, rec["offsets"], what, verify)
    # np.memmap refuses empty files.
    bases = (np.memmap(seq_path, dtype=np.uint8, mode="r", shape=(rec["bases"],)) if rec["bases"]
             else np.zeros(0, dtype=np.uint8))
    offsets = np.memmap(off_path, dtype="<i8", mode="r", shape=(rec["rows"] + 1,))
    barcodes = PackedBarcodes(bases, offsets)
    problem = barcodes.check_offsets()
    if problem is not None:
        raise ShardError(f"{what}: {problem} (file {str(off_path)!r} is corrupt; {_PREPARE_AGAIN})")
    table = None
    if rec.get("labels"):
        lab_path = _check_file(out, rec["labels"], what, verify)
        if labels:
            import pandas as pd

            table = pd.read_parquet(lab_path)
            if len(table) != rec["rows"]:
                raise ShardError(f"{what}: labels file has {len(table)} rows, the split has {rec['rows']}")
    return Shard(barcodes=barcodes, labels=table, manifest=manifest, split=split, path=out)


def verify_shards(out_dir) -> dict:
    """Check every file of a shard directory against its manifest (sizes and SHA-256).

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
    tokenizer_from_manifest(manifest)
    for split, rec in manifest["splits"].items():
        what = f"shard {str(out)!r} split {split!r}"
        for key in _FILE_KEYS:
            if rec.get(key):
                _check_file(out, rec[key], what, verify=True)
    return manifest


def shards_complete(out_dir, *, extra: Mapping[str, Any] | None = None, verify: bool = True) -> bool:
    """Whether ``out_dir`` holds a complete, intact shard set, optionally made with ``extra``.

    Used to resume: a re-run with the same inputs and options can skip the work.

    Parameters
    ----------
    out_dir : str or path-like
    extra : mapping, optional
        When given, every key of it must be in the manifest's ``extra`` with an equal value
        (after a JSON round trip, so tuples compare equal to lists); other keys of the
        manifest's ``extra`` are ignored.
    verify : bool, default True
        Recompute checksums, so that a file changed in place (same size) is not taken for
        complete; otherwise only sizes are checked.
    """
    if extra is not None:
        try:
            stored = read_manifest(out_dir).get("extra") or {}
        except ShardError:
            return False
        wanted = json.loads(json.dumps(dict(extra), default=_json_default))
        if any(key not in stored or stored[key] != value for key, value in wanted.items()):
            return False
    try:
        manifest = read_manifest(out_dir)
        tokenizer_from_manifest(manifest)
        out = Path(out_dir)
        for split, rec in manifest["splits"].items():
            for key in _FILE_KEYS:
                if rec.get(key):
                    _check_file(out, rec[key], split, verify)
    except ShardError:
        return False
    return True
