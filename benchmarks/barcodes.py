"""Realistic barcode batches for the benchmarks, without the data layer.

COI-like: 20,000 variants of one ~660-nt root with 5% substitutions, drawn with
repetition (as in BIOSCAN-5M, about half the records share a barcode), lengths 600-660,
each row its own ``str`` object as a CSV reader would give.
"""
from __future__ import annotations

import numpy as np

ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)


def barcodes(n: int, *, seed: int = 0, variants: int = 20_000, length: int = 660) -> list[str]:
    rng = np.random.default_rng(seed)
    root = rng.choice(ACGT, size=length)
    pool = np.repeat(root[None, :], variants, axis=0)
    mutated = rng.random(pool.shape) < 0.05
    pool[mutated] = rng.choice(ACGT, size=int(mutated.sum()))
    texts = [row.tobytes().decode() for row in pool]
    picks = rng.integers(0, variants, size=n).tolist()
    lengths = rng.integers(length - 60, length + 1, size=n).tolist()
    # Slicing makes a new object per row even when two rows are equal.
    return [texts[i][:ln] for i, ln in zip(picks, lengths)]


def raw_barcodes(seqs: list[str], *, seed: int = 0) -> list[str]:
    """BOLD-style raw forms: gaps, lowercase, N runs at the ends, a few IUPAC codes."""
    rng = np.random.default_rng(seed)
    out = []
    for s in seqs:
        r = rng.random()
        if r < 0.3:
            s = "NNN" + s + "NN"
        elif r < 0.5:
            i = int(rng.integers(0, len(s)))
            s = s[:i] + "---" + s[i:].lower()
        elif r < 0.55:
            i = int(rng.integers(0, len(s)))
            s = s[:i] + "R" + s[i + 1:]
        out.append(s)
    return out


def labels(n: int, *, groups: int, items: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-tailed group codes (like taxon sizes) and item codes (like barcodes)."""
    rng = np.random.default_rng(seed)
    g = (rng.zipf(1.3, size=n) - 1) % groups
    it = rng.integers(0, items, size=n)
    return g.astype(np.int64), it.astype(np.int64)
