"""Model FLOPs utilisation: how much of the hardware's peak the training step uses.

FLOPs are counted the PaLM / nanoGPT way: a matmul with N weights costs 2N FLOPs per
token forward and 4N backward (6N in all); attention adds ``QK^T`` and ``AV``, each
``2 T C`` per token per layer forward, so ``12 L T C`` with the backward. Embedding
lookups, LayerNorm, softmax and the optimizer are not counted (they are not matmuls), which
is the convention that makes MFU numbers comparable across papers.
"""

from __future__ import annotations

import os
import re

import torch

from .config import EncoderConfig

__all__ = ["flops_per_token", "estimate_mfu", "peak_flops"]

# Dense (no sparsity) bf16 tensor-core peaks, from the vendors' data sheets.
_GPU_PEAKS = (
    ("H200", 989e12),
    ("H100", 989e12),  # SXM; PCIe parts are slower but rarely used for training
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10", 125e12),
    ("L4", 121e12),
    ("4090", 165e12),
    ("V100", 125e12),  # fp16; V100 has no bf16
)


def flops_per_token(config: EncoderConfig, seq_len: int, *, training: bool = True) -> float:
    """Matmul FLOPs per token position for one forward (and backward) pass.

    Parameters
    ----------
    config : EncoderConfig
    seq_len : int
        Tokens per sequence T (padding included: it is computed like any token).
    training : bool
        Count forward + backward (x3) rather than the forward alone.
    """
    C, L, F = config.hidden_size, config.num_layers, config.intermediate_size
    per_layer = 4 * C * C + 2 * C * F  # qkv + out projection, two FFN matrices
    head = C * config.num_kmers if config.head == "classifier" else C * C + C * config.vocab_size
    weights = L * per_layer + head
    forward = 2 * weights + 4 * L * seq_len * C  # matmuls + QK^T and AV
    return float(3 * forward if training else forward)


def peak_flops(device: torch.device | str | None = None) -> float:
    """Peak FLOP/s of ``device``: bf16 tensor cores on GPUs, fp32 FMA on CPUs.

    ``BIOSCAN_KMER_PEAK_FLOPS`` overrides the guess. The CPU figure is
    ``cores x GHz x FLOPs/cycle`` (32 with AVX2+FMA, 64 with AVX-512 per core, fp32) for the
    threads torch uses; treat CPU MFU as a rough indication only.
    """
    env = os.environ.get("BIOSCAN_KMER_PEAK_FLOPS")
    if env:
        return float(env)
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in _GPU_PEAKS:
            if key in name:
                return value
        # Unknown GPU: an A100-class figure keeps MFU finite and clearly labelled as a guess.
        return 312e12
    return _cpu_peak_flops()


def _cpu_peak_flops() -> float:
    flags, mhz = "", 0.0
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
        flags = m.group(1) if m else ""
        speeds = [float(x) for x in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)]
        mhz = max(speeds) if speeds else 0.0
    except OSError:
        pass
    ghz = mhz / 1000 if mhz else 2.5
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 8
    return torch.get_num_threads() * ghz * 1e9 * per_cycle


def estimate_mfu(config: EncoderConfig, seq_len: int, tokens_per_second: float,
                 peak: float | None = None, device: torch.device | str | None = None) -> float:
    """Fraction of peak FLOP/s achieved by training at ``tokens_per_second``.

    Parameters
    ----------
    config : EncoderConfig
    seq_len : int
        Tokens per sequence (padding included).
    tokens_per_second : float
        Token positions processed per second (batch x seq_len x steps / s), all processes.
    peak : float, optional
        Peak FLOP/s of the hardware that produced the throughput (all devices together);
        default :func:`peak_flops` of ``device``.
    """
    if peak is None:
        peak = peak_flops(device)
    if peak <= 0:
        raise ValueError(f"peak FLOP/s must be positive, got {peak}")
    return flops_per_token(config, seq_len) * tokens_per_second / peak
