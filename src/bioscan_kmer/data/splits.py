"""The eight BIOSCAN-5M partitions (SPEC section 6).

The rules follow the official partitioning script (bioscan-ml/BIOSCAN-5M,
``partition.py``): placeholder species are detected from the species and genus
names; barcodes are grouped by ``dna_barcode.strip("N")`` and always drawn
whole; per-species quotas for test, val, test_unseen and val_unseen come from
the same greedy draw over barcode sizes, with the same target, lower and upper
functions.

Where the official script lets an invariant slip, we keep the invariant:

- The draw works per stripped barcode, so every record of the seen (or unseen)
  pool that shares a drawn barcode follows it; the official script also pulled
  unlabelled and placeholder records into test, we leave those where they are.
- Records of unseen candidates whose stripped barcode also occurs among seen
  species go to ``other_heldout``, so that no barcode is both in a seen and an
  unseen split.
- Barcodes of species seen once are kept in train (never drawn for a test set).
- The sample upper bound of a draw is never exceeded (the official "take the
  smallest barcode" fallback could exceed it).

Draws use NumPy generators seeded from ``(seed, stage)``, so the result depends
only on the table and the seed, not on the official script's pandas shuffles.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bioscan_kmer.data._arrow import STR_DTYPE, arrow_strings, label_codes, take
from bioscan_kmer.data.schema import EXCLUSIVE_SPLITS, SEEN_SPLITS, SPLITS, UNSEEN_SPLITS
from bioscan_kmer.errors import DataError, UsageError

__all__ = [
    "is_placeholder_name",
    "placeholder_species_mask",
    "partition",
    "check_partition",
    "split_summary",
    "quota_target",
    "quota_upper",
    "quota_barcode_upper",
    "SPLITS",
]

_MALAISE = r"[mM]+[aA]+[lLiI]+[aA]+[iIlL]+[sSzZ]+[eE]+"
# Markers of an open nomenclature name, checked on both species and genus.
_MARKERS = [
    r"\baff\b",
    r"\bn[\b\.\s]+sp\b",
    r"\bsp[\b\s]+ex\b",
    r"\bgen\b",
    r"\bsp\b\.?[\s\w\d]+",
    r"affinis\s+[0-9A-Z]+",
]
_SPECIES_RE = re.compile(
    "|".join(
        [_MALAISE, r"^[a-z]", r"[0-9]", r"[A-Z][A-Z]", r"[_?]", r".[A-Z]", r"\.", *_MARKERS]
    )
)
_GENUS_RE = re.compile("|".join([_MALAISE, *_MARKERS]))
_GENUS_LOWER_OK = ("unclassified", "unassigned")


def _genus_is_placeholder(genus: str) -> bool:
    if _GENUS_RE.search(genus):
        return True
    return genus[:1].islower() and not genus.startswith(_GENUS_LOWER_OK)


def is_placeholder_name(species, genus=None) -> bool:
    """Whether a species label (with its genus) is a placeholder, not a scientific name.

    Parameters
    ----------
    species : str or None
        Species label. Missing labels are not placeholders.
    genus : str or None, optional
        Genus label; a placeholder genus makes the species a placeholder.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_placeholder_name("Tapinoma sessile")
    False
    >>> is_placeholder_name("Megaselia sp. 12ABC")
    True
    >>> is_placeholder_name("Aedes vexans", "Malaise123")
    True
    """
    if not isinstance(species, str) or species == "":
        return False
    if _SPECIES_RE.search(species):
        return True
    return isinstance(genus, str) and genus != "" and _genus_is_placeholder(genus)


def _label_flags(codes: np.ndarray, labels, fn: Callable[[str], bool]) -> np.ndarray:
    """Evaluate ``fn`` once per distinct label, broadcast to rows (-> bool array)."""
    flags = np.fromiter((fn(c) for c in labels), dtype=bool, count=len(labels))
    out = np.zeros(len(codes), dtype=bool)
    has = codes >= 0
    out[has] = flags[codes[has]]
    return out


def _placeholder_rows(species, genus) -> np.ndarray:
    """Placeholder species rows from ``label_codes`` of species and genus."""
    species_codes, species_names = species
    genus_codes, genus_names = genus
    species_flag = _label_flags(species_codes, species_names, lambda s: _SPECIES_RE.search(s) is not None)
    genus_flag = _label_flags(genus_codes, genus_names, _genus_is_placeholder)
    return (species_codes >= 0) & (species_flag | genus_flag)


def placeholder_species_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows whose species label is a placeholder name (missing species -> False)."""
    return _placeholder_rows(label_codes(df["species"]), label_codes(df["genus"]))


def _labelled(col: pd.Series) -> np.ndarray:
    """Rows with a non-empty label."""
    return label_codes(col)[0] >= 0


def quota_target(n: int) -> int:
    """Records a species of ``n`` records should give to a test split."""
    if n < 8:
        return 0
    return min(int(math.floor(4 + (n - 8) / 4)), 25)


def quota_upper(n: int) -> int:
    """Most records a species of ``n`` records may give to a test split."""
    if n < 8:
        return 0
    return int(math.floor(4 + (n - 8) / 3))


def quota_barcode_upper(nb: int) -> int:
    """Most barcodes a species with ``nb`` barcodes may give to a test split."""
    if nb < 2:
        return 0
    return max(1, int(math.floor(1 + (nb - 2) / 3)))


def _draw_species(sizes, target, lower, upper, barcode_cap, n, rng, soft_upper, soft_upper2):
    """Greedy draw of whole barcodes for one species (port of the official loop).

    ``sizes`` are the species' records per barcode, sorted ascending. Returns the
    positions (into ``sizes``) of the drawn barcodes, or [] when the draw falls
    short of ``lower``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    pos = np.arange(len(sizes))
    cs = np.cumsum(sizes).astype(np.float64)
    n_alloc = 0
    chosen: list[int] = []
    while len(sizes):
        is_option = (sizes <= target - n_alloc) & (cs >= target * soft_upper - n_alloc)
        if not is_option.any():
            if n_alloc == 0 and not (sizes <= target).any():
                if sizes[0] >= lower and sizes[0] < n / 2 and sizes[0] <= upper:
                    idx = 0
                else:
                    break
            elif sizes[0] > target * soft_upper2 - n_alloc:
                if sizes[0] > (target - n_alloc) / 2 or n_alloc + sizes[0] > upper:
                    break
                idx = 0
            elif not (cs >= target * soft_upper - n_alloc).any():
                break
            else:
                cut = int(np.flatnonzero(cs >= target * soft_upper - n_alloc)[0])
                if n_alloc + sizes[cut] > upper:
                    break
                idx = cut
                if cut > 0 and abs(n_alloc + sizes[cut - 1] - target) < abs(
                    target - (n_alloc + sizes[cut])
                ):
                    idx = cut - 1
        elif len(chosen) + 1 >= barcode_cap:
            # Last barcode allowed: take the largest that still fits the target.
            cut = int(np.flatnonzero(sizes <= target - n_alloc)[-1])
            idx = cut
            if (
                cut < len(sizes) - 1
                and abs(n_alloc + sizes[cut + 1] - target) < abs(target - (n_alloc + sizes[cut]))
                and n_alloc + sizes[cut + 1] <= upper
            ):
                idx = cut + 1
        else:
            # The official script draws among the larger half of the options.
            opts = np.flatnonzero(is_option)
            lo, hi = int(len(opts) * 0.5), len(opts)
            if hi <= lo:
                lo, hi = max(lo - 1, 0), min(hi + 1, len(opts))
            idx = int(opts[rng.integers(lo, hi)])
        chosen.append(int(pos[idx]))
        n_alloc += int(sizes[idx])
        if n_alloc >= target:
            break
        cs[idx:] -= sizes[idx]
        keep = np.arange(len(sizes)) != idx
        sizes, pos, cs = sizes[keep], pos[keep], cs[keep]
        if len(chosen) >= barcode_cap:
            break
    return chosen if n_alloc >= lower and n_alloc > 0 else []


class _Pool:
    """Species x barcode tallies of the records still open for drawing."""

    def __init__(self, species_codes, barcode_codes):
        self.species = species_codes
        self.barcode = barcode_codes

    def groups(self, open_rows, rng):
        """Per species: (species code, barcode codes sorted by size, sizes, n)."""
        sp = self.species[open_rows]
        bc = self.barcode[open_rows]
        if len(sp) == 0:
            return []
        n_bc = int(self.barcode.max()) + 1
        key = sp.astype(np.int64) * n_bc + bc
        ukey, counts = np.unique(key, return_counts=True)
        usp = ukey // n_bc
        ubc = ukey % n_bc
        # Random tie order among equal sizes, then a stable sort by size, per species.
        tie = rng.permutation(len(ukey))
        order = np.lexsort((tie, counts, usp))
        usp, ubc, counts = usp[order], ubc[order], counts[order]
        bounds = np.flatnonzero(np.diff(usp)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(usp)]])
        out = []
        for s, e in zip(starts, ends):
            out.append((int(usp[s]), ubc[s:e], counts[s:e], int(counts[s:e].sum())))
        # Species in a seeded random order rather than by name.
        perm = rng.permutation(len(out))
        return [out[i] for i in perm]


def partition(df: pd.DataFrame, seed: int = 0, *, progress: bool = False) -> pd.Series:
    """Assign every row to one of the eight BIOSCAN-5M partitions.

    Parameters
    ----------
    df : pandas.DataFrame
        Needs ``species``, ``genus`` and ``dna_barcode``. Missing or empty
        labels mean unlabelled.
    seed : int, default 0
        Seed of every random draw; the same table and seed give the same split.
    progress : bool, default False
        Show a progress bar over the per-species draws.

    Returns
    -------
    pandas.Series
        Split name per row (``str``), index aligned with ``df``.

    Raises
    ------
    bioscan_kmer.errors.UsageError
        ``seed`` is not a non-negative integer.
    bioscan_kmer.errors.DataError
        A required column is missing, or a barcode is not ASCII (names the row).
    """
    from bioscan_kmer import unique

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        # NumPy's own message ("expected non-negative integer") does not say which value.
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")
    missing = [c for c in ("species", "genus", "dna_barcode") if c not in df.columns]
    if missing:
        raise DataError(f"partition needs column(s) {', '.join(map(repr, missing))}")
    n = len(df)
    # Split names are held as codes into SPLITS; one Arrow string column at the end.
    split = np.full(n, -1, dtype=np.int8)
    species_all, species_names = label_codes(df["species"])
    genus_all, genus_names = label_codes(df["genus"])
    has_species = species_all >= 0
    placeholder = _placeholder_rows((species_all, species_names), (genus_all, genus_names))
    seen_rows = has_species & ~placeholder

    split[~has_species] = SPLITS.index("pretrain")
    labelled_idx = np.flatnonzero(has_species)
    if len(labelled_idx) == 0:
        return _split_series(split, df.index)

    # Codes restricted to the labelled rows: dense and in sorted-label order, as
    # pandas.factorize(..., sort=True) of the labelled species would give.
    species_codes = species_all[labelled_idx]
    genus_codes = genus_all[labelled_idx]
    del species_all, genus_all
    # Barcodes grouped by strip("N"), coded in first-occurrence order (the core's unique
    # on Arrow strings; missing barcodes count as "").
    barcodes = take(arrow_strings(df["dna_barcode"]), labelled_idx)
    if barcodes.null_count:
        barcodes = pc.fill_null(barcodes, "")
    try:
        _, barcode_codes, _ = unique(pc.utf8_trim(barcodes, characters="N"), return_values=False)
    except ValueError as exc:
        # The core counts rows among the labelled ones only: name the table's row instead.
        bad = np.flatnonzero(~pc.fill_null(pc.string_is_ascii(barcodes), True).to_numpy(zero_copy_only=False))
        where = f"row {int(labelled_idx[bad[0]])}: " if len(bad) else ""
        raise DataError(f"dna_barcode: {where}{str(exc).split(': ', 1)[-1]}") from exc
    del barcodes
    barcode_codes = np.asarray(barcode_codes, dtype=np.int64)
    seen = seen_rows[labelled_idx]

    # Unseen candidates: placeholder species of >= 8 records in a seen genus.
    seen_genus = np.zeros(len(genus_names), dtype=bool)
    seen_genus[genus_codes[seen & (genus_codes >= 0)]] = True
    known_genus = (genus_codes >= 0) & seen_genus[np.maximum(genus_codes, 0)]
    viable = ~seen & known_genus
    n_viable = np.bincount(species_codes[viable], minlength=len(species_names))
    unseen = ~seen & (n_viable[species_codes] >= 8)
    # A species name may occur under several genera; the rows outside a seen genus
    # are dropped from the unseen pool so that every unseen genus is a seen one.
    unseen &= known_genus
    # A barcode shared with a seen species cannot be novel: send those to heldout.
    seen_barcodes = np.zeros(int(barcode_codes.max()) + 1, dtype=bool)
    seen_barcodes[barcode_codes[seen]] = True
    unseen &= ~seen_barcodes[barcode_codes]

    n_bc = int(barcode_codes.max()) + 1
    barcode_split = np.full(n_bc, "", dtype=object)
    pool = _Pool(species_codes, barcode_codes)

    # Species seen once go to train, and their barcode with them.
    seen_counts = np.bincount(species_codes[seen], minlength=len(species_names))
    single = seen & (seen_counts[species_codes] == 1)
    barcode_split[barcode_codes[single]] = "train"

    def open_rows(mask):
        return np.flatnonzero(mask & (barcode_split[barcode_codes] == ""))

    from bioscan_kmer._progress import progress_bar

    def run_stage(mask, name, stage, target_fn, lower_fn, upper_fn, cap_fn, soft2):
        rng = np.random.default_rng([seed, stage])
        groups = pool.groups(open_rows(mask), rng)
        for _, bcs, sizes, n_sp in progress_bar(groups, desc=name, disable=not progress, leave=False):
            target = target_fn(n_sp)
            if target == 0 or len(bcs) < 2:
                continue
            # A barcode drawn by another species in this stage is already taken.
            free = barcode_split[bcs] == ""
            if not free.all():
                bcs, sizes = bcs[free], sizes[free]
                if len(bcs) < 1:
                    continue
            picked = _draw_species(
                sizes, target, lower_fn(n_sp), upper_fn(n_sp), cap_fn(len(bcs)), n_sp, rng,
                1.1, soft2,
            )
            barcode_split[bcs[picked]] = name
        return groups

    run_stage(seen, "test", 1, quota_target, lambda n_: 3, quota_upper, quota_barcode_upper, 1.0)
    val_groups = run_stage(
        seen, "val", 3,
        lambda n_: 0 if n_ < 20 else 0.05 * n_, lambda n_: 0, lambda n_: 0.10 * n_,
        lambda nb: max(1, math.ceil(0.05 * nb)), 1.1,
    )
    # Long tail: one single-record barcode each from species of 7-19 open records,
    # until val holds 5% of the records of small species.
    rng = np.random.default_rng([seed, 4])
    n_single = int(single.sum())
    small = [g for g in val_groups if g[3] < 20]
    small_target = round(0.05 * (n_single + sum(g[3] for g in small)))
    test_per_species = np.bincount(
        species_codes[seen & (barcode_split[barcode_codes] == "test")], minlength=len(species_names)
    )
    allocated = 0
    for sp, bcs, sizes, n_sp in small:
        if allocated >= small_target:
            break
        if n_sp < 7:
            continue
        if test_per_species[sp] > quota_target(n_sp + test_per_species[sp]):
            continue
        ones = bcs[(sizes == 1) & (barcode_split[bcs] == "")]
        if len(ones) == 0:
            continue
        barcode_split[ones[rng.integers(len(ones))]] = "val"
        allocated += 1

    run_stage(unseen, "test_unseen", 5, quota_target, lambda n_: 3, quota_upper,
              quota_barcode_upper, 1.0)
    run_stage(
        unseen, "val_unseen", 7,
        lambda n_: 0.20 * n_, lambda n_: 0, lambda n_: 0.40 * n_,
        lambda nb: max(1, math.ceil(0.20 * nb)), 1.1,
    )

    labelled_split = barcode_split[barcode_codes]
    labelled_split = np.where(seen & (labelled_split == ""), "train", labelled_split)
    labelled_split = np.where(unseen & (labelled_split == ""), "key_unseen", labelled_split)
    labelled_split = np.where(~seen & ~unseen, "other_heldout", labelled_split)
    code_of = {name: i for i, name in enumerate(SPLITS)}
    split[labelled_idx] = np.fromiter((code_of[s] for s in labelled_split), dtype=np.int8,
                                      count=len(labelled_split))
    return _split_series(split, df.index)


def _split_series(codes: np.ndarray, index) -> pd.Series:
    """Split codes (into SPLITS) as a ``str`` Series named "split"."""
    names = pa.array(list(SPLITS), type=pa.large_string())
    arr = pa.DictionaryArray.from_arrays(pa.array(codes), names).cast(pa.large_string())
    return pd.Series(pd.array(arr, dtype=STR_DTYPE), index=index, name="split")


def check_partition(df: pd.DataFrame, split) -> None:
    """Assert the invariants of SPEC section 6; raise ``AssertionError`` naming the first broken one.

    Checked: every row has exactly one known split; no stripped barcode in two
    of the six labelled splits; placeholder and unseen species never in
    train/val/test; unseen genera occur among seen species; unlabelled rows only
    in pretrain.
    """
    split = pd.Series(np.asarray(split, dtype=object), index=df.index)
    unknown = set(split.unique()) - set(SPLITS)
    assert not unknown, f"unknown split names {sorted(map(str, unknown))}"
    has_species = _labelled(df["species"])
    assert (split[~has_species] == "pretrain").all(), "an unlabelled row is outside pretrain"
    assert (split[has_species] != "pretrain").all(), "a species-labelled row is in pretrain"
    excl = split.isin(EXCLUSIVE_SPLITS).to_numpy()
    stripped = df["dna_barcode"].astype(str).str.strip("N").to_numpy()[excl]
    per_barcode = pd.DataFrame({"b": stripped, "s": split.to_numpy()[excl]}).groupby("b")["s"].nunique()
    assert (per_barcode <= 1).all(), (
        f"barcode in several labelled splits: {per_barcode[per_barcode > 1].index[0][:40]}..."
    )
    placeholder = placeholder_species_mask(df)
    in_seen = split.isin(SEEN_SPLITS).to_numpy()
    assert not (placeholder & in_seen).any(), "a placeholder species is in train/val/test"
    in_unseen = split.isin(UNSEEN_SPLITS).to_numpy()
    species = df["species"].astype(object).to_numpy()
    seen_species = set(species[in_seen])
    unseen_species = set(species[in_unseen])
    assert not (seen_species & unseen_species), "a species is both seen and unseen"
    genus = df["genus"].astype(object).to_numpy()
    seen_genera = set(genus[in_seen])
    assert set(genus[in_unseen]) <= seen_genera, "an unseen genus is not among the seen genera"


def split_summary(df: pd.DataFrame, split) -> pd.DataFrame:
    """Samples, distinct barcodes and species per split, in the paper's order."""
    split = np.asarray(split, dtype=object)
    frame = pd.DataFrame(
        {"split": split, "dna_barcode": df["dna_barcode"].to_numpy(), "species": df["species"].to_numpy()}
    )
    rows = []
    for name in SPLITS:
        part = frame[frame["split"] == name]
        rows.append(
            {
                "split": name,
                "samples": len(part),
                "barcodes": int(part["dna_barcode"].nunique()),
                "species": int(part["species"].nunique()),
            }
        )
    return pd.DataFrame(rows)
