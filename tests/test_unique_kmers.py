"""unique and kmer_counts against references and pandas."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bioscan_kmer as bk
import kmer_reference as ref


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ACGN", max_size=12), max_size=60))
def test_unique_matches_reference_and_factorize(seqs):
    uniques, inverse, counts = bk.unique(seqs)
    want_u, want_inv, want_c = ref.unique(seqs)
    assert uniques == want_u and inverse.tolist() == want_inv and counts.tolist() == want_c
    codes, pd_uniques = pd.factorize(pd.Series(seqs, dtype=object))
    assert inverse.tolist() == codes.tolist() and list(pd_uniques) == uniques


def test_unique_large_input_and_threads():
    rng = np.random.default_rng(1)
    pool = ["".join(rng.choice(list("ACGT"), size=rng.integers(600, 700))) for _ in range(3000)]
    seqs = [pool[i] for i in rng.zipf(1.5, size=60_000) % len(pool)]
    base = bk.unique(seqs, threads=1)
    for t in (2, 5, None):
        got = bk.unique(seqs, threads=t)
        assert got[0] == base[0]
        np.testing.assert_array_equal(got[1], base[1])
        np.testing.assert_array_equal(got[2], base[2])
    codes, uniq = pd.factorize(pd.Series(seqs, dtype=object))
    np.testing.assert_array_equal(base[1], codes)
    assert base[2].sum() == len(seqs)


@pytest.mark.parametrize("kind", ["list", "bytes", "numpy_U", "numpy_S", "pandas_arrow", "pyarrow"])
def test_unique_empty_strings_nul_bytes_and_prefixes_are_distinct(kind):
    from fuzz.targets import as_container

    # A row holding NUL must not end at it ("A\x00" is not "A"), nor a NUL inside a
    # row be taken as padding ("A\x00C"); NumPy drops only trailing NULs of its own.
    rows = ["", "A", "AA", "", "A\x00", "A\x00C", "A", "AAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAB", "A\x00"]
    seqs, seen = as_container(rows, kind)
    u, inv, c = bk.unique(seqs)
    want_u, want_inv, want_c = ref.unique(seen)
    got_u = [x.decode("latin-1") if isinstance(x, bytes) else str(x) for x in list(u)]
    assert got_u == want_u and inv.tolist() == want_inv and c.tolist() == want_c
    if kind != "numpy_S" and kind != "numpy_U":
        assert want_u == ["", "A", "AA", "A\x00", "A\x00C", "AAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAB"]


def test_unique_refuses_str_mixed_with_bytes():
    # Merging them broke uniques[inverse[i]] == seqs[i]: "ACGT" != b"ACGT" in Python.
    with pytest.raises(TypeError, match="row 1: bytes among str rows"):
        bk.unique(["ACGT", b"ACGT"])
    for seqs in (["ACGT", "ACGT"], [b"ACGT", b"ACGT"]):
        u, inv, _ = bk.unique(seqs)
        assert all(u[inv[i]] == s for i, s in enumerate(seqs))


def test_unique_empty_input():
    u, inv, c = bk.unique([])
    assert u == [] and inv.shape == (0,) and c.shape == (0,) and inv.dtype == np.int64


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="ACGTNacgt-", max_size=40), max_size=8), st.integers(1, 6))
def test_kmer_counts_match_reference(seqs, k):
    per = bk.kmer_counts(seqs, k=k)
    assert per.shape == (len(seqs), 4**k) and per.dtype == np.int32
    for row, s in enumerate(seqs):
        assert per[row].tolist() == ref.kmer_counts(s, k)
    total = bk.kmer_counts(seqs, k=k, per_sequence=False)
    assert total.dtype == np.int64 and total.tolist() == per.sum(axis=0).tolist()


def test_kmer_counts_threads_and_dtype():
    rng = np.random.default_rng(2)
    seqs = ["".join(rng.choice(list("ACGTN"), size=700)) for _ in range(2000)]
    a = bk.kmer_counts(seqs, k=4, threads=1, dtype=np.int64)
    b = bk.kmer_counts(seqs, k=4, threads=3, dtype=np.int64)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(bk.kmer_counts(seqs, k=3, per_sequence=False, threads=1),
                                  bk.kmer_counts(seqs, k=3, per_sequence=False, threads=2))


@pytest.mark.parametrize("kwargs,exc", [({"k": 0}, ValueError), ({"k": 13}, ValueError),
                                        ({"k": 2.0}, TypeError), ({"k": 2, "dtype": np.float64}, TypeError)])
def test_kmer_counts_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        bk.kmer_counts(["ACGT"], **kwargs)
