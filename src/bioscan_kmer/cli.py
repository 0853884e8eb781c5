"""The ``bioscan-kmer`` command line.

Sub-commands: ``synth``, ``clean``, ``stats``, ``split``, ``prepare``, ``demo``;
other parts of the package add theirs through modules exposing
``register(subparsers)`` (``bioscan_kmer.train.cli``: ``pretrain``,
``bioscan_kmer.eval.cli``: ``evaluate``).

A command parses its options, checks them and its output paths before reading anything,
calls the library and prints. The user's mistakes (:mod:`bioscan_kmer.errors`: every
``UserError``, and OS errors about the user's paths) end with one line on stderr and
exit code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bioscan_kmer._options import int_option
from bioscan_kmer.demo import MIN_PRETRAIN_STEPS, MIN_RECORDS, run_demo  # run_demo: also here, as before
from bioscan_kmer.errors import UsageError, run_command

__all__ = ["main", "build_parser", "run_demo", "UsageError", "MAX_LEN_LIMIT"]

PLUGINS = ("bioscan_kmer.train.cli", "bioscan_kmer.eval.cli", "bioscan_kmer.eval.embed_cli", "bioscan_kmer.benchmark")

# Longest --max-len of `prepare`: far beyond any marker (COI-5P barcodes are ~658 nt)
# and a whole insect mitochondrial genome (~16 kb). Larger values only ever meant a
# typo that would be found after reading the whole input, when the shards are allocated.
MAX_LEN_LIMIT = 65_536


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (argparse prints the usage first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---- commands -------------------------------------------------------------------------

def _check_table_output(path: str):
    from bioscan_kmer._atomic import check_output_path
    from bioscan_kmer.data.reading import output_format

    check_output_path(path, what="-o")
    output_format(path)


def cmd_synth(args) -> int:
    import time

    from bioscan_kmer.data.reading import write_table
    from bioscan_kmer.data.synthetic import synthetic_bioscan

    _check_table_output(args.output)
    t0 = time.perf_counter()
    df = synthetic_bioscan(args.n_records, args.seed, with_splits=not args.no_splits)
    path = write_table(df, args.output)
    print(f"wrote {len(df):,} synthetic records to {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_clean(args) -> int:
    from bioscan_kmer.data.cleaning import clean_column
    from bioscan_kmer.data.reading import read_any, write_table

    _check_table_output(args.output)
    df = read_any(args.input)
    if args.column not in df.columns:
        raise UsageError(f"--column {args.column!r}: {args.input} has no such column; "
                         f"it has {', '.join(map(str, df.columns))}")
    df[args.column] = clean_column(df, args.column, gaps=args.gaps, iupac=args.iupac,
                                   trim_n=not args.no_trim, max_length=args.max_length,
                                   progress=not args.quiet)
    empty = int((df[args.column].str.len() == 0).sum())
    path = write_table(df, args.output, barcode_column=args.column)
    print(f"cleaned {len(df):,} barcodes -> {path}" + (f" ({empty:,} empty after cleaning)" if empty else ""))
    return 0


def cmd_stats(args) -> int:
    from bioscan_kmer._atomic import check_output_path
    from bioscan_kmer.data.reading import DataFileError, inspect_file, read_any
    from bioscan_kmer.data.schema import RANKS
    from bioscan_kmer.data.statistics import dataset_statistics, format_statistics, save_statistics

    if args.out_dir:
        check_output_path(args.out_dir, directory=True, what="--out-dir")
    info = inspect_file(args.input)
    ranks = [r for r in RANKS if r in info.columns]
    absent = [r for r in RANKS if r not in ranks]
    if not ranks:
        raise DataFileError(f"{args.input!r} has none of the rank columns ({', '.join(RANKS)})")
    df = read_any(args.input, columns=[*ranks, "dna_barcode"])
    table = dataset_statistics(df, ranks)
    print(format_statistics(table, "markdown" if args.markdown else "text"), end="")
    if absent:
        print(f"bioscan-kmer stats: note: {args.input} has no {', '.join(absent)} column; "
              f"{'that rank is' if len(absent) == 1 else 'those ranks are'} left out", file=sys.stderr)
    if args.out_dir:
        paths = save_statistics(df, args.out_dir, table=table)
        print("saved " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_split(args) -> int:
    from bioscan_kmer.data.reading import read_any, write_table
    from bioscan_kmer.data.splits import partition, split_summary

    if args.output:
        _check_table_output(args.output)
    df = read_any(args.input)
    df["split"] = partition(df, seed=args.seed, progress=not args.quiet)
    print(split_summary(df, df["split"]).to_string(index=False))
    if args.output:
        path = write_table(df, args.output)
        print(f"wrote {path}")
    return 0


def cmd_prepare(args) -> int:
    from bioscan_kmer import KmerTokenizer
    from bioscan_kmer._atomic import check_output_path
    from bioscan_kmer.data.prepare import prepare_shards
    from bioscan_kmer.data.reading import DataFileError, file_fingerprint, inspect_file, read_any
    from bioscan_kmer.data.schema import RANKS

    check_output_path(args.output, directory=True, what="-o")
    try:
        KmerTokenizer(k=args.k, max_len=args.max_len, preset=args.preset)  # the options alone
    except ValueError as exc:
        raise UsageError(f"--k/--max-len/--preset: {exc}") from exc
    # The columns every shard needs, checked from the header before the file is read.
    missing = [c for c in ("dna_barcode", *RANKS) if c not in inspect_file(args.input).columns]
    if missing:
        raise DataFileError(f"{args.input!r}: prepare needs column(s) {', '.join(map(repr, missing))}")
    df = read_any(args.input)
    result = prepare_shards(
        df, args.output, k=args.k, max_len=args.max_len, preset=args.preset,
        splits=args.splits, seed=args.seed, fingerprint=file_fingerprint(args.input),
        force=args.force, progress=not args.quiet,
    )
    state = "up to date, nothing redone" if result["skipped"] else f"written in {result['seconds']:.1f} s"
    print(f"shards in {result['out_dir']} ({state}):")
    for name, n in result["rows"].items():
        print(f"  {name:14s} {n:>10,} rows")
    return 0


def cmd_demo(args) -> int:
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


INPUT_HELP = ("input table: metadata CSV/TSV, BOLD TSV, FASTA or Parquet; .gz of the text ones "
              "is read directly (the kind is told from the content)")
OUTPUT_HELP = "output file: .csv, .tsv, .parquet or .fasta/.fa/.fna/.fas; add .gz to compress the text ones"
SEED = int_option(0)


def build_parser() -> argparse.ArgumentParser:
    """The full ``bioscan-kmer`` parser, plugins included."""
    from bioscan_kmer.data.schema import SPLITS

    parser = _Parser(
        prog="bioscan-kmer",
        description="DNA-barcode tools for BIOSCAN-5M: synthetic data (synth), cleaning (clean), the "
                    "statistics table (stats), the official splits (split), sequence shards (prepare), "
                    "masked-LM pretraining (pretrain), the benchmark table (evaluate), embeddings of your "
                    "own barcodes (embed), the whole protocol on a real table (benchmark), and all of it "
                    "on synthetic data (demo).",
        epilog="Each command has --help. Bad input ends with one line on stderr and exit code 2.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True

    p = sub.add_parser("synth", help="generate synthetic BIOSCAN-like metadata",
                       description="Generate a synthetic table with the BIOSCAN-5M columns.")
    p.add_argument("n_records", type=int_option(1), metavar="N", help="number of records (at least 1)")
    p.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    p.add_argument("--seed", type=SEED, default=0, help="random seed, a non-negative integer (default 0)")
    p.add_argument("--no-splits", action="store_true", help="leave the split column empty")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("clean", help="clean the barcodes of a table or FASTA",
                       description="Uppercase, U->T, remove whitespace and gaps, IUPAC->N, trim N.")
    p.add_argument("input", help=INPUT_HELP)
    p.add_argument("-o", "--output", required=True, help=OUTPUT_HELP)
    p.add_argument("--column", default="dna_barcode", help="column holding the barcodes (default dna_barcode)")
    p.add_argument("--gaps", choices=["remove", "n"], default="remove",
                   help="remove alignment gaps '-' (default) or turn them into N")
    p.add_argument("--iupac", choices=["n", "error"], default="n",
                   help="IUPAC ambiguity codes become N (default) or are an error")
    p.add_argument("--no-trim", action="store_true", help="keep leading/trailing N")
    p.add_argument("--max-length", type=int_option(1), default=None,
                   help="cut cleaned barcodes to this many nucleotides (default: no limit)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("stats", help="print the dataset statistics table",
                       description="The BIOSCAN-5M paper's per-rank statistics table (ranks the input "
                                   "lacks are left out, with a note).")
    p.add_argument("input", help=INPUT_HELP)
    p.add_argument("--out-dir", help="also save statistics.csv, statistics.md and category_sizes.png")
    p.add_argument("--markdown", action="store_true", help="print Markdown instead of aligned text")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("split", help="assign the eight BIOSCAN-5M partitions",
                       description="Official partition rules (placeholder species, whole barcodes, quotas).")
    p.add_argument("input", help=INPUT_HELP)
    p.add_argument("-o", "--output", help="write the table with its new split column: " + OUTPUT_HELP)
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the random draws, a non-negative integer (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("prepare", help="write sequence shards per split (tokenized when read)",
                       description="Clean, deduplicate (pretrain) and tokenize barcodes into np.memmap shards.")
    p.add_argument("input", help=INPUT_HELP)
    p.add_argument("-o", "--output", required=True, help="shard directory (created if missing)")
    p.add_argument("--k", type=int_option(1), default=4, help="k-mer length (default 4; the tokenizer takes 1 to 12)")
    p.add_argument("--max-len", type=int_option(1, MAX_LEN_LIMIT), default=660,
                   help=f"nucleotides kept per barcode before tokenizing (default 660; at most {MAX_LEN_LIMIT:,})")
    p.add_argument("--preset", choices=["barcodebert", "bert"], default="barcodebert",
                   help="special tokens and padding: BarcodeBERT's (default) or BERT's")
    p.add_argument("--splits", nargs="+", choices=SPLITS, default=None, metavar="SPLIT",
                   help=f"shards to write, from {', '.join(SPLITS)} (default: pretrain and all labelled splits)")
    p.add_argument("--seed", type=SEED, default=0, help="partition seed when the input has no split column")
    p.add_argument("--force", action="store_true", help="rewrite even if up to date")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("demo", help="run the whole pipeline on synthetic data",
                       description="Generate, clean, deduplicate, tabulate, split and shard synthetic data, "
                                   "then pretrain the tiny encoder and print the evaluation table.")
    p.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    p.add_argument("--n", dest="n_records", type=int_option(MIN_RECORDS), default=50_000,
                   help=f"records (default 50000, at least {MIN_RECORDS})")
    p.add_argument("--seed", type=SEED, default=0, help="random seed, a non-negative integer (default 0)")
    p.add_argument("--data-only", action="store_true", help="stop after the shards (no torch needed)")
    p.add_argument("--pretrain-steps", type=int_option(MIN_PRETRAIN_STEPS), default=300,
                   help=f"demo pretraining steps (default 300, at least {MIN_PRETRAIN_STEPS})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_demo)

    _load_plugins(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of ``bioscan-kmer``; returns the exit code (``--help`` exits 0)."""
    # OpenMP threads that spin while waiting make torch several times slower on a busy
    # machine (a fine-tuning step: 4.0 s spinning, 0.2-0.4 s passive, docs/eval.md). libgomp
    # reads the setting once, when torch is imported (by the plugins, below), so it is set
    # here; a value the user exported wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 2:  # a bad option: the parser has printed its line
            return 2
        raise
    return run_command(f"bioscan-kmer {args.command}", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
