"""Hyperparameters of a pretraining run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..model.masking import RECIPES

__all__ = ["TrainConfig", "RESUMABLE_CHANGES"]

_SCHEDULES = ("onecycle", "cosine", "constant")
_PRECISIONS = ("auto", "bf16", "fp32")

#: Fields that may differ between a run and its resumption: they change how the run is
#: watched or how fast it goes, never what it computes.
RESUMABLE_CHANGES = frozenset({
    "progress", "num_workers", "log_every", "val_every", "val_batches", "ckpt_every",
    "compile", "threads", "device", "loss_chunk_rows",
})


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`bioscan_kmer.train.pretrain`.

    Parameters
    ----------
    preset : str
        Model preset (:data:`bioscan_kmer.model.PRESETS`).
    steps : int
        Optimizer steps in the whole run.
    batch_size : int
        Sequences per process per micro-batch.
    grad_accum : int
        Micro-batches per optimizer step. Global batch = batch_size x grad_accum x processes.
    lr : float, optional
        Peak learning rate. Default: ``base_lr x global_batch / 64`` (BarcodeBERT's linear
        scaling), with ``base_lr`` 1e-4 for the published presets and 1e-3 for ``tiny``.
    weight_decay : float
        Decoupled (AdamW) weight decay on matrices and embeddings; 0 as in BarcodeBERT.
    betas : (float, float)
        AdamW betas.
    schedule : {"onecycle", "cosine", "constant"}
        Learning-rate schedule, stepped once per optimizer step.
    warmup_steps : int, optional
        Linear warm-up length. Default 30% of ``steps`` for one-cycle (torch's
        ``pct_start``, which BarcodeBERT used) and 5% for cosine/constant.
    min_lr_ratio : float
        Cosine floor as a fraction of the peak.
    clip_grad : float or None
        Clip the global gradient norm to this value; None disables clipping.
    mask_recipe : {"barcodebert", "bert"}
        See :mod:`bioscan_kmer.model.masking`.
    mask_ratio : float, optional
        Override the recipe's masking probability (0.5 / 0.15).
    dropout : float, optional
        Override the preset's dropout (hidden and attention).
    train_split, val_split : str
        Shard splits. ``val_split="auto"`` uses ``"val"`` when the shard has it; None
        disables validation.
    val_every, val_batches : int
        Validate every ``val_every`` steps (and at the end) on ``val_batches`` batches per
        process; 0 disables periodic validation.
    ckpt_every : int
        Write the checkpoint every ``ckpt_every`` steps (and at the end); 0: only at the end.
    log_every : int
        Steps between JSONL records (and progress-bar updates).
    seed : int
        Seeds initialisation, data order, random offsets, masking and dropout.
    device : str, optional
        "cuda", "cuda:1", "cpu"; default CUDA when available. Under torchrun each process
        takes ``cuda:LOCAL_RANK``.
    precision : {"auto", "bf16", "fp32"}
        "auto": bf16 autocast on CUDA, fp32 on the CPU.
    compile : bool
        Wrap the model in ``torch.compile``.
    loss_chunk_rows : int, optional
        Compute the masked-LM loss of this many positions at a time without materialising
        the (batch, positions, k-mers) logits (:func:`bioscan_kmer.model.losses.linear_cross_entropy`):
        for 8-4-4's 65,536-way output, where the logits dominate memory. Same loss up to
        float rounding.
    num_workers : int
        DataLoader worker processes.
    random_offset : bool
        For raw sequences: start each at a random offset in [0, k) (BarcodeBERT's augmentation).
    threads : int, optional
        ``torch.set_num_threads`` for CPU runs.
    progress : bool
        Show a progress bar (rank 0 only). Off by default in the Python API (quiet library
        calls); the command line turns it on.
    """

    preset: str = "tiny"
    steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float | None = None
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "onecycle"
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.0
    clip_grad: float | None = 1.0
    mask_recipe: str = "barcodebert"
    mask_ratio: float | None = None
    dropout: float | None = None
    train_split: str = "pretrain"
    val_split: str | None = "auto"
    val_every: int = 200
    val_batches: int = 20
    ckpt_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str | None = None
    precision: str = "auto"
    compile: bool = False
    loss_chunk_rows: int | None = None
    num_workers: int = 0
    random_offset: bool = True
    threads: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "grad_accum", "log_every")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("val_every", "val_batches", "ckpt_every", "num_workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {_SCHEDULES}, got {self.schedule!r}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps), got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ValueError(f"clip_grad must be positive or None, got {self.clip_grad}")
        if self.mask_recipe not in RECIPES:
            raise ValueError(f"mask_recipe must be one of {RECIPES}, got {self.mask_recipe!r}")
        if self.mask_ratio is not None and not 0.0 < self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1], got {self.mask_ratio}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.loss_chunk_rows is not None and (not isinstance(self.loss_chunk_rows, int)
                                                 or isinstance(self.loss_chunk_rows, bool)
                                                 or self.loss_chunk_rows < 1):
            raise ValueError(f"loss_chunk_rows must be a positive int or None, got {self.loss_chunk_rows!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    @property
    def warmup(self) -> int:
        """Warm-up steps after defaults."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        fraction = 0.3 if self.schedule == "onecycle" else 0.05
        return int(round(fraction * self.steps))

    def peak_lr(self, world_size: int) -> float:
        """The learning rate at the end of warm-up for ``world_size`` processes."""
        if self.lr is not None:
            return self.lr
        base = 1e-3 if self.preset == "tiny" else 1e-4
        return base * self.batch_size * self.grad_accum * world_size / 64

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        return cls(**dict(data))

    def differences(self, other: "TrainConfig") -> list[str]:
        """Fields (other than :data:`RESUMABLE_CHANGES`) whose values differ."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k]]
