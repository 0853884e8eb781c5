"""Evaluation benchmark: embedding throughput, each probe's time, k-NN at 100k keys.

Usage::

    python benchmarks/bench_eval.py --records 10000
    python benchmarks/bench_eval.py --records 100000 --knn-keys 100000 --json out.json
    python benchmarks/bench_eval.py --ward-only --ward-points 50000   # zero-shot clustering's Ward

Every timing is printed next to the absolute throughput and, where one exists, the ratio
against a named baseline measured in the same run:

- embedding: batched masked-mean features vs. one sequence at a time (batch 1);
- cosine k-NN: our blocked torch search vs. scikit-learn ``NearestNeighbors`` (brute
  force, cosine), same answer;
- edit-distance 1-NN: the q-gram-pruned search vs. aligning every query with every key;
- Ward clustering (``--ward-points``): the exact O(n)-memory tree (fastcluster) and its
  cuts, time and peak memory, each in a fresh process, vs. SciPy's O(n^2)-memory
  ``ward`` + ``cut_tree`` on as many points as ``--ward-scipy-points`` (same partitions).

The encoder is the ``tiny`` preset with random weights (speed does not depend on the
weights); pass ``--preset`` for a larger one. Timings never gate anything.
On a shared or oversubscribed CPU, ``OMP_WAIT_POLICY=PASSIVE`` avoids OpenMP spin-waits
that can make small torch operations 10x slower.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _ward_child(method: str, n: int, dim: int, n_clusters: int, seed: int) -> dict:
    """One Ward fit + cut in this (fresh) process: seconds and peak RSS above the start."""
    import resource

    from sklearn.datasets import make_blobs

    # Clustered points, as UMAP's 50-d output of barcodes is.
    x, _ = make_blobs(n_samples=n, n_features=dim, centers=n_clusters, random_state=seed)
    from scipy.cluster.hierarchy import cut_tree, ward

    from bioscan_kmer.eval.probes import cut_tree_at, ward_tree

    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if method == "fastcluster":
        labels = cut_tree_at(ward_tree(x), n_clusters)
    else:
        labels = cut_tree(ward(x), n_clusters=[n_clusters])[:, 0]
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"method": method, "n": n, "dim": dim, "seconds": seconds, "peak_mib": peak / 1024,
            "peak_mib_above_start": (peak - start_rss) / 1024, "labels": labels.tolist()}


def _ward_in_fresh_process(method, n, dim, n_clusters, seed):
    import subprocess
    import sys

    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import bench_eval as b; "
            "print(json.dumps(b._ward_child(sys.argv[2], *map(int, sys.argv[3:]))))")
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), method, str(n), str(dim),
                           str(n_clusters), str(seed)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def ward_benchmark(n, dim, n_clusters, scipy_n, seed, report):
    """Exact Ward at ``n`` points (fastcluster) and the SciPy path at ``scipy_n``."""
    fc = _ward_in_fresh_process("fastcluster", n, dim, n_clusters, seed)
    report(f"Ward fastcluster {n:,} x {dim}: tree + cut", fc["seconds"], n, "point")
    print(f"    peak memory above start: {fc['peak_mib_above_start']:,.0f} MiB "
          f"(the data itself: {n * dim * 8 / 2**20:,.0f} MiB; process peak {fc['peak_mib']:,.0f} MiB)")
    if scipy_n:
        small = _ward_in_fresh_process("fastcluster", scipy_n, dim, n_clusters, seed)
        ref = _ward_in_fresh_process("scipy", scipy_n, dim, n_clusters, seed)
        from sklearn.metrics import adjusted_rand_score

        same = adjusted_rand_score(ref["labels"], small["labels"])
        report(f"Ward fastcluster {scipy_n:,} x {dim}", small["seconds"], scipy_n, "point",
               "scipy ward + cut_tree", ref["seconds"])
        print(f"    peak memory above start: fastcluster {small['peak_mib_above_start']:,.0f} MiB, "
              f"scipy {ref['peak_mib_above_start']:,.0f} MiB; same partition (ARI) {same:.6f}")
    return fc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000, help="synthetic records (default 10000)")
    parser.add_argument("--preset", default="tiny", help="encoder preset (random weights)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--embed-max", type=int, default=5000, help="sequences for the throughput test")
    parser.add_argument("--knn-keys", type=int, default=100_000)
    parser.add_argument("--knn-queries", type=int, default=2000)
    parser.add_argument("--knn-dim", type=int, default=768)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ward-points", type=int, default=0, help="also time exact Ward on this many points")
    parser.add_argument("--ward-dim", type=int, default=50, help="dimensions of the Ward input (UMAP's 50)")
    parser.add_argument("--ward-clusters", type=int, default=1000)
    parser.add_argument("--ward-scipy-points", type=int, default=10_000,
                        help="points for the SciPy comparison (O(n^2) memory; 0 skips it)")
    parser.add_argument("--ward-only", action="store_true", help="only the Ward benchmark")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.ward_only and not args.ward_points:
        parser.error("--ward-only needs --ward-points")

    import bioscan_kmer
    from bioscan_kmer.data.synthetic import synthetic_bioscan
    from bioscan_kmer.eval.baselines import edit_distance_nn, kmer_frequencies
    from bioscan_kmer.eval.embeddings import embed_sequences
    from bioscan_kmer.eval.knn import cosine_knn
    from bioscan_kmer.eval.pipeline import (
        CNNModel,
        EditDistanceModel,
        EncoderModel,
        EvalSettings,
        KmerFrequencyModel,
        evaluate_models,
        prepare_splits,
    )
    from bioscan_kmer.model import Encoder, get_preset

    rows = []

    def report(name, seconds, n=None, unit="seq", baseline=None, baseline_s=None):
        row = {"step": name, "seconds": round(seconds, 3)}
        text = f"{name:42s} {seconds:9.2f} s"
        if n:
            row[f"{unit}_per_s"] = n / seconds
            text += f"  {n / seconds:12,.0f} {unit}/s"
        if baseline_s:
            row["baseline"] = baseline
            row["speedup_vs_baseline"] = baseline_s / seconds
            text += f"  {baseline_s / seconds:6.1f}x vs {baseline}"
        rows.append(row)
        print(text, flush=True)

    if args.ward_points:
        ward_benchmark(args.ward_points, args.ward_dim, args.ward_clusters, args.ward_scipy_points, args.seed, report)
        if args.ward_only:
            if args.json:
                with open(args.json, "w") as fh:
                    json.dump({"args": vars(args), "rows": rows}, fh, indent=2)
            return

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}, torch threads {torch.get_num_threads()}, records {args.records:,}")
    df, s = _timed(synthetic_bioscan, args.records, args.seed)
    report("synthetic table + split", s, args.records, "records")
    settings = EvalSettings(seed=args.seed, device=device, batch_size=args.batch_size,
                            finetune_epochs=args.finetune_epochs, cnn_epochs=args.finetune_epochs,
                            cluster_max_points=20_000, linear_max_iter=100)
    data, s = _timed(prepare_splits, df, settings)
    report("select + clean splits", s)
    print("split sizes: " + ", ".join(f"{k} {data.size(k):,}" for k in data.seqs))

    tok = bioscan_kmer.KmerTokenizer(k=4, max_len=660, preset="bert")
    cfg = get_preset(args.preset)
    cfg = cfg.with_tokenizer(tok) if not cfg.vocab_locked else cfg
    if cfg.vocab_locked:
        tok = bioscan_kmer.KmerTokenizer(k=cfg.k, max_len=660, preset=cfg.tokenizer_preset)
    torch.manual_seed(args.seed)
    encoder = Encoder(cfg).to(device).eval()

    # Embedding throughput against batch size 1.
    seqs = df["dna_barcode"].iloc[: args.embed_max].tolist()
    seqs = bioscan_kmer.clean(seqs)
    _, base_s = _timed(embed_sequences, encoder, tok, seqs[:100], batch_size=1, device=device)
    base_s *= len(seqs) / 100
    _, s = _timed(embed_sequences, encoder, tok, seqs, batch_size=args.batch_size, device=device)
    report(f"embedding ({args.preset}, batch {args.batch_size})", s, len(seqs), "seq", "batch 1", base_s)

    # Every probe, through the pipeline, on this table's splits.
    models = [EncoderModel(args.preset, encoder, tok), CNNModel(), KmerFrequencyModel(4), EditDistanceModel()]
    run, s = _timed(evaluate_models, data, models, settings)
    for name, res in run["results"].items():
        for step, sec in res["timings"].items():
            n = None
            if step == "features":
                n = sum(data.size(k) for k in data.seqs)
            report(f"{name}: {step}", sec, n)
    report("whole table", s)

    # Cosine k-NN at scale against scikit-learn's brute force.
    rng = np.random.default_rng(args.seed)
    keys = rng.normal(size=(args.knn_keys, args.knn_dim)).astype(np.float32)
    queries = rng.normal(size=(args.knn_queries, args.knn_dim)).astype(np.float32)
    from sklearn.neighbors import NearestNeighbors

    nn_ = NearestNeighbors(n_neighbors=5, metric="cosine", algorithm="brute").fit(keys)
    (_, ref), base_s = _timed(nn_.kneighbors, queries)
    (idx, _), s = _timed(cosine_knn, queries, keys, 5, device=device)
    agree = float(np.mean(idx[:, 0] == ref[:, 0]))
    report(f"cosine 5-NN, {args.knn_keys:,} keys x {args.knn_queries:,} q", s, args.knn_queries, "query",
           "sklearn brute", base_s)
    print(f"    top-1 agreement with scikit-learn: {agree:.4f}")

    # Edit-distance 1-NN: pruning against all-pairs alignment on a slice.
    import edlib

    train = data.seqs["train"][:2000]
    q = data.seqs["test_unseen"][:30] or data.seqs["test"][:30]
    (_, dist), s = _timed(edit_distance_nn, train, q)
    t0 = time.perf_counter()
    brute = [min(edlib.align(x, k)["editDistance"] for k in train) for x in q]
    base_s = time.perf_counter() - t0
    assert list(dist) == brute, "pruned edit-distance search disagrees with brute force"
    report(f"edit-distance 1-NN, {len(train):,} keys x {len(q)} q", s, len(q), "query", "all pairs", base_s)

    # k-mer frequency features alone.
    _, s = _timed(kmer_frequencies, seqs, 4)
    report("4-mer frequency features", s, len(seqs), "seq")

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "device": device, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
