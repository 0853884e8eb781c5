"""The eight partitions: official rules and the invariants of SPEC section 6."""

import math

import numpy as np
import pandas as pd
import pytest

from bioscan_kmer.data.splits import (
    check_partition,
    is_placeholder_name,
    partition,
    placeholder_species_mask,
    split_summary,
    quota_barcode_upper,
    quota_target,
    quota_upper,
)
from bioscan_kmer.data.synthetic import synthetic_bioscan

SPLITS = ["pretrain", "train", "val", "test", "key_unseen", "val_unseen", "test_unseen", "other_heldout"]


@pytest.fixture(scope="module")
def df():
    return synthetic_bioscan(40_000, seed=3, with_splits=False)


@pytest.fixture(scope="module")
def split(df):
    return partition(df, seed=0)


@pytest.mark.parametrize(
    "species, genus, expected",
    [
        ("Tapinoma sessile", "Tapinoma", False),
        ("Megaselia sp. 12ABC", "Megaselia", True),
        ("Megaselia malaise1234", "Megaselia", True),
        ("Aedes vexans", "Malaise123", True),
        ("Aedes vexans", "cecidomyiidae", True),
        ("Aedes vexans", "unclassified Aedes", False),
        ("aedes vexans", "Aedes", True),
        ("Aedes BIOUG123", "Aedes", True),
        ("Aedes vex_ans", "Aedes", True),
        ("Aedes vexans?", "Aedes", True),
        ("Aedes cf. vexans", "Aedes", True),
        ("Aedes aff vexans", "Aedes", True),
        ("Aedes nr vexans", "Aedes", False),
        ("Aedes gen 2", "Aedes", True),
        ("Aedes vexAns", "Aedes", True),
        ("Aedes Vexans", "Aedes", True),
        (None, "Aedes", False),
        ("", "Aedes", False),
    ],
)
def test_placeholder_rules(species, genus, expected):
    assert is_placeholder_name(species, genus) is expected


def test_vectorized_placeholder_mask_matches_the_scalar_rule(df):
    mask = placeholder_species_mask(df)
    ref = [is_placeholder_name(s if isinstance(s, str) else None, g if isinstance(g, str) else None)
           for s, g in zip(df["species"].astype(object), df["genus"].astype(object))]
    np.testing.assert_array_equal(mask, np.array(ref))


def test_quota_functions_follow_the_spec():
    for n in range(0, 400):
        t = quota_target(n)
        assert t == (0 if n < 8 else min(math.floor(4 + (n - 8) / 4), 25))
        assert quota_upper(n) == (0 if n < 8 else math.floor(4 + (n - 8) / 3))
        assert t <= quota_upper(n)
    assert [quota_barcode_upper(nb) for nb in (1, 2, 3, 4, 5, 8, 11)] == [0, 1, 1, 1, 2, 3, 4]


def test_invariants_hold(df, split):
    check_partition(df, split)  # raises on the first broken invariant
    assert set(split.unique()) == set(SPLITS), "synthetic data should fill every split"
    assert len(split) == len(df) and split.notna().all()


def test_invariants_checked_by_hand(df, split):
    """The same invariants as check_partition, written out independently."""
    s = split.to_numpy(dtype=object)
    stripped = df["dna_barcode"].astype(str).str.strip("N").to_numpy()
    excl = np.isin(s, SPLITS[1:7])
    owner = {}
    for b, sp in zip(stripped[excl], s[excl]):
        assert owner.setdefault(b, sp) == sp, f"barcode in {owner[b]} and {sp}"
    species = df["species"].astype(object).to_numpy()
    genus = df["genus"].astype(object).to_numpy()
    seen = np.isin(s, ["train", "val", "test"])
    unseen = np.isin(s, ["key_unseen", "val_unseen", "test_unseen"])
    assert not set(species[unseen]) & set(species[seen])
    assert set(genus[unseen]) <= set(genus[seen])
    ph = placeholder_species_mask(df)
    assert not (ph & seen).any()
    assert (ph[unseen]).all(), "unseen species are placeholders"
    assert (pd.isna(species) == (s == "pretrain")).all()


def test_quotas_per_species(df, split):
    lab = df.assign(split=split.to_numpy(), b=df["dna_barcode"].astype(str).str.strip("N"))
    seen = lab[lab["split"].isin(["train", "val", "test"])]
    for species, g in seen.groupby("species", observed=True):
        n = len(g)
        in_test = g[g["split"] == "test"]
        if len(in_test):
            # Records of other species sharing a drawn barcode follow it, so the bound
            # is on the species' own records.
            assert len(in_test) <= quota_upper(n), species
            assert in_test["b"].nunique() <= max(1, quota_barcode_upper(g["b"].nunique())), species
        if n == 1:
            assert g["split"].iloc[0] == "train", species
    # Single-record species stay in train.
    counts = seen.groupby("species", observed=True).size()
    singles = counts[counts == 1].index
    assert (seen[seen["species"].isin(singles)]["split"] == "train").all()
    # val is about 5% of seen records, test about 10%.
    frac = seen["split"].value_counts(normalize=True)
    assert 0.01 < frac.get("val", 0) < 0.12
    assert 0.03 < frac.get("test", 0) < 0.30


def test_same_seed_same_split_other_seed_differs(df, split):
    again = partition(df, seed=0)
    pd.testing.assert_series_equal(split, again)
    other = partition(df, seed=1)
    assert (other != split).any()
    check_partition(df, other)


def test_row_order_does_not_break_invariants(df):
    shuffled = df.sample(frac=1.0, random_state=4).reset_index(drop=True)
    check_partition(shuffled, partition(shuffled, seed=0))


def _table(rows):
    return pd.DataFrame(rows, columns=["species", "genus", "dna_barcode"]).astype(
        {"species": "category", "genus": "category"}
    )


def test_hand_made_table_edge_cases():
    rows = []
    # A seen species with 40 records over 10 barcodes -> some go to test.
    for i in range(40):
        rows.append(("Aus bus", "Aus", f"NNACGT{i % 10:03d}ACGTNN"))
    rows.append(("Aus solus", "Aus", "GGGGGG"))  # seen once -> train
    # Placeholder species of 12 records in a seen genus -> unseen splits.
    for i in range(12):
        rows.append(("Aus sp. 1", "Aus", f"TTTT{i % 4}"))
    # A placeholder sharing a seen barcode -> other_heldout, not unseen.
    rows += [("Aus sp. 2", "Aus", "ACGT000ACGT")] * 9
    # A placeholder in an unseen genus -> other_heldout.
    rows += [("Cus sp. 1", "Cus", "CCCC")] * 9
    rows += [(None, None, "AAAA")] * 3
    df = _table(rows)
    split = partition(df, seed=2)
    check_partition(df, split)
    s = split.to_numpy()
    sp = df["species"].astype(object).to_numpy()
    assert set(s[sp == "Aus bus"]) >= {"train", "test"}
    assert s[sp == "Aus solus"].tolist() == ["train"]
    assert set(s[sp == "Aus sp. 1"]) <= {"key_unseen", "val_unseen", "test_unseen"}
    assert set(s[sp == "Aus sp. 2"]) == {"other_heldout"}
    assert set(s[sp == "Cus sp. 1"]) == {"other_heldout"}
    assert set(s[pd.isna(sp)]) == {"pretrain"}
    # Barcodes that differ only by flanking N are one barcode.
    b = df["dna_barcode"].str.strip("N")
    for code in b[sp == "Aus bus"].unique():
        assert len(set(s[(b == code).to_numpy() & (sp == "Aus bus")])) == 1


def test_missing_column_and_empty_table():
    with pytest.raises(ValueError, match="dna_barcode"):
        partition(pd.DataFrame({"species": [], "genus": []}))
    empty = _table([(None, None, "ACGT")])
    assert partition(empty).tolist() == ["pretrain"]


def test_summary_counts(df, split):
    summary = split_summary(df, split).set_index("split")
    assert summary["samples"].sum() == len(df)
    assert summary.loc["pretrain", "species"] == 0
    assert summary.loc["train", "samples"] == (split == "train").sum()
