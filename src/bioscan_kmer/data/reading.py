"""Reading and writing BIOSCAN metadata, BOLD exports, FASTA and Parquet files.

:func:`inspect_file` is the one place that tells file types apart, from their content
(gzip and Parquet magic bytes, a FASTA ``>``, the header of a delimited table), never
from the extension; :func:`read_any` reads whatever it finds and :func:`write_table`
writes the format an output's extension names. The CSV/TSV readers use pyarrow's
multithreaded parser; a 5M-row BIOSCAN-5M metadata file loads in seconds with string
columns kept in Arrow memory.
"""

from __future__ import annotations

from bioscan_kmer._atomic import check_output_path, replacing

import csv
import gzip
import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from bioscan_kmer.data.schema import DTYPES, RANKS
from bioscan_kmer.errors import DataError, UsageError

__all__ = [
    "DataFileError",
    "FileInfo",
    "inspect_file",
    "read_any",
    "read_metadata",
    "read_bold_tsv",
    "iter_fasta",
    "read_fasta",
    "write_fasta",
    "write_metadata_csv",
    "write_table",
    "output_format",
    "file_fingerprint",
    "FASTA_FIELDS",
    "FASTA_SUFFIXES",
]

# BIOSCAN-1M TSV and BOLD names -> BIOSCAN-5M names.
_BIOSCAN1M_RENAME = {"nucraw": "dna_barcode", "uri": "dna_bin", "name": "taxon",
                     "province/state": "province_state"}
_BOLD_RENAME = {"nuc": "dna_barcode", "nucraw": "dna_barcode", "sequence": "dna_barcode",
                "bin_uri": "dna_bin", "identification": "taxon", "province/state": "province_state",
                "lat": "coord-lat", "lon": "coord-lon"}
_BOLD_SEQUENCE_COLUMNS = ("nuc", "nucraw", "sequence")
# BIOSCAN-1M writes missing ranks as this word.
_MISSING_WORDS = ["", "not_classified", "None", "NA", "nan", "NaN"]
FASTA_FIELDS = ("processid", *RANKS, "dna_bin")
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
# Column of read_fasta holding a header that is not in write_fasta's layout, verbatim.
FASTA_HEADER = "fasta_header"

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
# Compressions we do not read, told by their magic bytes so the message can say so.
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip"}
_BOM = "\ufeff"


class DataFileError(DataError):
    """A data file is missing, unreadable, malformed, of an unknown kind, or lacks a
    needed column (the message names the file, and the line or column)."""


@dataclass(frozen=True)
class FileInfo:
    """What :func:`inspect_file` found out about a data file.

    Attributes
    ----------
    path : Path
    kind : {"fasta", "parquet", "bold", "bioscan1m", "metadata"}
        ``bold``: a BOLD export (``processid``, a ``nuc``/``nucraw``/``sequence`` column);
        ``bioscan1m``: BIOSCAN-1M metadata (``nucraw`` and ``uri``); ``metadata``: any
        other table (BIOSCAN-5M metadata and tables this package wrote).
    compression : {None, "gzip"}
    delimiter : str or None
        ``","`` or ``"\\t"`` for delimited text.
    quoted : bool
        Every header field is in double quotes (R's ``write.table``): values may be too.
    header : list of str
        Column names as the file spells them (without byte-order mark and quotes).
    columns : list of str
        The names the reader gives them (BIOSCAN-5M names after the BOLD/BIOSCAN-1M
        renames), in file order.
    row_names : bool
        The header has one field fewer than the rows: the first field of each row is a
        row name (R's default), which the reader skips.
    """

    path: Path
    kind: str
    compression: str | None = None
    delimiter: str | None = None
    quoted: bool = False
    header: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    row_names: bool = False


def _label(path: Path) -> str:
    return repr(str(path))


def _open_text(path: Path, compression: str | None):
    if compression == "gzip":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, "r", encoding="utf-8", newline="")


def _first_lines(path: Path, compression: str | None, n: int) -> tuple[int, list[str]]:
    """Blank lines before the first text, and up to ``n`` lines from there (BOM removed)."""
    lines, blank = [], 0
    try:
        with _open_text(path, compression) as fh:
            for line in fh:
                if not lines:
                    line = line.removeprefix(_BOM)
                    if not line.strip():
                        blank += 1
                        continue
                lines.append(line)
                if len(lines) == n:
                    break
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{_label(path)} is not UTF-8 text (a binary file?): {exc.reason} "
                            f"at byte {exc.start}") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFileError(f"{_label(path)}: corrupt or truncated gzip data ({exc})") from None
    if not lines:
        raise DataFileError(f"{_label(path)} is empty: expected a header line")
    return blank, lines


def _split_header(line: str, delimiter: str, quoted: bool) -> list[str]:
    return next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter,
                           quoting=csv.QUOTE_MINIMAL if quoted or delimiter == "," else csv.QUOTE_NONE))


def _renames(kind: str, header: Sequence[str]) -> dict:
    if kind == "bioscan1m":
        return _BIOSCAN1M_RENAME
    if kind == "bold":
        # Only the first sequence column becomes dna_barcode; others keep their names.
        first = next(h for h in _BOLD_SEQUENCE_COLUMNS if h in header)
        return {k: v for k, v in _BOLD_RENAME.items()
                if k in header and (k not in _BOLD_SEQUENCE_COLUMNS or k == first)}
    return {}


def _table_kind(header: Sequence[str]) -> str:
    names = set(header)
    if "dna_barcode" in names:
        return "metadata"
    if "nucraw" in names and "uri" in names:
        return "bioscan1m"
    if names & set(_BOLD_SEQUENCE_COLUMNS):
        return "bold"
    return "bioscan1m" if "uri" in names else "metadata"


def _check_unique(path: Path, header: Sequence[str], columns: Sequence[str]) -> None:
    seen: dict[str, list[str]] = {}
    for src, name in zip(header, columns):
        seen.setdefault(name, []).append(src)
    dups = {name: srcs for name, srcs in seen.items() if len(srcs) > 1}
    if dups:
        parts = []
        for name, srcs in dups.items():
            origin = "" if set(srcs) == {name} else f" (from {', '.join(map(repr, srcs))})"
            parts.append(f"{name!r}{origin}")
        raise DataFileError(f"{_label(path)}: duplicate column name(s) {', '.join(parts)}; "
                            "every column needs its own name")


def inspect_file(path) -> FileInfo:
    """Tell what kind of data file ``path`` is, from its content, and read its header.

    Gzip-compressed files are recognised by their magic bytes (any extension) and looked
    into. A Parquet file starts with ``PAR1``; a FASTA file's first non-blank line starts
    with ``>``; anything else is a delimited table whose header decides between a BOLD
    export, BIOSCAN-1M and other metadata (:class:`FileInfo`). A UTF-8 byte-order mark is
    skipped; a header in double quotes (R) means quoted values.

    Raises
    ------
    DataFileError
        No such file, a directory, an empty, binary or corrupt file, an unsupported
        compression, or duplicate column names (also after the BOLD/BIOSCAN-1M renames).
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise DataFileError(f"{_label(path)}: no such file")
    if path.is_dir():
        raise DataFileError(f"{_label(path)} is a directory, not a data file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise DataFileError(f"{_label(path)}: cannot read ({exc.strerror or exc})") from exc
    if magic.startswith(_PARQUET_MAGIC):
        import pyarrow.parquet as pq

        try:
            names = list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(f"{_label(path)}: not a readable Parquet file ({exc})") from None
        _check_unique(path, names, names)
        return FileInfo(path, "parquet", header=names, columns=names)
    for prefix, name in _OTHER_MAGIC.items():
        if magic.startswith(prefix):
            raise DataFileError(f"{_label(path)} is {name}-compressed; only gzip (.gz) is read: "
                                "decompress it first")
    compression = "gzip" if magic.startswith(_GZIP_MAGIC) else None
    blank, lines = _first_lines(path, compression, 2)
    first = lines[0]
    if first.startswith(">"):
        return FileInfo(path, "fasta", compression, columns=[*FASTA_FIELDS, "dna_barcode", FASTA_HEADER])
    if blank:
        raise DataFileError(f"{_label(path)} line 1 is empty: expected a header line")
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    raw = first.rstrip("\r\n").split(delimiter)
    quoted = all(len(f) >= 2 and f[0] == f[-1] == '"' for f in raw)
    header = _split_header(first, delimiter, quoted)
    row_names = False
    if quoted and len(lines) > 1:
        row = _split_header(lines[1], delimiter, True)
        row_names = len(row) == len(header) + 1
    kind = _table_kind(header)
    rename = _renames(kind, header)
    columns = [rename.get(h, h) for h in header]
    _check_unique(path, header, columns)
    return FileInfo(path, kind, compression, delimiter, quoted, header, columns, row_names)


def _arrow_type(dtype: str):
    return {
        "str": pa.large_string(), "category": pa.dictionary(pa.int32(), pa.large_string()),
        "float64": pa.float64(), "uint8": pa.uint8(), "Int64": pa.int64(),
    }[dtype]


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    str_dtype = pd.StringDtype("pyarrow", na_value=np.nan)

    def mapper(t):
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return str_dtype
        if pa.types.is_int64(t):
            return pd.Int64Dtype()
        return None

    return _sorted_categories(table.to_pandas(types_mapper=mapper))


def _sorted_categories(df: pd.DataFrame) -> pd.DataFrame:
    """Categoricals with sorted ``object`` categories, whatever the file stored."""
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            # Sorted categories, as pandas' own CSV reader gives: codes match the
            # official loader's label ids.
            cats = col.cat.categories.astype(str)
            df[name] = col.cat.set_categories(pd.Index(sorted(cats), dtype=object)) if len(cats) else col
    return df


def _missing_columns_error(info: FileInfo, missing: Sequence[str], what: str) -> DataFileError:
    have = info.columns
    return DataFileError(
        f"{_label(info.path)}: missing column(s) {', '.join(map(repr, missing))} for {what}; "
        f"the file has {', '.join(have[:30])}{' ...' if len(have) > 30 else ''}"
    )


def _read_table(info: FileInfo, columns, required: Sequence[str], what: str) -> pd.DataFrame:
    path = info.path
    available = dict(zip(info.columns, info.header))
    wanted = list(columns) if columns is not None else list(info.columns)
    missing = [c for c in dict.fromkeys([*required, *wanted]) if c not in available]
    if missing:
        raise _missing_columns_error(info, missing, what)
    wanted = list(dict.fromkeys(wanted))
    source = [available[c] for c in wanted]
    types = {src: _arrow_type(DTYPES[c]) if c in DTYPES else pa.large_string()
             for c, src in zip(wanted, source)}
    # The parser gets the names from us (it skips the header line), so a byte-order
    # mark or quotes around the names cannot make them differ from ours.
    names = ([""] if info.row_names else []) + list(info.header)
    convert = pacsv.ConvertOptions(
        column_types=types, include_columns=source, null_values=list(_MISSING_WORDS),
        strings_can_be_null=True, quoted_strings_can_be_null=True,
    )
    parse = pacsv.ParseOptions(delimiter=info.delimiter,
                               quote_char='"' if info.delimiter == "," or info.quoted else False,
                               newlines_in_values=False)
    read = pacsv.ReadOptions(block_size=64 << 20, column_names=names, skip_rows=1)
    source_file = pa.input_stream(str(path), compression="gzip") if info.compression else path
    try:
        table = pacsv.read_csv(source_file, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowException as exc:
        raise DataFileError(f"{_label(path)}: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        if exc.errno is not None:
            raise
        # pyarrow's decompressor reports corrupt data as a bare OSError.
        raise DataFileError(f"{_label(path)}: {exc}") from None
    finally:
        if info.compression:
            source_file.close()
    cols = list(table.columns)
    del table
    df = _to_pandas(pa.Table.from_arrays(_single_chunk_strings(cols), names=wanted))
    del cols
    # The parser's block buffers are free now; hand them back instead of keeping them.
    pa.default_memory_pool().release_unused()
    return df


def _concat_large_strings(chunks: list) -> pa.Array:
    """One large_string array from chunks, freeing each chunk once copied.

    ``chunks`` is emptied as it goes, so the peak is the result plus one chunk,
    not two copies of the column (as ``combine_chunks`` needs).
    """
    n = sum(len(c) for c in chunks)
    nbytes = 0
    for c in chunks:
        if len(c):
            offs = np.frombuffer(c.buffers()[1], dtype=np.int64)[c.offset:c.offset + len(c) + 1]
            nbytes += int(offs[-1] - offs[0])
    data = np.empty(nbytes, dtype=np.uint8)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    valid = np.ones(n, dtype=bool)
    row = pos = 0
    for j in range(len(chunks)):
        c = chunks[j]
        chunks[j] = None
        m = len(c)
        if m:
            offs = np.frombuffer(c.buffers()[1], dtype=np.int64)[c.offset:c.offset + m + 1]
            size = int(offs[-1] - offs[0])
            if size:
                data[pos:pos + size] = np.frombuffer(c.buffers()[2], dtype=np.uint8)[offs[0]:offs[-1]]
            offsets[row + 1:row + m + 1] = offs[1:] - offs[0] + pos
            if c.null_count:
                valid[row:row + m] = c.is_valid().to_numpy(zero_copy_only=False)
            row += m
            pos += size
        del c
        pa.default_memory_pool().release_unused()
    null_count = int(n - valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if null_count else None
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data), bitmap, null_count)


def _single_chunk_strings(cols: list) -> list:
    """The columns with each string column in one chunk (the parser gives one per block).

    pyarrow's ``take`` on a chunked string column copies the whole column first, so
    every later row selection (deduplication, per-split rows) would. One copy at read
    time, chunk by chunk, costs one column's worth of memory only briefly. ``cols`` is
    consumed (its entries are replaced).
    """
    for i in sorted(range(len(cols)), key=lambda i: -cols[i].nbytes):
        col = cols[i]
        if col.num_chunks <= 1:
            continue
        if pa.types.is_large_string(col.type):
            chunks = list(col.chunks)
            cols[i] = col = None
            cols[i] = pa.chunked_array([_concat_large_strings(chunks)], type=pa.large_string())
        elif pa.types.is_string(col.type):
            cols[i] = pa.chunked_array([col.combine_chunks()], type=col.type)
            del col
            pa.default_memory_pool().release_unused()
    return cols


def _table_info(path, reader: str) -> FileInfo:
    info = inspect_file(path)
    if info.kind in ("fasta", "parquet"):
        raise DataFileError(f"{_label(info.path)} is a {info.kind.capitalize()} file, not a delimited "
                            f"table: read it with read_any (not {reader})")
    return info


def read_metadata(path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read BIOSCAN-5M metadata CSV or BIOSCAN-1M metadata TSV with the official types.

    Parameters
    ----------
    path : str or path-like
        ``BIOSCAN_5M_Insect_Dataset_metadata.csv`` (comma-separated) or a
        BIOSCAN-1M ``.tsv``, optionally gzip-compressed; the delimiter is detected from
        the header. BIOSCAN-1M names are mapped (``nucraw`` -> ``dna_barcode``, ``uri``
        -> ``dna_bin``, ``name`` -> ``taxon``) and ``not_classified`` means missing.
    columns : sequence of str, optional
        Columns to load (BIOSCAN-5M names). All by default. Loading only what a
        step needs saves most of the memory (``dna_barcode`` dominates it).

    Returns
    -------
    pandas.DataFrame
        Ranks and ``dna_bin`` categorical with sorted categories, strings in
        pandas' Arrow-backed ``str`` dtype, missing labels as NaN.

    Raises
    ------
    DataFileError
        No such file, empty or malformed file, duplicate column names, or a requested
        column is missing (the message names the column and lists what the file has).
    """
    info = _table_info(path, "read_metadata")
    if info.kind == "bold":  # read as a plain table: no BOLD renames, no marker filter
        info = FileInfo(info.path, "metadata", info.compression, info.delimiter, info.quoted,
                        info.header, list(info.header), info.row_names)
        _check_unique(info.path, info.header, info.columns)
    return _read_table(info, columns, [], "BIOSCAN metadata")


def read_bold_tsv(path, *, marker: str | None = "COI-5P", columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a BOLD data-package TSV export into the BIOSCAN column names.

    Parameters
    ----------
    path : str or path-like
        TSV with ``processid``, a sequence column (``nuc``, ``nucraw`` or
        ``sequence``), optionally ``bin_uri``, ranks and ``marker_code``; optionally
        gzip-compressed.
    marker : str or None, default "COI-5P"
        Keep only rows of this marker (when the file has ``marker_code``).
    columns : sequence of str, optional
        Columns to keep (after renaming); default all.

    Returns
    -------
    pandas.DataFrame
        ``dna_barcode`` holds the raw sequence as published (clean it with
        :func:`bioscan_kmer.clean`); ranks missing from the file are absent.

    Raises
    ------
    DataFileError
        No such file, no sequence column, duplicate column names, or malformed rows.
    """
    info = _table_info(path, "read_bold_tsv")
    if not set(info.header) & set(_BOLD_SEQUENCE_COLUMNS):
        raise DataFileError(
            f"{_label(info.path)}: no sequence column (expected 'nuc', 'nucraw' or 'sequence'); "
            f"the file has {', '.join(info.header)}"
        )
    if info.kind != "bold":
        rename = _renames("bold", info.header)
        info = FileInfo(info.path, "bold", info.compression, info.delimiter, info.quoted, info.header,
                        [rename.get(h, h) for h in info.header], info.row_names)
        _check_unique(info.path, info.header, info.columns)
    filter_marker = marker is not None and "marker_code" in info.columns
    wanted = None if columns is None else list(dict.fromkeys([*columns, *(["marker_code"] if filter_marker else [])]))
    df = _read_table(info, wanted, ["processid", "dna_barcode"], "a BOLD export")
    if filter_marker:
        df = df[df["marker_code"] == marker].reset_index(drop=True)
        if columns is not None and "marker_code" not in columns:
            df = df.drop(columns="marker_code")
    return df


def iter_fasta(path) -> Iterator[tuple[str, str]]:
    """Stream ``(header, sequence)`` pairs; multi-line sequences are joined.

    Gzip-compressed files are read directly; a byte-order mark is skipped.

    Raises
    ------
    DataFileError
        Sequence text before the first header, an empty header, or a header with no
        sequence (the message names the line).
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise DataFileError(f"{_label(path)}: no such file")
    if path.is_dir():
        raise DataFileError(f"{_label(path)} is a directory, not a data file")
    with open(path, "rb") as fh:
        compression = "gzip" if fh.read(2) == _GZIP_MAGIC else None
    header, parts, header_line = None, [], 0
    lineno = 0
    try:
        with _open_text(path, compression) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.removeprefix(_BOM).strip() if lineno == 1 else line.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    if header is not None:
                        if not parts:
                            raise DataFileError(f"{_label(path)} line {header_line}: record {header!r} has no sequence")
                        yield header, "".join(parts)
                    header, parts, header_line = line[1:].strip(), [], lineno
                    if not header:
                        raise DataFileError(f"{_label(path)} line {lineno}: empty FASTA header "
                                            "(a record needs an id after '>')")
                elif header is None:
                    raise DataFileError(f"{_label(path)} line {lineno}: sequence text before the first '>' header")
                else:
                    parts.append(line)
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{_label(path)} line {lineno + 1}: not UTF-8 text ({exc.reason})") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFileError(f"{_label(path)}: corrupt or truncated gzip data ({exc})") from None
    if header is not None:
        if not parts:
            raise DataFileError(f"{_label(path)} line {header_line}: record {header!r} has no sequence")
        yield header, "".join(parts)


def _fasta_id(header: str) -> str:
    """The record id of a foreign header: up to the first ``|`` or white space (BOLD
    writes ``>processid|identification|marker|...``, others ``>id description``)."""
    return header.split("|", 1)[0].split(None, 1)[0] if header.split("|", 1)[0].strip() else ""


def read_fasta(path) -> pd.DataFrame:
    """Read a FASTA file into ``processid``, ranks, ``dna_bin``, ``dna_barcode`` and
    ``fasta_header``.

    Headers written by :func:`write_fasta` (``>processid|phylum|...|species|dna_bin``)
    are split into their fields (``fasta_header`` missing). Any other header is kept
    whole in ``fasta_header`` (so :func:`write_fasta` writes it back unchanged) and its id
    becomes ``processid``: the text before the first ``|`` (BOLD's
    ``>processid|identification|marker|...``) or, without one, before the first space.

    Raises
    ------
    DataFileError
        As :func:`iter_fasta`, or a header with no id before its first ``|`` (names the line).
    """
    records = {f: [] for f in (*FASTA_FIELDS, "dna_barcode", FASTA_HEADER)}
    n_fields = len(FASTA_FIELDS)
    for i, (header, seq) in enumerate(iter_fasta(path)):
        fields = header.split("|")
        if len(fields) == n_fields and fields[0].strip():
            values = [v if v else None for v in fields]
            original = None
        else:
            pid = _fasta_id(header)
            if not pid:
                raise DataFileError(f"{_label(Path(os.fspath(path)))}: record {i + 1} header {header!r} "
                                    "has no id before its first '|'")
            values = [pid] + [None] * (n_fields - 1)
            original = header
        for name, value in zip(FASTA_FIELDS, values):
            records[name].append(value)
        records["dna_barcode"].append(seq)
        records[FASTA_HEADER].append(original)
    str_dtype = pd.StringDtype("pyarrow", na_value=np.nan)
    df = pd.DataFrame({k: pd.array(v, dtype=str_dtype) for k, v in records.items()})
    for rank in (*RANKS, "dna_bin"):
        df[rank] = df[rank].astype("category")
    return df


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def write_fasta(path, df: pd.DataFrame, *, barcode_column: str = "dna_barcode", width: int = 0) -> Path:
    """Write records as FASTA with ``>processid|phylum|...|species|dna_bin`` headers.

    Missing fields are empty. A row whose ``fasta_header`` (see :func:`read_fasta`) is
    set keeps that header as it was read. A path ending in ``.gz`` is gzip-compressed.
    The file is written to a temporary name and renamed.

    Raises
    ------
    DataFileError
        ``processid`` or the barcode column is missing, or a label contains ``|``
        or a line break (the message names the row).
    """
    missing = [c for c in ("processid", barcode_column) if c not in df.columns]
    if missing:
        raise DataFileError(f"write_fasta needs column(s) {', '.join(map(repr, missing))}")
    path = Path(os.fspath(path))
    cols = [df[f].astype(object).to_numpy() if f in df.columns else np.full(len(df), None, dtype=object)
            for f in FASTA_FIELDS]
    originals = (df[FASTA_HEADER].astype(object).to_numpy() if FASTA_HEADER in df.columns
                 else np.full(len(df), None, dtype=object))
    seqs = df[barcode_column].astype(object).to_numpy()
    with replacing(path) as tmp:
        with open(tmp, "wb") as raw, (_gzip_writer(raw) if path.suffix.lower() == ".gz" else raw) as sink, \
                io.TextIOWrapper(sink, encoding="utf-8", newline="\n") as fh:
            buf = io.StringIO()
            for i in range(len(df)):
                original = originals[i]
                if not _missing(original):
                    header = str(original)
                    if "\n" in header or "\r" in header:
                        raise DataFileError(f"row {i}: {FASTA_HEADER} contains a line break")
                else:
                    fields = []
                    for name, col in zip(FASTA_FIELDS, cols):
                        v = col[i]
                        v = "" if _missing(v) else str(v)
                        if "|" in v or "\n" in v or "\r" in v:
                            raise DataFileError(f"row {i}: {name} {v!r} contains '|' or a line break")
                        fields.append(v)
                    if not fields[0]:
                        raise DataFileError(f"row {i}: processid is missing (a FASTA record needs an id)")
                    header = "|".join(fields)
                seq = seqs[i]
                if not isinstance(seq, str):
                    raise DataFileError(f"row {i}: {barcode_column} is missing")
                buf.write(">" + header + "\n")
                if width > 0:
                    for s in range(0, len(seq), width):
                        buf.write(seq[s:s + width] + "\n")
                else:
                    buf.write(seq + "\n")
                if buf.tell() > 1 << 22:
                    fh.write(buf.getvalue())
                    buf = io.StringIO()
            fh.write(buf.getvalue())
    return path


def _arrow_table(df: pd.DataFrame) -> pa.Table:
    """``df`` as an Arrow table of its values (categoricals as labels, missing as null)."""
    arrays, names = [], []
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            arr = pa.array(col.cat.categories.astype(str).to_numpy(dtype=object)).take(
                pa.array(col.cat.codes.to_numpy(), mask=col.cat.codes.to_numpy() < 0))
        else:
            arr = pa.array(col, from_pandas=True)
        arrays.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def _first_row_with(col, chars: bytes) -> int | None:
    """First row of a string column whose value holds one of ``chars`` (None: no row).

    Scans the Arrow data buffers with NumPy in slices of 16 MB: several times faster than
    pyarrow's regex kernels, and no per-row work.
    """
    base = 0
    for chunk in (col.chunks if isinstance(col, pa.ChunkedArray) else [col]):
        n = len(chunk)
        if n:
            width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset:chunk.offset + n + 1]
            data = np.frombuffer(chunk.buffers()[2] or b"", dtype=np.uint8)
            lo, hi = int(offsets[0]), int(offsets[-1])
            for start in range(lo, hi, 16 << 20):
                piece = data[start:min(hi, start + (16 << 20))]
                hit = np.zeros(len(piece), dtype=bool)
                for c in chars:
                    hit |= piece == c
                if hit.any():
                    at = start + int(np.argmax(hit))
                    return base + int(np.searchsorted(offsets, at, side="right")) - 1
        base += n
    return None


def _refuse_characters(table: pa.Table, chars: str, what: str, fmt: str) -> None:
    """Raise naming the first column and row whose value holds one of ``chars``."""
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            row = _first_row_with(col, chars.encode())
            if row is not None:
                raise DataFileError(f"column {name!r}, row {row}: the value contains {what}, which {fmt} "
                                    "cannot hold; write .parquet instead")
    bad = [n for n in table.column_names if any(c in n for c in chars)]
    if bad:
        raise DataFileError(f"column name {bad[0]!r} contains {what}, which {fmt} cannot hold")


def _gzip_writer(raw):
    """gzip at zlib's usual level 6 and without a time stamp (the same bytes every run).
    pyarrow's own gzip stream is about ten times slower here."""
    return gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)


def _write_tsv(table: pa.Table, sink) -> None:
    """Plain TSV (no quotes, as BOLD and BIOSCAN-1M write it), in batches of rows."""
    import pyarrow.compute as pc

    sink.write(("\t".join(table.column_names) + "\n").encode("utf-8"))
    for batch in table.to_batches(max_chunksize=1 << 16):
        cols = []
        for col in batch.columns:
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            cols.append(pc.fill_null(pc.cast(col, pa.large_string()), ""))
        tab, empty, newline = (pa.scalar(c, pa.large_string()) for c in ("\t", "", "\n"))
        # Join each row's fields with tabs, then end it with a newline: the result's data
        # buffer is the batch's text, written without a Python string per row.
        lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*cols, tab), empty, newline)
        if len(lines):
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
            sink.write(lines.buffers()[2][int(offsets[0]):int(offsets[-1])])


def _write_delimited(df: pd.DataFrame, path: Path, delimiter: str, compressed: bool) -> Path:
    table = _arrow_table(df)
    fmt = "CSV" if delimiter == "," else "TSV"
    # Our readers take rows to be lines (and a TSV's fields to be tab-free), so refuse
    # what they could not read back instead of writing it.
    _refuse_characters(table, "\n\r" if delimiter == "," else "\t\n\r",
                       "a line break" if delimiter == "," else "a tab or a line break", fmt)
    with replacing(path) as tmp:
        with open(tmp, "wb") as raw:
            sink = _gzip_writer(raw) if compressed else raw
            try:
                if delimiter == ",":
                    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(quoting_style="needed"))
                else:
                    _write_tsv(table, sink)
            finally:
                if compressed:
                    sink.close()
    return path


def write_metadata_csv(df: pd.DataFrame, path) -> Path:
    """Write a metadata table as CSV with pyarrow (fast), atomically.

    Categorical columns are written as their labels, missing values as empty
    fields, so :func:`read_metadata` reads the file back with the same values. A path
    ending in ``.gz`` is gzip-compressed.

    Raises
    ------
    DataFileError
        A value holds a line break (the readers take a row to be a line).
    """
    path = Path(os.fspath(path))
    return _write_delimited(df, path, ",", path.suffix.lower() == ".gz")


_TEXT_FORMATS = {".csv": "csv", ".tsv": "tsv", **{s: "fasta" for s in FASTA_SUFFIXES}}


def output_format(path) -> tuple[str, bool]:
    """The format an output path's extension names: ``(format, gzip)``.

    ``format`` is ``"csv"``, ``"tsv"``, ``"parquet"`` or ``"fasta"`` (``.fa``,
    ``.fasta``, ``.fna``, ``.fas``); a further ``.gz`` compresses the text formats.

    Raises
    ------
    bioscan_kmer.errors.UsageError
        Any other extension (naming the ones that work).
    """
    path = Path(os.fspath(path))
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    last = suffixes[-2] if compressed and len(suffixes) == 2 else (suffixes[-1] if suffixes and not compressed else "")
    if not compressed and last == ".parquet":
        return "parquet", False
    if last in _TEXT_FORMATS:
        return _TEXT_FORMATS[last], compressed
    given = "".join(path.suffixes[-2:] if compressed else path.suffixes[-1:]) or "no extension"
    raise UsageError(
        f"cannot write {str(path)!r}: unknown output type ({given}); use .csv, .tsv, .parquet, "
        f"{'/'.join(FASTA_SUFFIXES)}, or .gz after a text type (.csv.gz, .tsv.gz, .fasta.gz)")


def write_table(df: pd.DataFrame, path, *, barcode_column: str = "dna_barcode") -> Path:
    """Write ``df`` in the format the extension of ``path`` names, atomically.

    ``.csv`` and ``.tsv`` (categoricals as labels, missing values empty; a TSV has no
    quoting, as BOLD's), ``.parquet``, FASTA (:func:`write_fasta`, with the sequences of
    ``barcode_column``), and ``.gz`` of the text formats. Missing parent directories are
    created.

    Raises
    ------
    bioscan_kmer.errors.UsageError
        An extension no writer knows, or a parent of ``path`` is a file.
    DataFileError
        The table cannot be written in that format (a line break in a CSV value, a tab in
        a TSV value, a missing barcode or processid for FASTA; names column and row).
    """
    path = Path(os.fspath(path))
    check_output_path(path)
    fmt, compressed = output_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "fasta":
        return write_fasta(path, df, barcode_column=barcode_column)
    if fmt == "parquet":
        with replacing(path) as tmp:
            df.to_parquet(tmp, index=False)
        return path
    return _write_delimited(df, path, "," if fmt == "csv" else "\t", compressed)


def _select(info: FileInfo, df: pd.DataFrame, columns) -> pd.DataFrame:
    if columns is None:
        return df
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise _missing_columns_error(info, missing, "this step")
    return df[list(dict.fromkeys(columns))]


def read_any(path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a metadata CSV/TSV, a BOLD TSV, a FASTA or a Parquet file (each optionally
    gzip-compressed except Parquet), told apart by :func:`inspect_file` from the content.

    Parameters
    ----------
    path : str or path-like
    columns : sequence of str, optional
        Columns to load (BIOSCAN-5M names); all by default.

    Raises
    ------
    DataFileError
        As :func:`inspect_file` and the reader chosen raise it; a requested column the
        file lacks (the message lists what it has).
    """
    info = inspect_file(path)
    if info.kind == "fasta":
        return _select(info, read_fasta(info.path), columns)
    if info.kind == "parquet":
        missing = [c for c in columns or () if c not in info.columns]
        if missing:
            raise _missing_columns_error(info, missing, "this step")
        try:
            df = pd.read_parquet(info.path, columns=None if columns is None else list(dict.fromkeys(columns)))
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(f"{_label(info.path)}: {' '.join(str(exc).split())}") from None
        return _sorted_categories(df)
    if info.kind == "bold":
        return read_bold_tsv(info.path, columns=columns)
    return _read_table(info, columns, [], "BIOSCAN metadata")


def file_fingerprint(path) -> dict:
    """``{"path", "bytes", "mtime_ns"}`` of a file: tells a rerun whether its input changed."""
    path = Path(os.fspath(path))
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
