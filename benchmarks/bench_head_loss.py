"""Peak memory and time of the masked-LM loss over a large output layer: plain vs chunked.

The output layer of ``bioscan5m-8-4-4`` (768 -> 65,536 k-mers): ``F.cross_entropy`` over the
full logits (what ``MaskedLM`` does by default) against
:func:`bioscan_kmer.model.losses.linear_cross_entropy` (``loss_chunk_rows``), forward +
backward, each variant in a fresh process so that its peak resident memory is its own.
On a CUDA machine the peak is torch's allocator peak instead.

    python benchmarks/bench_head_loss.py --rows 1024 --chunks 256 1024
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def one(rows: int, hidden: int, classes: int, chunk: int | None, device: str, repeats: int) -> dict:
    import torch
    import torch.nn.functional as F

    from bioscan_kmer.model.losses import linear_cross_entropy

    torch.manual_seed(0)
    h = torch.randn(rows, hidden, device=device, requires_grad=True)
    w = (torch.randn(classes, hidden, device=device) * 0.02).requires_grad_(True)
    b = torch.zeros(classes, device=device, requires_grad=True)
    y = torch.randint(0, classes, (rows,), device=device)
    amp = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")

    def step():
        with amp:
            if chunk is None:
                loss = F.cross_entropy((h @ w.t() + b).float(), y, reduction="sum")
            else:
                loss = linear_cross_entropy(h, w, b, y, chunk_rows=chunk)
        loss.backward()
        h.grad = w.grad = b.grad = None
        return loss.item()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        loss = step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # KiB -> MiB
    return {"rows": rows, "classes": classes, "chunk": chunk, "device": device, "loss": loss,
            "seconds": min(times), "peak_mib": peak}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1024, help="positions (batch x tokens)")
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--classes", type=int, default=65536)
    p.add_argument("--chunks", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.one is not None:
        chunk = None if args.one == "plain" else int(args.one)
        print(json.dumps(one(args.rows, args.hidden, args.classes, chunk, args.device, args.repeats)))
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for variant in ["plain"] + [str(c) for c in args.chunks]:
        out = subprocess.run([sys.executable, __file__, "--one", variant, "--rows", str(args.rows),
                              "--hidden", str(args.hidden), "--classes", str(args.classes),
                              "--repeats", str(args.repeats), "--device", device],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    plain = rows[0]
    lines = ["# Loss over a 65,536-way output layer: plain vs chunked", "",
             f"`python benchmarks/bench_head_loss.py --rows {args.rows}` on {device}, torch {torch.__version__}: "
             f"{args.rows} positions x {args.hidden} hidden -> {args.classes:,} classes, forward + backward, "
             "best of the repeats; peak = resident memory growth of a fresh process (CPU) or torch's "
             "allocator peak (CUDA).", "",
             "| loss | seconds | x plain time | peak MiB | x plain memory | loss value |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = "F.cross_entropy on full logits" if r["chunk"] is None else f"linear_cross_entropy, {r['chunk']} rows/chunk"
        lines.append(f"| {name} | {r['seconds']:.3f} | {r['seconds'] / plain['seconds']:.2f}x | "
                     f"{r['peak_mib']:,.0f} | {r['peak_mib'] / max(plain['peak_mib'], 1e-9):.2f}x | {r['loss']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"head_loss_{device}.md").write_text(text)


if __name__ == "__main__":
    main()
