"""AdamW and the learning-rate schedules."""

from __future__ import annotations

import math

import torch

from .config import TrainConfig

__all__ = ["make_optimizer", "make_scheduler"]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with decoupled weight decay on matrices and embeddings only.

    Biases and LayerNorm gains are never decayed: shrinking them towards zero changes the
    function without regularising its capacity (the nanoGPT / BERT convention). With
    BarcodeBERT's weight decay of 0 the two groups behave as its single one.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused CUDA kernel is the fastest AdamW; on the CPU the default (foreach) is.
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, **extra)


class LrShape:
    """Multiplier of the peak learning rate for ``LambdaLR``, by optimizer step.

    ``kind="cosine"``: linear warm-up from 0, cosine decay to ``floor``.
    ``kind="constant"``: linear warm-up, then flat.
    (One-cycle is torch's own ``OneCycleLR``: see :func:`make_scheduler`.)

    A class rather than a closure so that ``LambdaLR.state_dict`` stores it as plain numbers
    (checkpoints load with ``weights_only=True``).
    """

    def __init__(self, kind: str, warmup: int, total: int, floor: float = 0.0) -> None:
        self.kind = kind
        self.warmup = int(warmup)
        self.total = int(total)
        self.floor = float(floor)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, lr: float) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule of ``cfg.schedule``, stepped once per optimizer step.

    ``onecycle`` is ``torch.optim.lr_scheduler.OneCycleLR`` with the arguments BarcodeBERT
    used (its defaults: cosine warm-up from lr/25 over ``pct_start`` of the steps, cosine
    anneal to lr/(25 x 1e4), beta1 cycled 0.95 -> 0.85 -> 0.95), except that beta1 stays at
    ``cfg.betas[0]`` unless ``cfg.cycle_momentum``. Its state is plain numbers and strings,
    so checkpoints still load with ``weights_only=True``.
    """
    if cfg.schedule == "onecycle":
        pct_start = cfg.pct_start
        if pct_start * cfg.steps == 1.0:
            # torch ends the warm-up at step pct_start x steps - 1; at 0 it divides by zero.
            # A one-step warm-up ends where it starts, at the peak: no warm-up phase at all.
            pct_start = 0.0
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=cfg.steps, pct_start=pct_start, anneal_strategy="cos",
            cycle_momentum=cfg.cycle_momentum, base_momentum=0.85, max_momentum=0.95,
            div_factor=25.0, final_div_factor=1e4,
        )
    shape = LrShape(cfg.schedule, cfg.warmup, cfg.steps, cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [shape] * len(optimizer.param_groups))
