"""1-NN genus on unseen species with k-mer count features: how high the bar is on real data.

The baselines that an encoder's embedding has to beat on the held-out species of a BOLD
table, beyond the benchmark's own 4-mer frequencies: overlapping k-mer frequencies for
k = 3..8 and non-overlapping k-mer counts (the encoder's own tokens, k = 4, 6, 8, reading
frame 0). Keys are the `train` records, queries the `test_unseen` ones; cosine 1-NN, the
accuracy of the predicted genus (micro), as the benchmark's probe. It reads the table a
`bioscan-kmer benchmark` run wrote (same splits):

    python benchmarks/real_kmer_knn.py bench/table.parquet

Frequencies and counts give the same cosine neighbours (a row's scale does not matter), so
the two families differ only in which k-mers they count: every window, or the tokens.
"""
import argparse
import time

import numpy as np
import pandas as pd
from scipy import sparse

from bioscan_kmer import KmerTokenizer, kmer_counts


def overlapping(seqs, k, chunk=4096):
    """Counts of every k-mer window (ACGT only), as a sparse matrix (n, 4**k)."""
    parts = []
    for s in range(0, len(seqs), chunk):
        parts.append(sparse.csr_matrix(kmer_counts(seqs[s:s + chunk], k=k).astype(np.float32)))
    return sparse.vstack(parts).tocsr()


def non_overlapping(seqs, k):
    """Counts of the tokens of BarcodeBERT's tokenizer (stride k, offset 0), without the
    k-mers that hold N (the [UNK] token)."""
    tok = KmerTokenizer(k=k, max_len=660)
    enc = tok(seqs, return_tensors="np")
    ids = enc["input_ids"]
    keep = enc["attention_mask"].astype(bool) & (ids >= tok.first_kmer_id)
    rows = np.repeat(np.arange(len(seqs)), keep.sum(axis=1))
    cols = ids[keep] - tok.first_kmer_id
    x = sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(len(seqs), tok.num_kmers))
    x.sum_duplicates()
    return x


def cosine_1nn(keys, queries, chunk=512):
    """Index of the nearest key of each query by cosine similarity (sparse rows)."""
    def unit(x):
        norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        return sparse.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ x

    kt = unit(keys).T.tocsr()
    q = unit(queries)
    best = np.empty(q.shape[0], np.int64)
    for s in range(0, q.shape[0], chunk):
        sim = (q[s:s + chunk] @ kt).toarray()
        best[s:s + chunk] = sim.argmax(axis=1)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", help="table.parquet of a benchmark run (dna_barcode, genus, split)")
    ap.add_argument("--k-overlapping", default="3,4,5,6,7,8")
    ap.add_argument("--k-tokens", default="4,6,8")
    args = ap.parse_args()
    t = pd.read_parquet(args.table)
    keys = t[t["split"] == "train"]
    queries = t[t["split"] == "test_unseen"]
    kseq = keys["dna_barcode"].astype(str).tolist()
    qseq = queries["dna_barcode"].astype(str).tolist()
    kgen = keys["genus"].astype(str).to_numpy()
    qgen = queries["genus"].astype(str).to_numpy()
    print(f"keys: {len(kseq):,} train records; queries: {len(qseq):,} test_unseen records\n")
    print("| features | 1-NN genus unseen (%) | seconds |")
    print("|---|---:|---:|")
    runs = [(f"overlapping {k}-mer frequency", overlapping, int(k)) for k in args.k_overlapping.split(",") if k]
    runs += [(f"non-overlapping {k}-mer tokens (frame 0)", non_overlapping, int(k))
             for k in args.k_tokens.split(",") if k]
    for name, features, k in runs:
        t0 = time.perf_counter()
        nn = cosine_1nn(features(kseq, k), features(qseq, k))
        acc = 100.0 * float(np.mean(kgen[nn] == qgen))
        print(f"| {name} | {acc:.2f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
