"""clean against the reference of SPEC section 2, and on real raw BOLD barcodes."""
import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import bioscan_kmer as bk
import kmer_reference as ref

BOLD = Path(__file__).parent / "data" / "bold_sample.tsv"
RAW = "ACGTNacgtnUuRYSWKMBDHVrykm- \t\n"


@settings(max_examples=400, deadline=None)
@given(
    seqs=st.lists(st.text(alphabet=RAW, max_size=50), max_size=5),
    gaps=st.sampled_from(["remove", "n"]),
    trim_n=st.booleans(),
    max_length=st.one_of(st.none(), st.integers(0, 40)),
)
@example(seqs=["NNNN", "", "----", "nACGTn"], gaps="n", trim_n=True, max_length=None)
@example(seqs=["ACGTNNNNACGT"], gaps="remove", trim_n=True, max_length=5)
def test_matches_reference(seqs, gaps, trim_n, max_length):
    got = bk.clean(seqs, gaps=gaps, trim_n=trim_n, max_length=max_length)
    assert got == [ref.clean(s, gaps=gaps, trim_n=trim_n, max_length=max_length) for s in seqs]


def test_real_bold_barcodes():
    with open(BOLD, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    raw = [r["sequence"] for r in rows]
    assert any("-" in s for s in raw) and any(c.islower() for s in raw for c in s)
    assert any(c in "RYSWKM" for s in raw for c in s)
    cleaned = bk.clean(raw)
    assert len(cleaned) == len(raw)  # nothing dropped
    assert cleaned == [ref.clean(s) for s in raw]
    for s in cleaned:
        assert set(s) <= set("ACGTN") and not s.startswith("N") and not s.endswith("N")
    # A COI-5P barcode is ~658 nt once alignment gaps are gone.
    lengths = sorted(len(s) for s in cleaned)
    assert 550 <= lengths[len(lengths) // 2] <= 700
    assert bk.clean(raw, gaps="n") == [ref.clean(s, gaps="n") for s in raw]
    with pytest.raises(ValueError, match="IUPAC ambiguity code"):
        bk.clean(raw, iupac="error")


def test_invalid_character_names_row_position_and_character():
    with pytest.raises(ValueError, match=r"row 2: invalid character 'X' at position 3"):
        bk.clean(["ACGT", "acgt", "ACGX"])
    with pytest.raises(ValueError, match=r"row 0: invalid character '\*' at position 1"):
        bk.clean(["A*"])
    with pytest.raises(ValueError, match=r"row 1: IUPAC ambiguity code 'r' at position 0"):
        bk.clean(["ACGT", "rACGT"], iupac="error")


def test_lowest_bad_row_is_reported_whatever_the_threads():
    seqs = ["ACGT" * 300] * 5000
    seqs[4000] = "ACGZ"
    seqs[4500] = "Q"
    for threads in (1, 2, 4):
        with pytest.raises(ValueError, match="row 4000:"):
            bk.clean(seqs, threads=threads)


def test_threads_do_not_change_the_result():
    seqs = ["-acgtRYnn" * (i % 50) + "ACGTU" * (i % 7) for i in range(5000)]
    base = bk.clean(seqs, threads=1)
    assert bk.clean(seqs, threads=2) == base == bk.clean(seqs, threads=7)


def test_bad_options():
    with pytest.raises(ValueError, match="gaps"):
        bk.clean(["A"], gaps="drop")
    with pytest.raises(ValueError, match="iupac"):
        bk.clean(["A"], iupac="keep")
    with pytest.raises(ValueError, match="max_length"):
        bk.clean(["A"], max_length=-1)


def test_empty_input():
    assert bk.clean([]) == []


@settings(max_examples=100, deadline=None)
@given(seqs=st.lists(st.text(alphabet=RAW, max_size=50), max_size=6), gaps=st.sampled_from(["remove", "n"]),
       max_length=st.one_of(st.none(), st.integers(0, 30)))
def test_arrow_output_equals_list_output(seqs, gaps, max_length):
    import pyarrow as pa

    arr = bk.clean(seqs, gaps=gaps, max_length=max_length, output="arrow")
    assert isinstance(arr, pa.LargeStringArray) and arr.null_count == 0
    assert arr.to_pylist() == bk.clean(seqs, gaps=gaps, max_length=max_length)


def test_arrow_output_feeds_the_core_and_pandas():
    import pandas as pd

    raw = ["nnACGT-acgtRRA", "ACGTACGT", "ACGTACGT "] * 1000
    arr = bk.clean(raw, output="arrow", threads=3)
    np.testing.assert_array_equal(bk.tokenize(arr, max_len=12)[0], bk.tokenize(bk.clean(raw), max_len=12)[0])
    assert bk.unique(arr)[2].tolist() == [1000, 2000]
    series = pd.Series(pd.arrays.ArrowExtensionArray(arr))
    assert series.iloc[0] == "ACGTACGTNNA"
    with pytest.raises(ValueError, match="output"):
        bk.clean(raw, output="numpy")
    with pytest.raises(ValueError, match="row 1: invalid character"):
        bk.clean(["A", "Z"], output="arrow")
