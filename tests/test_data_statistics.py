"""The statistics table against a slow pure-Python computation of SPEC section 5."""

import math
from collections import Counter, defaultdict

import numpy as np
import pandas as pd
import pytest

from bioscan_kmer.data.schema import RANKS
from bioscan_kmer.data.statistics import (
    STAT_COLUMNS,
    category_sizes,
    dataset_statistics,
    format_statistics,
    save_statistics,
)
from bioscan_kmer.data.synthetic import synthetic_bioscan


def reference_statistics(df):
    """Loops over rows and dicts only: the definition, not an implementation."""
    n = len(df)
    barcodes = df["dna_barcode"].tolist()
    out = []
    for rank in RANKS:
        labels = [v if isinstance(v, str) and v != "" else None for v in df[rank].astype(object)]
        per_label = defaultdict(Counter)
        for label, barcode in zip(labels, barcodes):
            if label is not None:
                per_label[label][barcode] += 1
        sizes = [sum(c.values()) for c in per_label.values()]
        n_lab = sum(sizes)
        sdis = []
        for counts in per_label.values():
            total = sum(counts.values())
            sdis.append(-sum((k / total) * math.log2(k / total + 1e-12) for k in counts.values()))
        distinct = {b for label, b in zip(labels, barcodes) if label is not None}
        out.append({
            "rank": rank, "labelled": n_lab, "labelled_fraction": n_lab / n,
            "categories": len(sizes), "most_populated": max(sizes, default=0),
            "least_populated": min(sizes, default=0),
            "imbalance_ratio": max(sizes) / min(sizes) if sizes else float("nan"),
            "unique_dna": len(distinct), "avg_sdi": sum(sdis) / len(sdis) if sdis else float("nan"),
        })
    return pd.DataFrame(out)


@pytest.fixture(scope="module")
def df():
    return synthetic_bioscan(6_000, seed=21, with_splits=False)


def test_matches_pure_python_reference(df):
    got = dataset_statistics(df)
    ref = reference_statistics(df)
    assert list(got.columns) == list(STAT_COLUMNS)
    pd.testing.assert_frame_equal(got, ref, check_dtype=False, rtol=1e-9, atol=1e-9)


def test_hand_computed_example():
    df = pd.DataFrame({
        "phylum": ["A"] * 6, "class": ["C", "C", "C", "D", None, ""],
        "order": [None] * 6, "family": ["F"] * 6, "subfamily": [None] * 6, "genus": [None] * 6,
        "species": ["s1", "s1", "s2", "s2", "s2", None],
        "dna_barcode": ["AC", "AC", "AG", "AT", "AT", "AC"],
    })
    table = dataset_statistics(df).set_index("rank")
    assert table.loc["class", "labelled"] == 4 and table.loc["class", "categories"] == 2
    assert table.loc["class", "imbalance_ratio"] == 3.0
    assert table.loc["class", "unique_dna"] == 3
    assert table.loc["order", "labelled"] == 0 and np.isnan(table.loc["order", "avg_sdi"])
    # s1: one barcode (SDI ~ 0); s2: AG once, AT twice -> H(1/3, 2/3) bits.
    h = -(1 / 3 * math.log2(1 / 3 + 1e-12) + 2 / 3 * math.log2(2 / 3 + 1e-12))
    s1 = -math.log2(1 + 1e-12)
    assert table.loc["species", "avg_sdi"] == pytest.approx((h + s1) / 2, abs=1e-12)
    # Raw strings: no N stripping for unique DNA.
    df2 = df.assign(dna_barcode=["AC", "ACN", "AG", "AT", "AT", "AC"])
    assert dataset_statistics(df2).set_index("rank").loc["species", "unique_dna"] == 4


def test_results_do_not_depend_on_threads(df):
    pd.testing.assert_frame_equal(dataset_statistics(df, threads=1), dataset_statistics(df, threads=2))


def test_missing_columns_and_missing_barcodes(df):
    with pytest.raises(ValueError, match="dna_barcode"):
        dataset_statistics(df.drop(columns="dna_barcode"))
    bad = df.head(5).copy()
    bad.loc[3, "dna_barcode"] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        dataset_statistics(bad)


def test_formats_and_files(df, tmp_path):
    table = dataset_statistics(df)
    text = format_statistics(table)
    lines = text.splitlines()
    assert len(lines) == 2 + len(RANKS)
    assert len({len(line) for line in lines}) == 1, "columns are aligned"
    md = format_statistics(table, "markdown")
    assert md.count("\n") == 2 + len(RANKS) and md.startswith("| Rank |")
    back = pd.read_csv(pd.io.common.StringIO(format_statistics(table, "csv")))
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    with pytest.raises(ValueError, match="style"):
        format_statistics(table, "html")
    paths = save_statistics(df, tmp_path, table=table)
    assert paths["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["csv"].read_text() == format_statistics(table, "csv")
    sizes = category_sizes(df)
    assert sizes["species"].sum() == table.set_index("rank").loc["species", "labelled"]
    assert (np.diff(sizes["family"]) <= 0).all()
