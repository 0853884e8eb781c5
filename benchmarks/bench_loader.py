"""Pretraining loader throughput: whole-batch ``BatchStream`` vs. the per-row path it replaced.

Baseline, measured in the same run and re-implemented below as it was: a ``DataLoader``
with ``batch_size`` over a ``DistributedSampler``, ``ShardDataset.__getitems__`` splitting
one int64 read into per-row dicts, ``default_collate`` stacking them again, and worker
processes re-spawned every epoch (``persistent_workers=False``).
New: :class:`bioscan_kmer.train.batches.BatchStream` (one ``read_batch`` per batch, int32 ids
and uint8 mask, persistent workers, a sampler that runs on across epochs, small batches
pickled through the worker pipe); with workers it is also timed with torch's own transport
(a shared-memory segment per tensor), the choice the pipe replaced.

Both read the same synthetic shards (COI-like barcodes of 600-660 nt tokenized by the
``barcodebert`` preset: k=4 -> 165 tokens a row in uint16, k=8 -> 82 tokens in int32) for
``--epochs`` epochs; the first batch (worker start-up, once per run) is not timed, the
baseline's re-spawn at each later epoch is. Best of ``--repeats``.

    python benchmarks/bench_loader.py                          # k=4 and 8, workers 0 1 2
    python benchmarks/bench_loader.py --rows 1000000 --workers 0 2 4 6 --pin

Prints a table and writes ``benchmarks/results/loader.md`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from torch.utils.data.distributed import DistributedSampler

from bioscan_kmer import KmerTokenizer
from bioscan_kmer.data.shards import write_shards
from bioscan_kmer.data.torch_data import ShardDataset
import bioscan_kmer.train.batches as batch_module
from bioscan_kmer.train.batches import BatchStream, open_source

RESULTS = Path(__file__).resolve().parent / "results"

# What training consumes on an H200 (benchmarks/results/gpu_pretrain_h200.md, fastest
# configuration of each preset): tokens/s divided by tokens per row.
TRAINING_ROWS_PER_S = {4: 597_091 / 165,   # barcodebert-4-12-12, batch 256, compiled
                       8: 805_550 / 82}    # bioscan5m-8-4-4, batch 512, compiled


def barcodes(n: int, seed: int = 0) -> list[str]:
    """COI-like barcodes: mutated copies of 300 templates, 600-660 nt, 5% with one N."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    templates = rng.integers(0, 4, size=(300, 660), dtype=np.uint8)
    out: list[str] = []
    for start in range(0, n, 50_000):  # in blocks, to bound memory
        m = min(50_000, n - start)
        codes = templates[rng.integers(0, 300, size=m)]
        hits = rng.random(codes.shape) < 0.03
        codes[hits] = rng.integers(0, 4, size=int(hits.sum()), dtype=np.uint8)
        chars = letters[codes]
        with_n = np.flatnonzero(rng.random(m) < 0.05)
        chars[with_n, rng.integers(0, 600, size=len(with_n))] = ord("N")
        lengths = rng.integers(600, 661, size=m)
        out += [chars[i, :lengths[i]].tobytes().decode() for i in range(m)]
    return out


def make_shards(directory: Path, k: int, seqs: list[str]) -> int:
    tok = KmerTokenizer(k=k, max_len=660)
    enc = tok(seqs, return_tensors="np")
    # uint16 holds k <= 7 vocabularies; k=8 (65,538 ids) needs 32 bits.
    dtype = np.uint16 if tok.vocab_size <= 65535 else np.int32
    write_shards(directory, {"pretrain": (enc["input_ids"].astype(dtype), enc["attention_mask"], None)}, tok)
    return tok.seq_len


# The per-row path, as it was ------------------------------------------------------------

class PerRowShardDataset(ShardDataset):
    """The old ``__getitems__``: one int64 read per batch, split into per-row dicts."""

    def __getitems__(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        shard = self._open()
        ids = torch.from_numpy(shard.ids[idx].astype(np.int64))
        mask = torch.from_numpy(shard.mask[idx].astype(np.int64))
        return [{"input_ids": ids[j], "attention_mask": mask[j]} for j in range(len(idx))]


class _SkipSampler(Sampler):
    def __init__(self, base: DistributedSampler) -> None:
        self.base = base
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return len(self.base) - self.skip


def per_row_stream(shards: Path, batch_size: int, workers: int, pin: bool, seed: int = 1):
    """The old ``BatchStream.__iter__``: a fresh DataLoader iterator (and workers) per epoch."""
    dataset = PerRowShardDataset(shards, "pretrain")
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=True)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=_SkipSampler(sampler), drop_last=True,
                        collate_fn=None, num_workers=workers, pin_memory=pin,
                        generator=torch.Generator().manual_seed(seed), persistent_workers=False)
    for epoch in itertools.count():
        sampler.set_epoch(epoch)
        yield from loader


# Timing --------------------------------------------------------------------------------

def time_stream(make, batches: int) -> float:
    """Rows per second over ``batches`` batches after the first one."""
    it = make()
    next(it)  # worker start-up is not throughput
    rows = 0
    t = time.perf_counter()
    for batch in itertools.islice(it, batches - 1):
        rows += batch["input_ids"].shape[0]
    dt = time.perf_counter() - t
    it.close()
    del it
    gc.collect()  # shut the workers down before the next measurement
    return rows / dt


def run(rows: int, ks: list[int], workers: list[int], batch_size: int, epochs: int, repeats: int,
        pin: bool) -> list[dict]:
    results = []
    seqs = barcodes(rows)
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            shards = Path(tmp) / f"k{k}"
            seq_len = make_shards(shards, k, seqs)
            per_epoch = rows // batch_size
            batches = epochs * per_epoch
            for w in workers:
                def new():
                    return iter(BatchStream(open_source(shards, "pretrain"), batch_size, num_workers=w,
                                            pin_memory=pin, seed=1))

                old, ours, shm = [], [], []
                for _ in range(repeats):  # interleaved, so that drifts in machine load hit all
                    old.append(time_stream(lambda: per_row_stream(shards, batch_size, w, pin), batches))
                    ours.append(time_stream(new, batches))
                    if w:
                        # The same stream with torch's own transport: every tensor through a
                        # shared-memory segment (workers fork after this is set).
                        saved, batch_module._PIPE_MAX_BYTES = batch_module._PIPE_MAX_BYTES, 0
                        try:
                            shm.append(time_stream(new, batches))
                        finally:
                            batch_module._PIPE_MAX_BYTES = saved
                row = {"k": k, "seq_len": seq_len, "workers": w, "old_rows_per_s": max(old),
                       "new_rows_per_s": max(ours), "shm_rows_per_s": max(shm) if shm else None}
                row["ratio"] = row["new_rows_per_s"] / row["old_rows_per_s"]
                row["x_training"] = row["new_rows_per_s"] / TRAINING_ROWS_PER_S[k] if k in TRAINING_ROWS_PER_S else None
                results.append(row)
                print(format_row(row), flush=True)
    return results


HEADER = ("| k (tokens) | workers | per-row rows/s | per-row tokens/s | BatchStream rows/s "
          "| BatchStream tokens/s | ratio | x H200 training | BatchStream, shm transport rows/s |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def format_row(r: dict) -> str:
    x = f"{r['x_training']:.0f}x" if r["x_training"] is not None else "-"
    shm = f"{r['shm_rows_per_s']:,.0f}" if r["shm_rows_per_s"] is not None else "-"
    return (f"| {r['k']} ({r['seq_len']}) | {r['workers']} | {r['old_rows_per_s']:,.0f} "
            f"| {r['old_rows_per_s'] * r['seq_len']:,.0f} | {r['new_rows_per_s']:,.0f} "
            f"| {r['new_rows_per_s'] * r['seq_len']:,.0f} | {r['ratio']:.1f}x | {x} | {shm} |")


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {cores} cores{gpu}, Python {platform.python_version()}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pin", action="store_true", help="pin batches (needs CUDA)")
    parser.add_argument("--out", type=Path, default=RESULTS / "loader.md")
    args = parser.parse_args()
    if args.rows < 2 * args.batch_size:
        parser.error("--rows must hold at least two batches")

    print(f"{machine()}; {args.rows:,} rows, batch {args.batch_size}, {args.epochs} epochs, "
          f"best of {args.repeats}, pin_memory={args.pin}")
    print(HEADER)
    results = run(args.rows, args.ks, args.workers, args.batch_size, args.epochs, args.repeats, args.pin)
    command = "python benchmarks/bench_loader.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items() if k not in ("out", "pin")) + (" --pin" if args.pin else "")
    text = [
        "# Pretraining loader throughput",
        "",
        f"`{command}` on {machine()}.",
        "",
        "Per-row: the loader before this change (per-row int64 dicts re-stacked by "
        "`default_collate`, workers re-spawned each epoch). BatchStream: whole-batch "
        "`read_batch`, int32 ids + uint8 mask, persistent workers, batches up to 512 KiB leave "
        "a worker as pickled arrays (shm transport: as torch's shared-memory tensors "
        "instead, the choice it replaces). Rows/s over "
        f"{args.epochs} epochs of {args.rows:,} rows after the first batch, best of {args.repeats}; "
        "x H200 training = BatchStream rows/s over the rows/s the fastest H200 run of the "
        "preset with that k consumes (benchmarks/results/gpu_pretrain_h200.md).",
        "",
        HEADER,
        *map(format_row, results),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
