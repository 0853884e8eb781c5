"""The benchmark on real BOLD barcodes, scaled down.

BOLD public data (boldsystems.org, CC BY-SA 4.0) carry real species names, so the
BIOSCAN-5M partition rules, which take "unseen" species from placeholder names, would
find none. :func:`load_bold` therefore holds out a seeded random share of the species
that could be unseen under those rules (at least 8 records, in a genus that keeps at
least one seen species), marks them as placeholders only while
:func:`bioscan_kmer.data.splits.partition` runs, and keeps their real names as labels.
Everything else (test/val quotas, whole barcodes, seen/unseen exclusivity) is the data
layer's partition.

The package ships no BOLD data: pass the path of a BOLD TSV (such as the project's
``bold_coi5p_insecta.tsv``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["load_bold", "evaluate_bold"]


def load_bold(path, *, seed: int = 0, unseen_fraction: float = 0.3, min_unseen_records: int = 8) -> pd.DataFrame:
    """Read a BOLD TSV, clean its barcodes and give it the eight BIOSCAN-5M splits.

    Parameters
    ----------
    path : str or path-like
        BOLD data-package TSV (``processid``, ranks, ``bin_uri``, a sequence column).
    seed : int
        Seeds the choice of unseen species and the partition's draws.
    unseen_fraction : float
        Share of the eligible species held out as unseen.
    min_unseen_records : int
        Records an unseen species needs (8 in the BIOSCAN-5M rules).

    Returns
    -------
    pandas.DataFrame
        BIOSCAN column names (``dna_barcode`` cleaned: gaps removed, IUPAC -> N, ends
        trimmed), a ``split`` column, and ``held_out_as_unseen`` (bool). Rows whose
        barcode is empty after cleaning are removed; ``df.attrs["notes"]`` says how many.

    Raises
    ------
    ValueError
        On a file without species labels, or a barcode with a character the cleaner
        rejects (the message names the row).
    """
    from .. import clean
    from ..data.reading import read_bold_tsv
    from ..data.splits import is_placeholder_name, partition

    if not 0.0 <= unseen_fraction <= 1.0:
        raise ValueError(f"unseen_fraction must be in [0, 1], got {unseen_fraction}")
    df = read_bold_tsv(path)
    if "species" not in df.columns or "genus" not in df.columns:
        raise ValueError(f"{path}: the BOLD file needs genus and species columns")
    notes = []
    df["dna_barcode"] = clean(df["dna_barcode"].astype(object).where(df["dna_barcode"].notna(), "").astype(str).tolist())
    empty = df["dna_barcode"].str.len() == 0
    if empty.any():
        notes.append(f"{int(empty.sum())} records with an empty barcode after cleaning removed")
        df = df[~empty].reset_index(drop=True)

    species = df["species"].astype(object).where(df["species"].notna(), None)
    genus = df["genus"].astype(object).where(df["genus"].notna(), None)
    labelled = species.notna() & (species.astype(str) != "") & genus.notna()
    if not labelled.any():
        raise ValueError(f"{path}: no record has a species label")
    counts = species[labelled].value_counts()
    genus_of = df[labelled].groupby(species[labelled].astype(str), observed=True)["genus"].first().astype(str)
    # Real names that already look like placeholders (e.g. "Megaselia sp. 3") stay as they are.
    real = [s for s in counts.index if not is_placeholder_name(s, genus_of[s])]
    seen_per_genus = pd.Series([genus_of[s] for s in real]).value_counts().to_dict()
    eligible = sorted(s for s in real if counts[s] >= min_unseen_records)
    rng = np.random.default_rng(seed)
    target = int(round(unseen_fraction * len(eligible)))
    held = []
    for s in rng.permutation(np.array(eligible, dtype=object)):
        if len(held) >= target:
            break
        g = genus_of[s]
        if seen_per_genus.get(g, 0) >= 2:  # its genus must keep a seen species
            held.append(s)
            seen_per_genus[g] -= 1
    held_set = set(held)
    is_held = species.isin(held_set).to_numpy()

    tmp = df[["species", "genus", "dna_barcode"]].copy()
    tmp["species"] = species.where(~is_held, species.astype(str) + " sp. unseen")
    tmp["genus"] = genus
    df["split"] = partition(tmp, seed=seed).to_numpy()
    df["held_out_as_unseen"] = is_held
    notes.append(f"{len(held)} of {len(eligible)} eligible species held out as unseen (seed {seed})")
    df.attrs["notes"] = notes
    return df


def _bold_settings():
    """No subsampling (a few thousand records); fine-tuning long enough for small data."""
    from .pipeline import EvalSettings

    return EvalSettings(finetune_epochs=10, finetune_lr=3e-4, cnn_epochs=20, cluster_max_points=None)


def evaluate_bold(path, checkpoint=None, out_dir="bold_eval", *, settings=None, seed: int = 0,
                  baselines=("cnn", "kmer", "edit"), progress: bool = False, **load_kwargs) -> dict:
    """Run the benchmark table on real BOLD barcodes.

    Parameters
    ----------
    path : str or path-like
        BOLD TSV.
    checkpoint : path-like, optional
        Encoder to evaluate (our checkpoint or a HF state dict, see
        :func:`bioscan_kmer.eval.load_encoder`); without it only the baselines run.
    out_dir : path-like
        Where ``report.md``/``report.csv``/``details.csv``/``umap_order.png`` go.
    settings : EvalSettings, optional
    seed : int
    baselines : iterable of {"cnn", "kmer", "edit"}
    progress : bool
    **load_kwargs
        Passed to :func:`load_bold`.

    Returns
    -------
    dict
        As :func:`bioscan_kmer.eval.demo.evaluate_checkpoint`.
    """
    from .demo import evaluate_checkpoint

    df = load_bold(path, seed=seed, **load_kwargs)
    settings = (settings or _bold_settings()).replace(seed=seed, progress=progress)
    out = evaluate_checkpoint(df, checkpoint, out_dir, settings=settings, baselines=baselines,
                              title=f"Benchmark on real BOLD barcodes ({Path(path).name}, {len(df):,} records)",
                              extra_notes=["data: BOLD Systems (boldsystems.org), CC BY-SA 4.0",
                                           *df.attrs.get("notes", [])])
    return out
