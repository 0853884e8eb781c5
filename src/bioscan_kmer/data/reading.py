"""Reading BIOSCAN metadata, BOLD exports and FASTA files.

The CSV/TSV readers use pyarrow's multithreaded parser; a 5M-row BIOSCAN-5M
metadata file loads in seconds with string columns kept in Arrow memory.
"""

from __future__ import annotations

from bioscan_kmer._atomic import replacing

import csv
import io
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from bioscan_kmer.data.schema import DTYPES, RANKS

__all__ = [
    "DataFileError",
    "read_any",
    "read_metadata",
    "read_bold_tsv",
    "iter_fasta",
    "read_fasta",
    "write_fasta",
    "write_metadata_csv",
    "FASTA_FIELDS",
]

# BIOSCAN-1M TSV and BOLD names -> BIOSCAN-5M names.
_BIOSCAN1M_RENAME = {"nucraw": "dna_barcode", "uri": "dna_bin", "name": "taxon",
                     "province/state": "province_state"}
_BOLD_RENAME = {"nuc": "dna_barcode", "nucraw": "dna_barcode", "sequence": "dna_barcode",
                "bin_uri": "dna_bin", "identification": "taxon", "province/state": "province_state",
                "lat": "coord-lat", "lon": "coord-lon"}
# BIOSCAN-1M writes missing ranks as this word.
_MISSING_WORDS = ["", "not_classified", "None", "NA", "nan", "NaN"]
FASTA_FIELDS = ("processid", *RANKS, "dna_bin")


class DataFileError(ValueError):
    """A data file is missing, unreadable, malformed or lacks a needed column."""


def _sniff_header(path: Path) -> tuple[str, list[str]]:
    if not path.exists():
        raise DataFileError(f"{str(path)!r}: no such file")
    if path.is_dir():
        raise DataFileError(f"{str(path)!r} is a directory, not a data file")
    try:
        with open(path, "r", encoding="utf-8", newline="") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{str(path)!r}: cannot read ({exc})") from exc
    if not first.strip():
        raise DataFileError(f"{str(path)!r} is empty: expected a header line")
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    header = next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter))
    return delimiter, header


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

    df = table.to_pandas(types_mapper=mapper)
    for name in df.columns:
        col = df[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            # Sorted categories, as pandas' own CSV reader gives: codes match the
            # official loader's label ids.
            cats = col.cat.categories.astype(str)
            df[name] = col.cat.set_categories(pd.Index(sorted(cats), dtype=object)) if len(cats) else col
    return df


def _read_table(path: Path, delimiter: str, header: list[str], rename: dict, columns,
                required: Sequence[str], what: str) -> pd.DataFrame:
    renamed = [rename.get(h, h) for h in header]
    available = dict(zip(renamed, header))
    wanted = list(columns) if columns is not None else [c for c in renamed]
    missing = [c for c in list(dict.fromkeys([*required, *wanted])) if c not in available]
    if missing:
        raise DataFileError(
            f"{str(path)!r}: missing column(s) {', '.join(map(repr, missing))} for {what}; "
            f"the file has {', '.join(header[:30])}{' ...' if len(header) > 30 else ''}"
        )
    wanted = list(dict.fromkeys([*wanted]))
    source = [available[c] for c in wanted]
    types = {}
    for c, src in zip(wanted, source):
        if c in DTYPES:
            types[src] = _arrow_type(DTYPES[c])
        else:
            types[src] = pa.large_string()
    null_values = list(_MISSING_WORDS)
    convert = pacsv.ConvertOptions(
        column_types=types, include_columns=source, null_values=null_values,
        strings_can_be_null=True, quoted_strings_can_be_null=True,
    )
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if delimiter == "," else False,
                               newlines_in_values=False)
    read = pacsv.ReadOptions(block_size=64 << 20)
    try:
        table = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataFileError(f"{str(path)!r}: {exc}") from exc
    names = wanted
    cols = list(table.columns)
    del table
    df = _to_pandas(pa.Table.from_arrays(_single_chunk_strings(cols), names=names))
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


def read_metadata(path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read BIOSCAN-5M metadata CSV or BIOSCAN-1M metadata TSV with the official types.

    Parameters
    ----------
    path : str or path-like
        ``BIOSCAN_5M_Insect_Dataset_metadata.csv`` (comma-separated) or a
        BIOSCAN-1M ``.tsv``; the delimiter is detected from the header. BIOSCAN-1M
        names are mapped (``nucraw`` -> ``dna_barcode``, ``uri`` -> ``dna_bin``,
        ``name`` -> ``taxon``) and ``not_classified`` means missing.
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
        No such file, empty or malformed file, or a requested column is missing
        (the message names the column and lists what the file has).
    """
    path = Path(os.fspath(path))
    delimiter, header = _sniff_header(path)
    rename = _BIOSCAN1M_RENAME if ("nucraw" in header or "uri" in header) else {}
    return _read_table(path, delimiter, header, rename, columns, [], "BIOSCAN metadata")


def read_bold_tsv(path, *, marker: str | None = "COI-5P", columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a BOLD data-package TSV export into the BIOSCAN column names.

    Parameters
    ----------
    path : str or path-like
        TSV with ``processid``, a sequence column (``nuc``, ``nucraw`` or
        ``sequence``), optionally ``bin_uri``, ranks and ``marker_code``.
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
        No such file, no sequence column, or malformed rows.
    """
    path = Path(os.fspath(path))
    delimiter, header = _sniff_header(path)
    seq_cols = [h for h in ("nuc", "nucraw", "sequence") if h in header]
    if not seq_cols:
        raise DataFileError(
            f"{str(path)!r}: no sequence column (expected 'nuc', 'nucraw' or 'sequence'); "
            f"the file has {', '.join(header)}"
        )
    rename = {k: v for k, v in _BOLD_RENAME.items() if k in header and k not in seq_cols[1:]}
    wanted = None if columns is None else list(dict.fromkeys([*columns, *(["marker_code"] if marker and "marker_code" in header else [])]))
    df = _read_table(path, delimiter, header, rename, wanted, ["processid", "dna_barcode"], "a BOLD export")
    if marker is not None and "marker_code" in df.columns:
        df = df[df["marker_code"] == marker].reset_index(drop=True)
        if columns is not None and "marker_code" not in columns:
            df = df.drop(columns="marker_code")
    return df


def iter_fasta(path) -> Iterator[tuple[str, str]]:
    """Stream ``(header, sequence)`` pairs; multi-line sequences are joined.

    Raises
    ------
    DataFileError
        Sequence text before the first header, or a header with no sequence
        (the message names the line).
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise DataFileError(f"{str(path)!r}: no such file")
    header, parts, header_line = None, [], 0
    with open(path, "r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                if header is not None:
                    if not parts:
                        raise DataFileError(f"{str(path)!r} line {header_line}: record {header!r} has no sequence")
                    yield header, "".join(parts)
                header, parts, header_line = line[1:].strip(), [], lineno
            elif header is None:
                raise DataFileError(f"{str(path)!r} line {lineno}: sequence text before the first '>' header")
            else:
                parts.append(line)
    if header is not None:
        if not parts:
            raise DataFileError(f"{str(path)!r} line {header_line}: record {header!r} has no sequence")
        yield header, "".join(parts)


def read_fasta(path) -> pd.DataFrame:
    """Read a FASTA file into ``processid``, ranks, ``dna_bin`` and ``dna_barcode``.

    Headers written by :func:`write_fasta` (``>processid|phylum|...|species|dna_bin``)
    are split into their fields; any other header gives ``processid`` = its first
    word and no labels.
    """
    records = {f: [] for f in (*FASTA_FIELDS, "dna_barcode")}
    for header, seq in iter_fasta(path):
        fields = header.split("|")
        if len(fields) == len(FASTA_FIELDS):
            values = [v if v else None for v in fields]
        else:
            values = [header.split()[0]] + [None] * (len(FASTA_FIELDS) - 1)
        for name, value in zip(FASTA_FIELDS, values):
            records[name].append(value)
        records["dna_barcode"].append(seq)
    str_dtype = pd.StringDtype("pyarrow", na_value=np.nan)
    df = pd.DataFrame({k: pd.array(v, dtype=str_dtype) for k, v in records.items()})
    for rank in (*RANKS, "dna_bin"):
        df[rank] = df[rank].astype("category")
    return df


def write_fasta(path, df: pd.DataFrame, *, barcode_column: str = "dna_barcode", width: int = 0) -> Path:
    """Write records as FASTA with ``>processid|phylum|...|species|dna_bin`` headers.

    Missing fields are empty; the file is written to a temporary name and renamed.

    Raises
    ------
    ValueError
        ``processid`` or the barcode column is missing, or a label contains ``|``
        or a line break (the message names the row).
    """
    missing = [c for c in ("processid", barcode_column) if c not in df.columns]
    if missing:
        raise ValueError(f"write_fasta needs column(s) {', '.join(map(repr, missing))}")
    path = Path(os.fspath(path))
    cols = [df[f].astype(object).to_numpy() if f in df.columns else np.full(len(df), None, dtype=object)
            for f in FASTA_FIELDS]
    seqs = df[barcode_column].astype(object).to_numpy()
    with replacing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            buf = io.StringIO()
            for i in range(len(df)):
                fields = []
                for col in cols:
                    v = col[i]
                    v = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                    if "|" in v or "\n" in v:
                        raise ValueError(f"row {i}: field {v!r} contains '|' or a line break")
                    fields.append(v)
                seq = seqs[i]
                if not isinstance(seq, str):
                    raise ValueError(f"row {i}: {barcode_column} is missing")
                buf.write(">" + "|".join(fields) + "\n")
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


def write_metadata_csv(df: pd.DataFrame, path) -> Path:
    """Write a metadata table as CSV with pyarrow (fast), atomically.

    Categorical columns are written as their labels, missing values as empty
    fields, so :func:`read_metadata` reads the file back with the same values.
    """
    import pyarrow.csv as pcsv

    path = Path(os.fspath(path))
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
    table = pa.Table.from_arrays(arrays, names=names)
    with replacing(path) as tmp:
        pcsv.write_csv(table, tmp, write_options=pcsv.WriteOptions(quoting_style="needed"))
    return path


FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")


def read_any(path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a metadata CSV/TSV, a BOLD TSV, a FASTA or a Parquet file, told apart by
    extension and header.

    Parameters
    ----------
    path : str or path-like
    columns : sequence of str, optional
        Columns to load (BIOSCAN-5M names); FASTA files always give all of theirs.

    Raises
    ------
    DataFileError
        As the reader chosen raises it.
    """
    p = Path(os.fspath(path))
    if p.suffix.lower() in FASTA_SUFFIXES:
        return read_fasta(p)
    if p.suffix.lower() == ".parquet":
        return pd.read_parquet(p, columns=columns)
    if p.exists() and p.is_file():
        with open(p, encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
        if "\t" in header and ("bin_uri" in header or "nuc" in header.split("\t") or "sequence" in header):
            return read_bold_tsv(p, columns=columns)
    return read_metadata(p, columns=columns)
