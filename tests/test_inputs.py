"""Every entry point accepts the containers users have, and rejects bad rows clearly."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import bioscan_kmer as bk

SEQS = ["ACGTACGTTT", "GGGGCCCCAA", "ACGTACGTTT", "", "TTTTNNNNAC"]


def containers():
    return {
        "list": list(SEQS),
        "tuple": tuple(SEQS),
        "bytes list": [s.encode() for s in SEQS],
        "numpy U": np.array(SEQS),
        "numpy S": np.array([s.encode() for s in SEQS]),
        "numpy object": np.array(SEQS, dtype=object),
        "pandas object": pd.Series(SEQS, dtype=object),
        "pandas arrow str": pd.Series(SEQS, dtype="string[pyarrow]"),
        "pandas default str": pd.Series(SEQS),
        "pandas python string": pd.Series(SEQS, dtype="string[python]"),
        "pandas categorical": pd.Series(SEQS, dtype="category"),
        "pyarrow string": pa.array(SEQS),
        "pyarrow large_string": pa.array(SEQS, type=pa.large_string()),
        "pyarrow chunked": pa.chunked_array([SEQS[:2], SEQS[2:]]),
        "pyarrow sliced": pa.array(["XX"] + SEQS)[1:],
        "pyarrow string_view": pa.array(SEQS, type=pa.string_view()),
    }


@pytest.mark.parametrize("name", list(containers()))
def test_every_container_gives_the_same_results(name):
    seqs = containers()[name]
    want_ids, want_mask = bk.tokenize(SEQS, max_len=12)
    ids, mask = bk.tokenize(seqs, max_len=12)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(mask, want_mask)
    assert bk.clean(seqs) == bk.clean(SEQS)
    uniques, inverse, counts = bk.unique(seqs)
    assert inverse.tolist() == [0, 1, 0, 2, 3] and counts.tolist() == [2, 1, 1, 1]
    as_text = [u.decode() if isinstance(u, bytes) else str(u) for u in list(uniques)]
    assert as_text == ["ACGTACGTTT", "GGGGCCCCAA", "", "TTTTNNNNAC"]
    np.testing.assert_array_equal(bk.kmer_counts(seqs, k=2), bk.kmer_counts(SEQS, k=2))


def test_unique_keeps_the_container_type():
    assert isinstance(bk.unique(list(SEQS))[0], list)
    assert isinstance(bk.unique(np.array(SEQS))[0], np.ndarray)
    s = pd.Series(SEQS, index=[10, 11, 12, 13, 14])
    u = bk.unique(s)[0]
    assert isinstance(u, pd.Series) and u.index.tolist() == [0, 1, 2, 3]
    assert isinstance(bk.unique(pa.array(SEQS))[0], pa.Array)


def test_list_input_reuses_the_original_string_objects():
    seqs = ["".join(["ACGT"] * 10) for _ in range(3)]  # distinct objects, equal values
    uniques, _, _ = bk.unique(seqs)
    assert uniques[0] is seqs[0]


@pytest.mark.parametrize("bad,exc,match", [
    (["ACGT", None], TypeError, "row 1: sequence is None"),
    (["ACGT", 5], TypeError, "row 1: expected str or bytes, got int"),
    (["ACGT", "ACGé"], ValueError, "row 1: .*non-ASCII"),
    ([b"ACGT", b"\xffAC"], ValueError, "row 1: .*non-ASCII"),
    (np.array(["ACGT", "ÅCGT"]), ValueError, "row 1: .*non-ASCII"),
    (pd.Series(["ACGT", None, "A"], dtype="string[pyarrow]"), TypeError, "row 1: sequence is missing"),
    (pd.Series(["ACGT", None], dtype=object), TypeError, "row 1: sequence is None"),
    (pd.Series(["ACGT", np.nan], dtype=object), TypeError, "row 1"),
    (pa.chunked_array([["A"], ["C", None]]), TypeError, "row 2: sequence is missing"),
    (pa.array(["A", "é"]), ValueError, "row 1: .*non-ASCII"),
    (np.array([1, 2]), TypeError, "array of str or bytes"),
    (np.array([["A"]]), ValueError, "1-D"),
    ("ACGT", TypeError, "single string"),
    ({"a": 1}, TypeError, "expected a list"),
    (pa.array([1, 2]), TypeError, "Arrow array of strings"),
    # str and bytes: unique once merged "ACGT" with b"ACGT" (unequal in Python).
    (["ACGT", b"ACGT"], TypeError, r"row 1: bytes among str rows \(row 0 is str\)"),
    ([b"AC", b"GT", "AC"], TypeError, r"row 2: str among bytes rows \(row 0 is bytes\)"),
    (np.array(["AC", "GT", b"AC"], dtype=object), TypeError, "row 2: bytes among str"),
    (pd.Series([b"AC", "AC"], dtype=object), TypeError, "row 1: str among bytes"),
    # The rows' types are checked before their contents.
    (["ACGé", b"AC"], TypeError, "row 1: bytes among str"),
    ([b"\xffAC", "AC"], TypeError, "row 1: str among bytes"),
])
@pytest.mark.parametrize("fn", ["tokenize", "clean", "unique", "kmer_counts"])
def test_bad_rows_raise_naming_the_row(bad, exc, match, fn):
    call = {
        "tokenize": lambda s: bk.tokenize(s),
        "clean": lambda s: bk.clean(s),
        "unique": lambda s: bk.unique(s),
        "kmer_counts": lambda s: bk.kmer_counts(s, k=2),
    }[fn]
    with pytest.raises(exc, match=match):
        call(bad)


def test_mutating_the_list_after_the_call_starts_is_safe():
    # The core freezes a list into a tuple, so the rows it reads stay alive even if
    # the caller's list is emptied meanwhile from another thread.
    import threading

    seqs = ["ACGT" * 200 + str(i % 10).replace(str(i % 10), "A") for i in range(200_000)]
    stop = threading.Event()

    def mutate():
        while not stop.is_set():
            if seqs:
                seqs.pop()

    t = threading.Thread(target=mutate)
    t.start()
    try:
        ids, _ = bk.tokenize(seqs, threads=2)
    finally:
        stop.set()
        t.join()
    assert ids.shape[1] == 165 and ids.shape[0] <= 200_000


def test_threads_argument_validation(monkeypatch):
    with pytest.raises(ValueError, match="threads must be >= 1"):
        bk.tokenize(["A"], threads=0)
    with pytest.raises(TypeError):
        bk.tokenize(["A"], threads=1.5)
    monkeypatch.setenv("BIOSCAN_KMER_THREADS", "3")
    assert bk.resolve_threads(None) == 3
    monkeypatch.setenv("BIOSCAN_KMER_THREADS", "zero")
    with pytest.raises(ValueError, match="BIOSCAN_KMER_THREADS"):
        bk.resolve_threads(None)
    monkeypatch.delenv("BIOSCAN_KMER_THREADS")
    assert bk.resolve_threads(None) >= 1


def test_one_thread_inside_a_dataloader_worker():
    torch = pytest.importorskip("torch")

    class Probe(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return bk.resolve_threads(None)

    loader = torch.utils.data.DataLoader(Probe(), num_workers=1, batch_size=None)
    assert list(loader) == [1]


def test_unique_return_values_false_gives_first_rows():
    first, inverse, counts = bk.unique(SEQS, return_values=False)
    assert first.dtype == np.int64 and first.tolist() == [0, 1, 3, 4]
    assert [SEQS[i] for i in first] == bk.unique(SEQS)[0]


def test_take_from_chunked_arrays_keeps_order():
    from bioscan_kmer._sequences import take

    arr = pa.chunked_array([["a", "b"], [], ["c", "d", "e"], ["f"]])
    for idx in ([0, 2, 5], [5, 0, 3, 1, 3], [], [4]):
        got = take(arr, np.array(idx, dtype=np.int64))
        assert got.to_pylist() == [arr.to_pylist()[i] for i in idx]
    views = pa.chunked_array([pa.array(["x", "y"], type=pa.string_view()), pa.array(["z"], type=pa.string_view())])
    assert take(views, np.array([2, 0])).to_pylist() == ["z", "x"]
