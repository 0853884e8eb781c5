"""Differential fuzz targets: each native entry point against tests/kmer_reference.py.

Every target is a function ``check_<name>(data: bytes)`` that decodes ``data`` into
arguments, calls the public API and the pure-Python reference, and raises
AssertionError on any difference (values, shapes, which error, which row). Inputs the
API must reject are part of the contract too: the expected exception is derived from
the reference, never from the native result.

The decoding is our own (no atheris import) so that the corpus under ``corpus/`` can
be replayed by the normal test suite (tests/test_fuzz_corpus.py); atheris only
supplies the coverage-guided byte strings (tests/fuzz/fuzz_*.py).
"""
from __future__ import annotations

import math
import re

import numpy as np

import bioscan_kmer as bk
import kmer_reference as ref

# Decoded letters: the alphabet weighted up, then everything the rules treat specially.
ALPHABET = "ACGT" * 4 + "NN" + "acgtnRYSWKMBDHVryswkmbdhvUu-" + " \t\n\r" + "X!0.*\x00"
SEPARATOR = 0xF8  # a byte >= this starts a new row

CONTAINERS = ("list", "tuple", "bytes", "numpy_U", "numpy_S", "numpy_object", "pandas_object",
              "pandas_arrow", "pyarrow", "pyarrow_large", "pyarrow_chunked")
# Container bytes from MIXED_FROM up give a list mixing str and bytes (refused). Kinds
# added later take the top byte values, so that the corpus keeps decoding as before.
MIXED_FROM = 0xF0

# Id dtypes of tokenize, picked by the high bits of the threads byte (0 = int64, the
# choice of every corpus input written before dtypes were fuzzed).
ID_DTYPES = tuple(np.dtype(d) for d in ("int64", "uint16", ">i8", ">u2", ">i4", ">u8", "uint8", "<i4", "<u8",
                                        "int16", "uint32"))


class Reader:
    """Consumes fuzz bytes as small integers; past the end everything reads as 0."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def int(self, lo: int, hi: int) -> int:
        return lo + self.byte() % (hi - lo + 1)

    def bool(self) -> bool:
        return bool(self.byte() & 1)

    def choice(self, options):
        return options[self.byte() % len(options)]

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


def decode_rows(r: Reader, *, raw_allowed: bool = True) -> list[str]:
    """Rows of text from the remaining bytes.

    Mapped mode turns each byte into a letter of ALPHABET; raw mode keeps it as a
    Latin-1 character (bytes >= 0x80 are non-ASCII). SEPARATOR and above end a row.
    """
    raw = raw_allowed and r.byte() % 8 == 0
    rows, cur = [], []
    for b in r.rest():
        if b >= SEPARATOR:
            rows.append("".join(cur))
            cur = []
        else:
            cur.append(chr(b) if raw else ALPHABET[b % len(ALPHABET)])
    rows.append("".join(cur))
    return rows


def as_container(rows: list[str], kind: str):
    """``rows`` in one of the containers users pass, and the rows as that container
    gives them back (NumPy drops trailing NULs of fixed-width strings, for instance)."""
    import pandas as pd
    import pyarrow as pa

    if kind == "list":
        return list(rows), list(rows)
    if kind == "tuple":
        return tuple(rows), list(rows)
    if kind == "bytes":
        return [s.encode("latin-1") for s in rows], list(rows)
    if kind == "numpy_U":
        arr = np.array(rows, dtype=str) if rows else np.array([], dtype="U1")
        return arr, [str(x) for x in arr.tolist()]
    if kind == "numpy_S":
        arr = np.array([s.encode("latin-1") for s in rows], dtype="S") if rows else np.array([], dtype="S1")
        return arr, [x.decode("latin-1") for x in arr.tolist()]
    if kind == "numpy_object":
        return np.array(rows, dtype=object), list(rows)
    if kind == "pandas_object":
        return pd.Series(rows, dtype=object), list(rows)
    if kind == "pandas_arrow":
        return pd.Series(rows, dtype="string[pyarrow]"), list(rows)
    if kind == "pyarrow":
        return pa.array(rows, type=pa.string()), list(rows)
    if kind == "pyarrow_large":
        return pa.array(rows, type=pa.large_string()), list(rows)
    if kind == "pyarrow_chunked":
        half = len(rows) // 2
        return pa.chunked_array([rows[:half], rows[half:]], type=pa.string()), list(rows)
    if kind == "mixed":  # odd rows as bytes
        return [s.encode("latin-1") if i % 2 else s for i, s in enumerate(rows)], list(rows)
    raise ValueError(kind)


def first_non_ascii_row(rows: list[str]) -> int | None:
    for i, s in enumerate(rows):
        if any(ord(c) > 127 for c in s):
            return i
    return None


def _row_of(exc: BaseException) -> int:
    m = re.match(r"row (\d+)", str(exc))
    assert m, f"error does not name its row: {exc!r}"
    return int(m.group(1))


def _expect_refused(fn, bad: int | None, exc: type, marker: str, what: str) -> bool:
    """When ``bad`` is a row, the call must raise ``exc`` naming that row and ``marker``."""
    if bad is None:
        return False
    try:
        fn()
    except exc as e:
        assert _row_of(e) == bad and marker in str(e), (str(e), bad)
        return True
    raise AssertionError(f"row {bad} ({what}) was accepted")


def _expect_mixed_types(fn, seqs) -> bool:
    """str mixed with bytes is refused before any row is read, naming the first row
    whose type differs from row 0's ("ACGT" and b"ACGT" must not become one row)."""
    bad = None
    if isinstance(seqs, (list, tuple)) and len({type(s) for s in seqs}) > 1:
        bad = next(i for i, s in enumerate(seqs) if type(s) is not type(seqs[0]))
    return _expect_refused(fn, bad, TypeError, " among ", "str mixed with bytes")


def _expect_non_ascii(fn, rows: list[str]) -> bool:
    """Non-ASCII input is refused up front by every entry point, naming the first such row."""
    return _expect_refused(fn, first_non_ascii_row(rows), ValueError, "non-ASCII", "non-ASCII")


def _expect_bad_rows(fn, seqs, rows: list[str]) -> bool:
    """Whether the call must fail on its rows (checked in the order the API checks)."""
    return _expect_mixed_types(fn, seqs) or _expect_non_ascii(fn, rows)


def _pick_rows(r: Reader):
    b = r.byte()
    kind = CONTAINERS[b % len(CONTAINERS)] if b < MIXED_FROM else "mixed"
    rows = decode_rows(r)
    if len(rows) > 64:
        rows = rows[:64]
    if kind.startswith("pyarrow") or kind == "pandas_arrow":
        # Arrow holds UTF-8: a Latin-1 character becomes two bytes, still non-ASCII.
        pass
    container, seen = as_container(rows, kind)
    return container, seen


# --- targets -------------------------------------------------------------------------

def check_clean(data: bytes) -> None:
    r = Reader(data)
    gaps = r.choice(("remove", "n"))
    iupac = r.choice(("n", "error"))
    trim_n = r.bool()
    max_length = r.choice((None, None, 0, 1, 3, 8, 20))
    threads = r.int(1, 4)
    seqs, rows = _pick_rows(r)
    call = lambda: bk.clean(seqs, gaps=gaps, iupac=iupac, trim_n=trim_n,  # noqa: E731
                            max_length=max_length, threads=threads)
    if _expect_bad_rows(call, seqs, rows):
        return
    want, bad_row = [], None
    for i, s in enumerate(rows):
        try:
            want.append(ref.clean(s, gaps=gaps, iupac=iupac, trim_n=trim_n, max_length=max_length))
        except ValueError:
            bad_row = i
            break
    if bad_row is not None:
        try:
            call()
        except ValueError as e:
            assert _row_of(e) == bad_row, (str(e), bad_row)
            return
        raise AssertionError(f"row {bad_row} should have been rejected")
    got = call()
    assert got == want, (rows, got, want)


def check_tokenize(data: bytes) -> None:
    r = Reader(data)
    preset = r.choice(("barcodebert", "bert"))
    k = r.int(1, 6)
    stride = r.choice((None, 1, 2, 3, 4, 5, 7))
    max_len = r.int(1, 40)
    n_nucleotide = r.bool()
    padding = r.bool()
    add_special = r.bool()
    tb = r.byte()
    threads = 1 + tb % 4
    dtype = ID_DTYPES[(tb // 4) % len(ID_DTYPES)]
    per_row_offsets = r.bool()
    base_offset = r.int(0, 6)
    seqs, rows = _pick_rows(r)
    n = len(rows)
    offsets = [(base_offset + 3 * i) % 7 for i in range(n)] if per_row_offsets else [base_offset] * n
    offset = np.asarray(offsets, dtype=np.int64) if per_row_offsets else base_offset
    call = lambda: bk.tokenize(seqs, k=k, stride=stride, max_len=max_len, offset=offset,  # noqa: E731
                               preset=preset, n_nucleotide=n_nucleotide, padding=padding,
                               add_special_tokens=add_special, threads=threads, dtype=dtype)
    # Arguments are checked before rows: a dtype too small for the vocabulary is refused.
    if len(ref.vocab(k, preset, n_nucleotide)) - 1 > np.iinfo(dtype).max:
        try:
            call()
        except ValueError as e:
            assert "cannot hold the vocabulary" in str(e), str(e)
            return
        raise AssertionError(f"dtype {dtype} cannot hold k={k} ids but was accepted")
    if _expect_bad_rows(call, seqs, rows):
        return
    ids, mask = call()
    # Values compare as Python ints below; the dtype, byte order included, must be the one asked for.
    assert ids.dtype == dtype, (ids.dtype, dtype)
    s = stride or k
    pad_to = max_len if padding else max([min(len(x[o:]), max_len) for x, o in zip(rows, offsets)], default=0)
    for i, (x, o) in enumerate(zip(rows, offsets)):
        if preset == "barcodebert":
            want_ids, want_mask = ref.tokenize_barcodebert(x, k, s, pad_to, o, n_nucleotide)
        else:
            want_ids, want_mask = ref.tokenize_bert(x, k, s, pad_to, o, n_nucleotide, add_special)
        assert ids[i].tolist() == want_ids, (x, o, ids[i].tolist(), want_ids)
        assert mask[i].astype(int).tolist() == want_mask, (x, o)
    if n == 0:
        assert ids.shape[0] == 0


def check_unique(data: bytes) -> None:
    r = Reader(data)
    threads = r.int(1, 4)
    seqs, rows = _pick_rows(r)
    call = lambda: bk.unique(seqs, threads=threads)  # noqa: E731
    if _expect_bad_rows(call, seqs, rows):
        return
    uniques, inverse, counts = call()
    want_u, want_inv, want_c = ref.unique(rows)
    got_u = [u.decode("latin-1") if isinstance(u, bytes) else str(u) for u in list(uniques)]
    assert got_u == want_u, (got_u, want_u)
    assert inverse.tolist() == want_inv and counts.tolist() == want_c


def check_kmer_counts(data: bytes) -> None:
    r = Reader(data)
    per_sequence = r.bool()
    k = r.int(1, 5 if per_sequence else 7)
    dtype = r.choice((np.int32, np.int64))
    threads = r.int(1, 4)
    seqs, rows = _pick_rows(r)
    call = lambda: bk.kmer_counts(seqs, k=k, per_sequence=per_sequence, dtype=dtype,  # noqa: E731
                                  threads=threads)
    if _expect_bad_rows(call, seqs, rows):
        return
    got = call()
    want = np.array([ref.kmer_counts(x, k) for x in rows], dtype=np.int64).reshape(len(rows), 4**k)
    if per_sequence:
        assert got.shape == want.shape and got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_array_equal(got, want.sum(axis=0))


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_shannon(data: bytes) -> None:
    r = Reader(data)
    base = r.choice((2.0, math.e, 10.0, 0.5, 3.0))
    as_float = r.bool()
    # Huge counts whose sum overflows and tiny ones whose share underflows (1e308, 1e-300)
    # took the top bytes last, so that older corpus inputs decode as before.
    special = {0xF9: 1e308, 0xFA: 1e-300, 0xFB: -1.0, 0xFC: math.inf, 0xFD: math.nan, 0xFE: 0.25, 0xFF: 1e300}
    counts = []
    for b in r.rest()[:200]:
        if as_float and b in special:
            counts.append(special[b])
        else:
            counts.append(b % 50)
    arr = np.asarray(counts, dtype=np.float64 if as_float else np.int64)
    if any(not math.isfinite(c) or c < 0 for c in counts):
        try:
            bk.shannon(arr, base=base)
        except ValueError:
            return
        raise AssertionError("bad counts accepted")
    got = bk.shannon(arr, base=base)
    want = ref.shannon([float(c) for c in counts], base=base)
    assert _close(got, want), (counts, got, want)


# Containers of labels for grouped_shannon, and what a missing label looks like in them
# (the rule of bioscan_kmer.data.labels: null, "" or whitespace only).
LABEL_CONTAINERS = ("list", "categorical", "pandas_arrow", "numpy_object")
BLANKS = ("", " ", "\t", "  ")
# Integer code dtypes; unsigned ones hold the "negative" codes as large values.
CODE_DTYPES = (np.int64, np.int32, np.uint64, np.uint8, np.int16)


def _labels_in(values: list, kind: str):
    import pandas as pd

    if kind == "categorical":
        return pd.Series(values, dtype="category")
    if kind == "pandas_arrow":
        return pd.Series(values, dtype="string[pyarrow]")
    if kind == "numpy_object":
        return np.array(values, dtype=object)
    return values


def _codes_as(codes: list[int], dtype) -> np.ndarray:
    """Codes in ``dtype``; in an unsigned one -1 and -2 become its largest values (for
    uint64 >= 2**63, which once wrapped to negative int64, i.e. missing)."""
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        return np.array([c if c >= 0 else top + 1 + c for c in codes], dtype=dtype)
    return np.asarray(codes, dtype=dtype)


def check_grouped_shannon(data: bytes) -> None:
    r = Reader(data)
    lb = r.byte()  # bit 0: labels or codes; the rest: container, blank, code dtype
    labels = bool(lb & 1)
    epsilon = r.choice((0.0, bk.PAPER_EPSILON))
    base = r.choice((2.0, math.e))
    threads = r.int(1, 4)
    body = r.rest()[:400]
    pairs = [(body[i] % 9 - 2, body[i + 1] % 9 - 2) for i in range(0, len(body) - 1, 2)]
    g_codes = [p[0] for p in pairs]
    i_codes = [p[1] for p in pairs]
    if labels:
        kind = LABEL_CONTAINERS[(lb >> 1) % len(LABEL_CONTAINERS)]
        names = {-2: None, -1: BLANKS[(lb >> 3) % len(BLANKS)]}
        g_values = [names.get(g, f"g{g}") for g in g_codes]
        i_values = [names.get(i, f"i{i}") for i in i_codes]
        groups, items = _labels_in(g_values, kind), _labels_in(i_values, kind)
    else:
        dtype = CODE_DTYPES[(lb >> 1) % len(CODE_DTYPES)]
        groups, items = _codes_as(g_codes, dtype), _codes_as(i_codes, dtype)
        g_values, i_values = groups.tolist(), items.tolist()
        # Integer codes must be dense: 0..n-1 with n at most 4 per row plus 2**20.
        for name, v in (("groups", g_values), ("items", i_values)):
            if v and max(v) >= 4 * len(v) + (1 << 20):
                try:
                    bk.grouped_shannon(groups, items, base=base, epsilon=epsilon, threads=threads)
                except ValueError as e:
                    assert str(e).startswith(f"{name}: integer codes must be dense"), str(e)
                    assert f"the largest is {max(v):,} " in str(e), str(e)
                    return
                raise AssertionError(f"sparse {name} codes up to {max(v)} were accepted")
    keys, values = bk.grouped_shannon(groups, items, base=base, epsilon=epsilon, threads=threads)
    missing = lambda v: v is None or (isinstance(v, str) and not v.strip()) or (  # noqa: E731
        isinstance(v, int) and v < 0)
    ref_g = [None if missing(g) else g for g in g_values]
    ref_i = [None if missing(i) else i for i in i_values]
    want = ref.grouped_shannon(ref_g, ref_i, base=base, epsilon=epsilon)
    keys = list(keys)
    assert len(keys) == len(values) == len(set(keys))
    present = {g for g in ref_g if g is not None}
    assert set(keys) == present if labels else set(keys) == set(range(max(present, default=-1) + 1))
    for key, value in zip(keys, values):
        key = key if labels else int(key)
        if key in want:
            assert _close(float(value), want[key]), (key, value, want[key])
        else:
            assert math.isnan(value), (key, value)


TARGETS = {
    "clean": check_clean,
    "tokenize": check_tokenize,
    "unique": check_unique,
    "kmer_counts": check_kmer_counts,
    "shannon": check_shannon,
    "grouped_shannon": check_grouped_shannon,
}
