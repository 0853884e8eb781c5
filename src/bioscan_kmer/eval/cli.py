"""``bioscan-kmer evaluate``: the benchmark table for a checkpoint, with the baselines.

Registered by :mod:`bioscan_kmer.cli` through :func:`register`. Heavy imports (torch,
UMAP, scikit-learn) happen only when the command runs. Every option and path is checked
before the data are read; user mistakes raise :class:`~bioscan_kmer.errors.UsageError`
(or another ``UserError``), which the main entry point prints as one line with exit
code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._options import int_option
from ..errors import UsageError

__all__ = ["register", "cmd_evaluate"]

_positive = int_option(1)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to the ``bioscan-kmer`` parser."""
    p = subparsers.add_parser(
        "evaluate", help="benchmark table: fine-tuning, linear probe, 1-NN, clustering, retrieval",
        description="Evaluate an encoder checkpoint and the baselines (paper CNN, k-mer frequency, "
                    "edit-distance 1-NN) with the BIOSCAN-5M protocols; writes report.md, report.csv, "
                    "details.csv and umap_order.png.")
    p.add_argument("--checkpoint", help="our checkpoint (file or run directory) or a Hugging Face BERT "
                   "state dict; omit to run the baselines only")
    p.add_argument("--hf-preset", help="architecture of a HF state dict (e.g. bioscan5m-8-4-4); "
                   "default: read off the weights")
    p.add_argument("--tokenizer", help="tokenizer JSON for a HF state dict (KmerTokenizer.save)")
    p.add_argument("--data", required=True, help="metadata CSV/TSV/parquet with a split column (split with "
                   "the official rules when it has none), or a BOLD TSV (seen/unseen species held out)")
    p.add_argument("--out", required=True, help="report directory")
    p.add_argument("--baselines", default="cnn,kmer,edit",
                   help="comma-separated subset of cnn,kmer,edit, or 'none' (default: all)")
    p.add_argument("--fast", action="store_true", help="the demo's settings: subsampled, short training")
    p.add_argument("--seed", type=int_option(0), default=0,
                   help="seed of the split (when the data have none), subsamples and training (default 0)")
    p.add_argument("--device", help="torch device (default: cuda when available)")
    p.add_argument("--batch-size", type=_positive, default=256, help="embedding batch size")
    p.add_argument("--max-train", type=_positive, help="train records used (seeded subsample)")
    p.add_argument("--max-test", type=_positive, help="test and test_unseen records used")
    p.add_argument("--finetune-epochs", type=_positive, help="most encoder fine-tuning epochs (default 5; stops early after --patience epochs without a better validation accuracy)")
    p.add_argument("--cnn-epochs", type=_positive, help="most CNN epochs (default 20, as in the paper; stops early as fine-tuning does)")
    p.add_argument("--no-finetune", action="store_true", help="skip the fine-tuned column")
    p.add_argument("--patience", type=_positive, help="epochs without a better validation accuracy "
                   "before fine-tuning and the CNN stop (default 3)")
    p.add_argument("--cluster-max-points", type=_positive, help="points for zero-shot clustering (default 50000; exact Ward in O(n) memory)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)
    return p


def _read_table(path: Path, seed: int):
    """Table with splits from any file :func:`~bioscan_kmer.data.reading.read_any` reads;
    a BOLD export gets :func:`~bioscan_kmer.eval.real.load_bold`'s unseen species, other
    tables without splits the official partition rules."""
    from ..data.reading import inspect_file, read_any

    if inspect_file(path).kind == "bold":
        from .real import load_bold

        return load_bold(path, seed=seed), True
    df = read_any(path)
    if "split" not in df.columns or (df["split"].astype(str).str.len() == 0).all():
        from ..data.splits import partition

        df["split"] = partition(df, seed=seed)
    return df, False


def cmd_evaluate(args) -> int:
    """Run ``bioscan-kmer evaluate``; returns 0, raises a UserError on bad input."""
    from .._atomic import check_output_path
    from ..data.reading import inspect_file

    data = Path(args.data)
    inspect_file(data)  # exists, a readable data file, no duplicate columns
    if args.checkpoint is not None and not Path(args.checkpoint).exists():
        raise UsageError(f"--checkpoint {args.checkpoint}: no such file or directory")
    check_output_path(args.out, directory=True, what="--out")
    baselines = () if args.baselines.strip().lower() == "none" else tuple(
        b.strip().lower() for b in args.baselines.split(",") if b.strip())
    from .demo import BASELINES, demo_settings, evaluate_checkpoint
    from .pipeline import EvalSettings

    bad = sorted(set(baselines) - set(BASELINES))
    if bad:
        raise UsageError(f"--baselines: unknown {', '.join(bad)} (choose from {', '.join(BASELINES)} or none)")
    if args.checkpoint is None and not baselines:
        raise UsageError("nothing to evaluate: give --checkpoint or at least one baseline")
    tokenizer = None
    if args.tokenizer:
        from .. import KmerTokenizer

        try:
            tokenizer = KmerTokenizer.load(args.tokenizer)
        except ValueError as exc:  # the loader's checks of the file
            raise UsageError(f"--tokenizer: {exc}") from exc

    settings = demo_settings() if args.fast else EvalSettings()
    changes = {"seed": args.seed, "device": args.device, "batch_size": args.batch_size,
               "progress": not args.quiet, "finetune": not args.no_finetune}
    for name, attr in (("max_train", "max_train"), ("finetune_epochs", "finetune_epochs"),
                       ("cnn_epochs", "cnn_epochs"), ("cluster_max_points", "cluster_max_points")):
        if getattr(args, attr) is not None:
            changes[name] = getattr(args, attr)
    if args.max_test is not None:
        changes["max_test"] = changes["max_test_unseen"] = args.max_test
    if args.patience is not None:
        changes["finetune_patience"] = changes["cnn_patience"] = args.patience
    settings = settings.replace(**changes)

    df, is_bold = _read_table(data, args.seed)
    notes = ["data: BOLD Systems (boldsystems.org), CC BY-SA 4.0", *df.attrs.get("notes", [])] if is_bold else []
    out = evaluate_checkpoint(df, args.checkpoint, args.out, settings=settings, baselines=baselines,
                              tokenizer=tokenizer, config=args.hf_preset,
                              title=f"Benchmark on {data.name}", extra_notes=notes)
    print(out["markdown"])
    print("wrote " + ", ".join(str(p) for p in out["paths"].values()))
    return 0
