"""Dask (bioscan_kmer.distributed) against the single-process path on synthetic rows.

    python benchmarks/bench_distributed.py --rows 1000000 5000000 [--workers 2] [--partitions 8]

For each size: synthetic BIOSCAN-like metadata (bioscan_kmer.data.synthetic), held in
memory, then three steps timed both ways:

- clean+unique: bioscan_kmer.clean then bioscan_kmer.unique of the barcodes, versus
  distributed.clean then the two-stage distributed.unique (computed).
- statistics: data.statistics.dataset_statistics versus distributed.dataset_statistics.

Dask runs on a LocalCluster of --workers processes with one thread each (the core gets
threads=1 per task there); the single-process path uses every core. The ratio is
Dask time / single time: above 1 is Dask's overhead on one machine (scheduling,
moving partitions between processes, the merge stage). Input reading is not timed.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def timed(fn, repeat=2):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)

    import dask
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster, wait

    import bioscan_kmer as bk
    from bioscan_kmer import distributed as bkd
    from bioscan_kmer.data.statistics import dataset_statistics
    from bioscan_kmer.data.synthetic import synthetic_bioscan

    print(f"{'rows':>10} {'step':<14} {'single s':>9} {'dask s':>9} {'dask/single':>11} {'single rows/s':>14} "
          f"{'dask rows/s':>12}")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        for n in args.rows:
            df = synthetic_bioscan(n, seed=0, with_splits=False)
            cols = ["dna_barcode", "phylum", "class", "order", "family", "subfamily", "genus", "species"]
            df = df[cols]
            # Through Parquet files, as a cluster reads its input, then held on the workers.
            with tempfile.TemporaryDirectory() as tmp:
                for i, chunk in enumerate(np.array_split(np.arange(len(df)), args.partitions)):
                    df.iloc[chunk].to_parquet(os.path.join(tmp, f"part.{i}.parquet"), index=False)
                ddf = bkd.read_table(tmp).persist()
                wait(ddf)

            def single_unique():
                return bk.unique(bk.clean(df["dna_barcode"]))

            def dask_unique():
                return dask.compute(*bkd.unique(bkd.clean(ddf["dna_barcode"])))

            t_s, want = timed(single_unique, args.repeat)
            t_d, got = timed(dask_unique, args.repeat)
            assert got[0].tolist() == list(want[0]) and np.array_equal(got[1].to_numpy(), want[1])
            report(n, "clean+unique", t_s, t_d)

            t_s, want = timed(lambda: dataset_statistics(df), args.repeat)
            t_d, got = timed(lambda: bkd.dataset_statistics(ddf), args.repeat)
            for col in ("labelled", "categories", "unique_dna"):
                assert (got[col].to_numpy() == want[col].to_numpy()).all(), col
            report(n, "statistics", t_s, t_d)
            del ddf, df


def report(n, step, t_s, t_d):
    print(f"{n:>10,} {step:<14} {t_s:>9.2f} {t_d:>9.2f} {t_d / t_s:>11.2f} {n / t_s:>14,.0f} {n / t_d:>12,.0f}",
          flush=True)


if __name__ == "__main__":
    main()
