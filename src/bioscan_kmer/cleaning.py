"""Barcode cleaning (SPEC section 2)."""
from __future__ import annotations

from typing import Any

from . import _core
from ._sequences import as_sequences
from ._threads import resolve_threads

__all__ = ["clean"]


def clean(
    seqs: Any,
    *,
    gaps: str = "remove",
    iupac: str = "n",
    trim_n: bool = True,
    max_length: int | None = None,
    output: str = "list",
    threads: int | None = None,
) -> Any:
    """Normalize raw barcodes to the alphabet ``ACGTN``.

    Uppercases, maps ``U`` to ``T``, removes whitespace, removes alignment gaps ``-``
    (``gaps="remove"``) or turns them into ``N`` (``gaps="n"``), turns the IUPAC
    ambiguity codes ``RYSWKMBDHV`` into ``N`` (or raises, with ``iupac="error"``), trims
    runs of ``N`` at both ends and keeps at most ``max_length`` bases. Trimming is
    applied again after truncation, so a trimmed result never starts or ends with ``N``.

    Parameters
    ----------
    seqs : list of str, NumPy array, pandas Series or pyarrow array
        Raw barcodes. One output per input row: nothing is dropped, an all-gap row
        becomes ``""``.
    gaps : {"remove", "n"}
    iupac : {"n", "error"}
    trim_n : bool
    max_length : int, optional
        Truncate to this many bases (the BIOSCAN-5M loader uses 660).
    output : {"list", "arrow"}
        ``"list"``: a list of ``str``. ``"arrow"``: a ``pyarrow.LargeStringArray`` built
        straight from the core's buffers, with no Python object per row: at millions of
        rows that is several times less memory, and it goes back into the core
        (``tokenize``, ``unique``) or into an Arrow-backed pandas column without a copy
        of the strings. Needs pyarrow.
    threads : int, optional
        Worker threads; see :func:`bioscan_kmer.resolve_threads`.

    Returns
    -------
    list of str, or pyarrow.LargeStringArray

    Raises
    ------
    ValueError
        A character outside DNA, IUPAC, gaps and whitespace; the message names the row,
        the position in the raw string and the character.
    TypeError
        A row that is not a string (``None``, a number...).
    """
    if gaps not in ("remove", "n"):
        raise ValueError(f'gaps must be "remove" or "n", got {gaps!r}')
    if iupac not in ("n", "error"):
        raise ValueError(f'iupac must be "n" or "error", got {iupac!r}')
    if max_length is None:
        max_length = -1
    elif isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
        raise ValueError(f"max_length must be a non-negative int or None, got {max_length!r}")
    if output not in ("list", "arrow"):
        raise ValueError(f'output must be "list" or "arrow", got {output!r}')
    args = dict(
        gaps_to_n=gaps == "n",
        iupac_error=iupac == "error",
        trim_n=bool(trim_n),
        max_length=max_length,
        threads=resolve_threads(threads),
    )
    if output == "list":
        return _core.clean(as_sequences(seqs), **args)
    import pyarrow as pa

    data, offsets = _core.clean_buffers(as_sequences(seqs), **args)
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
