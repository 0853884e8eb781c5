"""Which attention path does the encoder's padding mask get on a GPU, and what does it cost?

A probe for the 40% MFU target of `barcodebert-4-12-12` (docs/model.md): times one
training step (bf16 autocast, forward + backward + AdamW, no compile) at batch 256 with
the encoder's boolean (B, 1, 1, T) mask, with no mask, and with T padded from 165 to 168,
and asks SDPA whether the flash / memory-efficient kernels accept each mask.

    python benchmarks/gpu_attention_probe.py --out benchmarks/results
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bioscan_kmer.model import MaskedLM, get_preset


def step_ms(model, opt, ids, mask, labels, steps=10, warmup=3):
    for i in range(warmup + steps):
        if i == warmup:
            torch.cuda.synchronize()
            t = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            _, loss = model(ids, mask, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps * 1000


def kernel_accepts(backend, mask, T, heads=12, dim=64, B=8):
    from torch.nn.attention import sdpa_kernel

    q = torch.randn(B, heads, T, dim, device="cuda", dtype=torch.bfloat16)
    try:
        with sdpa_kernel([backend]):
            F.scaled_dot_product_attention(q, q, q, attn_mask=None if mask is None else mask[:B])
        return True
    except RuntimeError as e:
        return str(e).splitlines()[0][:160]


def main(argv=None):
    from torch.nn.attention import SDPBackend

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("gpu_attention_probe.py needs a CUDA device")
    torch.manual_seed(0)
    cfg = get_preset("barcodebert-4-12-12")
    model = MaskedLM(cfg).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rows = {}
    for name, T, with_mask in [("bool mask, T=165", 165, True), ("no mask, T=165", 165, False),
                               ("bool mask, T=168", 168, True)]:
        ids = torch.randint(2, 258, (args.batch, T), device="cuda")
        mask = torch.ones(args.batch, T, dtype=torch.long, device="cuda")
        mask[:, 150:] = 0  # about BIOSCAN's padding
        labels = ids - 2
        ms = step_ms(model, opt, ids, mask if with_mask else None, labels)
        sdpa_mask = (mask.bool()[:, None, None, :]) if with_mask else None
        rows[name] = {
            "step_ms": round(ms, 2),
            "tokens_per_s": round(args.batch * T / ms * 1000),
            "flash_accepts": kernel_accepts(SDPBackend.FLASH_ATTENTION, sdpa_mask, T),
            "efficient_accepts": kernel_accepts(SDPBackend.EFFICIENT_ATTENTION, sdpa_mask, T),
            "cudnn_accepts": kernel_accepts(SDPBackend.CUDNN_ATTENTION, sdpa_mask, T),
        }
        print(name, rows[name], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batch": args.batch, "rows": rows}
    (args.out / "gpu_attention_probe.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
