"""Where a pretraining step's time goes on a GPU, and what changes it.

One prepared device call for the 40% MFU target of ``barcodebert-4-12-12``
(docs/model.md, "Performance"). It measures, in this order:

1. ceilings: a large bf16 matrix product, and the step's own GEMM shapes, from which a
   floor for the step's matrix work follows (``--skip-ceilings`` leaves it out);
2. attention alone (forward + backward, bf16, the model's layout and dropout): SDPA with
   the boolean padding mask (the encoder's path), without a mask, with cuDNN or the
   memory-efficient kernel forced, and attention spelled out as two matmuls around a
   softmax, eager and compiled, with its agreement to SDPA at real positions;
3. the loader alone (pinned batches, 0 and 4 workers), then the loop's own training step
   (``Trainer.train_step``, shards through the real loader) for a list of (preset, batch,
   attention, residual precision, compile) variants, each with a torch.profiler breakdown
   of kernel time by kind.

Step variants that the library does not offer are patched in by this script (see
:func:`variant`): "matmul" attention, and a "compute" residual stream (LayerNorm outputs
stored in bf16, as Megatron-LM does). Results of the runs so far (one H200, torch 2.11):

* run 1 (results/gpu_mfu_probe_h200_run1.json): the compiled 4-12-12 step at batch 256
  takes 71 ms: GEMMs 29.7 ms (the GEMM floor measured alone: 33.9 ms, i.e. cuBLAS is at
  ~630 TFLOP/s), fused elementwise (Triton) 19.7 ms, attention 17.8 ms. Attention is 3.4%
  of the FLOPs and a quarter of the time: cuDNN's masked kernels run at ~30 TFLOP/s at
  T=165, D=64. A variable-length FlashAttention path (rows split into sequence and
  padding segments, no mask) was no faster (1.74 vs 1.81 ms per layer; step +1.6%).
* run 2 (results/gpu_mfu_probe_h200_run2.json): "matmul" attention is slower (3.2 ms per
  layer compiled; step 87 ms); the "compute" residual cut the LayerNorm kernels from 6.1
  to 4.1 ms per step (measured with matmul attention only). The loader now delivers
  0.56-1.7M rows/s pinned, 60-450x what training consumes.

    python benchmarks/gpu_mfu_probe.py --out "$OUT" --skip-ceilings --budget 300

Prints a summary table last and writes ``gpu_mfu_probe.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_pretrain import make_shards, time_loader  # noqa: E402

from bioscan_kmer.model import PRESETS, estimate_mfu, flops_per_token  # noqa: E402
from bioscan_kmer.model import encoder as enc  # noqa: E402
from bioscan_kmer.train import TrainConfig  # noqa: E402
from bioscan_kmer.train.ddp import DistInfo  # noqa: E402
from bioscan_kmer.train.loop import Trainer  # noqa: E402

START = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - START


def cuda_ms(fn, reps: int = 10, warmup: int = 3) -> float:
    """Median milliseconds of ``fn()`` by CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


# 1. Ceilings ------------------------------------------------------------------------------

def ceilings(preset: str, batch: int, T: int) -> dict:
    out = {}
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = cuda_ms(lambda: a @ b)
    out["matmul_8192_tflops"] = 2 * n**3 / ms / 1e9
    c = PRESETS[preset]
    M, C, Fd = batch * T, c.hidden_size, c.intermediate_size
    shapes = {"qkv": (C, 3 * C), "attn_out": (C, C), "ffn_in": (C, Fd), "ffn_out": (Fd, C),
              "head": (C, c.num_kmers)}
    step_ms = 0.0
    for name, (K, N) in shapes.items():
        x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
        g = torch.randn(M, N, device="cuda", dtype=torch.bfloat16)
        fwd = cuda_ms(lambda: F.linear(x, w))
        dgrad = cuda_ms(lambda: g @ w)
        wgrad = cuda_ms(lambda: g.t() @ x)
        flops = 2 * M * K * N
        out[f"gemm_{name}"] = {"M": M, "K": K, "N": N, "fwd_ms": fwd, "dgrad_ms": dgrad, "wgrad_ms": wgrad,
                               "fwd_tflops": flops / fwd / 1e9, "dgrad_tflops": flops / dgrad / 1e9,
                               "wgrad_tflops": flops / wgrad / 1e9}
        layers = 1 if name == "head" else c.num_layers
        step_ms += layers * (fwd + dgrad + wgrad)
    out["gemm_floor_ms"] = step_ms
    torch.cuda.empty_cache()
    return out


# Variants the library does not offer -------------------------------------------------------

def matmul_attention(q, k, v, mask, dropout_p):
    """``dropout(softmax(q k^T / sqrt(D), masked)) v``, softmax in float32; (B, H, T, D)."""
    scores = torch.matmul(q, k.transpose(-2, -1)).float() * q.shape[-1] ** -0.5  # (B, H, T, T)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = scores.softmax(dim=-1).to(v.dtype)
    if dropout_p > 0.0:
        probs = F.dropout(probs, dropout_p)
    return torch.matmul(probs, v)


def _attention_forward_matmul(self, x, attn_mask):
    B, T, C = x.shape
    q, k, v = self.qkv(x).split(C, dim=2)
    q, k, v = (t.view(B, T, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
    y = matmul_attention(q, k, v, attn_mask, self.attention_dropout if self.training else 0.0)
    return self.out(y.transpose(1, 2).reshape(B, T, C))


def _block_forward_compute_residual(self, x, attn_mask):
    a = self.attn(x, attn_mask)
    x = self.attn_norm(x + self.drop(a)).to(a.dtype)  # stored in bf16 under autocast
    f = self.ffn_out(F.gelu(self.ffn_in(x)))
    return self.ffn_norm(x + self.drop(f)).to(f.dtype)


def _keep(attn_mask, B, T, device):
    """The (B, T) key mask of the encoder's (B, 1, 1, T) SDPA mask."""
    if attn_mask is None:
        return torch.ones(B, T, dtype=torch.uint8, device=device)
    return attn_mask[:, 0, 0, :]


_SDPA_FORWARD = enc.SelfAttention.forward


def _attention_forward_triton(self, x, attn_mask):
    from triton_attention import short_row_attention, supported

    B, T, C = x.shape
    if not (x.is_cuda and supported(T, C // self.num_heads)):
        return _SDPA_FORWARD(self, x, attn_mask)
    y = short_row_attention(self.qkv(x), _keep(attn_mask, B, T, x.device), self.num_heads,
                            self.attention_dropout if self.training else 0.0)
    return self.out(y)


@contextlib.contextmanager
def variant(attention: str, residual: str):
    """Patch the encoder's blocks for one step variant; restored on exit."""
    saved = enc.SelfAttention.forward, enc.Block.forward
    if attention == "matmul":
        enc.SelfAttention.forward = _attention_forward_matmul
    if attention == "triton":
        enc.SelfAttention.forward = _attention_forward_triton
    if residual == "compute":
        enc.Block.forward = _block_forward_compute_residual
    try:
        yield
    finally:
        enc.SelfAttention.forward, enc.Block.forward = saved


# 2. Attention alone ----------------------------------------------------------------------

def attention(B: int, T: int, H: int, D: int, pad_from: int) -> dict:
    """fwd+bwd of one layer's attention in the encoder's layout, per variant."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    C = H * D
    torch.manual_seed(0)
    qkv = torch.randn(B, T, 3 * C, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    mask = torch.ones(B, T, dtype=torch.long, device="cuda")
    lengths = torch.randint(pad_from, T + 1, (B,), device="cuda")
    mask = (torch.arange(T, device="cuda")[None, :] < lengths[:, None]).long()
    bool4 = enc._attention_bias(mask)
    grad = torch.randn(B, T, C, device="cuda", dtype=torch.bfloat16) * mask[..., None]

    def sdpa(m, p, backend=None):
        def f():
            q, k, v = qkv.split(C, dim=2)
            q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
            ctx = sdpa_kernel([backend]) if backend is not None else torch.enable_grad()
            with ctx:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=p)
            return y.transpose(1, 2).reshape(B, T, C)
        return f

    def matmul(p, compiled=False):
        def f():
            q, k, v = qkv.split(C, dim=2)
            q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
            y = matmul_attention(q, k, v, bool4, p)
            return y.transpose(1, 2).reshape(B, T, C)
        return torch.compile(f) if compiled else f

    def short_rows(p):
        from triton_attention import short_row_attention

        return lambda: short_row_attention(qkv, mask, H, p)

    variants = {
        "triton short-row p=0.1": short_rows(0.1),
        "triton short-row p=0": short_rows(0.0),
        "sdpa bool mask p=0.1": sdpa(bool4, 0.1),
        "sdpa bool mask p=0": sdpa(bool4, 0.0),
        "sdpa no mask p=0.1": sdpa(None, 0.1),
        "sdpa mask cudnn p=0.1": sdpa(bool4, 0.1, SDPBackend.CUDNN_ATTENTION),
        "sdpa mask efficient p=0.1": sdpa(bool4, 0.1, SDPBackend.EFFICIENT_ATTENTION),
        "matmul eager p=0.1": matmul(0.1),
        "matmul compiled p=0.1": matmul(0.1, compiled=True),
        "matmul compiled p=0": matmul(0.0, compiled=True),
    }
    res = {"shape": [B, T, H, D], "real_fraction": mask.float().mean().item()}
    for name, fn in variants.items():
        def step():
            y = fn()
            y.backward(grad)
            qkv.grad = None
        try:
            res[name] = round(cuda_ms(step), 3)
        except Exception as e:  # noqa: BLE001 - a probe reports every failure and goes on
            res[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    # Agreement at real positions (dropout 0), output and input gradient.
    try:
        outs = []
        for fn in (variants["sdpa bool mask p=0"], variants["matmul compiled p=0"], variants["triton short-row p=0"]):
            y = fn()
            y.backward(grad)
            outs.append((y.detach().float(), qkv.grad.float()))
            qkv.grad = None
        real = mask.bool()
        (ya, ga), (yb, gb), (yc, gc) = outs
        res["matmul_vs_sdpa_out_rel"] = ((yb - ya)[real].norm() / ya[real].norm()).item()
        res["matmul_vs_sdpa_grad_rel"] = ((gb - ga)[real].norm() / ga[real].norm()).item()
        res["triton_vs_sdpa_out_rel"] = ((yc - ya)[real].norm() / ya[real].norm()).item()
        res["triton_vs_sdpa_grad_rel"] = ((gc - ga)[real].norm() / ga[real].norm()).item()
    except Exception as e:  # noqa: BLE001
        res["agreement_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return res


# 3. The training step ------------------------------------------------------------------------

def categorize(name: str) -> str:
    n = name.lower()
    if any(s in n for s in ("flash", "fmha", "attention", "sdpa", "cudnn")):
        return "attention"
    if any(s in n for s in ("gemm", "nvjet", "xmma", "cutlass", "sm90_", "sm80_", "cublas")):
        return "gemm"
    if "triton" in n:
        return "triton (fused)"
    if any(s in n for s in ("multi_tensor", "adam", "foreach")):
        return "optimizer"
    if any(s in n for s in ("memcpy", "memset")):
        return "copy"
    return "other aten"


def profile_steps(trainer, batches, steps: int = 3) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            trainer.train_step([next(batches)])
        torch.cuda.synchronize()
    cats: dict[str, float] = {}
    kernels = []
    for evt in prof.key_averages():
        t = getattr(evt, "self_device_time_total", None)
        if t is None:
            t = getattr(evt, "self_cuda_time_total", 0.0)
        if t <= 0:
            continue
        ms = t / 1000 / steps
        cats[categorize(evt.key)] = cats.get(categorize(evt.key), 0.0) + ms
        kernels.append((ms, evt.count // steps, evt.key[:110]))
    kernels.sort(reverse=True)
    return {"per_step_ms_by_kind": {k: round(v, 2) for k, v in sorted(cats.items(), key=lambda kv: -kv[1])},
            "kernel_ms_total": round(sum(cats.values()), 2),
            "top_kernels": [{"ms": round(ms, 3), "calls": c, "name": n} for ms, c, n in kernels[:18]]}


def train_step_run(shards: Path, preset: str, batch: int, attention_kind: str, residual: str,
                   compile_mode: str | None, out: Path, steps: int = 15, warmup: int = 5, workers: int = 0,
                   profile: bool = True, loss_chunk_rows: int | None = None) -> dict:
    torch._dynamo.reset()
    cfg = TrainConfig(preset=preset, steps=10**6, batch_size=batch, compile=False, loss_chunk_rows=loss_chunk_rows,
                      num_workers=workers, device="cuda", progress=False, val_split=None, lr=1e-4,
                      precision="auto", clip_grad=1.0)  # the step the recorded tables time
    info = DistInfo(0, 1, 0, torch.device("cuda"), False)
    trainer = Trainer(cfg, info, str(shards), out, None, None, None, False, None)
    if compile_mode is not None:
        trainer.model = torch.compile(trainer.raw_model, **({} if compile_mode == "default" else {"mode": compile_mode}))
    batches = iter(trainer.stream)
    t0 = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step([next(batches)])
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        trainer.train_step([next(batches)])
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / steps
    T = trainer.source.seq_len
    tps = batch * T / dt
    row = {"preset": preset, "batch": batch, "attention": attention_kind, "residual": residual,
           "compile": compile_mode, "loss_chunk_rows": loss_chunk_rows, "step_ms": round(1000 * dt, 2), "tokens_per_s": round(tps),
           "mfu": round(estimate_mfu(trainer.mcfg, T, tps, device="cuda"), 4),
           "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
           "warmup_s": round(first, 1), "gflop_per_token": flops_per_token(trainer.mcfg, T) / 1e9}
    if profile:
        row["profile"] = profile_steps(trainer, batches)
    del trainer, batches
    torch.cuda.empty_cache()
    return row


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--budget", type=float, default=330.0, help="seconds; later sections are skipped after it")
    p.add_argument("--rows", type=int, default=8192)
    p.add_argument("--autotune", action="store_true", help="also try max-autotune-no-cudagraphs (slow to compile)")
    p.add_argument("--more", action="store_true", help="also batch 2x with a bf16 residual, and an eager step")
    p.add_argument("--matmul", action="store_true", help="also time steps with matmul attention (run 2: slower)")
    p.add_argument("--skip-ceilings", action="store_true", help="skip section 1 (known from an earlier run)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("gpu_mfu_probe.py needs a CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = True
    report: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batch": args.batch}
    args.out.mkdir(parents=True, exist_ok=True)

    def save():
        (args.out / "gpu_mfu_probe.json").write_text(json.dumps(report, indent=1) + "\n")

    if not args.skip_ceilings:
        report["ceilings"] = ceilings("barcodebert-4-12-12", args.batch, 165)
        print("ceilings", json.dumps(report["ceilings"]), flush=True)
    report["attention_4_12_12"] = attention(args.batch, 165, 12, 64, pad_from=150)
    print("attention 4-12-12", json.dumps(report["attention_4_12_12"]), flush=True)
    report["attention_8_4_4"] = attention(args.batch, 82, 4, 192, pad_from=75)
    print("attention 8-4-4", json.dumps(report["attention_8_4_4"]), flush=True)
    save()

    runs = report["steps"] = []
    with tempfile.TemporaryDirectory() as tmp:
        shards = {name: make_shards(Path(tmp) / name, PRESETS[name].k, args.rows)
                  for name in ("barcodebert-4-12-12", "bioscan5m-8-4-4")}
        loader = report["loader"] = []
        for preset, path in shards.items():
            for workers in (0, 4):
                r = time_loader(path, args.batch, workers, batches=150, pin=True)
                r["preset"] = preset
                loader.append(r)
                print("loader", json.dumps(r), flush=True)
        B, big = args.batch, 2 * args.batch
        plan = [("barcodebert-4-12-12", B, "sdpa", "float32", "default"),
                ("barcodebert-4-12-12", B, "triton", "float32", None),
                ("barcodebert-4-12-12", B, "triton", "float32", "default"),
                ("barcodebert-4-12-12", B, "triton", "compute", "default"),
                ("barcodebert-4-12-12", B, "sdpa", "compute", "default"),
                ("bioscan5m-8-4-4", B, "sdpa", "float32", "default"),
                ("bioscan5m-8-4-4", B, "sdpa", "float32", "default", 4096)]
        if args.more:
            plan += [("barcodebert-4-12-12", big, "sdpa", "compute", "default"),
                     ("barcodebert-4-12-12", B, "sdpa", "float32", None)]
        if args.matmul:
            plan += [("barcodebert-4-12-12", B, "matmul", "float32", "default"),
                     ("barcodebert-4-12-12", B, "matmul", "compute", "default")]
        if args.autotune:
            plan.append(("barcodebert-4-12-12", B, "matmul", "compute", "max-autotune-no-cudagraphs"))
        for preset, batch, kind, residual, mode, *chunk in plan:
            if elapsed() > args.budget:
                print(f"skipped {preset} {batch} {kind} {residual} {mode}: {elapsed():.0f} s used", flush=True)
                continue
            try:
                with variant(kind, residual):
                    row = train_step_run(shards[preset], preset, batch, kind, residual, mode, Path(tmp) / "run",
                                         profile=mode != "max-autotune-no-cudagraphs",
                                         loss_chunk_rows=chunk[0] if chunk else None)
            except Exception as e:  # noqa: BLE001
                row = {"preset": preset, "batch": batch, "attention": kind, "residual": residual, "compile": mode,
                       "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
                torch.cuda.empty_cache()
            runs.append(row)
            print("step", json.dumps(row), flush=True)
            save()

    print("\n== summary ==")
    for key in ("attention_4_12_12", "attention_8_4_4"):
        print(key, {k: v for k, v in report[key].items()})
    c = report.get("ceilings")
    if c:
        print(f"matmul 8192: {c['matmul_8192_tflops']:.0f} TFLOP/s; GEMM floor of a 4-12-12 step at batch "
              f"{args.batch}: {c['gemm_floor_ms']:.1f} ms")
    for r in runs:
        head = (f"{r['preset']:>20} {r['batch']:>4} {r['attention']:>6} {r['residual']:>7} {str(r['compile']):>8}"
                f" chunks={r.get('loss_chunk_rows')}")
        if "error" in r:
            print(f"{head}  ERROR {r['error']}")
            continue
        print(f"{head}  {r['step_ms']:7.1f} ms  {r['tokens_per_s']:>9,} tok/s  MFU {100 * r['mfu']:.1f}%  "
              f"mem {r['peak_mem_gib']} GiB")
        if "profile" in r:
            print("      by kind:", r["profile"]["per_step_ms_by_kind"])
    for r in report.get("loader", []):
        print(f"loader {r['preset']:>20} workers {r['workers']}: {r['rows_per_s']:,.0f} rows/s "
              f"{r['tokens_per_s']:,.0f} tokens/s (pinned)")
    print(f"total {elapsed():.0f} s")


if __name__ == "__main__":
    main()
