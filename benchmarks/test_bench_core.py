"""pytest-benchmark suite of the core (small sizes; compare_core.py prints the full table).

    pytest benchmarks/test_bench_core.py --benchmark-enable
"""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import barcodes as data  # noqa: E402
import competitors  # noqa: E402

import bioscan_kmer as bk  # noqa: E402

N = 20_000


@pytest.fixture(scope="module")
def seqs():
    return data.barcodes(N)


@pytest.mark.parametrize("threads", [1, 2])
def test_tokenize(benchmark, seqs, threads):
    ids, _ = benchmark(bk.tokenize, seqs, threads=threads)
    assert ids.shape == (N, 165)


def test_tokenize_python_loop(benchmark, seqs):
    out = benchmark.pedantic(competitors.python_loop, args=(seqs[:2000],), rounds=1)
    np.testing.assert_array_equal(out, bk.tokenize(seqs[:2000])[0])


def test_clean(benchmark, seqs):
    raw = data.raw_barcodes(seqs)
    out = benchmark(bk.clean, raw)
    assert len(out) == N


def test_unique(benchmark, seqs):
    uniques, inverse, counts = benchmark(bk.unique, seqs)
    assert counts.sum() == N


def test_pandas_unique(benchmark, seqs):
    import pandas as pd

    objects = np.array(seqs, dtype=object)
    out = benchmark(pd.unique, objects)
    assert len(out) == len(bk.unique(seqs)[0])


def test_paper_sdi(benchmark):
    groups, items = data.labels(500_000, groups=5000, items=200_000)
    keys, values = benchmark(bk.paper_sdi, groups, items)
    assert len(values) == 5000
