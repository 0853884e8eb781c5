"""Baselines run through the same probes as the encoder.

- :class:`PaperCNN`: the supervised CNN of the BIOSCAN-5M paper (SPEC section 8).
- :func:`kmer_frequencies`: k-mer frequency vectors from the core's ``kmer_counts``, for
  the linear probe, the 1-NN probe, clustering and retrieval (an alignment-free,
  training-free reference point).
- :func:`edit_distance_nn`: each query takes the label of its nearest key by Levenshtein
  distance (edlib), the analogue of the paper's BLAST row.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import topk_accuracy

__all__ = [
    "NUCLEOTIDES",
    "nucleotide_codes",
    "PaperCNN",
    "kmer_frequencies",
    "edit_distance_nn",
    "edit_distance_probe",
]

#: One-hot channel order of the CNN; code 5 means "past the end" and one-hot encodes to zeros.
NUCLEOTIDES = "ACGTN"
_PAST_END = 5

_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(NUCLEOTIDES):
    _LUT[ord(_c)] = _i
    _LUT[ord(_c.lower())] = _i


def nucleotide_codes(seqs, length: int = 660) -> np.ndarray:
    """Per-position codes A=0 C=1 G=2 T=3 N=4, 5 past the end, truncated to ``length``.

    Parameters
    ----------
    seqs : sequence of str
        Cleaned barcodes (``bioscan_kmer.clean`` maps IUPAC codes to N).
    length : int
        Positions kept (660, as in the paper).

    Returns
    -------
    numpy.ndarray of uint8, shape (n, length)

    Raises
    ------
    ValueError
        On a character outside ACGTN (any case), naming row, position and character.
    TypeError
        When an item is not a string.
    """
    seqs = list(seqs)
    out = np.full((len(seqs), length), _PAST_END, dtype=np.uint8)
    for row, seq in enumerate(seqs):
        if not isinstance(seq, str):
            raise TypeError(f"row {row}: expected a str barcode, got {type(seq).__name__}")
        raw = np.frombuffer(seq[:length].encode("ascii", errors="replace"), dtype=np.uint8)
        codes = _LUT[raw]
        bad = np.flatnonzero(codes == 255)
        if bad.size:
            pos = int(bad[0])
            raise ValueError(f"row {row}, position {pos}: character {seq[pos]!r} is not one of ACGTN; clean the barcodes first")
        out[row, : codes.size] = codes
    return out


class PaperCNN(nn.Module):
    """The BIOSCAN-5M paper's CNN baseline.

    Input: a barcode one-hot encoded over A C G T N at 660 positions (zeros past the end),
    read as a 1 x 660 x 5 image. Three blocks of Conv2d (64, 32, 16 channels), ReLU,
    BatchNorm2d and MaxPool (3, 1) bring 660 rows down to 220, 73, 24; the 16 x 24 x 5 =
    1920 values go through BatchNorm1d, Linear(1920, 500), tanh and Linear(500, classes).
    The 500-d layer (before tanh, as in the public code) is the embedding for the probes.

    Parameters
    ----------
    n_classes : int
    seq_len : int, default 660
    kernel_width : {3, 1}, default 3
        SPEC section 8 says 3 x 3 kernels; the public BarcodeBERT code uses (3, 1), which
        convolves each nucleotide channel separately. Both keep the width at 5 (padding),
        so the flattened size is the same.
    """

    def __init__(self, n_classes: int, seq_len: int = 660, kernel_width: int = 3):
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be positive, got {n_classes}")
        if kernel_width not in (1, 3):
            raise ValueError(f"kernel_width must be 1 or 3, got {kernel_width}")
        self.seq_len = seq_len
        blocks = []
        for c_in, c_out in ((1, 64), (64, 32), (32, 16)):
            blocks += [
                nn.Conv2d(c_in, c_out, kernel_size=(3, kernel_width), padding=(1, kernel_width // 2)),
                nn.ReLU(),
                nn.BatchNorm2d(c_out),
                nn.MaxPool2d(kernel_size=(3, 1)),
            ]
        self.features = nn.Sequential(*blocks)
        rows = seq_len
        for _ in range(3):
            rows //= 3
        self.flat_dim = 16 * rows * len(NUCLEOTIDES)  # 1920 for 660
        self.norm = nn.BatchNorm1d(self.flat_dim)
        self.fc1 = nn.Linear(self.flat_dim, 500)
        self.fc2 = nn.Linear(500, n_classes)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """The 500-d embedding (B, 500) of nucleotide codes (B, seq_len)."""
        if codes.dim() != 2 or codes.shape[1] != self.seq_len:
            raise ValueError(f"codes must have shape (B, {self.seq_len}), got {tuple(codes.shape)}")
        x = F.one_hot(codes.long(), _PAST_END + 1)[..., :_PAST_END].float().unsqueeze(1)  # (B, 1, L, 5)
        x = self.features(x)  # (B, 16, 24, 5)
        return self.fc1(self.norm(x.flatten(1)))  # (B, 500)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.embed(codes)))  # (B, n_classes)


def kmer_frequencies(seqs, k: int = 4, *, threads=None) -> np.ndarray:
    """Relative k-mer frequencies per barcode (rows sum to 1; no valid k-mer -> zeros).

    Counts come from the core's :func:`bioscan_kmer.kmer_counts` (k-mers holding N or
    another non-ACGT letter are not counted). Frequencies rather than counts, so that
    barcode length does not dominate cosine or linear comparisons.

    Returns
    -------
    numpy.ndarray of float32, shape (n, 4**k)
    """
    from .. import kmer_counts

    counts = kmer_counts(list(seqs), k=k, threads=threads).astype(np.float32)
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total > 0, total, 1.0)


def edit_distance_nn(key_seqs, query_seqs, *, q: int = 4, progress: bool = False, threads=None):
    """Exact nearest key by edit distance for every query, pruned by q-gram bounds.

    Global (Needleman-Wunsch style) Levenshtein distance from edlib. A brute force over all
    keys would cost n_queries x n_keys alignments; instead, for each query the keys are
    visited in order of a lower bound on their distance,
    ``max(|len difference|, ceil(L1(q-gram profiles) / (2q)))`` (the q-gram lemma), and
    each alignment is asked only whether it beats the best so far (edlib's ``k``), which
    is fast for close pairs. The search stops once the bound reaches the best distance,
    so the result is exact. Identical barcodes are aligned once.

    Parameters
    ----------
    key_seqs, query_seqs : sequence of str
        Cleaned barcodes.
    q : int
        q-gram length of the bound.
    progress : bool
        progress bar over distinct queries.

    Returns
    -------
    index : numpy.ndarray of int64, shape (n_queries,)
        Row of the nearest key. Among keys at equal distance the one with the smallest
        bound, then the smallest q-gram distance, then the first row wins.
    distance : numpy.ndarray of int64, shape (n_queries,)
    """
    import edlib

    from .. import kmer_counts, unique

    key_seqs = list(key_seqs)
    query_seqs = list(query_seqs)
    if not key_seqs:
        raise ValueError("there are no keys to search")
    for name, seqs in (("key", key_seqs), ("query", query_seqs)):
        for row, s in enumerate(seqs):
            if not isinstance(s, str):
                raise TypeError(f"{name} row {row}: expected a str barcode, got {type(s).__name__}")
    ukeys, kinv, _ = unique(key_seqs)
    ukeys = list(ukeys)
    first_row = np.full(len(ukeys), -1, dtype=np.int64)
    for row in range(len(key_seqs) - 1, -1, -1):  # reverse so the first occurrence wins
        first_row[kinv[row]] = row
    uqueries, qinv, _ = unique(query_seqs) if query_seqs else ([], np.empty(0, np.int64), None)
    uqueries = list(uqueries)

    kprof = kmer_counts(ukeys, k=q, threads=threads).astype(np.int32)
    qprof = kmer_counts(uqueries, k=q, threads=threads).astype(np.int32) if uqueries else None
    klen = np.array([len(s) for s in ukeys], dtype=np.int64)

    best_u = np.empty(len(uqueries), dtype=np.int64)
    best_d = np.empty(len(uqueries), dtype=np.int64)
    bar = timer = None
    if progress:
        from bioscan_kmer._progress import progress_bar

        from .estimate import FirstUnitsTimer, announce, format_seconds

        bar = progress_bar(total=len(uqueries), desc="edit-distance 1-NN", unit="query")
        timer = FirstUnitsTimer(len(uqueries), min_units=20, max_units=500)
    for i in range(len(uqueries)):
        qs = uqueries[i]
        l1 = np.abs(kprof - qprof[i]).sum(axis=1)
        lb = np.maximum(np.abs(klen - len(qs)), -(-l1 // (2 * q)))
        order = np.lexsort((np.arange(len(ukeys)), l1, lb))
        best, arg = None, -1
        for j in order:
            if best is not None and lb[j] >= best:
                break  # no later key can be strictly closer
            d = edlib.align(qs, ukeys[j], mode="NW", task="distance",
                            k=-1 if best is None else best - 1)["editDistance"]
            if d != -1 and (best is None or d < best):
                best, arg = d, j
                if best == 0:
                    break
        best_u[i], best_d[i] = arg, best
        if bar is not None:
            bar.update(1)
            rest = timer.tick()
            if rest is not None:
                announce(f"edit-distance 1-NN: {len(uqueries):,} distinct queries against {len(ukeys):,} distinct "
                         f"keys, about {format_seconds(rest + timer.elapsed)}", bar)
    if bar is not None:
        bar.close()
    index = first_row[best_u[qinv]] if len(uqueries) else np.empty(0, np.int64)
    distance = best_d[qinv] if len(uqueries) else np.empty(0, np.int64)
    return index, distance


def edit_distance_probe(key_seqs, key_y, query_seqs, query_y, *, q: int = 4, progress: bool = False) -> dict:
    """1-NN classification by edit distance (the BLAST-like row of the table).

    Keys without a label are dropped; queries without one are not scored.

    Returns
    -------
    dict
        ``accuracy_micro``, ``accuracy_macro``, ``mean_distance``, ``n_keys``,
        ``n_queries``, ``predictions``.
    """
    key_y = np.asarray(key_y, dtype=np.int64)
    query_y = np.asarray(query_y, dtype=np.int64)
    key_seqs, query_seqs = list(key_seqs), list(query_seqs)
    if len(key_seqs) != key_y.shape[0] or len(query_seqs) != query_y.shape[0]:
        raise ValueError("sequences and labels have different lengths")
    keep = np.flatnonzero(key_y >= 0)
    keys = [key_seqs[i] for i in keep]
    idx, dist = edit_distance_nn(keys, query_seqs, q=q, progress=progress)
    pred = key_y[keep][idx]
    return {
        "accuracy_micro": topk_accuracy(query_y, pred, 1, "micro"),
        "accuracy_macro": topk_accuracy(query_y, pred, 1, "macro"),
        "mean_distance": float(dist.mean()) if dist.size else float("nan"),
        "n_keys": len(keys),
        "n_queries": int((query_y >= 0).sum()),
        "predictions": pred,
    }
