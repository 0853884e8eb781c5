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

__all__ = ["load_bold", "hold_out_unseen", "evaluate_bold"]


def load_bold(path, *, seed: int = 0, unseen_fraction: float = 0.3, min_unseen_records: int = 8) -> pd.DataFrame:
    """Read a BOLD TSV (gzip-compressed or not), clean its barcodes and give it the eight
    BIOSCAN-5M splits: :func:`hold_out_unseen` of the file's table.

    Parameters
    ----------
    path : str or path-like
        BOLD data-package TSV (``processid``, ranks, ``bin_uri``, a sequence column).
    seed, unseen_fraction, min_unseen_records
        See :func:`hold_out_unseen`.

    Raises
    ------
    DataFileError, DataError, UsageError (ValueErrors)
        An unreadable file, one without species labels, a barcode the cleaner rejects
        (the message names the row), a bad option.
    """
    from ..data.reading import read_bold_tsv

    return hold_out_unseen(read_bold_tsv(path), seed=seed, unseen_fraction=unseen_fraction,
                           min_unseen_records=min_unseen_records, source=str(path))


def hold_out_unseen(df: pd.DataFrame, *, seed: int = 0, unseen_fraction: float = 0.3,
                    min_unseen_records: int = 8, source: str = "the table") -> pd.DataFrame:
    """Clean a table of really named species and give it the eight BIOSCAN-5M splits, a
    seeded share of its species held out as unseen.

    Rules (the module's docstring says why): a species can be held out when its name is
    not already a placeholder, it has at least ``min_unseen_records`` records, and its
    genus keeps at least one seen species; ``round(unseen_fraction x eligible)`` of those
    are drawn in a seeded random order, skipping any whose genus would be left without a
    seen species. They are renamed as placeholders while
    :func:`bioscan_kmer.data.splits.partition` runs (so that they go to key/val/test_unseen)
    and keep their real names as labels.

    Parameters
    ----------
    df : pandas.DataFrame
        ``dna_barcode`` (raw), ``genus`` and ``species``; other columns are kept.
    seed : int
        Seeds the choice of unseen species and the partition's draws.
    unseen_fraction : float
        Share of the eligible species held out as unseen.
    min_unseen_records : int
        Records an unseen species needs (8 in the BIOSCAN-5M rules).
    source : str
        Names the table in messages.

    Returns
    -------
    pandas.DataFrame
        ``dna_barcode`` cleaned (gaps removed, IUPAC -> N, ends trimmed), a ``split``
        column, and ``held_out_as_unseen`` (bool). Rows whose barcode is missing or empty
        after cleaning are removed; ``df.attrs["notes"]`` says how many, and which species
        were held out.

    Raises
    ------
    DataError, UsageError (ValueErrors)
        No genus/species columns or no species label, a barcode with a character the
        cleaner rejects (the message names the row), an option out of range.
    """
    from .. import clean
    from ..data.splits import is_placeholder_name, partition
    from ..errors import DataError, UsageError

    if not 0.0 <= unseen_fraction <= 1.0:
        raise UsageError(f"unseen_fraction must be in [0, 1], got {unseen_fraction}")
    if min_unseen_records < 1:
        raise UsageError(f"min_unseen_records must be at least 1, got {min_unseen_records}")
    if "species" not in df.columns or "genus" not in df.columns or "dna_barcode" not in df.columns:
        raise DataError(f"{source}: needs dna_barcode, genus and species columns")
    df = df.reset_index(drop=True)
    notes = []
    raw = df["dna_barcode"].astype(object).where(df["dna_barcode"].notna(), "").astype(str).tolist()
    try:
        df["dna_barcode"] = clean(raw)
    except ValueError as exc:  # the core names the row and the character
        raise DataError(f"{source}: {exc}") from None
    empty = df["dna_barcode"].str.len() == 0
    if empty.any():
        notes.append(f"{int(empty.sum())} records with a missing barcode or one empty after cleaning removed "
                     f"(first: row {int(np.flatnonzero(empty.to_numpy())[0])})")
        df = df[~empty].reset_index(drop=True)

    species = df["species"].astype(object).where(df["species"].notna(), None)
    genus = df["genus"].astype(object).where(df["genus"].notna(), None)
    labelled = species.notna() & (species.astype(str) != "") & genus.notna()
    if not labelled.any():
        raise DataError(f"{source}: no record has a species label")
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
