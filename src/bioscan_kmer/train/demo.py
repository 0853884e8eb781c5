"""A short pretraining run for the demo: the tiny preset, about a minute on 2 CPU cores."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["demo_pretrain"]


def demo_pretrain(shard_dir: str | os.PathLike, out_dir: str | os.PathLike, *, steps: int = 300,
                  progress: bool = True, split: str = "pretrain", threads: int = 1,
                  batch_size: int = 32, seed: int = 0) -> dict[str, Any]:
    """Train the ``tiny`` preset on CPU long enough to see the masked-LM loss fall.

    Parameters
    ----------
    shard_dir : path-like
        Sequence shards written by ``prepare`` (any tokenizer: ``tiny`` adopts its
        vocabulary), or a FASTA/TSV/CSV file of raw barcodes. The ``pretrain`` split is read
        with a random offset in [0, k) per row and epoch, as BarcodeBERT trains.
    out_dir : path-like
        Run directory; an earlier demo run there is resumed (and, if complete, reported).
    steps : int
        Optimizer steps; the default takes 30-60 s on one CPU core for 660-nt barcodes.
    progress : bool
        Show a progress bar with the loss and tokens/s.
    split : str
        The shard split to train on.
    threads : int
        Torch CPU threads. One by default: the tiny model gains little from a second
        thread, and OpenMP's spin-waiting makes two threads several times slower whenever
        anything else runs on a 2-core machine (measured: 30 s with one thread, 200 s with
        two, on a shared 2-core VM).
    batch_size, seed : int
        Sequences per step, seed.

    Returns
    -------
    dict
        ``first_loss`` and ``last_loss`` (the masked-LM loss of the first and last logged
        steps), ``checkpoint`` (path), ``plot`` (loss-curve PNG), ``log``, ``steps``,
        ``tokens_per_s``, ``mfu``, ``elapsed_s``.
    """
    from .loop import pretrain

    return pretrain(
        shard_dir, out_dir, preset="tiny", steps=steps, batch_size=batch_size, lr=3e-3,
        schedule="onecycle", warmup_steps=max(1, steps // 10), train_split=split, val_split="auto",
        val_every=max(1, steps // 4), val_batches=4, ckpt_every=max(1, steps // 2),
        log_every=max(1, steps // 60), seed=seed, device="cpu", threads=threads,
        num_workers=0, progress=progress, resume=True,
    )
