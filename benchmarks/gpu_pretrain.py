"""Pretraining throughput: tokens/s, MFU and peak memory per preset, batch size and compile.

Every configuration runs the loop's own step (:meth:`bioscan_kmer.train.loop.Trainer.train_step`:
device masking, bf16 autocast on CUDA, AdamW, clipping) fed from sequence shards through the real
loader (``ShardDataset``, tokenizing each batch at read time with random offsets, +
``DistributedSampler`` + ``DataLoader`` workers). The loader is
also timed alone, to check that it outruns the GPU (target: 10x).

Baseline measured in the same run: BarcodeBERT's implementation, a ``transformers``
``BertForTokenClassification`` of the same size trained the same way (when ``transformers``
is installed).

    python benchmarks/gpu_pretrain.py                       # CUDA: both presets; CPU: tiny
    python benchmarks/gpu_pretrain.py --batch-sizes 16 64 --steps 10 --no-compile

Writes ``benchmarks/results/gpu_pretrain_<device>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bioscan_kmer import KmerTokenizer
from bioscan_kmer.data.shards import write_shards
from bioscan_kmer.model import PRESETS, estimate_mfu, flops_per_token, peak_flops
from bioscan_kmer.train import TrainConfig
from bioscan_kmer.train.batches import BatchStream, open_source
from bioscan_kmer.train.ddp import DistInfo
from bioscan_kmer.train.loop import Trainer

RESULTS = Path(__file__).resolve().parent / "results"


def barcodes(n: int, seed: int = 0) -> list[str]:
    """COI-like barcodes: mutated copies of a few hundred templates, 600-660 nt, some N."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 4, size=(300, 660))
    letters = np.array(list("ACGT"))
    out = []
    for i in range(n):
        seq = templates[rng.integers(len(templates))].copy()
        hits = rng.random(660) < 0.03
        seq[hits] = rng.integers(0, 4, size=int(hits.sum()))
        chars = letters[seq][: int(rng.integers(600, 661))]
        if rng.random() < 0.05:
            chars[rng.integers(len(chars))] = "N"
        out.append("".join(chars))
    return out


def make_shards(directory: Path, k: int, rows: int) -> Path:
    """Sequence shards of ``rows`` barcodes; the loader tokenizes them at read time for ``k``."""
    write_shards(directory, {"pretrain": barcodes(rows)}, KmerTokenizer(k=k, max_len=660))
    return directory


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loader(shards: Path, batch_size: int, workers: int, batches: int, pin: bool) -> dict:
    source = open_source(shards, "pretrain")
    stream = BatchStream(source, batch_size, num_workers=workers, pin_memory=pin, seed=1)
    it = iter(stream)
    next(it)  # worker start-up is not throughput
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t
    rows = batches * batch_size
    return {"batch_size": batch_size, "workers": workers, "rows_per_s": rows / dt,
            "tokens_per_s": rows * source.seq_len / dt}


def time_ours(shards: Path, preset: str, batch_size: int, compile_: bool, device: torch.device,
              warmup: int, steps: int, workers: int, out: Path) -> dict:
    cfg = TrainConfig(preset=preset, steps=warmup + steps, batch_size=batch_size, compile=compile_,
                      num_workers=workers, device=str(device), progress=False, val_split=None, lr=1e-4,
                      precision="auto", clip_grad=1.0)  # the step the recorded tables time
    info = DistInfo(0, 1, 0, device, False)
    trainer = Trainer(cfg, info, str(shards), out, None, None, None, False, None)
    batches = iter(trainer.stream)
    for _ in range(warmup):
        trainer.train_step([next(batches)])
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    for _ in range(steps):
        trainer.train_step([next(batches)])
    sync(device)
    dt = time.perf_counter() - t
    T = trainer.source.seq_len
    tokens_per_s = steps * batch_size * T / dt
    return {
        "tokens_per_s": tokens_per_s,
        "step_ms": 1000 * dt / steps,
        "mfu": estimate_mfu(trainer.mcfg, T, tokens_per_s, device=device),
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "seq_len": T,
        "gflop_per_token": flops_per_token(trainer.mcfg, T) / 1e9,
    }


def time_hf(preset: str, batch_size: int, seq_len: int, device: torch.device, warmup: int, steps: int) -> dict | None:
    """BarcodeBERT's model class from ``transformers``, trained the same way on random ids."""
    try:
        from transformers import BertConfig, BertForTokenClassification
    except ImportError:
        return None
    c = PRESETS[preset]
    hf = BertForTokenClassification(BertConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_layers,
        num_attention_heads=c.num_heads, intermediate_size=c.intermediate_size,
        max_position_embeddings=c.max_position_embeddings, num_labels=c.num_kmers,
        hidden_dropout_prob=c.dropout, attention_probs_dropout_prob=c.attention_dropout,
        attn_implementation="sdpa")).to(device)
    opt = torch.optim.AdamW(hf.parameters(), lr=1e-4, **({"fused": True} if device.type == "cuda" else {}))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(c.first_kmer_id, c.vocab_size, (batch_size, seq_len), generator=g).to(device)
    mask = torch.ones_like(ids)
    mask[:, -seq_len // 10:] = 0
    labels = torch.where(mask.bool(), ids - c.first_kmer_id, -100)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step():
        with amp:
            logits = hf(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, c.num_kmers), labels.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    dt = time.perf_counter() - t
    return {"tokens_per_s": steps * batch_size * seq_len / dt}


def markdown(report: dict) -> str:
    lines = [f"# Pretraining throughput on {report['device_name']}", "",
             f"torch {report['torch']}, peak {report['peak_tflops'] * 1000:,.0f} GFLOP/s assumed for MFU, "
             f"{report['steps']} timed steps after {report['warmup']} warm-up steps, "
             f"loader workers {report['workers']}. Baseline: `transformers` BertForTokenClassification "
             "(BarcodeBERT's model class), same size, same batch.", "",
             "| preset | batch | compile | tokens/s | vs transformers | MFU | peak mem GiB | step ms |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in report["runs"]:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r['batch_size']} | {r['compile']} | {r['error']} | | | | |")
            continue
        ratio = f"{r['tokens_per_s'] / r['hf_tokens_per_s']:.2f}x" if r.get("hf_tokens_per_s") else "-"
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
        lines.append(f"| {r['preset']} | {r['batch_size']} | {r['compile']} | {r['tokens_per_s']:,.0f} | "
                     f"{ratio} | {100 * r['mfu']:.1f}% | {mem} | {r['step_ms']:.1f} |")
    lines += ["", "Loader alone (shards -> pinned batches):", "",
              "| preset | batch | workers | rows/s | tokens/s | x fastest training |", "|---|---:|---:|---:|---:|---:|"]
    for r in report["loader"]:
        lines.append(f"| {r['preset']} | {r['batch_size']} | {r['workers']} | {r['rows_per_s']:,.0f} | "
                     f"{r['tokens_per_s']:,.0f} | {r['headroom']:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=None)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs (CUDA)")
    p.add_argument("--no-baseline", action="store_true", help="skip the transformers baseline")
    p.add_argument("--rows", type=int, default=4096, help="shard rows (epochs repeat)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = args.presets or (["barcodebert-4-12-12", "bioscan5m-8-4-4"] if cuda else ["tiny"])
    batch_sizes = args.batch_sizes or ([16, 64, 128, 256] if cuda else [8, 16, 32])
    steps = args.steps or (20 if cuda else 30)
    warmup = args.warmup or (5 if cuda else 3)
    compiles = [False] if (not cuda or args.no_compile) else [False, True]
    name = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    report = {"device": device.type, "device_name": name, "torch": torch.__version__,
              "peak_tflops": peak_flops(device) / 1e12, "steps": steps, "warmup": warmup,
              "workers": args.workers, "runs": [], "loader": []}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in presets:
            shards = make_shards(Path(tmp) / preset, PRESETS[preset].k, args.rows)
            best = 0.0
            for compile_ in compiles:
                for bs in batch_sizes:
                    row = {"preset": preset, "batch_size": bs, "compile": compile_}
                    try:
                        row.update(time_ours(shards, preset, bs, compile_, device, warmup, steps,
                                             args.workers, Path(tmp) / "run"))
                        if not compile_ and not args.no_baseline:
                            hf = time_hf(preset, bs, row["seq_len"], device, warmup, steps)
                            row["hf_tokens_per_s"] = hf and hf["tokens_per_s"]
                        best = max(best, row["tokens_per_s"])
                    except torch.OutOfMemoryError:
                        row["error"] = "out of memory"
                    finally:
                        if cuda:
                            torch.cuda.empty_cache()
                    report["runs"].append(row)
                    print(json.dumps(row), flush=True)
            for bs in sorted({max(batch_sizes), min(batch_sizes)}):
                r = time_loader(shards, bs, args.workers, batches=max(50, 20000 // bs), pin=cuda)
                r.update(preset=preset, headroom=r["tokens_per_s"] / best if best else float("nan"))
                report["loader"].append(r)
                print(json.dumps(r), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "cpu" if not cuda else "cuda-" + "".join(ch if ch.isalnum() else "-" for ch in name).strip("-").lower()
    (args.out / f"gpu_pretrain_{tag}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"gpu_pretrain_{tag}.md").write_text(markdown(report))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
