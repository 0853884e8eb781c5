"""One table comparing the native core with the usual alternatives, same inputs, same run.

    python benchmarks/compare_core.py                 # 1M barcodes, 5M label rows
    python benchmarks/compare_core.py --n 100000 --quick

Every competitor is checked to give the same result as the core before it is timed.
Slow competitors run on a subset (``--slow-n``) and are reported per sequence; the
ratio column is always "competitor time per row / core time per row", measured in the
same process minutes apart, since absolute timings on shared machines drift.
Peak memory is the growth of the process's resident high-water mark during the call
(Linux: reset through /proc/self/clear_refs before each measurement).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import barcodes as data  # noqa: E402
import competitors  # noqa: E402

import bioscan_kmer as bk  # noqa: E402


def _rss_kib(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(fn, repeat: int):
    """Best wall time over `repeat` runs, peak RSS growth (MiB) and the last result."""
    best, peak, result = float("inf"), 0.0, None
    for _ in range(repeat):
        result = None
        _reset_peak()
        before = _rss_kib("VmRSS")
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
        peak = max(peak, (_rss_kib("VmHWM") - before) / 1024)
    return best, peak, result


class Table:
    def __init__(self):
        self.rows = []

    def add(self, task, impl, rows, seconds, peak_mib, baseline_per_row=None, bases=None):
        per_row = seconds / rows
        self.rows.append({
            "task": task, "implementation": impl, "rows": rows, "seconds": seconds,
            "rows_per_s": rows / seconds, "bases_per_s": (bases / seconds) if bases else None,
            "peak_mib": peak_mib,
            "slower_than_core": (per_row / baseline_per_row) if baseline_per_row else 1.0,
        })
        r = self.rows[-1]
        print(f"  {task:<16} {impl:<40} {seconds:9.3f} s  x{r['slower_than_core']:.1f}", flush=True)
        return per_row

    def markdown(self) -> str:
        out = ["| task | implementation | rows | seconds | rows/s | MB of bases/s | peak MiB | time vs core |",
               "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            bases = f"{r['bases_per_s'] / 1e6:,.0f}" if r["bases_per_s"] else "-"
            out.append(f"| {r['task']} | {r['implementation']} | {r['rows']:,} | {r['seconds']:.3f} | "
                       f"{r['rows_per_s']:,.0f} | {bases} | {r['peak_mib']:,.0f} | {r['slower_than_core']:.1f}x |")
        return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="barcodes (default 1M)")
    ap.add_argument("--sdi-rows", type=int, default=5_000_000, help="label rows for grouped Shannon (default 5M)")
    ap.add_argument("--slow-n", type=int, default=50_000, help="rows for the slow competitors")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="skip Numba and Hugging Face tokenizers")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)

    cores = bk.resolve_threads(None)
    print(f"generating {args.n:,} barcodes ...", flush=True)
    seqs = data.barcodes(args.n)
    nbases = sum(map(len, seqs))
    slow = seqs[: args.slow_n]
    slow_bases = sum(map(len, slow))
    table = Table()

    # -- tokenize -------------------------------------------------------------------
    want = bk.tokenize(slow)[0]
    bk.tokenize(seqs, threads=cores)  # first touch of the output pages
    t1, m1, _ = measure(lambda: bk.tokenize(seqs, threads=1), args.repeat)
    core_row = table.add("tokenize", "bioscan_kmer, 1 thread (int64 ids)", args.n, t1, m1, bases=nbases)
    t, m, _ = measure(lambda: bk.tokenize(seqs, threads=cores), args.repeat)
    table.add("tokenize", f"bioscan_kmer, {cores} threads (int64 ids)", args.n, t, m, core_row, nbases)
    t, m, _ = measure(lambda: bk.tokenize(seqs, threads=1, dtype=np.uint16), args.repeat)
    table.add("tokenize", "bioscan_kmer, 1 thread (uint16 ids)", args.n, t, m, core_row, nbases)
    competitors_ = [("pure Python loop (BarcodeBERT's algorithm)", competitors.python_loop, slow)]
    if not args.quick:
        competitors_.append(("Hugging Face tokenizers WordLevel", competitors.hf_tokenizers, slow))
        nb = competitors.numba_kernel()
        nb(slow[:10])  # compile outside the timing
        competitors_.append(("Numba njit loop (+ str -> bytes)", nb, seqs))
    for name, fn, rows in competitors_:
        got = fn(rows[: len(slow)])
        if not np.array_equal(got, want[: len(got)]):
            raise SystemExit(f"{name} does not reproduce the core's ids")
        # The pure-Python loop defines the headline ratio: best of `repeat` runs too.
        runs = args.repeat if (rows is not slow or fn is competitors.python_loop) else 1
        t, m, _ = measure(lambda: fn(rows), runs)
        table.add("tokenize", name, len(rows), t, m, core_row, slow_bases if rows is slow else nbases)

    # -- clean ----------------------------------------------------------------------
    raw = data.raw_barcodes(seqs)
    import python_clean as ref_clean

    t1, m1, _ = measure(lambda: bk.clean(raw, threads=1), args.repeat)
    core_row = table.add("clean", "bioscan_kmer, 1 thread", args.n, t1, m1, bases=nbases)
    t, m, _ = measure(lambda: bk.clean(raw, threads=cores), args.repeat)
    table.add("clean", f"bioscan_kmer, {cores} threads", args.n, t, m, core_row, nbases)
    raw_slow = raw[: args.slow_n]
    assert [ref_clean.clean(s) for s in raw_slow[:2000]] == bk.clean(raw_slow[:2000])
    t, m, _ = measure(lambda: [ref_clean.clean(s) for s in raw_slow], 1)
    table.add("clean", "Python str methods (upper/replace/translate/strip)", len(raw_slow), t, m, core_row, slow_bases)

    # -- unique ---------------------------------------------------------------------
    import pandas as pd

    objects = np.array(seqs, dtype=object)
    t1, m1, res = measure(lambda: bk.unique(seqs, threads=1), args.repeat)
    core_row = table.add("unique", "bioscan_kmer, 1 thread (from list)", args.n, t1, m1, bases=nbases)
    t, m, _ = measure(lambda: bk.unique(seqs, threads=cores), args.repeat)
    table.add("unique", f"bioscan_kmer, {cores} threads (from list)", args.n, t, m, core_row, nbases)
    codes, uniques = pd.factorize(objects)
    assert np.array_equal(codes, res[1]) and list(uniques) == res[0]
    t, m, _ = measure(lambda: pd.unique(objects), args.repeat)
    table.add("unique", "pandas.unique (object array)", args.n, t, m, core_row, nbases)
    t, m, _ = measure(lambda: pd.factorize(objects), args.repeat)
    table.add("unique", "pandas.factorize (object array)", args.n, t, m, core_row, nbases)
    if not args.quick:
        t, m, _ = measure(lambda: np.unique(objects, return_inverse=True, return_counts=True), 1)
        table.add("unique", "numpy.unique (sorts; object array)", args.n, t, m, core_row, nbases)

    # -- grouped Shannon ------------------------------------------------------------
    groups, items = data.labels(args.sdi_rows, groups=20_000, items=args.sdi_rows // 2)
    t1, m1, (keys, values) = measure(lambda: bk.paper_sdi(groups, items, threads=1), args.repeat)
    core_row = table.add("grouped SDI", "bioscan_kmer.paper_sdi, 1 thread", args.sdi_rows, t1, m1)
    t, m, _ = measure(lambda: bk.paper_sdi(groups, items, threads=cores), args.repeat)
    table.add("grouped SDI", f"bioscan_kmer.paper_sdi, {cores} threads", args.sdi_rows, t, m, core_row)
    try:
        from skbio.diversity.alpha import shannon as skbio_shannon
    except ImportError:
        skbio_shannon = None
    if skbio_shannon is not None:
        def skbio_loop():
            frame = pd.DataFrame({"g": groups, "i": items})
            counts = frame.groupby(["g", "i"]).size()
            return {g: skbio_shannon(c.to_numpy(), base=2) for g, c in counts.groupby(level=0)}

        t, m, res = measure(skbio_loop, 1)
        # scikit-bio has no epsilon inside the log: compare with the plain index.
        plain = bk.grouped_shannon(groups, items, base=2)[1]
        for g in list(res)[:500]:
            assert abs(res[g] - plain[g]) < 1e-9, (g, res[g], plain[g])
        table.add("grouped SDI", "pandas groupby + scikit-bio shannon per group", args.sdi_rows, t, m, core_row)

    md = table.markdown()
    print()
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    meta = {"date": stamp, "machine": platform.machine(), "cores": cores, "python": platform.python_version(),
            "n": args.n, "sdi_rows": args.sdi_rows, "command": " ".join(["python", *sys.argv])}
    (args.out / "core_comparison.json").write_text(json.dumps({"meta": meta, "rows": table.rows}, indent=1))
    (args.out / "core_comparison.md").write_text(
        f"# Core comparison ({stamp}, {cores} cores, {platform.machine()})\n\n`{meta['command']}`\n\n{md}\n")
    print(f"\nwritten to {args.out}/core_comparison.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
