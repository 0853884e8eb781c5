"""Pretraining loader throughput: tokenizing at read time (every k-mer frame) vs pre-tokenized rows.

New: what ``pretrain`` reads, :class:`bioscan_kmer.train.batches.BatchStream` over sequence
shards (``open_source``): per batch, one gather of the barcodes from the memory-mapped
``seq.bin`` and one core ``tokenize`` call with a random offset in ``[0, k)`` per row.
Baseline, measured in the same run through the same BatchStream: the pre-tokenized reader
that shard format 1 had (ids and mask written by ``prepare`` at offset 0, one memmap gather
per batch; re-implemented below as it was). Both read the same COI-like barcodes (600-660
nt) for ``--epochs`` epochs; the first batch (worker start-up) is not timed. Best of
``--repeats``, the two interleaved.

The issue's target: at least 10x the rows/s that the fastest compiled training step
recorded in benchmarks/results consumes, with the worker count ``pretrain`` uses by default.

    python benchmarks/bench_loader.py                          # k=4 and 8, workers 0 1 2
    python benchmarks/bench_loader.py --rows 1000000 --workers 0 2 4 --pin

Prints a table and writes ``benchmarks/results/loader_read_time_tokenize.md`` (``--out``).
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

import numpy as np
import torch

from bioscan_kmer import KmerTokenizer
from bioscan_kmer.data.shards import write_shards
from bioscan_kmer.data.torch_data import _batch_rows
from bioscan_kmer.train.batches import BatchStream, DataSource, open_source
from bioscan_kmer.train.config import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"

# What the fastest compiled training step of each preset consumes on an H200, in rows/s:
# tokens/s over tokens per row (benchmarks/results/gpu_pretrain_h200.md; the step times of
# gpu_mfu_probe_h200_run*.json agree: 71 ms at batch 256 = 3,606 rows/s for 4-12-12,
# 27.2 ms = 9,412 rows/s for 8-4-4).
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


# The pre-tokenized reader, as it was --------------------------------------------------------

class PreTokenizedDataset:
    """Shard format 1's ``ShardDataset.read_batch``: ids and mask written once at offset 0,
    memory-mapped, one gather per batch (the epoch is ignored: one frame only)."""

    def __init__(self, directory: Path, tok: KmerTokenizer, seqs: list[str]) -> None:
        self.directory, self.shape = directory, (len(seqs), tok.seq_len)
        # uint16 holds k <= 7 vocabularies; k=8 (65,538 ids) needs 32 bits.
        self.dtype = np.uint16 if tok.vocab_size <= 65535 else np.int32
        enc = tok(seqs, return_tensors="np")
        enc["input_ids"].astype(self.dtype).tofile(directory / "ids.bin")
        enc["attention_mask"].astype(np.uint8).tofile(directory / "mask.bin")
        self._maps = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self):
        return {**self.__dict__, "_maps": None}  # workers map the files themselves

    def read_batch(self, indices, *, epoch=None):
        if self._maps is None:
            self._maps = (np.memmap(self.directory / "ids.bin", dtype=self.dtype, mode="r", shape=self.shape),
                          np.memmap(self.directory / "mask.bin", dtype=np.uint8, mode="r", shape=self.shape))
        idx = _batch_rows(indices, self.shape[0])
        ids, mask = self._maps
        return {"input_ids": torch.from_numpy(ids[idx].astype(np.int32)),
                "attention_mask": torch.from_numpy(mask[idx])}


# Timing --------------------------------------------------------------------------------------

def time_stream(source: DataSource, batch_size: int, workers: int, pin: bool, batches: int) -> float:
    """Rows per second over ``batches`` batches after the first one."""
    stream = BatchStream(source, batch_size, num_workers=workers, pin_memory=pin, seed=1)
    it = iter(stream)
    next(it)  # worker start-up is not throughput
    rows = 0
    t = time.perf_counter()
    for batch in itertools.islice(it, batches - 1):
        rows += batch["input_ids"].shape[0]
    dt = time.perf_counter() - t
    stream.close()
    del it, stream
    gc.collect()
    return rows / dt


def run(rows: int, ks: list[int], workers: list[int], batch_size: int, epochs: int, repeats: int,
        pin: bool) -> list[dict]:
    results = []
    seqs = barcodes(rows)
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            tok = KmerTokenizer(k=k, max_len=660)
            shards = Path(tmp) / f"k{k}"
            write_shards(shards, {"pretrain": seqs}, tok)
            pre_dir = Path(tmp) / f"pre{k}"
            pre_dir.mkdir()
            pre = DataSource(dataset=PreTokenizedDataset(pre_dir, tok, seqs), tokenizer=tok, seq_len=tok.seq_len,
                             description="pre-tokenized", fingerprint={})
            batches = epochs * (rows // batch_size)
            for w in workers:
                old, new = [], []
                for _ in range(repeats):  # interleaved, so that drifts in machine load hit both
                    old.append(time_stream(pre, batch_size, w, pin, batches))
                    new.append(time_stream(open_source(shards, "pretrain", seed=1), batch_size, w, pin, batches))
                row = {"k": k, "seq_len": tok.seq_len, "workers": w, "old_rows_per_s": max(old),
                       "new_rows_per_s": max(new)}
                row["ratio"] = row["new_rows_per_s"] / row["old_rows_per_s"]
                row["x_training"] = row["new_rows_per_s"] / TRAINING_ROWS_PER_S[k] if k in TRAINING_ROWS_PER_S else None
                results.append(row)
                print(format_row(row), flush=True)
    return results


HEADER = ("| k (tokens) | workers | pre-tokenized rows/s | read-time rows/s | read-time tokens/s "
          "| read-time / pre-tokenized | x fastest H200 training step |\n"
          "|---|---:|---:|---:|---:|---:|---:|")


def format_row(r: dict) -> str:
    x = f"{r['x_training']:.0f}x" if r["x_training"] is not None else "-"
    return (f"| {r['k']} ({r['seq_len']}) | {r['workers']} | {r['old_rows_per_s']:,.0f} "
            f"| {r['new_rows_per_s']:,.0f} | {r['new_rows_per_s'] * r['seq_len']:,.0f} "
            f"| {r['ratio']:.2f}x | {x} |")


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
    parser.add_argument("--out", type=Path, default=RESULTS / "loader_read_time_tokenize.md")
    args = parser.parse_args()
    if args.rows < 2 * args.batch_size:
        parser.error("--rows must hold at least two batches")

    default_workers = TrainConfig().num_workers
    print(f"{machine()}; {args.rows:,} rows, batch {args.batch_size}, {args.epochs} epochs, "
          f"best of {args.repeats}, pin_memory={args.pin}; pretrain's default num_workers: {default_workers}")
    print(HEADER)
    results = run(args.rows, args.ks, args.workers, args.batch_size, args.epochs, args.repeats, args.pin)
    command = "python benchmarks/bench_loader.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items() if k not in ("out", "pin")) + (" --pin" if args.pin else "")
    text = [
        "# Pretraining loader: tokenizing at read time",
        "",
        f"`{command}` on {machine()}.",
        "",
        "Read-time: `BatchStream` over sequence shards as `pretrain` reads them (one gather from "
        "`seq.bin` and one core `tokenize` per batch, a random offset in [0, k) per row, int32 ids "
        "+ uint8 mask). Pre-tokenized: the same stream over ids and masks written once at offset 0 "
        "(shard format 1's reader). Rows/s over "
        f"{args.epochs} epochs of {args.rows:,} rows after the first batch, best of {args.repeats}; "
        "x fastest H200 training step = read-time rows/s over the rows/s the fastest compiled "
        "training step of the preset with that k consumes (4-12-12: 3,619 rows/s, 8-4-4: 9,824 "
        "rows/s; benchmarks/results/gpu_pretrain_h200.md). "
        f"`pretrain`'s default `num_workers` is {default_workers}.",
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
