"""A small barcode table with a planted taxonomy, for the evaluation tests.

Barcodes are random sequences mutated down a tree (order -> family -> genus -> species
-> specimen), so that closer relatives share more of their sequence, and the table
already carries the eight-split ``split`` column (seen species in train/val/test, a few
unseen species of seen genera in key_unseen/test_unseen). It exercises the evaluation
without the data layer; the data layer's ``synthetic_bioscan`` + ``partition`` is the
realistic generator. Only the tests use it, so it lives here rather than in the package.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["toy_table"]

_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def _mutate(seq: np.ndarray, rate: float, rng) -> np.ndarray:
    out = seq.copy()
    hit = rng.random(seq.size) < rate
    out[hit] = _BASES[rng.integers(0, 4, hit.sum())]
    return out


def toy_table(
    n_orders: int = 3,
    families_per_order: int = 2,
    genera_per_family: int = 2,
    species_per_genus: int = 3,
    records_per_species: int = 12,
    *,
    length: int = 240,
    unseen_per_genus: int = 1,
    rates=(0.25, 0.15, 0.08, 0.04, 0.005),
    seed: int = 0,
) -> pd.DataFrame:
    """A table of barcodes with taxonomy and splits.

    Parameters
    ----------
    n_orders, families_per_order, genera_per_family, species_per_genus : int
        Tree shape; the last ``unseen_per_genus`` species of each genus are "unseen".
    records_per_species : int
        Specimens per species (at least 4).
    length : int
        Barcode length.
    rates : tuple of 5 float
        Substitution rate at each level (order, family, genus, species, specimen).
    seed : int

    Returns
    -------
    pandas.DataFrame
        Columns ``processid``, ``order``, ``family``, ``genus``, ``species``,
        ``dna_barcode``, ``split``. Seen species put 50% of their records in train,
        25% in val... precisely: records 0-1 test, 2 val, the rest train; unseen species
        put half in key_unseen and half in test_unseen.
    """
    if records_per_species < 4:
        raise ValueError("records_per_species must be at least 4")
    if not 0 <= unseen_per_genus < species_per_genus:
        raise ValueError("unseen_per_genus must leave at least one seen species per genus")
    rng = np.random.default_rng(seed)
    root = _BASES[rng.integers(0, 4, length)]
    rows = []
    for o in range(n_orders):
        o_seq = _mutate(root, rates[0], rng)
        for f in range(families_per_order):
            f_seq = _mutate(o_seq, rates[1], rng)
            for g in range(genera_per_family):
                g_seq = _mutate(f_seq, rates[2], rng)
                genus = f"Genus{o}{f}{g}"
                for s in range(species_per_genus):
                    s_seq = _mutate(g_seq, rates[3], rng)
                    unseen = s >= species_per_genus - unseen_per_genus
                    for r in range(records_per_species):
                        if unseen:
                            split = "key_unseen" if r % 2 == 0 else "test_unseen"
                        else:
                            split = "test" if r < 2 else ("val" if r == 2 else "train")
                        rows.append({
                            "processid": f"TOY{len(rows):06d}",
                            "order": f"Order{o}",
                            "family": f"Family{o}{f}",
                            "genus": genus,
                            "species": f"{genus} species{s}",
                            "dna_barcode": _mutate(s_seq, rates[4], rng).tobytes().decode(),
                            "split": split,
                        })
    return pd.DataFrame(rows)
