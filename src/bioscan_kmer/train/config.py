"""Hyperparameters of a pretraining run, and the training recipes that fill them in.

A :class:`TrainConfig` field left at ``None`` takes its value from the run's *recipe*
(:data:`TRAINING_RECIPES`); the recipe defaults to the preset's (:data:`PRESET_RECIPES`):
the published presets train as BarcodeBERT did, ``tiny`` as the one-minute CPU demo does.
Explicit values always win. After construction every field holds its effective value,
except ``lr`` (None: the recipe's rule, which depends on the number of processes) and
``steps`` when the run is given in ``epochs`` (known once the data is open:
:meth:`TrainConfig.with_steps`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..model.config import ConfigError
from ..model.masking import RECIPES as MASK_RECIPES

__all__ = ["TrainConfig", "RESUMABLE_CHANGES", "TRAINING_RECIPES", "PRESET_RECIPES"]

_SCHEDULES = ("onecycle", "cosine", "constant")
_PRECISIONS = ("auto", "fp32", "tf32", "bf16")

#: Settings each recipe supplies where the caller leaves a field unset. ``lr_per_64`` is a
#: learning rate per 64 sequences of global batch (BarcodeBERT's linear scaling rule);
#: ``lr`` a fixed one. ``warmup_fraction`` is one-cycle's ``pct_start``.
TRAINING_RECIPES: dict[str, dict[str, Any]] = {
    # BarcodeBERT's pretraining (barcodebert/pretraining.py; docs/model.md lists where we
    # differ and why): batch 16 per process, AdamW with weight decay 0, lr 1e-4 x batch/64,
    # torch's OneCycleLR per step with its defaults (30% warm-up, cosine, beta1 cycled
    # 0.95 -> 0.85 -> 0.95), no gradient clipping, fp32, 35 epochs.
    "barcodebert": dict(batch_size=16, lr_per_64=1e-4, weight_decay=0.0, betas=(0.9, 0.999),
                        schedule="onecycle", warmup_fraction=0.3, cycle_momentum=True, clip_grad=0.0,
                        mask_recipe="barcodebert", precision="fp32", epochs=35, threads=None),
    # The demo's: what makes the tiny model learn visibly in 300 steps on a CPU (loss 5.55 ->
    # 0.84 on the README's 200,000 synthetic records, docs/model.md): a large fixed lr, a
    # short warm-up, a fixed beta1 and clipping, which keep that lr stable; one CPU thread,
    # since the tiny model gains nothing from a second one and OpenMP's spinning makes two
    # several times slower on a busy 2-core machine (77 s vs 475 s, same run).
    "demo": dict(batch_size=32, lr=3e-3, weight_decay=0.0, betas=(0.9, 0.999), schedule="onecycle",
                 warmup_fraction=0.1, cycle_momentum=False, clip_grad=1.0, mask_recipe="barcodebert",
                 precision="auto", steps=300, threads=1),
    # The `small` preset's, for an hour on a CPU: the demo's shape with a rate for its width
    # (1e-3: 3e-3 is the 64-wide model's), 4 epochs by default, every core.
    "small": dict(batch_size=32, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), schedule="onecycle",
                  warmup_fraction=0.1, cycle_momentum=False, clip_grad=1.0, mask_recipe="barcodebert",
                  precision="auto", epochs=4, threads=None),
}

#: The recipe a preset trains with unless another is asked for.
PRESET_RECIPES: dict[str, str] = {
    "tiny": "demo",
    "small": "small",
    "barcodebert-4-12-12": "barcodebert",
    "bioscan5m-8-4-4": "barcodebert",
}

#: Fields that may differ between a run and its resumption: they change how the run is
#: watched or how fast it goes, never what it computes.
RESUMABLE_CHANGES = frozenset({
    "progress", "num_workers", "log_every", "val_every", "val_batches", "ckpt_every",
    "compile", "threads", "device", "loss_chunk_rows", "snapshot_steps",
})


@dataclass(frozen=True)
class TrainConfig:
    """Settings of :func:`bioscan_kmer.train.pretrain`.

    Fields marked *recipe* default to ``None``, meaning "the recipe's value".

    Parameters
    ----------
    preset : str
        Model preset (:data:`bioscan_kmer.model.PRESETS`).
    recipe : {"barcodebert", "demo"}, optional
        Where unset fields come from (:data:`TRAINING_RECIPES`); default the preset's
        (:data:`PRESET_RECIPES`; "barcodebert" for presets it does not list).
    steps, epochs : int, optional
        Length of the run: optimizer steps, or passes over the training data (steps =
        epochs x micro-batches per epoch // grad_accum). At most one; *recipe* when neither
        (barcodebert: 35 epochs; demo: 300 steps).
    batch_size : int, optional
        Sequences per process per micro-batch (*recipe*: 16 / 32).
    grad_accum : int
        Micro-batches per optimizer step. Global batch = batch_size x grad_accum x processes.
    lr : float, optional
        Peak learning rate. Default: the recipe's (barcodebert: ``1e-4 x global batch / 64``;
        demo: 3e-3).
    weight_decay : float, optional
        Decoupled (AdamW) weight decay on matrices and embeddings (*recipe*: 0).
    betas : (float, float), optional
        AdamW betas (*recipe*: (0.9, 0.999)); with ``cycle_momentum`` beta1 follows the
        one-cycle schedule instead.
    schedule : {"onecycle", "cosine", "constant"}, optional
        Learning-rate schedule, stepped once per optimizer step (*recipe*: onecycle, which
        is torch's ``OneCycleLR``).
    warmup_steps : int, optional
        Warm-up length in steps; default ``warmup_fraction`` of the run.
    warmup_fraction : float, optional
        Warm-up as a fraction of the run (one-cycle's ``pct_start``; *recipe*: 0.3 / 0.1).
    cycle_momentum : bool, optional
        One-cycle only: cycle AdamW's beta1 from 0.95 down to 0.85 at the peak and back, as
        torch's ``OneCycleLR`` does by default (*recipe*: True for barcodebert).
    min_lr_ratio : float
        Cosine floor as a fraction of the peak.
    clip_grad : float, optional
        Clip the global gradient norm to this value; 0 disables (*recipe*: 0 / 1.0).
    mask_recipe : {"barcodebert", "bert"}, optional
        See :mod:`bioscan_kmer.model.masking` (*recipe*: barcodebert).
    mask_ratio : float, optional
        Override the masking recipe's probability (0.5 / 0.15).
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
    snapshot_steps : tuple of int
        After each of these steps, also keep the weights as they are then in
        ``snapshots/step_<step>.pt`` (a model-only checkpoint that every loader reads): the
        points of a learning curve. Step 0 is the initialisation; steps beyond the run are
        ignored.
    log_every : int
        Steps between JSONL records (and progress-bar updates).
    seed : int
        Seeds initialisation, data order, random offsets, masking and dropout.
    device : str, optional
        "cuda", "cuda:1", "cpu"; default CUDA when available. Under torchrun each process
        takes ``cuda:LOCAL_RANK``.
    precision : {"fp32", "tf32", "bf16", "auto"}, optional
        Speed switch, *recipe* (barcodebert: fp32, as the original). "fp32": full float32
        matmuls (TF32 off); "tf32": float32 with TF32 tensor-core matmuls on CUDA; "bf16":
        bf16 autocast (and TF32 for what stays float32); "auto": bf16 on CUDA, fp32 on the
        CPU. The loss is float32 in every mode.
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
        ``torch.set_num_threads`` for CPU runs (*recipe*: torch's default / 1 for demo).
    progress : bool
        Show the effective settings and a progress bar (rank 0 only). Off by default in the
        Python API (quiet library calls); the command line turns it on.

    Raises
    ------
    ConfigError (a ValueError)
        A value out of range, an unknown recipe, or both ``steps`` and ``epochs``.
    """

    preset: str = "tiny"
    recipe: str | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    grad_accum: int = 1
    lr: float | None = None
    weight_decay: float | None = None
    betas: tuple[float, float] | None = None
    schedule: str | None = None
    warmup_steps: int | None = None
    warmup_fraction: float | None = None
    cycle_momentum: bool | None = None
    min_lr_ratio: float = 0.0
    clip_grad: float | None = None
    mask_recipe: str | None = None
    mask_ratio: float | None = None
    dropout: float | None = None
    train_split: str = "pretrain"
    val_split: str | None = "auto"
    val_every: int = 200
    val_batches: int = 20
    ckpt_every: int = 500
    snapshot_steps: tuple[int, ...] = ()
    log_every: int = 10
    seed: int = 0
    device: str | None = None
    precision: str | None = None
    compile: bool = False
    loss_chunk_rows: int | None = None
    num_workers: int = 0
    random_offset: bool = True
    threads: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        self._fill_from_recipe()
        self._validate()

    def _fill_from_recipe(self) -> None:
        recipe = self.recipe if self.recipe is not None else PRESET_RECIPES.get(self.preset, "barcodebert")
        if recipe not in TRAINING_RECIPES:
            raise ConfigError(f"recipe must be one of {tuple(TRAINING_RECIPES)}, got {recipe!r}")
        defaults = TRAINING_RECIPES[recipe]
        object.__setattr__(self, "recipe", recipe)
        for name in ("batch_size", "weight_decay", "betas", "schedule", "warmup_fraction",
                     "cycle_momentum", "clip_grad", "mask_recipe", "precision", "threads"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[name])
        if self.lr is None and "lr" in defaults:
            object.__setattr__(self, "lr", defaults["lr"])
        if self.steps is None and self.epochs is None:
            length = "steps" if "steps" in defaults else "epochs"
            object.__setattr__(self, length, defaults[length])
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "clip_grad", float(self.clip_grad))
        object.__setattr__(self, "snapshot_steps", tuple(self.snapshot_steps))

    def _validate(self) -> None:
        if self.steps is not None and self.epochs is not None and self.epochs_steps is None:
            raise ConfigError("give steps or epochs, not both")
        positive = ("batch_size", "grad_accum", "log_every") + tuple(
            name for name in ("steps", "epochs") if getattr(self, name) is not None)
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        for name in ("val_every", "val_batches", "ckpt_every", "num_workers", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be an int >= 0, got {value!r}")
        for step in self.snapshot_steps:
            if not isinstance(step, int) or isinstance(step, bool) or step < 0:
                raise ConfigError(f"snapshot_steps must be ints >= 0, got {step!r}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.schedule not in _SCHEDULES:
            raise ConfigError(f"schedule must be one of {_SCHEDULES}, got {self.schedule!r}")
        if self.warmup_steps is not None:
            if not isinstance(self.warmup_steps, int) or isinstance(self.warmup_steps, bool) \
                    or self.warmup_steps < 0 or (self.steps is not None and self.warmup_steps >= self.steps):
                raise ConfigError(f"warmup_steps must be in [0, steps), got {self.warmup_steps}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not isinstance(self.cycle_momentum, bool):
            raise ConfigError(f"cycle_momentum must be a bool, got {self.cycle_momentum!r}")
        if self.cycle_momentum and self.schedule != "onecycle":
            raise ConfigError(f"cycle_momentum needs the onecycle schedule, not {self.schedule!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not self.clip_grad >= 0:
            raise ConfigError(f"clip_grad must be >= 0 (0 disables clipping), got {self.clip_grad}")
        if self.mask_recipe not in MASK_RECIPES:
            raise ConfigError(f"mask_recipe must be one of {MASK_RECIPES}, got {self.mask_recipe!r}")
        if self.mask_ratio is not None and not 0.0 < self.mask_ratio <= 1.0:
            raise ConfigError(f"mask_ratio must be in (0, 1], got {self.mask_ratio}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.precision not in _PRECISIONS:
            raise ConfigError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.loss_chunk_rows is not None and (not isinstance(self.loss_chunk_rows, int)
                                                 or isinstance(self.loss_chunk_rows, bool)
                                                 or self.loss_chunk_rows < 1):
            raise ConfigError(f"loss_chunk_rows must be a positive int or None, got {self.loss_chunk_rows!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")

    @property
    def epochs_steps(self) -> int | None:
        """``steps`` when it was derived from ``epochs`` by :meth:`with_steps`, else None."""
        return self.__dict__.get("_epochs_steps")

    def with_steps(self, micro_batches_per_epoch: int) -> "TrainConfig":
        """Resolve ``epochs`` into optimizer steps for an epoch of this many micro-batches.

        A config given in steps is returned unchanged. Steps are ``epochs x
        micro_batches_per_epoch // grad_accum`` (an accumulated step may straddle epochs).
        """
        if self.epochs is None:
            return self
        steps = self.epochs * micro_batches_per_epoch // self.grad_accum
        if steps < 1:
            raise ConfigError(f"{self.epochs} epoch(s) of {micro_batches_per_epoch} micro-batches "
                              f"make no optimizer step with grad_accum {self.grad_accum}")
        resolved = dataclasses.replace(self, steps=None)
        object.__setattr__(resolved, "steps", steps)
        object.__setattr__(resolved, "_epochs_steps", steps)
        resolved._validate()
        return resolved

    @property
    def warmup(self) -> int:
        """Warm-up steps (needs ``steps``)."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return int(round(self.warmup_fraction * self.steps))

    @property
    def pct_start(self) -> float:
        """One-cycle's warm-up fraction: ``warmup_steps / steps`` when given, else ``warmup_fraction``."""
        if self.warmup_steps is not None:
            return self.warmup_steps / self.steps
        return float(self.warmup_fraction)

    def peak_lr(self, world_size: int) -> float:
        """The learning rate at the end of warm-up for ``world_size`` processes."""
        if self.lr is not None:
            return self.lr
        per_64 = TRAINING_RECIPES[self.recipe]["lr_per_64"]
        return per_64 * self.batch_size * self.grad_accum * world_size / 64

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the effective values (``from_dict`` gives this config back)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["snapshot_steps"] = list(self.snapshot_steps)
        if self.epochs_steps is not None:
            d["steps"] = None  # derived from epochs, and derived again on resume
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        return cls(**dict(data))

    def differences(self, other: "TrainConfig") -> list[str]:
        """Fields (other than :data:`RESUMABLE_CHANGES`) whose values differ."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k not in RESUMABLE_CHANGES and a[k] != b[k]]

    def describe(self, world_size: int = 1) -> str:
        """One line with the effective settings, e.g. for the start of a run."""
        global_batch = self.batch_size * self.grad_accum * world_size
        length = (f"{self.steps:,} steps" if self.epochs is None
                  else f"{self.epochs} epochs" + (f" = {self.steps:,} steps" if self.steps else ""))
        warmup = (f"{self.warmup_steps} warm-up steps" if self.warmup_steps is not None
                  else f"{self.warmup_fraction:.0%} warm-up")
        beta1 = "beta1 0.95->0.85->0.95" if self.cycle_momentum else f"beta1 {self.betas[0]}"
        clip = f"clip {self.clip_grad:g}" if self.clip_grad else "no clipping"
        return (f"preset {self.preset}, recipe {self.recipe}: {length}, batch {self.batch_size}"
                f" x {self.grad_accum} x {world_size} process{'es' if world_size > 1 else ''}"
                f" = {global_batch}, lr {self.peak_lr(world_size):.3g} ({self.schedule}, {warmup}, {beta1}),"
                f" weight decay {self.weight_decay:g}, {clip}, masking {self.mask_recipe},"
                f" precision {self.precision}" + (f", {self.threads} CPU thread{'s' if self.threads > 1 else ''}"
                                                  if self.threads else "") + f", seed {self.seed}")
