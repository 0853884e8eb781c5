"""End-to-end data pipeline on synthetic data: seconds and peak memory per step.

Steps: synthesize, write CSV, read CSV, clean, unique, statistics, split,
prepare (tokenized shards of all splits). Each row count runs in a fresh
subprocess so that peak RSS is per size, not cumulative.

    python benchmarks/bench_data_pipeline.py                 # 100k, 1M, 5M
    python benchmarks/bench_data_pipeline.py --rows 20000    # quick

Baselines measured in the same run: the statistics step is compared with a
pandas-only computation (``value_counts``/``nunique`` per rank and a groupby
entropy), and ``unique`` with ``pandas.factorize``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pandas_statistics(df):
    import numpy as np

    from bioscan_kmer.data.schema import RANKS

    out = []
    for rank in RANKS:
        lab = df[df[rank].notna()]
        counts = lab[rank].value_counts()
        counts = counts[counts > 0]
        per = lab.groupby([rank, "dna_barcode"], observed=True).size()
        p = per / per.groupby(level=0, observed=True).transform("sum")
        sdi = (-(p * np.log2(p + 1e-12))).groupby(level=0, observed=True).sum()
        out.append((rank, len(lab), len(counts), lab["dna_barcode"].nunique(), sdi.mean()))
    return out


def run_one(n: int, workdir: Path, seed: int) -> dict:
    """Run every step once at ``n`` rows (in this process)."""
    import numpy as np
    import pandas as pd

    from bioscan_kmer import clean, unique
    from bioscan_kmer.data.prepare import prepare_shards
    from bioscan_kmer.data.reading import read_metadata, write_metadata_csv
    from bioscan_kmer.data.splits import partition
    from bioscan_kmer.data.statistics import dataset_statistics
    from bioscan_kmer.data.synthetic import synthetic_bioscan

    steps = []

    def timed(name, fn, *, units=None):
        before = _rss_mb()
        t = time.perf_counter()
        result = fn()
        sec = time.perf_counter() - t
        steps.append({"step": name, "seconds": sec, "rss_mb": _rss_mb(), "rss_delta_mb": _rss_mb() - before,
                      "peak_mb": _peak_mb(), "per_s": (units / sec) if units else None})
        return result

    # Synthesis runs in its own process: its memory is not the pipeline's.
    csv = workdir / f"meta_{n}.csv"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c",
                    "import sys; from bioscan_kmer.data.synthetic import synthetic_bioscan as s; "
                    "from bioscan_kmer.data.reading import write_metadata_csv as w; "
                    f"w(s({n}, {seed}, with_splits=False), {str(csv)!r})"], check=True)
    steps.append({"step": "synthesize+write_csv (subprocess)", "seconds": time.perf_counter() - t,
                  "rss_mb": float("nan"), "rss_delta_mb": float("nan"), "peak_mb": float("nan"),
                  "per_s": n / (time.perf_counter() - t)})
    csv_mb = csv.stat().st_size / 2**20
    df = timed("read_csv", lambda: read_metadata(csv), units=n)
    cleaned = timed("clean", lambda: clean(df["dna_barcode"]), units=n)
    timed("unique", lambda: unique(cleaned), units=n)
    timed("statistics", lambda: dataset_statistics(df), units=n)
    df["split"] = timed("split", lambda: partition(df, seed=seed), units=n)
    res = timed("prepare", lambda: prepare_shards(df, workdir / f"shards_{n}", force=True), units=n)
    pipeline_peak = _peak_mb()
    # Baselines last, so that their memory does not count as the pipeline's.
    timed("baseline: pandas.factorize (vs unique)", lambda: pd.factorize(pd.Series(cleaned)), units=n)
    del cleaned
    if n <= 1_000_000:
        timed("baseline: pandas statistics", lambda: _pandas_statistics(df), units=n)
    return {"rows": n, "csv_mb": csv_mb, "steps": steps, "shard_rows": res["rows"], "pipeline_peak_mb": pipeline_peak}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="where CSVs and shards go (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write results to this JSON file")
    parser.add_argument("--_child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child is not None:
        print(json.dumps(run_one(args._child, Path(args.workdir), args.seed)))
        return 0

    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for n in args.rows:
            proc = subprocess.run(
                [sys.executable, __file__, "--_child", str(n), "--workdir", tmp, "--seed", str(args.seed)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            for f in Path(tmp).glob("meta_*.csv"):
                f.unlink()

    print(f"threads: {os.cpu_count()} CPUs")
    for r in results:
        print(f"\n{r['rows']:,} rows  (CSV {r['csv_mb']:.0f} MiB)")
        print(f"  {'step':34s} {'seconds':>8s} {'rows/s':>12s} {'RSS MiB':>8s} {'peak MiB':>9s}")
        for s in r["steps"]:
            rate = f"{s['per_s']:,.0f}" if s["per_s"] else ""
            if s["peak_mb"] != s["peak_mb"]:  # NaN: measured in a subprocess
                print(f"  {s['step']:34s} {s['seconds']:8.2f} {rate:>12s}")
                continue
            print(f"  {s['step']:34s} {s['seconds']:8.2f} {rate:>12s} {s['rss_mb']:8.0f} {s['peak_mb']:9.0f}")
        by = {s["step"]: s["seconds"] for s in r["steps"]}
        if "baseline: pandas statistics" in by:
            print(f"  statistics vs pandas baseline: {by['baseline: pandas statistics'] / by['statistics']:.1f}x faster")
        print(f"  unique vs pandas.factorize: {by['baseline: pandas.factorize (vs unique)'] / by['unique']:.1f}x faster")
        print(f"  pipeline peak RSS {r['pipeline_peak_mb']:.0f} MiB = {r['pipeline_peak_mb'] / r['csv_mb']:.2f}x the CSV size")
    if len(results) > 1:
        print("\ngrowth (seconds per step, last size / first size; rows ratio "
              f"{results[-1]['rows'] / results[0]['rows']:.0f}x):")
        first = {s["step"]: s["seconds"] for s in results[0]["steps"]}
        last = {s["step"]: s["seconds"] for s in results[-1]["steps"]}
        for k in last:
            if k in first and first[k] > 0:
                print(f"  {k:34s} {last[k] / first[k]:8.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
