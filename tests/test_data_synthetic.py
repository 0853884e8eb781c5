"""Synthetic BIOSCAN-like data: schema, determinism, realism the other parts rely on."""


import numpy as np
import pandas as pd
import pytest

from bioscan_kmer import clean
from bioscan_kmer.data.schema import COLUMNS, DTYPES, RANKS
from bioscan_kmer.data.splits import placeholder_species_mask
from bioscan_kmer.data.synthetic import BARCODE_LENGTH, synthetic_bioscan


@pytest.fixture(scope="module")
def df():
    return synthetic_bioscan(20_000, seed=11)


def test_schema_columns_and_types(df):
    assert tuple(df.columns) == COLUMNS
    for col, dtype in DTYPES.items():
        if dtype == "category":
            assert isinstance(df[col].dtype, pd.CategoricalDtype), col
            cats = list(df[col].cat.categories)
            assert cats == sorted(cats), f"{col} categories are not sorted"
        elif dtype == "str":
            assert df[col].dtype == "str", col
        else:
            assert str(df[col].dtype) == dtype, col
    assert df["processid"].is_unique
    assert (df["phylum"] == "Arthropoda").all()
    assert df["dna_barcode"].notna().all()


def test_same_seed_same_table_other_seed_other_table():
    a = synthetic_bioscan(3_000, seed=5)
    b = synthetic_bioscan(3_000, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = synthetic_bioscan(3_000, seed=6)
    assert not a["dna_barcode"].equals(c["dna_barcode"])


def test_missing_rank_rates_are_close_to_the_real_ones(df):
    rate = {r: df[r].notna().mean() for r in RANKS}
    real = {"class": 0.999, "order": 0.997, "family": 0.958, "subfamily": 0.286, "genus": 0.238,
            "species": 0.092}
    for rank, value in real.items():
        assert abs(rate[rank] - value) < 0.06, (rank, rate[rank])
    # Lower ranks are never labelled without the ones above (subfamily may be skipped).
    for upper, lower in [("class", "order"), ("order", "family"), ("family", "genus"), ("genus", "species")]:
        assert not (df[lower].notna() & df[upper].isna()).any(), (upper, lower)


def test_taxon_is_the_most_specific_label(df):
    expected = df["phylum"].astype(object)
    for rank in RANKS[1:]:
        expected = df[rank].astype(object).where(df[rank].notna(), expected)
    assert (df["taxon"].astype(object) == expected).all()


def test_category_sizes_are_heavy_tailed(df):
    sizes = df["species"].value_counts()
    sizes = sizes[sizes > 0]
    assert sizes.max() >= 20 * sizes.median()
    assert (sizes == 1).sum() > 0
    order_share = df["order"].value_counts(normalize=True)
    assert order_share.index[0] == "Diptera" and order_share.iloc[0] > 0.5


def test_placeholder_species_exist_and_are_detected(df):
    mask = placeholder_species_mask(df)
    # Share of distinct species names (record shares swing with the heavy tail).
    share = df.loc[mask, "species"].nunique() / df["species"].nunique()
    assert 0.15 < share < 0.5
    names = set(df.loc[mask, "species"].astype(str))
    assert any(" sp. " in n for n in names) and any("Malaise" in n for n in names)


def test_raw_barcodes_need_cleaning_and_clean_to_acgtn(df):
    raw = df["dna_barcode"]
    assert raw.str.contains("-", regex=False).any()
    assert raw.str.contains("[RYSWKMBDHV]", regex=True).any()
    assert raw.str.contains("[acgt]", regex=True).any()
    assert raw.str.match("^N+").any() and raw.str.contains("N+$", regex=True).any()
    cleaned = pd.Series(clean(raw))
    assert cleaned.str.fullmatch("[ACGTN]+").all()
    lengths = cleaned.str.len()
    assert lengths.max() <= BARCODE_LENGTH and lengths.median() == BARCODE_LENGTH


def test_barcodes_repeat_within_species_and_bins_group_them(df):
    lab = df[df["species"].notna()]
    per_species = lab.groupby("species", observed=True)["dna_barcode"].agg(["size", "nunique"])
    big = per_species[per_species["size"] >= 10]
    assert (big["nunique"] < big["size"]).all()
    assert df["dna_bin"].str.fullmatch(r"BOLD:[A-Z]{3}\d{4}").fillna(True).all()
    assert 0.9 < df["dna_bin"].notna().mean() < 1.0


def _hamming(a, b):
    n = min(len(a), len(b))
    return sum(x != y for x, y in zip(a[:n], b[:n])) / n


def test_divergence_grows_up_the_tree(df):
    """Species of one genus are closer than species of different orders."""
    full = df[df["dna_barcode"].str.fullmatch("[ACGT]{658}")]
    lab = full[full["species"].notna()]
    genus_pairs, order_pairs = [], []
    by_genus = lab.groupby("genus", observed=True)
    for _, g in by_genus:
        sp = g.drop_duplicates("species")
        if len(sp) >= 2:
            genus_pairs.append(_hamming(sp["dna_barcode"].iloc[0], sp["dna_barcode"].iloc[1]))
    reps = full.drop_duplicates("order")
    seqs = reps["dna_barcode"].tolist()
    for i in range(len(seqs)):
        for j in range(i + 1, len(seqs)):
            order_pairs.append(_hamming(seqs[i], seqs[j]))
    assert len(genus_pairs) >= 5 and len(order_pairs) >= 5
    assert np.mean(genus_pairs) < 0.5 * np.mean(order_pairs)
    # Within a species, haplotypes differ by a few substitutions only.
    sp = lab.groupby("species", observed=True)["dna_barcode"].unique()
    within = [_hamming(v[0], v[1]) for v in sp if len(v) >= 2]
    assert np.mean(within) < 0.02


def test_size_fields_follow_their_definitions(df):
    ok = df["area_fraction"].notna()
    assert ((df.loc[ok, "area_fraction"] > 0) & (df.loc[ok, "area_fraction"] <= 1)).all()
    # scale_factor = min(wc, hc)/256 <= min(1024, 768)/256
    assert (df.loc[ok, "scale_factor"] <= 3.0).all()
    assert (df.loc[ok, "image_measurement_value"] <= df.loc[ok, "area_fraction"] * 1024 * 768 + 1).all()
    assert df["coord-lat"].between(-90, 90).where(df["coord-lat"].notna(), True).all()
    assert df["country"].nunique() > 5


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        synthetic_bioscan(0)
    with pytest.raises(ValueError, match="raw_fraction"):
        synthetic_bioscan(10, raw_fraction=2)


def test_tiny_tables_work():
    for n in (1, 7, 50):
        df = synthetic_bioscan(n, seed=1)
        assert len(df) == n and df["split"].notna().all()
