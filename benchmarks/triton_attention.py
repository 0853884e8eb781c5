"""Fused attention for short rows with a key-padding mask and dropout, in Triton (experiment).

Why: on an H200 the compiled ``barcodebert-4-12-12`` step spends 17.8 of 71 ms in attention
(results/gpu_mfu_probe_h200.md). With a padding mask SDPA must use cuDNN's or the
memory-efficient kernel, which reach ~30 TFLOP/s at T = 165, D = 64. Rows this short fit
one key block: a program loads a block of queries and *all* keys and values of its
(row, head), so the softmax is exact in one pass (no online rescaling), and it reads q, k, v
straight from the fused ``(B, T, 3C)`` projection and writes ``(B, T, C)`` (and the
gradient of ``(B, T, 3C)``) without transposes or a concatenation.

Semantics are the encoder's: ``dropout(softmax(q k^T / sqrt(D) masked over keys)) v``; keys
where ``keep`` is 0 get no weight (every row must keep at least one key, which
``bioscan_kmer.model.encoder._attention_bias`` guarantees); dropout draws Philox numbers
from a seed taken from torch's generator on the device, so a seed fixes the result and
restoring the RNG state reproduces it. Limits: T <= 256, head size a power of two >= 16.

Not part of the library: it is kept here until a GPU run shows it beats SDPA inside the
step (``python benchmarks/gpu_mfu_probe.py`` times it as the "triton" variant). Check it,
on a GPU or on the CPU through Triton's interpreter (float32 there):

    TRITON_INTERPRET=1 python benchmarks/triton_attention.py --check
    python benchmarks/triton_attention.py --check            # on a CUDA machine, bf16 too
    python benchmarks/triton_attention.py --resources        # sm_90 registers/spills, no GPU needed

(Triton is not a dependency of the project; on a CPU machine ``pip install triton`` into a
separate environment for these checks.)
"""

from __future__ import annotations

import argparse
import math

import torch
import triton
import triton.language as tl

MAX_T = 256


@triton.jit
def _fwd_kernel(QKV, KEEP, SEED, O, LSE, s_qb, s_qt, s_kb, s_ob, s_ot, H, C, sm_scale, p_drop,
                T: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, DROPOUT: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    base = QKV + b * s_qb + h * D
    row_ok = offs_m[:, None] < T
    col_ok = offs_n[:, None] < T
    q = tl.load(base + offs_m[:, None] * s_qt + offs_d[None, :], mask=row_ok, other=0.0)
    k = tl.load(base + C + offs_n[:, None] * s_qt + offs_d[None, :], mask=col_ok, other=0.0)
    v = tl.load(base + 2 * C + offs_n[:, None] * s_qt + offs_d[None, :], mask=col_ok, other=0.0)
    keep = tl.load(KEEP + b * s_kb + offs_n, mask=offs_n < T, other=0)
    s = tl.dot(q, tl.trans(k)) * sm_scale  # (BLOCK_M, BLOCK_N) float32
    s = tl.where(keep[None, :] != 0, s, float("-inf"))
    m = tl.max(s, axis=1)
    p = tl.exp(s - m[:, None])
    denom = tl.sum(p, axis=1)
    p = p / denom[:, None]
    if DROPOUT:
        seed = tl.load(SEED)
        r = tl.rand(seed, (bh * T + offs_m[:, None]) * T + offs_n[None, :])
        p = tl.where(r >= p_drop, p / (1.0 - p_drop), 0.0)
    o = tl.dot(p.to(v.dtype), v)  # (BLOCK_M, D)
    tl.store(O + b * s_ob + offs_m[:, None] * s_ot + h * D + offs_d[None, :], o.to(O.dtype.element_ty),
             mask=row_ok)
    tl.store(LSE + bh * T + offs_m, m + tl.log(denom), mask=offs_m < T)


@triton.jit
def _probs(q, k, keep, lse, offs_m, offs_n, bh, T, sm_scale, p_drop, seed, DROPOUT: tl.constexpr):
    """Recompute softmax probabilities p and the dropout scale z (1 without dropout)."""
    s = tl.dot(q, tl.trans(k)) * sm_scale
    p = tl.exp(s - lse[:, None])
    p = tl.where((keep[None, :] != 0) & (offs_m[:, None] < T), p, 0.0)
    if DROPOUT:
        r = tl.rand(seed, (bh * T + offs_m[:, None]) * T + offs_n[None, :])
        z = tl.where(r >= p_drop, 1.0 / (1.0 - p_drop), 0.0)
    else:
        z = tl.full(p.shape, 1.0, tl.float32)
    return p, z


@triton.jit
def _query_rows(DO, LSE, DELTA, base, b, h, bh, offs_m, offs_d, s_qt, s_ob, s_ot, T: tl.constexpr,
                D: tl.constexpr):
    """q, dO, log-sum-exp and delta of a block of query positions (zeros past T)."""
    row_ok = offs_m[:, None] < T
    q = tl.load(base + offs_m[:, None] * s_qt + offs_d[None, :], mask=row_ok, other=0.0)
    do = tl.load(DO + b * s_ob + offs_m[:, None] * s_ot + h * D + offs_d[None, :], mask=row_ok, other=0.0)
    lse = tl.load(LSE + bh * T + offs_m, mask=offs_m < T, other=0.0)
    delta = tl.load(DELTA + bh * T + offs_m, mask=offs_m < T, other=0.0)
    return q, do, lse, delta


@triton.jit
def _key_rows(KEEP, base, b, offs_n, offs_d, s_qt, s_kb, C, T: tl.constexpr):
    """k, v and the keep flags of a block of key positions (zeros past T)."""
    col_ok = offs_n[:, None] < T
    k = tl.load(base + C + offs_n[:, None] * s_qt + offs_d[None, :], mask=col_ok, other=0.0)
    v = tl.load(base + 2 * C + offs_n[:, None] * s_qt + offs_d[None, :], mask=col_ok, other=0.0)
    keep = tl.load(KEEP + b * s_kb + offs_n, mask=offs_n < T, other=0)
    return k, v, keep


@triton.jit
def _bwd_kv_kernel(QKV, DO, KEEP, SEED, LSE, DELTA, DQKV, s_qb, s_qt, s_kb, s_ob, s_ot, H, C,
                   sm_scale, p_drop, T: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                   DROPOUT: tl.constexpr):
    pid_n = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    base = QKV + b * s_qb + h * D
    k, v, keep = _key_rows(KEEP, base, b, offs_n, offs_d, s_qt, s_kb, C, T)
    seed = tl.load(SEED) if DROPOUT else 0
    dk = tl.zeros((BLOCK_N, D), dtype=tl.float32)
    dv = tl.zeros((BLOCK_N, D), dtype=tl.float32)
    for start_m in range(0, T, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q, do, lse, delta = _query_rows(DO, LSE, DELTA, base, b, h, bh, offs_m, offs_d, s_qt, s_ob, s_ot, T, D)
        p, z = _probs(q, k, keep, lse, offs_m, offs_n, bh, T, sm_scale, p_drop, seed, DROPOUT)
        dv += tl.dot(tl.trans((p * z).to(do.dtype)), do)
        dp = tl.dot(do, tl.trans(v)) * z
        ds = p * (dp - delta[:, None])
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q)
    out = DQKV + b * s_qb + offs_n[:, None] * s_qt + h * D + offs_d[None, :]
    tl.store(out + C, (dk * sm_scale).to(DQKV.dtype.element_ty), mask=offs_n[:, None] < T)
    tl.store(out + 2 * C, dv.to(DQKV.dtype.element_ty), mask=offs_n[:, None] < T)


@triton.jit
def _bwd_q_kernel(QKV, DO, KEEP, SEED, LSE, DELTA, DQKV, s_qb, s_qt, s_kb, s_ob, s_ot, H, C,
                  sm_scale, p_drop, T: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  DROPOUT: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D)
    base = QKV + b * s_qb + h * D
    q, do, lse, delta = _query_rows(DO, LSE, DELTA, base, b, h, bh, offs_m, offs_d, s_qt, s_ob, s_ot, T, D)
    seed = tl.load(SEED) if DROPOUT else 0
    dq = tl.zeros((BLOCK_M, D), dtype=tl.float32)
    for start_n in range(0, T, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k, v, keep = _key_rows(KEEP, base, b, offs_n, offs_d, s_qt, s_kb, C, T)
        p, z = _probs(q, k, keep, lse, offs_m, offs_n, bh, T, sm_scale, p_drop, seed, DROPOUT)
        dp = tl.dot(do, tl.trans(v)) * z
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k)
    tl.store(DQKV + b * s_qb + offs_m[:, None] * s_qt + h * D + offs_d[None, :],
             (dq * sm_scale).to(DQKV.dtype.element_ty), mask=offs_m[:, None] < T)


@triton.jit
def _rand_kernel(SEED, R, T: tl.constexpr, BLOCK: tl.constexpr):
    """The dropout draws of (bh, i, j), for checks."""
    bh = tl.program_id(0)
    i = tl.program_id(1)
    j = tl.arange(0, BLOCK)
    r = tl.rand(tl.load(SEED), (bh * T + i) * T + j)
    tl.store(R + (bh * T + i) * T + j, r, mask=j < T)


def supported(T: int, head_dim: int) -> bool:
    """Shapes the kernels handle."""
    return T <= MAX_T and head_dim >= 16 and head_dim & (head_dim - 1) == 0


def _blocks(T: int, interpret: bool) -> tuple[int, int]:
    """(query/key tile, full key block): 64-row tiles on a GPU, 16 in the CPU interpreter.

    Chosen from the compiled sm_90 code (cuobjdump resource usage, no GPU needed): with 8
    warps the forward (64 x 256 scores), the dK/dV kernel (64 x 64 tiles) and the dQ kernel
    (64 x 64 tiles) use wgmma and spill no registers; 4 warps or 128-row tiles spill.
    """
    return (16 if interpret else 64), max(16, triton.next_power_of_2(T))


class ShortRowAttention(torch.autograd.Function):
    """``(B, T, 3C)`` fused q|k|v, keep mask ``(B, T)`` -> ``(B, T, C)``."""

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, keep: torch.Tensor, num_heads: int, p_drop: float) -> torch.Tensor:
        B, T, C3 = qkv.shape
        C = C3 // 3
        D = C // num_heads
        if not supported(T, D):
            raise ValueError(f"short-row attention needs T <= {MAX_T} and a power-of-two head size >= 16, "
                             f"got T={T}, D={D}")
        if B * num_heads * T * T >= 2**31:
            raise ValueError("batch too large for 32-bit dropout offsets; split it")
        qkv = qkv.contiguous()
        keep = keep.to(torch.uint8).contiguous()
        out = torch.empty(B, T, C, device=qkv.device, dtype=qkv.dtype)
        lse = torch.empty(B * num_heads, T, device=qkv.device, dtype=torch.float32)
        seed = torch.randint(0, 2**31 - 1, (1,), device=qkv.device, dtype=torch.int64)
        block_m, block_n = _blocks(T, qkv.device.type == "cpu")
        _fwd_kernel[(triton.cdiv(T, block_m), B * num_heads)](
            qkv, keep, seed, out, lse, qkv.stride(0), qkv.stride(1), keep.stride(0), out.stride(0),
            out.stride(1), num_heads, C, 1.0 / math.sqrt(D), p_drop,
            T=T, D=D, BLOCK_M=block_m, BLOCK_N=block_n, DROPOUT=p_drop > 0.0, num_warps=8)
        ctx.save_for_backward(qkv, keep, out, lse, seed)
        ctx.num_heads, ctx.p_drop = num_heads, p_drop
        return out

    @staticmethod
    def backward(ctx, dout: torch.Tensor):
        qkv, keep, out, lse, seed = ctx.saved_tensors
        H, p_drop = ctx.num_heads, ctx.p_drop
        B, T, C3 = qkv.shape
        C = C3 // 3
        D = C // H
        dout = dout.contiguous()
        # delta = rowsum(dO * O) per (row, head, position): (B, H, T) float32.
        delta = (dout.float() * out.float()).view(B, T, H, D).sum(-1).transpose(1, 2).contiguous()
        dqkv = torch.empty_like(qkv)
        block_m, _ = _blocks(T, qkv.device.type == "cpu")
        args = (qkv, dout, keep, seed, lse, delta, dqkv, qkv.stride(0), qkv.stride(1), keep.stride(0),
                dout.stride(0), dout.stride(1), H, C, 1.0 / math.sqrt(D), p_drop)
        _bwd_kv_kernel[(triton.cdiv(T, block_m), B * H)](
            *args, T=T, D=D, BLOCK_M=block_m, BLOCK_N=block_m, DROPOUT=p_drop > 0.0, num_warps=8)
        _bwd_q_kernel[(triton.cdiv(T, block_m), B * H)](
            *args, T=T, D=D, BLOCK_M=block_m, BLOCK_N=block_m, DROPOUT=p_drop > 0.0, num_warps=8)
        return dqkv, None, None, None


def short_row_attention(qkv: torch.Tensor, keep: torch.Tensor, num_heads: int, p_drop: float = 0.0) -> torch.Tensor:
    """Attention of the fused projection ``qkv`` (B, T, 3C) under the key mask ``keep`` (B, T)."""
    return ShortRowAttention.apply(qkv, keep, num_heads, float(p_drop))


def dropout_draws(seed: torch.Tensor, B: int, H: int, T: int) -> torch.Tensor:
    """The uniform numbers the kernels draw for ``seed``: (B, H, T, T) float32."""
    r = torch.empty(B * H, T, T, device=seed.device, dtype=torch.float32)
    _rand_kernel[(B * H, T)](seed, r, T=T, BLOCK=max(16, triton.next_power_of_2(T)))
    return r.view(B, H, T, T)


# Checks -------------------------------------------------------------------------------------

def reference(qkv: torch.Tensor, keep: torch.Tensor, num_heads: int, p_drop: float,
              draws: torch.Tensor | None) -> torch.Tensor:
    """The same function in float64 PyTorch, given the dropout draws."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    q, k, v = (t.view(B, T, num_heads, -1).transpose(1, 2) for t in qkv.double().split(C, dim=2))
    s = q @ k.transpose(-1, -2) / math.sqrt(C // num_heads)
    s = s.masked_fill(keep[:, None, None, :] == 0, float("-inf"))
    p = s.softmax(-1)
    if p_drop > 0:
        p = torch.where(draws >= p_drop, p / (1 - p_drop), torch.zeros_like(p))
    return (p @ v).transpose(1, 2).reshape(B, T, C)


def check(device: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    for B, T, H, D, p_drop in [(3, 37, 2, 16, 0.0), (2, 21, 1, 32, 0.3), (2, 70, 2, 16, 0.1)]:
        C = H * D
        qkv = torch.randn(B, T, 3 * C, device=device, dtype=dtype, requires_grad=True)
        keep = torch.ones(B, T, dtype=torch.uint8, device=device)
        keep[0, T - 5:] = 0
        keep[-1, 3:] = 0
        grad = torch.randn(B, T, C, device=device, dtype=dtype)
        state = torch.random.get_rng_state() if device == "cpu" else torch.cuda.get_rng_state()
        out = short_row_attention(qkv, keep, H, p_drop)
        out.backward(grad)
        # The seed the forward drew, drawn again from the same generator state.
        if device == "cpu":
            torch.random.set_rng_state(state)
        else:
            torch.cuda.set_rng_state(state)
        seed = torch.randint(0, 2**31 - 1, (1,), device=device, dtype=torch.int64)
        draws = dropout_draws(seed, B, H, T) if p_drop > 0 else None
        ref_in = qkv.detach().double().requires_grad_(True)
        ref = reference(ref_in, keep, H, p_drop, draws)
        ref.backward(grad.double())
        # float32 dots run as tf32 on a GPU (Triton's default), exactly in the interpreter.
        tol = 2e-2 if dtype != torch.float32 else (5e-3 if device == "cuda" else 1e-4)
        err_o = ((out.double() - ref).norm() / ref.norm()).item()
        err_g = ((qkv.grad.double() - ref_in.grad).norm() / ref_in.grad.norm()).item()
        print(f"B={B} T={T} H={H} D={D} p={p_drop} {dtype}: out rel err {err_o:.2e}, grad rel err {err_g:.2e}")
        assert err_o < tol and err_g < tol, (err_o, err_g)
        if p_drop > 0:
            dropped = (draws < p_drop).double().mean().item()
            assert abs(dropped - p_drop) < 0.05, dropped
    print("ok")


def resources(T: int = 165, D: int = 64) -> None:
    """Compile the kernels for sm_90 (no GPU needed) and print registers, spills and wgmma use."""
    import os
    import subprocess
    import tempfile

    import triton.backends.nvidia as nvidia
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    cuobjdump = os.path.join(os.path.dirname(nvidia.__file__), "bin", "cuobjdump")
    scalars = {"s_qb": "i32", "s_qt": "i32", "s_kb": "i32", "s_ob": "i32", "s_ot": "i32", "H": "i32", "C": "i32",
               "sm_scale": "fp32", "p_drop": "fp32"}
    fwd_ptrs = {"QKV": "*bf16", "KEEP": "*u8", "SEED": "*i64", "O": "*bf16", "LSE": "*fp32"}
    bwd_ptrs = {"QKV": "*bf16", "DO": "*bf16", "KEEP": "*u8", "SEED": "*i64", "LSE": "*fp32", "DELTA": "*fp32",
                "DQKV": "*bf16"}
    block_m, block_n = _blocks(T, False)
    for fn, ptrs, bn in ((_fwd_kernel, fwd_ptrs, block_n), (_bwd_kv_kernel, bwd_ptrs, block_m),
                         (_bwd_q_kernel, bwd_ptrs, block_m)):
        consts = dict(T=T, D=D, BLOCK_M=block_m, BLOCK_N=bn, DROPOUT=True)
        signature = {n: ptrs.get(n) or scalars.get(n) or "constexpr" for n in fn.arg_names}
        kernel = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=consts),
                                target=GPUTarget("cuda", 90, 32), options={"num_warps": 8})
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(kernel.asm["cubin"])
            f.flush()
            usage = subprocess.run([cuobjdump, "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
            sass = subprocess.run([cuobjdump, "--dump-sass", f.name], capture_output=True, text=True).stdout
        line = next(x.strip() for x in usage.splitlines() if "REG:" in x)
        print(f"{fn.__name__}: {' '.join(line.split()[:2])}, shared {kernel.metadata.shared} B, "
              f"wgmma {sass.count('HGMMA')}, local stores {sass.count('STL')}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with a float64 reference, forward and gradients")
    p.add_argument("--resources", action="store_true", help="compile for sm_90 and print registers and spills")
    args = p.parse_args(argv)
    if args.resources:
        resources()
    if args.check:
        if torch.cuda.is_available():
            check("cuda", torch.float32)
            check("cuda", torch.bfloat16)
        else:
            check("cpu", torch.float32)


if __name__ == "__main__":
    main()
