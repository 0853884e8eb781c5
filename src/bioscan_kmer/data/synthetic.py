"""Synthetic BIOSCAN-5M-like metadata for tests, demos and benchmarks.

The generator builds a taxonomy tree (real insect names from the packaged
``species_taxonomy.json``, extended with generated Latin-looking names), gives
its leaves (biological species, one BIN cluster each) heavy-tailed sizes,
evolves COI-like barcodes down the tree, draws records from the leaves and
decides per record how deep its identification goes. Everything is vectorized
NumPy and pyarrow; no Python loop runs per record. See ``docs/data.md`` for how
the result differs from the real data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa

from bioscan_kmer.data._arrow import STR_DTYPE
from bioscan_kmer.data.schema import COLUMNS, RANKS

__all__ = ["synthetic_bioscan", "BARCODE_LENGTH", "load_species_taxonomy"]

BARCODE_LENGTH = 658
_REAL_SIZE = 5_150_850
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_IUPAC = np.frombuffer(b"RYSWKMBDHV", dtype=np.uint8)

# (class, order, share of records). Shares are BIOSCAN-5M-like: Diptera dominates.
_ORDERS = [
    ("Insecta", "Diptera", 0.714), ("Insecta", "Hymenoptera", 0.118),
    ("Insecta", "Hemiptera", 0.045), ("Insecta", "Coleoptera", 0.036),
    ("Insecta", "Psocodea", 0.025), ("Insecta", "Lepidoptera", 0.024),
    ("Insecta", "Thysanoptera", 0.009), ("Insecta", "Trichoptera", 0.003),
    ("Insecta", "Orthoptera", 0.0015), ("Insecta", "Blattodea", 0.0012),
    ("Insecta", "Neuroptera", 0.0008), ("Insecta", "Ephemeroptera", 0.0006),
    ("Insecta", "Plecoptera", 0.0004), ("Insecta", "Odonata", 0.0002),
    ("Insecta", "Mantodea", 0.0002), ("Insecta", "Dermaptera", 0.0002),
    ("Insecta", "Archaeognatha", 0.0001), ("Insecta", "Zygentoma", 0.00005),
    ("Insecta", "Strepsiptera", 0.0001), ("Insecta", "Mecoptera", 0.00005),
    ("Insecta", "Megaloptera", 0.00003), ("Insecta", "Raphidioptera", 0.00002),
    ("Insecta", "Embioptera", 0.00002), ("Insecta", "Phasmida", 0.00002),
    ("Insecta", "Siphonaptera", 0.00002), ("Insecta", "Zoraptera", 0.00001),
    ("Collembola", "Entomobryomorpha", 0.008), ("Collembola", "Symphypleona", 0.002),
    ("Collembola", "Poduromorpha", 0.0012), ("Collembola", "Neelipleona", 0.0001),
    ("Arachnida", "Trombidiformes", 0.004), ("Arachnida", "Araneae", 0.003),
    ("Arachnida", "Sarcoptiformes", 0.0015), ("Arachnida", "Mesostigmata", 0.0008),
    ("Arachnida", "Opiliones", 0.0001), ("Arachnida", "Pseudoscorpiones", 0.0001),
    ("Arachnida", "Ixodida", 0.00003), ("Malacostraca", "Isopoda", 0.0003),
    ("Malacostraca", "Amphipoda", 0.0002), ("Malacostraca", "Decapoda", 0.00002),
    ("Diplopoda", "Polydesmida", 0.0001), ("Diplopoda", "Julida", 0.0001),
    ("Diplopoda", "Chordeumatida", 0.00003), ("Chilopoda", "Lithobiomorpha", 0.00005),
    ("Chilopoda", "Geophilomorpha", 0.00003), ("Branchiopoda", "Diplostraca", 0.00005),
    ("Branchiopoda", "Anostraca", 0.00001), ("Ostracoda", "Podocopida", 0.00003),
    ("Copepoda", "Cyclopoida", 0.00002), ("Copepoda", "Harpacticoida", 0.00001),
    ("Symphyla", "Scolopendrellida", 0.00001), ("Pauropoda", "Tetramerocerata", 0.00001),
    ("Protura", "Acerentomata", 0.00001), ("Diplura", "Campodeina", 0.00001),
    ("Insecta", "Grylloblattodea", 0.000005),
]

# (country, share, [(province, lat, lon), ...]): Malaise-trap regions.
_GEOGRAPHY = [
    ("Costa Rica", 0.34, [("Guanacaste", 10.84, -85.61), ("Alajuela", 10.47, -84.65),
                          ("Puntarenas", 8.95, -83.33), ("Limon", 10.00, -83.30)]),
    ("Canada", 0.26, [("Ontario", 43.55, -80.25), ("British Columbia", 49.30, -123.10),
                      ("Quebec", 45.50, -73.60), ("Yukon Territory", 60.72, -135.05)]),
    ("South Africa", 0.08, [("Western Cape", -33.92, 18.42), ("Limpopo", -23.90, 29.45)]),
    ("Pakistan", 0.06, [("Punjab", 31.52, 74.36), ("Khyber Pakhtunkhwa", 34.01, 71.58)]),
    ("Thailand", 0.05, [("Chiang Mai", 18.79, 98.98), ("Nakhon Ratchasima", 14.97, 102.10)]),
    ("United States", 0.05, [("California", 40.10, -122.05), ("Florida", 27.99, -81.76)]),
    ("Kenya", 0.03, [("Kakamega", 0.28, 34.75)]),
    ("Australia", 0.03, [("Queensland", -16.92, 145.77), ("Tasmania", -42.88, 147.33)]),
    ("Germany", 0.03, [("Bavaria", 48.14, 11.58)]),
    ("Argentina", 0.02, [("Misiones", -27.36, -55.90)]),
    ("Madagascar", 0.02, [("Toamasina", -18.15, 49.40)]),
    ("Finland", 0.01, [("Uusimaa", 60.17, 24.94)]),
    ("Papua New Guinea", 0.01, [("Madang", -5.22, 145.79)]),
    ("Saudi Arabia", 0.01, [("Asir", 18.22, 42.50)]),
]

_PROJECTS = ["BIOUG", "CRTOB", "GMCRA", "CNGBA", "GMPAK", "BBCAN", "UPPAA", "TTHAI"]
_SYLLABLES = [
    "ba", "ca", "da", "fa", "ga", "la", "ma", "na", "pa", "ra", "sa", "ta", "va", "xe", "be",
    "ce", "de", "le", "me", "ne", "pe", "re", "se", "te", "bi", "ci", "di", "li", "mi", "ni",
    "pi", "ri", "si", "ti", "bo", "co", "do", "lo", "mo", "no", "po", "ro", "so", "to", "phi",
    "thy", "chro", "ste", "pla", "tri", "gly", "psy", "rhy", "cte", "bra", "dro", "mela",
]
_GENUS_ENDINGS = ["myia", "ella", "us", "ia", "ops", "omyia", "cera", "ptera", "ina", "odes", "ium", "ocera"]
_EPITHET_ENDINGS = ["ensis", "i", "ae", "a", "us", "um", "oides", "ata", "ica", "alis", "iana"]


def load_species_taxonomy() -> dict:
    """The packaged species -> {order, family, genus} map (bioscan-ml/clibd, MIT)."""
    text = resources.files("bioscan_kmer.data").joinpath("species_taxonomy.json").read_text("utf-8")
    return json.loads(text)


def _clean_taxonomy(orders: set) -> list[tuple[str, str, str, str]]:
    """Usable (order, family, genus, species) rows of the packaged taxonomy."""
    rows = []
    for species, ranks in load_species_taxonomy().items():
        order, family, genus = ranks.get("order"), ranks.get("family"), ranks.get("genus")
        parts = species.split(" ")
        # Entries with unresolved ranks or subgenus/"nr." forms would add placeholder
        # names by accident; the generator makes its own placeholders on purpose.
        if order not in orders or not family or not genus or family == "not_classified":
            continue
        if len(parts) != 2 or parts[0] != genus or not parts[1].isalpha() or not parts[1].islower():
            continue
        rows.append((order, family, genus, species))
    return sorted(set(rows))


class _Names:
    """Generates distinct Latin-looking names, avoiding the real ones."""

    def __init__(self, rng, taken):
        import random

        # Per-name draws are scalar; Python's generator is much faster at those.
        self.rng = random.Random(int(rng.integers(0, 2**63)))
        self.taken = set(taken)

    def _word(self, endings, lo=1, hi=3):
        while True:
            k = self.rng.randint(lo, hi)
            stem = "".join(self.rng.choices(_SYLLABLES, k=k))
            word = stem + self.rng.choice(endings)
            if word not in self.taken:
                self.taken.add(word)
                return word

    def genus(self):
        return self._word(_GENUS_ENDINGS).capitalize()

    def family(self):
        return self._word(["idae"], 2, 3).capitalize()

    def epithet(self):
        return self._word(_EPITHET_ENDINGS)


def _placeholder_species(rng, genus: str, k: int) -> str:
    """A species label of the open-nomenclature kinds the split rules look for."""
    style = int(rng.integers(0, 9))
    code = f"{int(rng.integers(1, 999))}{''.join(rng.choice(list('ABCDEFGHJKLMNPRSTUVWXYZ'), size=2))}"
    if style == 0:
        return f"{genus} sp. {code}"
    if style == 1:
        return f"{genus} Malaise{int(rng.integers(1000, 9999))}"
    if style == 2:
        return f"{genus} sp. {k + 1}"
    if style == 3:
        return f"{genus} cf. {genus.lower()[:4]}ensis"
    if style == 4:
        return f"{genus} aff. {genus.lower()[:3]}ata{k}"
    if style == 5:
        return f"{genus} nr. {genus.lower()[:5]}i"
    if style == 6:
        return f"{genus} {genus.lower()[:4]}_{code}"
    if style == 7:
        return f"{genus} BIOUG{int(rng.integers(10000, 99999))}-{code}"
    return f"{genus} n. sp. {code}"


def _fixed_width_strings(mat: np.ndarray) -> pa.Array:
    """Rows of an ASCII byte matrix as a pyarrow string array, without Python strings."""
    n, w = mat.shape
    offsets = (np.arange(n + 1, dtype=np.int64) * w)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(mat).reshape(-1))
    )


def _ragged_strings(mat: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Rows of ``mat`` restricted to ``valid`` (a row-wise prefix-free mask) as strings."""
    lengths = valid.sum(axis=1, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    data = mat[valid]
    return pa.LargeStringArray.from_buffers(len(mat), pa.py_buffer(offsets), pa.py_buffer(data))


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) ASCII matrix."""
    out = np.empty((len(values), width), dtype=np.uint8)
    v = values.astype(np.int64).copy()
    for j in range(width - 1, -1, -1):
        out[:, j] = 48 + (v % 10)
        v //= 10
    return out


def _site_cdf(rng, length):
    """Cumulative substitution weights per site: third codon positions evolve fastest."""
    codon = np.array([0.35, 0.12, 2.5])[np.arange(length) % 3]
    weight = codon * rng.gamma(0.6, 1 / 0.6, size=length)
    cdf = np.cumsum(weight)
    return cdf / cdf[-1]


def _evolve(rng, parents: np.ndarray, parent_of: np.ndarray, rate: float, cdf) -> np.ndarray:
    """Children = parents + Poisson(rate * L) substitutions at rate-weighted sites."""
    child = parents[parent_of].copy()
    n, length = child.shape
    if n == 0:
        return child
    hits = rng.poisson(rate * length, size=n)
    rows = np.repeat(np.arange(n), hits)
    sites = np.minimum(np.searchsorted(cdf, rng.random(len(rows))), length - 1)
    # AT-rich COI: new bases are drawn with insect-like composition (A .3, C .16, G .14, T .4).
    new = np.searchsorted([0.30, 0.46, 0.60], rng.random(len(rows))).astype(np.uint8)
    child[rows, sites] = new
    return child


def _weighted_thresholds(z, weight, shares):
    """Cut points on ``z`` so that the weight above each cut matches cumulative ``shares``."""
    order = np.argsort(z)
    cum = np.cumsum(weight[order])
    cum /= cum[-1]
    cuts = []
    for s in np.cumsum(shares)[:-1]:
        i = min(int(np.searchsorted(cum, s)), len(z) - 1)
        cuts.append(z[order[i]])
    return np.array(cuts)


@dataclass
class _Taxonomy:
    """The tree records are drawn from: orders > families > genera > leaves.

    A leaf is a biological species with one BIN; index arrays map each node to its
    parent (``leaf_family[leaf]``, ``genus_family[genus]``, ...).
    """

    order_names: list
    class_names: list
    class_of_order: np.ndarray
    fam_order: np.ndarray
    family_names: np.ndarray
    genus_family: np.ndarray
    genus_names: np.ndarray
    genus_sub: np.ndarray  # -1: the genus has no subfamily
    sub_names: np.ndarray
    leaf_family: np.ndarray
    leaf_genus: np.ndarray
    leaf_w: np.ndarray  # records' share per leaf (unnormalised)
    real_species_of_genus: dict  # genus index -> real species names left to give out
    names: _Names  # the name generator, which the species names draw from later

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_family)


@dataclass
class _Records:
    """Per record: its leaf and how deep it is identified; per leaf: its species label."""

    leaf: np.ndarray
    depth: np.ndarray  # 0..6 = phylum..species, the deepest labelled rank
    leaf_species: np.ndarray  # leaf -> index into species_names, -1 if unnamed
    species_names: np.ndarray


def synthetic_bioscan(
    n_records: int,
    seed: int = 0,
    *,
    raw_fraction: float = 0.15,
    with_splits: bool = True,
) -> pd.DataFrame:
    """Generate a BIOSCAN-5M-like metadata table.

    Parameters
    ----------
    n_records : int
        Number of rows (1 or more).
    seed : int, default 0
        Seed; the same ``(n_records, seed)`` gives the same table.
    raw_fraction : float, default 0.15
        Fraction of rows whose ``dna_barcode`` is in raw BOLD form: runs of N at
        either end, alignment gaps, IUPAC codes, internal N, lowercase. The
        other rows hold an uppercase A/C/G/T haplotype string.
    with_splits : bool, default True
        Fill ``split`` with :func:`bioscan_kmer.data.splits.partition` (seed
        ``seed``); otherwise the column is empty.

    Returns
    -------
    pandas.DataFrame
        The columns of SPEC section 1 in order, with their official types.

    Raises
    ------
    ValueError
        ``n_records`` < 1 or ``raw_fraction`` outside [0, 1].
    """
    n = int(n_records)
    if n < 1:
        raise ValueError(f"n_records must be at least 1, got {n_records!r}")
    if not 0.0 <= raw_fraction <= 1.0:
        raise ValueError(f"raw_fraction must be in [0, 1], got {raw_fraction!r}")
    # One generator drawn from in this order: each step's draws depend on the ones
    # before, so the order of the calls is part of the output for a seed.
    rng = np.random.default_rng([int(seed), 5150850])
    tax = _taxonomy_tree(rng, n / _REAL_SIZE)
    records = _draw_records(rng, n, tax)
    barcodes, hap_rank = _barcodes(rng, tax, records.leaf, raw_fraction)
    dna_bin = _bin_column(rng, tax, records.leaf, hap_rank)
    ranks, taxon = _rank_columns(rng, tax, records)
    columns = {
        **_specimen_metadata(rng, seed, tax, records.leaf),
        "taxon": pd.array(taxon, dtype=STR_DTYPE),
        **ranks,
        "dna_bin": dna_bin,
        "dna_barcode": pd.array(barcodes, dtype=STR_DTYPE),
        "split": pd.array(pa.nulls(n, pa.large_string()), dtype=STR_DTYPE),
    }
    df = pd.DataFrame(columns, columns=list(COLUMNS))
    if with_splits:
        from bioscan_kmer.data.splits import partition

        df["split"] = partition(df, seed=seed)
    return df


def _taxonomy_tree(rng, scale: float) -> _Taxonomy:
    """Orders (fixed shares), families, genera, subfamilies and leaves, sized for ``scale``."""
    order_names = [o for _, o, _ in _ORDERS]
    order_class = [c for c, _, _ in _ORDERS]
    order_share = np.array([s for _, _, s in _ORDERS])
    order_share /= order_share.sum()
    real = _clean_taxonomy(set(order_names))
    names = _Names(rng, {w for row in real for w in (row[1], row[2], row[3].split(" ")[1])})

    n_leaves = int(np.clip(round(330_000 * scale ** 0.85), 40, None))
    n_families = int(np.clip(round(1_100 * scale ** 0.3), 12, 1_100))
    fam_per_order = np.maximum(1, np.round(n_families * order_share ** 0.6 / (order_share ** 0.6).sum()))
    fam_order = np.repeat(np.arange(len(order_names)), fam_per_order.astype(int))
    family_names = _family_names(fam_order, order_names, real, names)
    # Heavy-tailed family shares within an order (Pareto), scaled by the order share.
    fam_w = rng.pareto(1.1, size=len(fam_order)) + 0.05
    fam_w /= np.bincount(fam_order, weights=fam_w)[fam_order]
    fam_w *= order_share[fam_order]

    # Leaves per family grow sublinearly with the family's record share.
    leaf_alloc = fam_w ** 0.7
    leaf_counts = np.maximum(1, np.round(n_leaves * leaf_alloc / leaf_alloc.sum())).astype(int)
    leaf_family = np.repeat(np.arange(len(fam_order)), leaf_counts)
    leaf_w = rng.lognormal(0.0, 1.6, size=len(leaf_family))
    leaf_w /= np.bincount(leaf_family, weights=leaf_w)[leaf_family]
    leaf_w *= fam_w[leaf_family]

    genus_family, leaf_genus, genus_names, real_species_of_genus = _genera(rng, leaf_counts, family_names, real,
                                                                          names)
    genus_sub, sub_names = _subfamilies(rng, genus_family, family_names, names)
    class_names = sorted(set(order_class))
    return _Taxonomy(
        order_names=order_names, class_names=class_names,
        class_of_order=np.array([class_names.index(c) for c in order_class]),
        fam_order=fam_order, family_names=family_names, genus_family=genus_family, genus_names=genus_names,
        genus_sub=genus_sub, sub_names=sub_names, leaf_family=leaf_family, leaf_genus=leaf_genus,
        leaf_w=leaf_w, real_species_of_genus=real_species_of_genus, names=names,
    )


def _family_names(fam_order, order_names, real, names: _Names) -> np.ndarray:
    """Real families of the packaged taxonomy first in their orders (so the big families
    carry real names), then generated ones."""
    real_fams = {}
    for o, f, _, _ in real:
        real_fams.setdefault(o, [])
        if f not in real_fams[o]:
            real_fams[o].append(f)
    family_names = []
    used_real = {o: 0 for o in real_fams}
    for o in fam_order:
        oname = order_names[o]
        if oname in real_fams and used_real[oname] < len(real_fams[oname]):
            family_names.append(real_fams[oname][used_real[oname]])
            used_real[oname] += 1
        else:
            family_names.append(names.family())
    return np.array(family_names, dtype=object)


def _genera(rng, leaf_counts, family_names, real, names: _Names):
    """Genera: a family of m leaves has about m**0.75 genera with heavy-tailed sizes.

    Returns genus -> family, leaf -> genus, the genus names and, for real genera, the
    real species names they can give their leaves.
    """
    genus_family, leaf_genus, genus_names = [], np.empty(int(leaf_counts.sum()), dtype=np.int64), []
    real_genera = {}
    for o, f, g, s in real:
        real_genera.setdefault(f, {}).setdefault(g, []).append(s)
    real_species_of_genus = {}
    start = 0
    for f in range(len(leaf_counts)):
        m = leaf_counts[f]
        n_gen = max(1, int(round(m ** 0.75)))
        gw = rng.pareto(1.2, size=n_gen) + 0.1
        local = rng.choice(n_gen, size=m, p=gw / gw.sum())
        local[:n_gen] = np.arange(min(n_gen, m))  # every genus holds at least one leaf
        leaf_genus[start:start + m] = len(genus_names) + local
        start += m
        pool = list(real_genera.get(family_names[f], {}).items())
        for j in range(n_gen):
            if j < len(pool):
                genus_names.append(pool[j][0])
                real_species_of_genus[len(genus_names) - 1] = list(pool[j][1])
            elif rng.random() < 0.03:
                # Placeholder genera ("<Family> gen. 3") make their species placeholders.
                genus_names.append(f"{family_names[f]} gen. {j + 1}")
            else:
                genus_names.append(names.genus())
            genus_family.append(f)
    return np.array(genus_family), leaf_genus, np.array(genus_names, dtype=object), real_species_of_genus


def _subfamilies(rng, genus_family, family_names, names: _Names):
    """Most families with several genera have 1-6 subfamilies: genus -> subfamily, names."""
    n_fam = len(family_names)
    gen_per_family = np.bincount(genus_family, minlength=n_fam)
    has_sub = (gen_per_family >= 2) & (rng.random(n_fam) < 0.8)
    n_sub = np.where(has_sub, 1 + np.minimum(5, gen_per_family // 4), 0)
    sub_offset = np.concatenate([[0], np.cumsum(n_sub)])
    genus_sub = np.full(len(genus_family), -1, dtype=np.int64)
    hs = has_sub[genus_family]
    genus_sub[hs] = sub_offset[genus_family[hs]] + (
        rng.integers(0, 1 << 30, size=int(hs.sum())) % n_sub[genus_family[hs]]
    )
    sub_names = []
    for f in range(n_fam):
        stem = family_names[f][:-4] if family_names[f].endswith("idae") else family_names[f]
        for j in range(n_sub[f]):
            sub_names.append(stem + "inae" if j == 0 else names.genus()[:-2] + "inae")
    return genus_sub, np.array(sub_names, dtype=object)


def _draw_records(rng, n: int, tax: _Taxonomy) -> _Records:
    """Records drawn from the leaves, how deep each is identified, and species names."""
    n_leaves = tax.n_leaves
    leaf_family, leaf_genus, genus_names = tax.leaf_family, tax.leaf_genus, tax.genus_names
    rec_leaf = rng.choice(n_leaves, size=n, p=tax.leaf_w / tax.leaf_w.sum())
    # Depth 0..6 = phylum..species. Identification effort is shared within a family
    # (some families are never resolved), so depths are cut on a latent score.
    z = rng.normal(0, 1.0, size=len(tax.family_names))[leaf_family] + rng.normal(0, 0.7, size=n_leaves)
    shares = np.array([0.001, 0.002, 0.012, 0.73, 0.0, 0.155, 0.10])
    cuts = _weighted_thresholds(z, tax.leaf_w, shares[shares > 0])
    depth_levels = np.flatnonzero(shares > 0)
    leaf_depth = depth_levels[np.searchsorted(cuts, z, side="right")]
    # Placeholder genera never carry a named species.
    is_placeholder_genus = np.array(["gen." in g for g in genus_names])

    # Species names: species-depth leaves are named (real first) or placeholders.
    species_leaves = np.flatnonzero(leaf_depth == 6)
    leaf_species = np.full(n_leaves, -1, dtype=np.int64)
    species_names = []
    ph_draw = rng.random(len(species_leaves))
    per_genus_count = {}
    used_names = set()
    for leaf, u in zip(species_leaves, ph_draw):
        g = int(leaf_genus[leaf])
        gname = genus_names[g]
        k = per_genus_count.get(g, 0)
        per_genus_count[g] = k + 1
        if is_placeholder_genus[g] or u < 0.28:
            name = _placeholder_species(rng, gname, k)
            if name in used_names:
                name = f"{name} {k + 1}"
        else:
            reals = tax.real_species_of_genus.get(g)
            name = reals.pop() if reals else f"{gname} {tax.names.epithet()}"
        leaf_species[leaf] = len(species_names)
        species_names.append(name)
        used_names.add(name)

    rec_depth = leaf_depth[rec_leaf].copy()
    # Some specimens of a well-known leaf are still identified less deeply.
    shallow = rng.random(n) < 0.08
    rec_depth[shallow] = np.minimum(rec_depth[shallow], rng.integers(2, 6, size=int(shallow.sum())))
    rec_depth[rec_depth == 4] = 3  # depth "subfamily only" is decided separately (_rank_columns)
    return _Records(leaf=rec_leaf, depth=rec_depth, leaf_species=leaf_species,
                    species_names=np.array(species_names, dtype=object))


def _barcodes(rng, tax: _Taxonomy, rec_leaf: np.ndarray, raw_fraction: float) -> tuple[pa.Array, np.ndarray]:
    """COI-like barcodes evolved down the tree, haplotypes per leaf, some in raw form.

    Returns the barcode of every record and its haplotype's rank in its leaf (0 = the
    dominant one).
    """
    n, n_leaves = len(rec_leaf), tax.n_leaves
    cdf = _site_cdf(rng, BARCODE_LENGTH)
    comp = np.array([0.30, 0.16, 0.14, 0.40])
    root = rng.choice(4, size=(1, BARCODE_LENGTH), p=comp).astype(np.uint8)
    cls_seq = _evolve(rng, root, np.zeros(len(tax.class_names), dtype=int), 0.10, cdf)
    ord_seq = _evolve(rng, cls_seq, tax.class_of_order, 0.10, cdf)
    fam_seq = _evolve(rng, ord_seq, tax.fam_order, 0.08, cdf)
    gen_seq = _evolve(rng, fam_seq, tax.genus_family, 0.06, cdf)
    leaf_seq = _evolve(rng, gen_seq, tax.leaf_genus, 0.045, cdf)
    del cls_seq, ord_seq, fam_seq, gen_seq

    # Haplotypes: one dominant haplotype per leaf plus rarer variants, more in big leaves.
    leaf_n = np.bincount(rec_leaf, minlength=n_leaves)
    n_hap = np.maximum(1, np.round(0.45 * leaf_n ** 0.85)).astype(np.int64)
    u = rng.random(n)
    # Log-uniform index: haplotype 0 is the most frequent, then a decaying tail.
    rec_hap_local = np.minimum(n_hap[rec_leaf] - 1, np.floor(np.expm1(u * np.log1p(n_hap[rec_leaf]))).astype(np.int64))
    hap_key = rec_leaf.astype(np.int64) * (int(n_hap.max()) + 1) + rec_hap_local
    hap_keys, rec_hap = np.unique(hap_key, return_inverse=True)
    hap_leaf = hap_keys // (int(n_hap.max()) + 1)
    hap_local = hap_keys % (int(n_hap.max()) + 1)
    hap_seq = leaf_seq[hap_leaf]
    variant = np.flatnonzero(hap_local > 0)
    n_mut = 1 + rng.poisson(1.5, size=len(variant))
    rows = np.repeat(variant, n_mut)
    sites = rng.integers(0, BARCODE_LENGTH, size=len(rows))
    hap_seq[rows, sites] = (hap_seq[rows, sites] + rng.integers(1, 4, size=len(rows))) % 4
    del leaf_seq
    n_haps = len(hap_keys)
    # Sequencing reach: most reads cover the full 658 nt, some stop early or start late.
    r = rng.random(n_haps)
    hap_start = np.where((r > 0.80) & (r <= 0.85), rng.integers(1, 30, size=n_haps), 0)
    hap_end = np.full(n_haps, BARCODE_LENGTH)
    early = r > 0.85
    hap_end[early] = rng.integers(400, BARCODE_LENGTH, size=int(early.sum()))
    hap_ascii = _BASES[hap_seq]
    del hap_seq
    cols = np.arange(BARCODE_LENGTH)
    hap_strings = _ragged_strings(hap_ascii, (cols >= hap_start[:, None]) & (cols < hap_end[:, None]))

    raw_rows = np.flatnonzero(rng.random(n) < raw_fraction)
    raw_strings = _raw_barcodes(rng, hap_ascii, rec_hap[raw_rows], hap_start, hap_end)
    del hap_ascii
    pick = rec_hap.astype(np.int64)
    pick[raw_rows] = n_haps + np.arange(len(raw_rows))
    barcodes = pa.concat_arrays([hap_strings, raw_strings]).take(pa.array(pick))
    return barcodes, hap_local[rec_hap]


def _bin_column(rng, tax: _Taxonomy, rec_leaf: np.ndarray, hap_rank: np.ndarray) -> pd.Categorical:
    """BIN of every record (``BOLD:AAA3908``), 2% missing; one BIN per leaf, except
    that a few sister leaves share one and a few leaves split by haplotype."""
    n, n_leaves = len(rec_leaf), tax.n_leaves
    leaf_bin = np.arange(n_leaves)
    same_genus_prev = np.r_[False, tax.leaf_genus[1:] == tax.leaf_genus[:-1]]
    merge = same_genus_prev & (rng.random(n_leaves) < 0.04)
    for i in np.flatnonzero(merge):
        leaf_bin[i] = leaf_bin[i - 1]
    split_leaf = rng.random(n_leaves) < 0.08
    rec_bin = leaf_bin[rec_leaf].astype(np.int64)
    second = split_leaf[rec_leaf] & (hap_rank % 2 == 1)
    rec_bin[second] = n_leaves + rec_leaf[second]
    rec_bin[rng.random(n) < 0.02] = -1
    bin_codes, bin_ids = pd.factorize(rec_bin[rec_bin >= 0], sort=True)
    # BIN codes look like BOLD:AAA3908; distinct random codes, Floyd-style draw.
    bin_perm = rng.choice(max(4 * 26 ** 2 * 10_000, 2 * len(bin_ids)), size=len(bin_ids), replace=False)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    bin_names = [
        f"BOLD:{letters[v // 6_760_000]}{letters[(v // 260_000) % 26]}{letters[(v // 10_000) % 26]}{v % 10_000:04d}"
        for v in bin_perm.tolist()
    ]
    rec_bin_code = np.full(n, -1, dtype=np.int64)
    rec_bin_code[rec_bin >= 0] = bin_codes
    return _categorical(rec_bin_code, np.array(bin_names, dtype=object))


def _rank_columns(rng, tax: _Taxonomy, records: _Records) -> tuple[dict, pa.Array]:
    """The seven rank columns (categoricals, empty below a record's depth) and ``taxon``,
    the most specific label of each record."""
    n = len(records.leaf)
    rec_fam = tax.leaf_family[records.leaf]
    rec_gen = tax.leaf_genus[records.leaf]
    rec_ord = tax.fam_order[rec_fam]
    rec_depth = records.depth
    rec_sub = tax.genus_sub[rec_gen]
    sub_labelled = (rec_sub >= 0) & (
        (rec_depth >= 5) | ((rec_depth == 3) & (rng.random(n) < 0.17))
    )
    codes = {
        "phylum": np.zeros(n, dtype=np.int64),
        "class": np.where(rec_depth >= 1, tax.class_of_order[rec_ord], -1),
        "order": np.where(rec_depth >= 2, rec_ord, -1),
        "family": np.where(rec_depth >= 3, rec_fam, -1),
        "subfamily": np.where(sub_labelled, rec_sub, -1),
        "genus": np.where(rec_depth >= 5, rec_gen, -1),
        "species": np.where(rec_depth >= 6, records.leaf_species[records.leaf], -1),
    }
    cats = {
        "phylum": np.array(["Arthropoda"], dtype=object),
        "class": np.array(tax.class_names, dtype=object),
        "order": np.array(tax.order_names, dtype=object),
        "family": tax.family_names,
        "subfamily": tax.sub_names,
        "genus": tax.genus_names,
        "species": records.species_names,
    }
    columns = {rank: _categorical(codes[rank], cats[rank]) for rank in RANKS}
    taxon_codes = np.full(n, -1, dtype=np.int64)
    offset, all_names = 0, []
    for rank in RANKS:
        has = codes[rank] >= 0
        taxon_codes[has] = offset + codes[rank][has]
        all_names.extend(cats[rank].tolist())
        offset += len(cats[rank])
    taxon = pa.array(np.array(all_names, dtype=object)).take(pa.array(taxon_codes))
    return columns, taxon


def _specimen_metadata(rng, seed: int, tax: _Taxonomy, rec_leaf: np.ndarray) -> dict:
    """Identifiers, geography, image-size fields and the other specimen columns."""
    n = len(rec_leaf)
    row_id = rng.permutation(n)
    columns = {**_identifiers(row_id), **_geography(rng, seed, tax.n_leaves, rec_leaf),
               **_image_sizes(rng, tax.n_leaves, rec_leaf)}

    rec_ord = tax.fam_order[tax.leaf_family[rec_leaf]]
    insect = np.asarray(tax.class_of_order[rec_ord] == tax.class_names.index("Insecta"))
    in_1m = insect & (rng.random(n) < 0.22)
    idx_1m = pd.array(np.full(n, pd.NA), dtype="Int64")
    idx_1m[np.flatnonzero(in_1m)] = rng.permutation(int(in_1m.sum()))
    columns["index_bioscan_1M_insect"] = idx_1m
    columns["inferred_ranks"] = np.where(rng.random(n) < 0.05, rng.integers(1, 4, size=n), 0).astype(np.uint8)
    columns["chunk"] = pd.array(pa.array(np.array([str(i) for i in range(1, 51)], dtype=object)).take(
        pa.array(row_id % 50)), dtype=STR_DTYPE)
    return columns


def _identifiers(row_id: np.ndarray) -> dict:
    """``processid`` (project code, number, year) and ``sampleid`` (plate and well)."""
    n = len(row_id)
    proj = np.frombuffer("".join(_PROJECTS).encode(), dtype=np.uint8).reshape(len(_PROJECTS), 5)
    proj_idx = row_id % len(_PROJECTS)
    year = 10 + (row_id * 7919) % 14
    pid = np.concatenate(
        [proj[proj_idx], _digits(row_id // len(_PROJECTS), 6), np.full((n, 1), ord("-"), np.uint8),
         _digits(year, 2)], axis=1)
    sid = np.concatenate(
        [np.frombuffer(b"BIOUG", np.uint8)[None].repeat(n, 0), _digits(row_id // 96, 6),
         np.full((n, 1), ord("-"), np.uint8),
         (65 + (row_id % 96) // 12).astype(np.uint8)[:, None], _digits(1 + row_id % 12, 2)], axis=1)
    return {"processid": pd.array(_fixed_width_strings(pid), dtype=STR_DTYPE),
            "sampleid": pd.array(_fixed_width_strings(sid), dtype=STR_DTYPE)}


def _geography(rng, seed: int, n_leaves: int, rec_leaf: np.ndarray) -> dict:
    """Country (mostly the leaf's home), province and Malaise-trap coordinates."""
    n = len(rec_leaf)
    countries = [c for c, _, _ in _GEOGRAPHY]
    c_share = np.array([s for _, s, _ in _GEOGRAPHY])
    c_share /= c_share.sum()
    leaf_home = rng.choice(len(countries), size=n_leaves, p=c_share)
    rec_country = np.where(rng.random(n) < 0.8, leaf_home[rec_leaf],
                           rng.choice(len(countries), size=n, p=c_share))
    prov_names, prov_country, prov_lat, prov_lon = [], [], [], []
    for ci, (_, _, provs) in enumerate(_GEOGRAPHY):
        for p_name, lat, lon in provs:
            prov_names.append(p_name)
            prov_country.append(ci)
            prov_lat.append(lat)
            prov_lon.append(lon)
    prov_country = np.array(prov_country)
    prov_first = np.searchsorted(prov_country, np.arange(len(countries)))
    prov_count = np.bincount(prov_country, minlength=len(countries))
    rec_prov = prov_first[rec_country] + rng.integers(0, 1 << 30, size=n) % prov_count[rec_country]
    # Malaise traps: a handful of fixed sites per province, so coordinates repeat.
    site = rng.integers(0, 6, size=n)
    site_jitter = np.random.default_rng([int(seed), 7]).normal(0, 0.35, size=(len(prov_names), 6, 2))
    lat = np.round(np.array(prov_lat)[rec_prov] + site_jitter[rec_prov, site, 0], 5)
    lon = np.round(np.array(prov_lon)[rec_prov] + site_jitter[rec_prov, site, 1], 5)
    no_coord = rng.random(n) < 0.03
    lat[no_coord] = np.nan
    lon[no_coord] = np.nan
    prov_codes = np.where(rng.random(n) < 0.02, -1, rec_prov)
    return {
        "country": pd.array(pa.array(np.array(countries, dtype=object)).take(pa.array(rec_country)),
                            dtype=STR_DTYPE),
        "province_state": pd.array(
            pa.array(np.array(prov_names, dtype=object)).take(
                pa.array(prov_codes, mask=prov_codes < 0)), dtype=STR_DTYPE),
        "coord-lat": lat,
        "coord-lon": lon,
    }


def _image_sizes(rng, n_leaves: int, rec_leaf: np.ndarray) -> dict:
    """Size fields from an organism box inside a 1024x768 image (SPEC section 1 formulas)."""
    n = len(rec_leaf)
    w, h = 1024, 768
    leaf_size = rng.lognormal(np.log(120), 0.45, size=n_leaves)
    body = leaf_size[rec_leaf] * rng.lognormal(0, 0.15, size=n)
    aspect = rng.uniform(0.45, 1.0, size=n)
    wc = np.clip(np.round(body), 16, w)
    hc = np.clip(np.round(body * aspect), 16, h)
    area_fraction = np.round(wc * hc / (w * h), 4)
    scale_factor = np.round(np.minimum(wc, hc) / 256, 4)
    measure = np.round(wc * hc * rng.uniform(0.3, 0.7, size=n))
    no_size = rng.random(n) < 0.01
    for arr in (area_fraction, scale_factor, measure):
        arr[no_size] = np.nan
    return {"image_measurement_value": measure, "area_fraction": area_fraction, "scale_factor": scale_factor}


def _categorical(codes: np.ndarray, names: np.ndarray) -> pd.Categorical:
    """Codes over ``names`` as a Categorical with sorted, used categories only.

    Equal names (a real genus listed under two families, say) become one category,
    as they would in a CSV.
    """
    used = np.zeros(len(names), dtype=bool)
    used[codes[codes >= 0]] = True
    kept = np.flatnonzero(used)
    uniq, inverse = np.unique(names[kept].astype(str), return_inverse=True)
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[kept] = inverse
    new_codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return pd.Categorical.from_codes(new_codes, categories=pd.Index(uniq.astype(object), dtype=object))


def _shifted(rows: np.ndarray, shift: np.ndarray, width: int) -> np.ndarray:
    """out[r, j] = rows[r, j - shift[r]] (clipped to the row), for few distinct shifts.

    Grouping rows by shift turns a 2-D gather into a handful of contiguous slice
    copies, which is what makes raw strings cheap at millions of rows.
    """
    k, length = rows.shape
    out = np.empty((k, width), dtype=np.uint8)
    for s in np.unique(shift):
        sel = np.flatnonzero(shift == s)
        s = int(s)
        dst_lo, src_lo = max(s, 0), max(-s, 0)
        n = min(width - dst_lo, length - src_lo)
        block = rows[sel]
        out[sel, dst_lo:dst_lo + n] = block[:, src_lo:src_lo + n]
        if dst_lo:
            out[sel, :dst_lo] = block[:, :1]
        if dst_lo + n < width:
            out[sel, dst_lo + n:] = block[:, -1:]
    return out


def _raw_barcodes(rng, hap_ascii, hap_idx, hap_start, hap_end) -> pa.Array:
    """Raw BOLD-style strings for selected haplotypes.

    Leading/trailing runs of N, leading alignment gaps and an inserted codon gap
    ("---") never change what the cleaner returns; IUPAC codes and internal N
    replace a base with an ambiguity (cleaned to N); some rows are lowercase.
    """
    m = len(hap_idx)
    if m == 0:
        return pa.array([], type=pa.large_string())
    chunks = []
    step = 50_000
    for s in range(0, m, step):
        hi = hap_idx[s:s + step]
        k = len(hi)
        start, end = hap_start[hi].astype(np.int32), hap_end[hi].astype(np.int32)
        body_len = end - start
        lead_n = np.where(rng.random(k) < 0.5, rng.integers(1, 21, size=k), 0).astype(np.int32)
        lead_gap = np.where(rng.random(k) < 0.15, rng.integers(1, 11, size=k), 0).astype(np.int32)
        has_codon_gap = rng.random(k) < 0.2
        gap_at = np.where(has_codon_gap, 3 * rng.integers(10, np.maximum(11, body_len // 3 - 10)),
                          body_len).astype(np.int32)
        gap_at = np.minimum(gap_at, body_len)
        gap_len = np.where(has_codon_gap, 3, 0).astype(np.int32)
        tail_n = np.where(rng.random(k) < 0.5, rng.integers(1, 31, size=k), 0).astype(np.int32)
        total = lead_n + lead_gap + body_len + gap_len + tail_n
        width = int(total.max())
        j = np.arange(width, dtype=np.int32)[None, :]
        b2 = (lead_n + lead_gap)[:, None]
        b3 = b2 + gap_at[:, None]
        b5 = b2 + (body_len + gap_len)[:, None]
        seqs = hap_ascii[hi]
        shift1 = lead_n + lead_gap - start
        out = _shifted(seqs, shift1, width)
        if has_codon_gap.any():
            after = _shifted(seqs, shift1 + gap_len, width)
            np.copyto(out, after, where=j >= b3 + gap_len[:, None])
            out[(j >= b3) & (j < b3 + gap_len[:, None])] = ord("-")
        out[j < lead_n[:, None]] = ord("N")
        out[(j >= lead_n[:, None]) & (j < b2)] = ord("-")
        out[j >= b5] = ord("N")
        # Ambiguities and internal N, kept away from the ends so trimming never eats them.
        n_amb = np.where(rng.random(k) < 0.35, rng.integers(1, 4, size=k), 0)
        rows = np.repeat(np.arange(k), n_amb)
        cols = b2[rows, 0] + 5 + rng.integers(0, 1 << 30, size=len(rows)) % np.maximum(1, gap_at[rows] - 10)
        out[rows, cols] = np.where(rng.random(len(rows)) < 0.5, ord("N"), rng.choice(_IUPAC, size=len(rows)))
        lower = np.flatnonzero(rng.random(k) < 0.08)
        letters = out[lower]
        letters[(letters >= 65) & (letters <= 90)] += 32
        out[lower] = letters
        chunks.append(_ragged_strings(out, j < total[:, None]))
    return pa.concat_arrays(chunks)
