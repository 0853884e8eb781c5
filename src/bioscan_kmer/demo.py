"""The demo pipeline: synthetic data through every step of the package, in one directory.

Synthetic data -> clean -> deduplicate -> statistics -> splits -> shards, then (with the
train and eval extras) a short pretraining run and the evaluation table. ``bioscan-kmer
demo`` runs it; so can Python (:func:`run_demo`), whose result later steps can extend.
"""

from __future__ import annotations

import time

from bioscan_kmer._atomic import check_output_path
from bioscan_kmer._options import check_int
from bioscan_kmer.errors import UsageError

__all__ = ["run_demo", "MIN_RECORDS", "MIN_PRETRAIN_STEPS"]

# Fewer records leave the seen/unseen splits nearly empty.
MIN_RECORDS = 100
# Fewer steps draw no loss curve worth showing (and leave no room for the warm-up).
MIN_PRETRAIN_STEPS = 10


def run_demo(out_dir, n_records: int = 50_000, seed: int = 0, progress: bool = True, *,
             model: bool = True, pretrain_steps: int = 300) -> dict:
    """Synthetic data -> clean -> dedup -> statistics -> splits -> shards -> pretraining
    -> evaluation, in ``out_dir``.

    Every argument is checked before the first step.

    Parameters
    ----------
    out_dir : str or path-like
        Created if missing; holds ``metadata.csv``, ``statistics.*``,
        ``category_sizes.png``, ``splits.csv`` and ``shards/``.
    n_records : int, default 50000
        At least 100 (fewer leave the splits nearly empty).
    seed : int, default 0
        A non-negative integer.
    progress : bool, default True
        Print each step and show progress bars.
    model : bool, default True
        Also pretrain the ``tiny`` encoder on the shards and print the evaluation table
        for it and the baselines (needs torch and the ``eval`` extra). False stops after
        the shards.
    pretrain_steps : int, default 300
        Optimizer steps of the demo pretraining (about 30-60 s on one CPU core); at least 10.

    Returns
    -------
    dict
        ``out_dir``, ``metadata``, ``statistics`` (DataFrame), ``statistics_files``,
        ``split_sizes`` (DataFrame), ``n_records``, ``n_unique_barcodes``,
        ``shards`` (directory), ``shard_rows``, ``timings`` (seconds per step), and with
        ``model``: ``pretrain`` (see :func:`bioscan_kmer.train.demo_pretrain`) and
        ``evaluation`` (see :func:`bioscan_kmer.eval.demo_evaluate`).

    Raises
    ------
    bioscan_kmer.errors.UsageError
        An argument out of range, ``out_dir`` naming a file, or (with ``model``) the
        train/eval extras not installed.
    """
    import numpy as np

    from bioscan_kmer import clean, unique
    from bioscan_kmer.data.prepare import prepare_shards
    from bioscan_kmer.data.reading import write_metadata_csv
    from bioscan_kmer.data.splits import split_summary
    from bioscan_kmer.data.statistics import dataset_statistics, format_statistics, save_statistics
    from bioscan_kmer.data.synthetic import synthetic_bioscan

    out = check_output_path(out_dir, directory=True, what="output directory")
    check_int("n_records", n_records, MIN_RECORDS)
    check_int("seed", seed, 0)
    if model:
        check_int("pretrain_steps", pretrain_steps, MIN_PRETRAIN_STEPS)
        # Import the model steps now: a missing extra must stop the demo before step 1,
        # not after six steps of work.
        try:
            from bioscan_kmer.eval import demo_evaluate
            from bioscan_kmer.train import demo_pretrain
        except ImportError as exc:
            raise UsageError(f"the demo's model steps need the train and eval extras "
                             f"(pip install 'bioscan-kmer[train,eval]'), or use --data-only: {exc}") from None
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
    say(f"[6/{n_steps}] writing sequence shards (tokenized at read time: k=4, max_len=660)")
    shard = prepare_shards(df, out / "shards", seed=seed, progress=progress, force=True)
    step("prepare")
    result = {
        "out_dir": out, "metadata": meta, "statistics": table, "statistics_files": files,
        "split_sizes": sizes, "n_records": len(df), "n_unique_barcodes": len(uniq),
        "shards": out / "shards", "shard_rows": shard["rows"], "timings": timings,
    }
    if model:
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
    say("  shards/               manifest.json + <split>.seq.bin/.offsets.bin/.labels.parquet")
    if model:
        say("  pretrain/             checkpoint, JSONL log, loss curve of the tiny encoder")
        say("  eval/                 the benchmark table (Markdown, CSV) and the UMAP figure")
    return result
