"""One table comparing the native core with the usual alternatives, same inputs, same run.

    python benchmarks/compare_core.py                 # 1M barcodes, 5M label rows
    python benchmarks/compare_core.py --n 100000 --quick

Every implementation, ours and the competitors', gets the same treatment: one untimed
warm-up call on its timed input (first touch of output pages, JIT compilation, caches),
then the best wall time of ``--repeat`` calls. The result of the last timed call is then
checked against the core's result on the same rows, whole: tokenize ids (every row,
Numba's 1M included), cleaned strings (every row of the Python loop's subset),
``pandas.unique``/``factorize``/``numpy.unique`` (values, codes, counts, all rows), and
the scikit-bio Shannon index of every group. A mismatch stops the run.
Slow competitors run on a subset (``--slow-n``) and are reported per sequence; the
ratio column is always "competitor time per row / core time per row", measured in the
same process minutes apart, since absolute timings on shared machines drift. The
threads column says how many threads an implementation uses (HF tokenizers'
``encode_batch`` runs on all cores).
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
    """One untimed warm-up call, then the best wall time over ``repeat`` calls, the peak
    RSS growth (MiB) of the timed calls and the last timed call's result."""
    fn()
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


def check(name: str, same: bool, what: str) -> None:
    """Stop the run when a competitor does not reproduce the core's result."""
    if not same:
        raise SystemExit(f"{name} does not reproduce the core's {what}")


class Table:
    def __init__(self):
        self.rows = []

    def add(self, task, impl, threads, rows, seconds, peak_mib, baseline_per_row=None, bases=None):
        per_row = seconds / rows
        self.rows.append({
            "task": task, "implementation": impl, "threads": str(threads), "rows": rows, "seconds": seconds,
            "rows_per_s": rows / seconds, "bases_per_s": (bases / seconds) if bases else None,
            "peak_mib": peak_mib,
            "slower_than_core": (per_row / baseline_per_row) if baseline_per_row else 1.0,
        })
        r = self.rows[-1]
        print(f"  {task:<16} {impl:<48} {str(threads):>8} {seconds:9.3f} s  x{r['slower_than_core']:.1f}",
              flush=True)
        return per_row

    def markdown(self) -> str:
        out = ["| task | implementation | threads | rows | seconds | rows/s | MB of bases/s | peak MiB "
               "| time vs core |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            bases = f"{r['bases_per_s'] / 1e6:,.0f}" if r["bases_per_s"] else "-"
            out.append(f"| {r['task']} | {r['implementation']} | {r['threads']} | {r['rows']:,} | "
                       f"{r['seconds']:.3f} | {r['rows_per_s']:,.0f} | {bases} | {r['peak_mib']:,.0f} | "
                       f"{r['slower_than_core']:.1f}x |")
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
    t1, m1, want = measure(lambda: bk.tokenize(seqs, threads=1)[0], args.repeat)
    core_row = table.add("tokenize", "bioscan_kmer (int64 ids)", 1, args.n, t1, m1, bases=nbases)
    t, m, got = measure(lambda: bk.tokenize(seqs, threads=cores)[0], args.repeat)
    check(f"bioscan_kmer with {cores} threads", np.array_equal(got, want), "ids")
    table.add("tokenize", "bioscan_kmer (int64 ids)", cores, args.n, t, m, core_row, nbases)
    t, m, got = measure(lambda: bk.tokenize(seqs, threads=1, dtype=np.uint16)[0], args.repeat)
    check("bioscan_kmer with uint16 ids", np.array_equal(got, want), "ids")
    table.add("tokenize", "bioscan_kmer (uint16 ids)", 1, args.n, t, m, core_row, nbases)
    del got
    competitors_ = [("pure Python loop (BarcodeBERT's algorithm)", 1, competitors.python_loop, slow)]
    if not args.quick:
        competitors_.append(("Hugging Face tokenizers WordLevel", f"{cores} (Rayon)", competitors.hf_tokenizers,
                             slow))
        competitors_.append(("Numba njit loop (+ str -> bytes)", 1, competitors.numba_kernel(), seqs))
    for name, threads, fn, rows in competitors_:
        t, m, got = measure(lambda: fn(rows), args.repeat)
        check(name, np.array_equal(got, want[: len(rows)]), "ids")
        del got
        table.add("tokenize", name, threads, len(rows), t, m, core_row, slow_bases if rows is slow else nbases)
    del want

    # -- clean ----------------------------------------------------------------------
    raw = data.raw_barcodes(seqs)
    import python_clean as ref_clean

    t1, m1, want = measure(lambda: bk.clean(raw, threads=1), args.repeat)
    core_row = table.add("clean", "bioscan_kmer", 1, args.n, t1, m1, bases=nbases)
    t, m, got = measure(lambda: bk.clean(raw, threads=cores), args.repeat)
    check(f"bioscan_kmer with {cores} threads", got == want, "cleaned rows")
    table.add("clean", "bioscan_kmer", cores, args.n, t, m, core_row, nbases)
    raw_slow = raw[: args.slow_n]
    t, m, got = measure(lambda: [ref_clean.clean(s) for s in raw_slow], args.repeat)
    check("Python str methods", got == want[: len(raw_slow)], "cleaned rows")
    table.add("clean", "Python str methods (upper/replace/translate/strip)", 1, len(raw_slow), t, m, core_row,
              slow_bases)
    del raw, raw_slow, want, got

    # -- unique ---------------------------------------------------------------------
    import pandas as pd

    objects = np.array(seqs, dtype=object)
    t1, m1, (uniq, inverse, counts) = measure(lambda: bk.unique(seqs, threads=1), args.repeat)
    core_row = table.add("unique", "bioscan_kmer (from list)", 1, args.n, t1, m1, bases=nbases)
    t, m, got = measure(lambda: bk.unique(seqs, threads=cores), args.repeat)
    check(f"bioscan_kmer with {cores} threads", got[0] == uniq and np.array_equal(got[1], inverse)
          and np.array_equal(got[2], counts), "unique rows")
    table.add("unique", "bioscan_kmer (from list)", cores, args.n, t, m, core_row, nbases)
    t, m, got = measure(lambda: pd.unique(objects), args.repeat)
    check("pandas.unique", list(got) == uniq, "distinct rows")
    table.add("unique", "pandas.unique (object array)", 1, args.n, t, m, core_row, nbases)
    t, m, (codes, values) = measure(lambda: pd.factorize(objects), args.repeat)
    check("pandas.factorize", np.array_equal(codes, inverse) and list(values) == uniq, "codes")
    table.add("unique", "pandas.factorize (object array)", 1, args.n, t, m, core_row, nbases)
    if not args.quick:
        t, m, (np_uniq, np_inv, np_counts) = measure(
            lambda: np.unique(objects, return_inverse=True, return_counts=True), args.repeat)
        # numpy sorts: compare with the core's distinct rows in sorted order.
        order = np.argsort(np.array(uniq, dtype=object), kind="stable")
        check("numpy.unique", list(np_uniq) == [uniq[i] for i in order]
              and np.array_equal(np_counts, counts[order])
              and np.array_equal(np.argsort(order)[inverse], np_inv.reshape(-1)), "distinct rows and counts")
        table.add("unique", "numpy.unique (sorts; object array)", 1, args.n, t, m, core_row, nbases)
    del objects, got, codes, values

    # -- grouped Shannon ------------------------------------------------------------
    groups, items = data.labels(args.sdi_rows, groups=20_000, items=args.sdi_rows // 2)
    t1, m1, (keys, paper) = measure(lambda: bk.paper_sdi(groups, items, threads=1), args.repeat)
    core_row = table.add("grouped SDI", "bioscan_kmer.paper_sdi", 1, args.sdi_rows, t1, m1)
    t, m, got = measure(lambda: bk.paper_sdi(groups, items, threads=cores)[1], args.repeat)
    check(f"bioscan_kmer with {cores} threads", np.array_equal(got, paper, equal_nan=True), "SDI")
    table.add("grouped SDI", "bioscan_kmer.paper_sdi", cores, args.sdi_rows, t, m, core_row)
    try:
        from skbio.diversity.alpha import shannon as skbio_shannon
    except ImportError:
        skbio_shannon = None
    if skbio_shannon is not None:
        def skbio_loop():
            frame = pd.DataFrame({"g": groups, "i": items})
            counts = frame.groupby(["g", "i"]).size()
            return {g: skbio_shannon(c.to_numpy(), base=2) for g, c in counts.groupby(level=0)}

        t, m, res = measure(skbio_loop, args.repeat)
        # scikit-bio has no epsilon inside the log: its result is the plain index, which
        # the core computes with epsilon=0; every group is compared.
        plain = bk.grouped_shannon(groups, items, base=2)[1]
        present = np.flatnonzero(~np.isnan(plain))
        check("pandas groupby + scikit-bio", sorted(res) == present.tolist()
              and np.allclose([res[g] for g in present], plain[present], rtol=1e-9, atol=1e-12), "SDI")
        # ... and the timed paper variant differs from it by the epsilon only.
        check("bioscan_kmer.paper_sdi", np.allclose(paper[present], plain[present], atol=1e-6), "plain index")
        table.add("grouped SDI", "pandas groupby + scikit-bio shannon per group", 1, args.sdi_rows, t, m, core_row)

    md = table.markdown()
    print()
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    meta = {"date": stamp, "machine": platform.machine(), "cores": cores, "python": platform.python_version(),
            "n": args.n, "sdi_rows": args.sdi_rows, "slow_n": args.slow_n, "repeat": args.repeat,
            "load_average_1min_at_end": load, "command": " ".join(["python", *sys.argv])}
    (args.out / "core_comparison.json").write_text(json.dumps({"meta": meta, "rows": table.rows}, indent=1))
    (args.out / "core_comparison.md").write_text(
        f"# Core comparison ({stamp}, {cores} cores, {platform.machine()})\n\n`{meta['command']}`\n\n"
        f"{args.n:,} barcodes, {args.sdi_rows:,} label rows, slow competitors on {args.slow_n:,} rows; "
        f"each implementation warmed up once, then best of {args.repeat}; every result checked against the "
        f"core's on the whole timed input. Load average at the end: {load:.1f}.\n\n{md}\n")
    print(f"\nwritten to {args.out}/core_comparison.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
