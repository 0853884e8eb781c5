"""Slow, obvious pure-Python references of the core, written from SPEC.md.

Every native function is checked against these on random and adversarial inputs.
They favour being evidently right over being fast.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter

IUPAC = set("RYSWKMBDHV")


def vocab(k: int, preset: str = "barcodebert", n_nucleotide: bool = False) -> dict[str, int]:
    specials = ["[MASK]", "[UNK]"] if preset == "barcodebert" else ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    kmers = ["".join(p) for p in itertools.product("ACGTN" if n_nucleotide else "ACGT", repeat=k)]
    ordered = specials + [km for km in kmers if "N" not in km] + [km for km in kmers if "N" in km]
    return {t: i for i, t in enumerate(ordered)}


def tokenize_barcodebert(seq, k, stride, max_len, offset, n_nucleotide=False, padding=True):
    """BarcodeBERT's KmerTokenizer.__call__, with SPEC's one-mask-entry-per-token rule."""
    v = vocab(k, "barcodebert", n_nucleotide)
    x = seq[offset:]
    if len(x) > max_len:
        x = x[:max_len]
    real_len = len(x)
    x = x + "N" * (max_len - len(x))
    tokens = [x[i:i + k] for i in range(0, len(x) - k + 1, stride)]
    ids = [v.get(t, v["[UNK]"]) for t in tokens]
    mask = [1 if j * stride + k <= real_len else 0 for j in range(len(tokens))]
    return ids, mask


def tokenize_bert(seq, k, stride, max_len, offset, n_nucleotide=False, add_special=True):
    v = vocab(k, "bert", n_nucleotide)
    x = seq[offset:][:max_len]
    n_slots = (max_len - k) // stride + 1 if max_len >= k else 0
    kmers = [x[i:i + k] for i in range(0, len(x) - k + 1, stride)][:n_slots]
    ids = [v.get(t, v["[UNK]"]) for t in kmers]
    if add_special:
        ids = [v["[CLS]"]] + ids + [v["[SEP]"]]
    width = n_slots + (2 if add_special else 0)
    mask = [1] * len(ids) + [0] * (width - len(ids))
    ids = ids + [v["[PAD]"]] * (width - len(ids))
    return ids, mask


def reference_mask_stride_k(seq, k, max_len, offset):
    """The literal mask of BarcodeBERT (length max_len // stride), valid when stride == k."""
    att = [1] * (max_len // k)
    x = seq[offset:]
    if len(x) <= max_len:
        att[len(x) // k:] = [0] * (len(att) - len(x) // k)
    return att


def clean(seq, gaps="remove", iupac="n", trim_n=True, max_length=None):
    out = []
    for pos, ch in enumerate(seq):
        c = ch.upper()
        if ch in " \t\n\r\v\f":
            continue
        if c == "U":
            c = "T"
        if c in "ACGTN":
            out.append(c)
        elif c == "-":
            if gaps == "n":
                out.append("N")
        elif c in IUPAC:
            if iupac == "error":
                raise ValueError(f"IUPAC {ch!r} at position {pos}")
            out.append("N")
        else:
            raise ValueError(f"invalid {ch!r} at position {pos}")
    s = "".join(out)
    if trim_n:
        s = s.strip("N")
    if max_length is not None:
        s = s[:max_length]
        if trim_n:
            s = s.rstrip("N")
    return s


def unique(seqs):
    index, uniques, counts, inverse = {}, [], [], []
    for s in seqs:
        if s not in index:
            index[s] = len(uniques)
            uniques.append(s)
            counts.append(0)
        counts[index[s]] += 1
        inverse.append(index[s])
    return uniques, inverse, counts


def kmer_counts(seq, k):
    v = vocab(k)
    out = [0] * 4**k
    for i in range(len(seq) - k + 1):
        km = seq[i:i + k]
        if all(c in "ACGT" for c in km):
            out[v[km] - 2] += 1
    return out


def shannon(counts, base=math.e, epsilon=0.0):
    # Proportions from counts scaled by the largest: [1e308, 1e308] must not overflow.
    top = max(counts, default=0)
    if top == 0:
        return math.nan
    scaled = [c / top for c in counts]
    total = sum(scaled)
    shares = [c / total for c in scaled]
    return -sum(p * math.log(p + epsilon) for p in shares if p > 0) / math.log(base)


def grouped_shannon(groups, items, base=2.0, epsilon=0.0):
    per = {}
    for g, it in zip(groups, items):
        if g is None or it is None:
            continue
        per.setdefault(g, Counter())[it] += 1
    return {g: shannon(list(c.values()), base, epsilon) for g, c in per.items()}
