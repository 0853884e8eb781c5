"""End-to-end data pipeline on synthetic data: seconds and peak memory per step.

Steps: synthesize, write CSV, read CSV, clean, unique, statistics, split,
prepare (shards of all splits: sequence shards since format 2, tokenized shards before). Each row count runs in a fresh
subprocess. Peak memory is measured per step: the kernel's high-water mark of
this process's RSS (VmHWM) is reset before each step (``/proc/self/clear_refs``),
so a step's peak includes what earlier steps left alive (the table) but not
their transient memory. The pipeline peak is the largest step peak.

Each step keeps only what the pipeline keeps: the table; the cleaned barcodes
and their distinct values (Arrow arrays) are dropped after the unique and
tokenize steps, as ``prepare`` cleans on its own. ``tokenize`` is the core's
speed on the distinct cleaned barcodes: the reference for ``prepare``, which
writes about as many rows (the deduplicated pretraining set plus the labelled
splits).

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


def _reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux); False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
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
    import pandas as pd

    from bioscan_kmer import clean, tokenize, unique
    from bioscan_kmer.data.prepare import prepare_shards
    from bioscan_kmer.data.reading import read_metadata
    from bioscan_kmer.data.splits import partition
    from bioscan_kmer.data.statistics import dataset_statistics

    steps = []

    def timed(name, fn, *, units=None, pipeline=True):
        before = _rss_mb()
        per_step = _reset_peak()
        t = time.perf_counter()
        result = fn()
        sec = time.perf_counter() - t
        steps.append({"step": name, "seconds": sec, "rss_mb": _rss_mb(), "rss_delta_mb": _rss_mb() - before,
                      "peak_mb": _peak_mb(), "peak_is_per_step": per_step, "pipeline": pipeline,
                      "units": units, "per_s": (units / sec) if units else None})
        return result

    # Synthesis runs in its own process: its memory is not the pipeline's. Generation
    # and writing the CSV are timed apart.
    csv = workdir / f"meta_{n}.csv"
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c",
                          "import json, time; from bioscan_kmer.data.synthetic import synthetic_bioscan as s; "
                          "from bioscan_kmer.data.reading import write_metadata_csv as w; "
                          f"t = time.perf_counter(); df = s({n}, {seed}, with_splits=False); "
                          "g = time.perf_counter() - t; t = time.perf_counter(); "
                          f"w(df, {str(csv)!r}); print(json.dumps([g, time.perf_counter() - t]))"],
                         check=True, capture_output=True, text=True).stdout
    gen_s, write_s = json.loads(out.strip().splitlines()[-1])
    total = time.perf_counter() - t
    nan = float("nan")
    for name, sec in (("synthesize (subprocess)", gen_s), ("write_csv (subprocess)", write_s),
                      ("synthesize+write_csv+startup", total)):
        steps.append({"step": name, "seconds": sec, "rss_mb": nan, "rss_delta_mb": nan, "peak_mb": nan,
                      "pipeline": False, "units": n, "per_s": n / sec})
    csv_mb = csv.stat().st_size / 2**20
    df = timed("read_csv", lambda: read_metadata(csv), units=n)
    cleaned = timed("clean", lambda: clean(df["dna_barcode"], output="arrow"), units=n)
    uniq = timed("unique", lambda: unique(cleaned)[0], units=n)
    del cleaned
    timed("tokenize (distinct cleaned, core)", lambda: tokenize(uniq, dtype="uint16", mask_dtype="uint8"),
          units=len(uniq))
    n_distinct = len(uniq)
    del uniq
    timed("statistics", lambda: dataset_statistics(df), units=n)
    df["split"] = timed("split", lambda: partition(df, seed=seed), units=n)
    res = timed("prepare", lambda: prepare_shards(df, workdir / f"shards_{n}", force=True), units=n)
    steps[-1]["units"] = sum(res["rows"].values())
    steps[-1]["per_s"] = steps[-1]["units"] / steps[-1]["seconds"]
    pipeline_peak = max(s["peak_mb"] for s in steps if s["pipeline"])
    # Baselines last; their memory is not the pipeline's.
    import pyarrow as pa  # noqa: F401  (pandas' str dtype is Arrow-backed)

    cleaned = pd.Series(clean(df["dna_barcode"], output="arrow"), dtype="str")
    timed("baseline: pandas.factorize (vs unique)", lambda: pd.factorize(cleaned), units=n, pipeline=False)
    del cleaned
    if n <= 1_000_000:
        timed("baseline: pandas statistics", lambda: _pandas_statistics(df), units=n, pipeline=False)
    return {"rows": n, "csv_mb": csv_mb, "steps": steps, "shard_rows": res["rows"],
            "distinct_cleaned": n_distinct, "pipeline_peak_mb": pipeline_peak}


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
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
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
        print(f"  {'step':34s} {'seconds':>8s} {'rows/s':>12s} {'RSS MiB':>8s} {'peak MiB':>9s}  (peak: per step)")
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
        rate = {s["step"]: s["per_s"] for s in r["steps"]}
        print(f"  prepare: {rate['prepare']:,.0f} shard rows/s; core tokenize alone: "
              f"{rate['tokenize (distinct cleaned, core)']:,.0f} rows/s")
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
