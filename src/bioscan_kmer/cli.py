"""The ``bioscan-kmer`` command line.

Sub-commands: ``synth``, ``clean``, ``stats``, ``split``, ``prepare``, ``demo``;
other parts of the package add theirs through modules exposing
``register(subparsers)`` (``bioscan_kmer.train.cli``, ``bioscan_kmer.eval.cli``).
Bad input ends with a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

from bioscan_kmer._atomic import replacing

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser", "run_demo", "UsageError"]

PLUGINS = ("bioscan_kmer.train.cli", "bioscan_kmer.eval.cli")


class UsageError(ValueError):
    """A problem with the user's input that the command reports in one line."""


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_table(df, path: str) -> Path:
    from bioscan_kmer.data.reading import write_fasta, write_metadata_csv

    p = Path(path)
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() in (".fa", ".fasta", ".fna", ".fas"):
        return write_fasta(p, df)
    if p.suffix.lower() == ".parquet":
        with replacing(p) as tmp:
            df.to_parquet(tmp, index=False)
        return p
    return write_metadata_csv(df, p)


# ---- commands -------------------------------------------------------------------------

def cmd_synth(args) -> int:
    from bioscan_kmer.data.synthetic import synthetic_bioscan

    if args.n_records < 1:
        raise UsageError(f"N must be at least 1, got {args.n_records}")
    t0 = time.perf_counter()
    df = synthetic_bioscan(args.n_records, args.seed, with_splits=not args.no_splits)
    path = _write_table(df, args.output)
    print(f"wrote {len(df):,} synthetic records to {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_clean(args) -> int:
    from bioscan_kmer import clean
    from bioscan_kmer._progress import progress_bar

    from bioscan_kmer.data.reading import read_any

    df = read_any(args.input)
    if args.column not in df.columns:
        raise UsageError(f"{args.input}: no column {args.column!r}")
    seqs = df[args.column]
    if seqs.isna().any():
        i = int(seqs.isna().to_numpy().nonzero()[0][0])
        raise UsageError(f"{args.input}: row {i} has no {args.column}")
    out = []
    step = 200_000
    with progress_bar(total=len(df), desc="clean", unit="seq", disable=args.quiet) as bar:
        for s in range(0, len(df), step):
            try:
                out.extend(clean(seqs.iloc[s:s + step], gaps=args.gaps, iupac=args.iupac,
                                 trim_n=not args.no_trim, max_length=args.max_length))
            except ValueError as exc:
                raise UsageError(f"{args.input}: rows from {s}: {exc}") from exc
            bar.update(min(step, len(df) - s))
    import numpy as np
    import pandas as pd

    df[args.column] = pd.array(np.asarray(out, dtype=object), dtype=pd.StringDtype("pyarrow", na_value=np.nan))
    empty = int((df[args.column].str.len() == 0).sum())
    path = _write_table(df, args.output)
    print(f"cleaned {len(df):,} barcodes -> {path}" + (f" ({empty:,} empty after cleaning)" if empty else ""))
    return 0


def cmd_stats(args) -> int:
    from bioscan_kmer.data.statistics import dataset_statistics, format_statistics, save_statistics
    from bioscan_kmer.data.schema import RANKS

    from bioscan_kmer.data.reading import read_any

    df = read_any(args.input, columns=[*RANKS, "dna_barcode"])
    table = dataset_statistics(df)
    print(format_statistics(table, "markdown" if args.markdown else "text"), end="")
    if args.out_dir:
        paths = save_statistics(df, args.out_dir, table=table)
        print("saved " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_split(args) -> int:
    from bioscan_kmer.data.splits import partition, split_summary

    from bioscan_kmer.data.reading import read_any

    df = read_any(args.input)
    df["split"] = partition(df, seed=args.seed, progress=not args.quiet)
    print(split_summary(df, df["split"]).to_string(index=False))
    if args.output:
        path = _write_table(df, args.output)
        print(f"wrote {path}")
    return 0


def cmd_prepare(args) -> int:
    from bioscan_kmer.data.prepare import prepare_shards

    path = Path(args.input)
    from bioscan_kmer.data.reading import read_any

    df = read_any(args.input)
    result = prepare_shards(
        df, args.output, k=args.k, max_len=args.max_len, preset=args.preset,
        splits=args.splits, seed=args.seed, fingerprint=_fingerprint(path) if path.is_file() else None,
        force=args.force, progress=not args.quiet,
    )
    state = "up to date, nothing redone" if result["skipped"] else f"written in {result['seconds']:.1f} s"
    print(f"shards in {result['out_dir']} ({state}):")
    for name, n in result["rows"].items():
        print(f"  {name:14s} {n:>10,} rows")
    return 0


def run_demo(out_dir, n_records: int = 50_000, seed: int = 0, progress: bool = True, *,
             model: bool = True, pretrain_steps: int = 300) -> dict:
    """Synthetic data -> clean -> dedup -> statistics -> splits -> shards -> pretraining
    -> evaluation, in ``out_dir``.

    Parameters
    ----------
    out_dir : str or path-like
        Created if missing; holds ``metadata.csv``, ``statistics.*``,
        ``category_sizes.png``, ``splits.csv`` and ``shards/``.
    n_records : int, default 50000
    seed : int, default 0
    progress : bool, default True
        Print each step and show progress bars.
    model : bool, default True
        Also pretrain the ``tiny`` encoder on the shards and print the evaluation table
        for it and the baselines (needs torch and the ``eval`` extra). False stops after
        the shards.
    pretrain_steps : int, default 300
        Optimizer steps of the demo pretraining (about 30-60 s on one CPU core).

    Returns
    -------
    dict
        ``out_dir``, ``metadata``, ``statistics`` (DataFrame), ``statistics_files``,
        ``split_sizes`` (DataFrame), ``n_records``, ``n_unique_barcodes``,
        ``shards`` (directory), ``shard_rows``, ``timings`` (seconds per step), and with
        ``model``: ``pretrain`` (see :func:`bioscan_kmer.train.demo_pretrain`) and
        ``evaluation`` (see :func:`bioscan_kmer.eval.demo_evaluate`).
    """
    import numpy as np

    from bioscan_kmer import clean, unique
    from bioscan_kmer.data.prepare import prepare_shards
    from bioscan_kmer.data.reading import write_metadata_csv
    from bioscan_kmer.data.splits import split_summary
    from bioscan_kmer.data.statistics import dataset_statistics, format_statistics, save_statistics
    from bioscan_kmer.data.synthetic import synthetic_bioscan

    out = Path(os.fspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    say = print if progress else (lambda *a, **k: None)
    timings = {}
    t = time.perf_counter()

    def step(name):
        nonlocal t
        now = time.perf_counter()
        timings[name] = now - t
        t = now

    n_steps = 8 if model else 6
    say(f"[1/{n_steps}] generating {n_records:,} synthetic BIOSCAN-like records (seed {seed})")
    df = synthetic_bioscan(n_records, seed)
    meta = write_metadata_csv(df, out / "metadata.csv")
    step("synthesize")
    say(f"[2/{n_steps}] cleaning barcodes (gaps removed, IUPAC -> N, N trimmed)")
    cleaned = clean(df["dna_barcode"])
    changed = int(np.sum(np.asarray(cleaned, dtype=object) != df["dna_barcode"].to_numpy(dtype=object)))
    step("clean")
    say(f"[3/{n_steps}] deduplicating")
    uniq, _, counts = unique(cleaned)
    step("unique")
    say(f"      {len(df):,} records, {changed:,} barcodes changed by cleaning, "
        f"{len(uniq):,} distinct cleaned barcodes (most repeated: {int(np.max(counts)):,}x)")
    say(f"[4/{n_steps}] statistics table (SPEC section 5)")
    table = dataset_statistics(df)
    files = save_statistics(df, out, table=table)
    step("statistics")
    say(format_statistics(table, "text"))
    say(f"[5/{n_steps}] splits (SPEC section 6)")
    sizes = split_summary(df, df["split"])
    sizes.to_csv(out / "splits.csv", index=False)
    step("split")
    say(sizes.to_string(index=False))
    say(f"[6/{n_steps}] writing tokenized shards (k=4, max_len=660)")
    shard = prepare_shards(df, out / "shards", seed=seed, progress=progress, force=True)
    step("prepare")
    result = {
        "out_dir": out, "metadata": meta, "statistics": table, "statistics_files": files,
        "split_sizes": sizes, "n_records": len(df), "n_unique_barcodes": len(uniq),
        "shards": out / "shards", "shard_rows": shard["rows"], "timings": timings,
    }
    if model:
        try:
            from bioscan_kmer.eval import demo_evaluate
            from bioscan_kmer.train import demo_pretrain
        except ImportError as exc:
            raise UsageError(f"the demo's model steps need the train and eval extras "
                             f"(pip install 'bioscan-kmer[train,eval]'), or use --data-only: {exc}") from None
        say(f"[7/{n_steps}] pretraining the tiny encoder (masked LM, {pretrain_steps} steps, CPU)")
        pre = demo_pretrain(out / "shards", out / "pretrain", steps=pretrain_steps, progress=progress, seed=seed)
        step("pretrain")
        say(f"      masked-LM loss {pre['first_loss']:.3f} -> {pre['last_loss']:.3f}; "
            f"checkpoint {pre['checkpoint']}; loss curve {pre['plot']}")
        say(f"[8/{n_steps}] evaluating the encoder and the baselines (SPEC section 8)")
        evaluation = demo_evaluate(df, pre["checkpoint"], out / "eval", progress=progress)
        step("evaluate")
        result.update(pretrain=pre, evaluation=evaluation)
    say("")
    say(f"done in {sum(timings.values()):.1f} s. Outputs in {out}:")
    say(f"  metadata.csv          synthetic metadata ({len(df):,} rows, BIOSCAN-5M columns)")
    say("  statistics.csv/.md    the table above;  category_sizes.png  its figure")
    say("  splits.csv            split sizes")
    say("  shards/               manifest.json + <split>.ids.bin/.mask.bin/.labels.parquet")
    if model:
        say("  pretrain/             checkpoint, JSONL log, loss curve of the tiny encoder")
        say("  eval/                 the benchmark table (Markdown, CSV) and the UMAP figure")
    return result


def cmd_demo(args) -> int:
    if args.n_records < 100:
        raise UsageError(f"--n must be at least 100 for a meaningful demo, got {args.n_records}")
    run_demo(args.out, n_records=args.n_records, seed=args.seed, progress=not args.quiet,
             model=not args.data_only, pretrain_steps=args.pretrain_steps)
    return 0


# ---- parser ------------------------------------------------------------------------------

def _load_plugins(sub) -> None:
    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Only "this plugin is not installed" is expected; a missing dependency
            # inside the plugin is a real error and must surface.
            if exc.name == name:
                continue
            raise
        module.register(sub)


def build_parser() -> argparse.ArgumentParser:
    """The full ``bioscan-kmer`` parser, plugins included."""
    parser = argparse.ArgumentParser(
        prog="bioscan-kmer",
        description="DNA-barcode data tools for BIOSCAN-5M: synthetic data, cleaning, "
                    "statistics, splits and tokenized shards.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True

    p = sub.add_parser("synth", help="generate synthetic BIOSCAN-like metadata",
                       description="Generate a synthetic table with the BIOSCAN-5M columns.")
    p.add_argument("n_records", type=int, metavar="N", help="number of records")
    p.add_argument("-o", "--output", required=True, help="output .csv or .parquet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-splits", action="store_true", help="leave the split column empty")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("clean", help="clean the barcodes of a table or FASTA",
                       description="Uppercase, U->T, remove whitespace and gaps, IUPAC->N, trim N.")
    p.add_argument("input", help="metadata CSV/TSV, BOLD TSV, FASTA or parquet")
    p.add_argument("-o", "--output", required=True, help="output .csv, .parquet or .fasta")
    p.add_argument("--column", default="dna_barcode")
    p.add_argument("--gaps", choices=["remove", "n"], default="remove")
    p.add_argument("--iupac", choices=["n", "error"], default="n")
    p.add_argument("--no-trim", action="store_true", help="keep leading/trailing N")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("stats", help="print the dataset statistics table",
                       description="The BIOSCAN-5M paper's per-rank statistics table.")
    p.add_argument("input")
    p.add_argument("--out-dir", help="also save statistics.csv, statistics.md and category_sizes.png")
    p.add_argument("--markdown", action="store_true", help="print Markdown instead of aligned text")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("split", help="assign the eight BIOSCAN-5M partitions",
                       description="Official partition rules (placeholder species, whole barcodes, quotas).")
    p.add_argument("input")
    p.add_argument("-o", "--output", help="write the table with its new split column")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("prepare", help="write tokenized shards per split",
                       description="Clean, deduplicate (pretrain) and tokenize barcodes into np.memmap shards.")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="shard directory")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--max-len", type=int, default=660)
    p.add_argument("--preset", choices=["barcodebert", "bert"], default="barcodebert")
    p.add_argument("--splits", nargs="+", default=None, help="default: pretrain and all labelled splits")
    p.add_argument("--seed", type=int, default=0, help="partition seed when the input has no split column")
    p.add_argument("--force", action="store_true", help="rewrite even if up to date")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("demo", help="run the whole pipeline on synthetic data",
                       description="Generate, clean, deduplicate, tabulate, split and shard synthetic data, "
                                   "then pretrain the tiny encoder and print the evaluation table.")
    p.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    p.add_argument("--n", dest="n_records", type=int, default=50_000, help="records (default 50000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-only", action="store_true", help="stop after the shards (no torch needed)")
    p.add_argument("--pretrain-steps", type=int, default=300, help="demo pretraining steps (default 300)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    _load_plugins(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of ``bioscan-kmer``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        # A user's mistake: one line, no traceback.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"bioscan-kmer {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bioscan-kmer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
