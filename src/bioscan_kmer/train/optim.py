"""AdamW and the learning-rate schedules."""

from __future__ import annotations

import math

import torch

from .config import TrainConfig

__all__ = ["make_optimizer", "make_scheduler"]


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with decoupled weight decay on matrices and embeddings only.

    Biases and LayerNorm gains are never decayed: shrinking them towards zero changes the
    function without regularising its capacity (the nanoGPT / BERT convention).
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

    ``kind="onecycle"``: torch's ``OneCycleLR`` shape (which BarcodeBERT used): cosine
    warm-up from peak/25 to the peak, then cosine anneal to peak/(25 * 1e4). Unlike torch's
    class it works for any number of steps; beta1 is not cycled.
    ``kind="cosine"``: linear warm-up from 0, cosine decay to ``floor``.
    ``kind="constant"``: linear warm-up, then flat.

    A class rather than a closure so that ``LambdaLR.state_dict`` stores it as plain numbers
    (checkpoints load with ``weights_only=True``).
    """

    def __init__(self, kind: str, warmup: int, total: int, floor: float = 0.0) -> None:
        self.kind = kind
        self.warmup = int(warmup)
        self.total = int(total)
        self.floor = float(floor)

    def __call__(self, step: int) -> float:
        if self.kind == "onecycle":
            start, end = 1 / 25, 1 / (25 * 1e4)
            if step < self.warmup:
                return _cos_between(start, 1.0, step / self.warmup)
            return _cos_between(1.0, end, (step - self.warmup) / max(1, self.total - 1 - self.warmup))
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _cos_between(a: float, b: float, t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * t))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, lr: float) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule of ``cfg.schedule`` (see :class:`LrShape`), stepped once per optimizer step."""
    shape = LrShape(cfg.schedule, cfg.warmup, cfg.steps, cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [shape] * len(optimizer.param_groups))
