"""Embeddings of your own barcodes from a trained encoder (``bioscan-kmer embed``).

What a user does with a trained encoder: a FASTA file, a BOLD export or a BIOSCAN
metadata table in (gzip or not, :func:`~bioscan_kmer.data.reading.read_any`), one vector
per record out. The vector is the mean of one hidden layer (the last by default) over the
real tokens of the cleaned barcode, exactly :meth:`bioscan_kmer.model.Encoder.embed`;
it is what the probes of ``bioscan-kmer evaluate`` are computed on. Identical barcodes
are embedded once and copied back to every row that holds them.

:func:`embed_barcodes` works on a list in memory; :func:`embed_file` reads a file and
writes ``.npy`` + ``<stem>.ids.tsv`` or ``.parquet`` (layouts in ``docs/eval.md``,
"Embedding your own barcodes").
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, UsageError

__all__ = ["embed_barcodes", "embed_file", "output_paths", "check_layer", "resolve_encoder",
           "EMBED_FORMATS", "ROW_COLUMN", "EMBEDDING_COLUMN"]

#: Output extensions :func:`embed_file` writes.
EMBED_FORMATS = (".npy", ".parquet")
#: Column of the outputs holding each embedded record's row in the input (0 = first record).
ROW_COLUMN = "row"
#: Parquet column holding the embeddings (fixed-size list of float32).
EMBEDDING_COLUMN = "embedding"
_SKIP_HINT = "use --skip-empty (skip_empty=True) to leave such rows out"


def output_paths(output: str | os.PathLike) -> tuple[str, Path, Path | None]:
    """The format an output's extension names, and the files it means.

    Returns
    -------
    (format, path, ids_path)
        ``"npy"``: the matrix at ``path`` and its row ids at ``<stem>.ids.tsv``;
        ``"parquet"``: one file, ``ids_path`` None.

    Raises
    ------
    UsageError
        Any other extension.
    """
    path = Path(os.fspath(output))
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return "npy", path, path.with_suffix(".ids.tsv")
    if suffix == ".parquet":
        return "parquet", path, None
    raise UsageError(f"cannot write embeddings to {str(path)!r}: unknown output type "
                     f"({path.suffix or 'no extension'}); use .npy (matrix + <stem>.ids.tsv) or .parquet")


def _check_device(device):
    """``device`` as a torch device that exists here (CUDA when present by default)."""
    import torch

    from .knn import default_device

    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise UsageError(f"device {device!r}: {' '.join(str(exc).split())}") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"device {device!r}: no such CUDA device here "
                         f"({torch.cuda.device_count()} available); use cpu")
    return dev


def _tokenizer_of(tokenizer):
    """A KmerTokenizer, or None; a path is read as :meth:`KmerTokenizer.save` wrote it."""
    if tokenizer is None or not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    from .. import KmerTokenizer

    try:
        return KmerTokenizer.load(tokenizer)
    except (ValueError, KeyError, TypeError) as exc:  # the loader's checks of the file
        raise UsageError(f"tokenizer {os.fspath(tokenizer)!r}: {exc}") from exc


def resolve_encoder(model, *, tokenizer=None, hf_preset: str | None = None):
    """The encoder and tokenizer ``model`` names.

    Parameters
    ----------
    model : path-like, or (Encoder or MaskedLM, KmerTokenizer)
        A checkpoint :func:`~bioscan_kmer.eval.embeddings.load_encoder` reads (ours, or
        Hugging Face BERT weights), or a model already in memory with its tokenizer.
    tokenizer : KmerTokenizer or path-like, optional
        For Hugging Face weights with a non-default tokenizer (a JSON file written by
        :meth:`KmerTokenizer.save`); ours carry theirs.
    hf_preset : str, optional
        Architecture of Hugging Face weights (a preset name such as ``"bioscan5m-8-4-4"``).

    Returns
    -------
    (Encoder, KmerTokenizer)
    """
    from ..model import Encoder, MaskedLM
    from .embeddings import load_encoder

    tokenizer = _tokenizer_of(tokenizer)
    if isinstance(model, (str, os.PathLike)):
        return load_encoder(model, tokenizer=tokenizer, config=hf_preset, device="cpu")
    if not (isinstance(model, tuple) and len(model) == 2):
        raise TypeError("model must be a checkpoint path or an (encoder, tokenizer) pair, "
                        f"got {type(model).__name__}")
    encoder, tok = model
    encoder = encoder.encoder if isinstance(encoder, MaskedLM) else encoder
    if not isinstance(encoder, Encoder):
        raise TypeError(f"the model must be a bioscan_kmer Encoder or MaskedLM, got {type(encoder).__name__}")
    tok = tokenizer if tokenizer is not None else tok
    encoder.config.check_tokenizer(tok, what="the tokenizer")
    return encoder, tok


def check_layer(encoder, layer) -> int:
    """``layer`` if ``encoder`` has that hidden state: -1 the last layer, 0 the embeddings,
    ``1..num_layers`` the blocks, negative values counted from the end.

    Raises
    ------
    UsageError
        Not an integer, or out of range (the message names the valid range).
    """
    from .._options import check_int

    n = encoder.config.num_layers
    layer = check_int("layer", layer)
    if not -(n + 1) <= layer <= n:
        raise UsageError(f"layer {layer}: this encoder has {n} layers, so the layer must be from "
                         f"{-(n + 1)} to {n} (0 the embeddings, -1 or {n} the last layer)")
    return layer


def _embed_distinct(encoder, tokenizer, seqs: Sequence[str], *, layer: int, batch_size: int, device,
                    progress: bool) -> tuple[np.ndarray, int]:
    """(embeddings of ``seqs`` (n, C) float32, number of distinct barcodes): each distinct
    barcode is embedded once and scattered back to its rows."""
    from .. import unique
    from .embeddings import embed_sequences

    if len(seqs) == 0:
        return np.empty((0, encoder.config.hidden_size), dtype=np.float32), 0
    distinct, inverse, _ = unique(list(seqs))
    features = embed_sequences(encoder, tokenizer, distinct, batch_size=batch_size, device=device,
                               progress=progress, layer=layer)
    return features[inverse], len(distinct)


def _usable(raw: pd.Series, *, clean: bool, progress: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(barcodes, missing, empty): cleaned barcodes ('' where unusable) and the rows whose
    barcode is missing, or empty after cleaning."""
    from ..data.cleaning import clean_column

    raw = raw.reset_index(drop=True)
    missing = raw.isna().to_numpy()
    filled = raw.astype(object).where(~missing, "")
    if clean:
        name = str(raw.name or "barcode")
        seqs = clean_column(pd.DataFrame({name: filled}), name, progress=progress).astype(object).tolist()
    else:
        seqs = filled.tolist()
    empty = np.fromiter((not s for s in seqs), dtype=bool, count=len(seqs)) & ~missing
    return seqs, missing, empty


def embed_barcodes(seqs, model, *, layer: int = -1, batch_size: int = 256, device=None,
                   hf_preset: str | None = None, tokenizer=None, clean: bool = True,
                   progress: bool = False) -> np.ndarray:
    """Embed barcodes held in memory.

    Parameters
    ----------
    seqs : sequence of str
        Raw barcodes (cleaned here with :func:`bioscan_kmer.clean`'s defaults unless
        ``clean=False``).
    model : path-like, or (Encoder or MaskedLM, KmerTokenizer)
        A checkpoint (ours or Hugging Face BERT weights; see :func:`resolve_encoder`) or a
        model in memory with its tokenizer.
    layer : int, default -1
        Hidden state to pool: -1 the last layer, 0 the embeddings (see :func:`check_layer`).
    batch_size : int, default 256
    device : str or torch.device, optional
        CUDA when present, else the CPU.
    hf_preset, tokenizer
        For Hugging Face weights; see :func:`resolve_encoder`.
    clean : bool, default True
    progress : bool, default False
        Progress bars for cleaning and embedding.

    Returns
    -------
    numpy.ndarray of float32, shape (len(seqs), C)
        Row i is the masked mean of hidden state ``layer`` over the real tokens of barcode i,
        as :meth:`bioscan_kmer.model.Encoder.embed` computes it.

    Raises
    ------
    DataError
        A barcode that is missing or empty after cleaning, or holds a character the cleaner
        rejects (the message names its index).
    UsageError, CheckpointError, ConfigError
        A bad option, layer or device; a file that is not a checkpoint.
    """
    from .._options import check_int

    batch_size = check_int("batch_size", batch_size, 1)
    dev = _check_device(device)
    encoder, tok = resolve_encoder(model, tokenizer=tokenizer, hf_preset=hf_preset)
    layer = check_layer(encoder, layer)
    if isinstance(seqs, str):
        raise TypeError("seqs must be a sequence of barcodes, not one string")
    barcodes, missing, empty = _usable(pd.Series(list(seqs), dtype=object, name="barcode"),
                                       clean=clean, progress=progress)
    bad = missing | empty
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"barcode {i}: " + ("missing" if missing[i] else "empty after cleaning"))
    return _embed_distinct(encoder, tok, barcodes, layer=layer, batch_size=batch_size, device=dev,
                           progress=progress)[0]


def _check_columns(info, column: str, id_column: str) -> None:
    for what, name in (("column", column), ("id_column", id_column)):
        if name not in info.columns:
            raise UsageError(f"{what} {name!r}: {str(info.path)!r} has no such column; it has "
                             f"{', '.join(map(str, info.columns))}")


def _refuse_bad_rows(ids: pd.Series, id_column: str, column: str, missing: np.ndarray, empty: np.ndarray) -> None:
    bad = np.flatnonzero(missing | empty)
    if bad.size:
        i = int(bad[0])
        what = "the barcode is missing" if missing[i] else "the barcode is empty after cleaning"
        more = f" ({bad.size:,} such rows)" if bad.size > 1 else ""
        raise DataError(f"column {column!r}, row {i} ({id_column} {ids.iloc[i]!r}): {what}{more}; {_SKIP_HINT}")


def _write_npy(matrix: np.ndarray, table: pd.DataFrame, path: Path, ids_path: Path) -> None:
    from .._atomic import replacing
    from ..data.reading import write_table

    path.parent.mkdir(parents=True, exist_ok=True)
    # The ids go in first, inside the matrix's write: a failure leaves neither file changed.
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, matrix, allow_pickle=False)
        write_table(table, ids_path)


def _write_parquet(matrix: np.ndarray, table: pd.DataFrame, path: Path, provenance: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .._atomic import replacing

    # pandas cannot store a fixed-size list column so that it reads it back (its metadata
    # names a type it cannot parse), so the column is added to the Arrow table instead.
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1), type=pa.float32())
    arrow = arrow.append_column(EMBEDDING_COLUMN, pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]))
    meta = dict(arrow.schema.metadata or {})
    meta[b"bioscan_kmer.embed"] = json.dumps(provenance).encode()
    arrow = arrow.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        pq.write_table(arrow, tmp)


def embed_file(input, checkpoint, output, *, column: str = "dna_barcode", id_column: str = "processid",
               layer: int = -1, batch_size: int = 256, device=None, hf_preset: str | None = None,
               tokenizer=None, clean: bool = True, skip_empty: bool = False, progress: bool = False) -> dict:
    """Embed every record of a data file and write the embeddings.

    Everything that can be checked without the data is checked first, in this order: the
    output's extension and path, the input's kind and columns (from its header), the
    batch size, the device, the tokenizer, the checkpoint and the layer.

    Parameters
    ----------
    input : path-like
        FASTA, BOLD TSV, BIOSCAN metadata CSV/TSV or Parquet, gzip-compressed or not
        (:func:`~bioscan_kmer.data.reading.read_any`; a FASTA record's id is its
        ``processid``).
    checkpoint : path-like, or (Encoder or MaskedLM, KmerTokenizer)
        See :func:`resolve_encoder`.
    output : path-like
        ``.npy``: the float32 matrix (one row per embedded record) and, beside it,
        ``<stem>.ids.tsv`` with columns ``row`` and ``id_column``, line i naming matrix
        row i. ``.parquet``: ``row``, ``id_column``, the input's other columns and
        ``embedding`` (fixed-size list of float32). Written atomically.
    column : str, default "dna_barcode"
        Barcode column (BIOSCAN-5M names: a BOLD ``nuc`` column is ``dna_barcode``).
    id_column : str, default "processid"
    layer, batch_size, device, hf_preset, tokenizer, clean, progress
        As :func:`embed_barcodes`.
    skip_empty : bool, default False
        Leave out records whose barcode is missing or empty after cleaning, instead of
        raising; the result's ``skipped`` lists them and the outputs' ``row`` column
        shows the gaps.

    Returns
    -------
    dict
        ``output``, ``ids`` (the ids file or None), ``rows`` (records read), ``embedded``,
        ``distinct`` (distinct barcodes embedded), ``dim``, ``layer``, ``num_layers``,
        ``device``, ``skipped`` (a list of ``{"row", "id", "reason"}``), ``seconds``
        (reading to writing) and ``embed_seconds`` (the model alone).

    Raises
    ------
    UsageError
        An unknown output extension, a column the input lacks, a bad option, layer or
        device (before the input is read).
    DataError, DataFileError
        An unreadable input, a barcode that is missing or empty after cleaning (without
        ``skip_empty``) or holds a character the cleaner rejects (the message names the
        column, the row and the record's id).
    CheckpointError, ConfigError
        Not a checkpoint, or one that does not fit its tokenizer or preset.
    """
    from .._atomic import check_output_path
    from .._options import check_int
    from ..data.reading import inspect_file, read_any

    t0 = time.perf_counter()
    fmt, out_path, ids_path = output_paths(output)
    check_output_path(out_path, what="output")
    if ids_path is not None:
        check_output_path(ids_path, what="ids file")
    info = inspect_file(input)
    _check_columns(info, column, id_column)
    batch_size = check_int("batch_size", batch_size, 1)
    dev = _check_device(device)
    encoder, tok = resolve_encoder(checkpoint, tokenizer=tokenizer, hf_preset=hf_preset)
    layer = check_layer(encoder, layer)

    df = read_any(info.path, columns=[id_column, column] if fmt == "npy" else None)
    seqs, missing, empty = _usable(df[column], clean=clean, progress=progress)
    ids = df[id_column].reset_index(drop=True)
    if not skip_empty:
        _refuse_bad_rows(ids, id_column, column, missing, empty)
    keep = np.flatnonzero(~(missing | empty))
    skipped = [{"row": int(i), "id": None if pd.isna(ids.iloc[i]) else str(ids.iloc[i]),
                "reason": "missing" if missing[i] else "empty after cleaning"}
               for i in np.flatnonzero(missing | empty)]
    t_embed = time.perf_counter()
    matrix, distinct = _embed_distinct(encoder, tok, [seqs[i] for i in keep], layer=layer,
                                       batch_size=batch_size, device=dev, progress=progress)
    embed_seconds = time.perf_counter() - t_embed

    others = [c for c in df.columns if c not in (id_column, ROW_COLUMN, EMBEDDING_COLUMN)]
    table = df.iloc[keep][[id_column, *(others if fmt == "parquet" else [])]].reset_index(drop=True)
    table.insert(0, ROW_COLUMN, keep.astype(np.int64))
    if fmt == "npy":
        _write_npy(matrix, table, out_path, ids_path)
    else:
        provenance = {"checkpoint": os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else None,
                      "layer": layer, "num_layers": encoder.config.num_layers,
                      "pooling": "mean over real tokens", "clean": bool(clean), "barcode_column": column}
        _write_parquet(matrix, table, out_path, provenance)
    return {"output": out_path, "ids": ids_path, "rows": len(df), "embedded": len(keep), "distinct": distinct,
            "dim": int(encoder.config.hidden_size), "layer": layer, "num_layers": encoder.config.num_layers,
            "device": str(dev), "skipped": skipped, "seconds": time.perf_counter() - t0,
            "embed_seconds": embed_seconds}
