"""shannon against scikit-bio; grouped_shannon against a per-group loop."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bioscan_kmer as bk
import kmer_reference as ref

skbio_alpha = pytest.importorskip("skbio.diversity.alpha")  # in the test extra


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 1000), max_size=30), st.sampled_from([2, math.e, 10, 3.5]))
def test_shannon_matches_scikit_bio(counts, base):
    want = skbio_alpha.shannon(np.array(counts, dtype=np.int64), base=base)
    got = bk.shannon(counts, base=base)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("counts,want", [
    ([1e308, 1e308], math.log(2)),  # the sum overflows to inf: was NaN
    ([1.7e308, 1.7e308, 1.7e308, 0], math.log(3)),
    # 1e-300's share underflows to 0: 0 * log(0) was NaN.
    ([1e308, 1e307, 0, 1e-300], -(10 / 11) * math.log(10 / 11) - (1 / 11) * math.log(1 / 11)),
    ([5e-324, 5e-324], math.log(2)),  # subnormal counts
])
def test_shannon_of_huge_and_tiny_counts(counts, want):
    got = bk.shannon(counts)
    assert got == pytest.approx(want, rel=1e-12)
    assert bk.shannon(counts, base=2) == pytest.approx(want / math.log(2), rel=1e-12)


def test_shannon_scaling_leaves_ordinary_counts_bit_for_bit():
    # Scaling applies only when the sum overflows: the usual path is unchanged.
    counts = [3, 1, 4, 1, 5, 9, 2, 6]
    total = sum(counts)
    want = -sum((c / total) * math.log(c / total) for c in counts)
    assert bk.shannon(counts) == want


def test_shannon_default_base_is_e_and_errors():
    assert bk.shannon([1, 1]) == pytest.approx(math.log(2))
    assert math.isnan(bk.shannon([])) and math.isnan(bk.shannon([0, 0]))
    with pytest.raises(ValueError, match="non-negative"):
        bk.shannon([1, -1])
    with pytest.raises(ValueError, match="base"):
        bk.shannon([1, 2], base=1)
    with pytest.raises(ValueError, match="1-D"):
        bk.shannon([[1, 2]])
    with pytest.raises(TypeError):
        bk.shannon(["a"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(-1, 6), st.integers(-1, 8)), max_size=80),
       st.sampled_from([0.0, bk.PAPER_EPSILON]), st.sampled_from([2.0, math.e]))
def test_grouped_shannon_matches_loop(pairs, eps, base):
    groups = np.array([g for g, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    keys, values = bk.grouped_shannon(groups, items, base=base, epsilon=eps)
    want = ref.grouped_shannon([g if g >= 0 else None for g in groups.tolist()],
                               [i if i >= 0 else None for i in items.tolist()], base, eps)
    assert len(keys) == (groups.max() + 1 if len(groups) and groups.max() >= 0 else 0)
    for key, value in zip(keys, values):
        if int(key) in want:
            assert value == pytest.approx(want[int(key)], rel=1e-12, abs=1e-15)
        else:
            assert math.isnan(value)


def test_grouped_shannon_with_labels_matches_per_group_scikit_bio_loop():
    rng = np.random.default_rng(3)
    genus = rng.choice(["Aedes", "Culex", "Apis", None, ""], size=5000)
    barcode = rng.choice([f"B{i}" for i in range(300)], size=5000)
    keys, values = bk.grouped_shannon(genus, barcode, base=2)
    assert list(keys) == [g for g in pd.unique(genus) if g not in (None, "")]
    for key, value in zip(keys, values):
        counts = pd.Series(barcode[genus == key]).value_counts().to_numpy()
        assert value == pytest.approx(skbio_alpha.shannon(counts, base=2), rel=1e-12)
    cat = pd.Series(genus, dtype="category")
    ckeys, cvalues = bk.grouped_shannon(cat, barcode)
    for key, value in zip(ckeys, cvalues):
        if key == "":
            continue
        assert value == pytest.approx(values[list(keys).index(key)])


def test_paper_sdi_is_bits_with_epsilon():
    keys, values = bk.paper_sdi(np.array([0, 0, 0, 0, 1]), np.array([1, 2, 3, 4, 9]))
    assert values[0] == pytest.approx(-4 * 0.25 * math.log2(0.25 + 1e-12), rel=1e-15)
    # A single-barcode label counts with SDI ~ 0 (slightly negative from the epsilon).
    assert abs(values[1]) < 1e-11


def test_grouped_shannon_threads_agree():
    rng = np.random.default_rng(4)
    g = rng.zipf(1.3, size=400_000) % 5000
    it = rng.integers(0, 50_000, size=g.size)
    a = bk.grouped_shannon(g, it, threads=1)[1]
    b = bk.grouped_shannon(g, it, threads=3)[1]
    np.testing.assert_array_equal(a, b)


def test_grouped_shannon_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        bk.grouped_shannon(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="epsilon"):
        bk.grouped_shannon(np.array([0]), np.array([0]), epsilon=-1)


def test_uint64_codes_are_read_before_any_cast():
    # uint64 values >= 2**63 wrapped to negative int64, i.e. silently became missing:
    # [0.] instead of an error, and empty output when every group code was large.
    big = np.array([2**63, 2**63 + 1, 2**63 + 2], dtype=np.uint64)
    with pytest.raises(ValueError, match="items: integer codes must be dense.*9,223,372,036,854,775,810"):
        bk.grouped_shannon(np.zeros(3, np.uint64), big)
    with pytest.raises(ValueError, match="groups: integer codes must be dense.*9,223,372,036,854,775,810"):
        bk.grouped_shannon(big, np.arange(3, dtype=np.uint64))
    with pytest.raises(ValueError, match="must be dense"):
        bk.grouped_shannon(pd.Series(big), np.arange(3))
    # As labels they are distinct values: log2 3.
    keys, values = bk.grouped_shannon(np.zeros(3, np.uint64), pd.Series(big, dtype=object))
    assert values.tolist() == [pytest.approx(math.log2(3))]
    keys, values = bk.grouped_shannon(np.array([0, 0, 1], np.uint64), np.array([5, 6, 5], np.uint64))
    assert keys.tolist() == [0, 1] and values.tolist() == [1.0, 0.0]


def test_missing_labels_are_the_same_in_every_container():
    # A categorical "" counted as a label while an object "" was missing.
    labels = ["a", "", " ", None, "a", "b"]
    items = [1, 2, 3, 4, 5, 6]
    want = bk.grouped_shannon(pd.Series(labels, dtype=object), items)
    for col in (pd.Series(labels, dtype="category"), pd.Series(labels, dtype="string[pyarrow]"),
                np.array(labels, dtype=object), labels):
        keys, values = bk.grouped_shannon(col, items)
        assert list(keys) == ["a", "b"] and values.tolist() == want[1].tolist() == [1.0, 0.0]


def test_sparse_integer_codes_are_refused_with_advice():
    with pytest.raises(ValueError, match="must be dense"):
        bk.grouped_shannon(np.array([0, 10**12]), np.array([1, 2]))
    with pytest.raises(ValueError, match="items: integer codes must be dense"):
        bk.grouped_shannon(np.array([0, 1]), np.array([1, 10**12]))
