"""Masked-language-model pretraining: :func:`pretrain`.

Read top to bottom: set up processes and devices, open the data, build (or restore) the
model, optimizer and schedule, then loop over optimizer steps. Each step

1. takes ``grad_accum`` micro-batches from the resumable stream,
2. masks them on the device with the shared, seeded generator,
3. counts the labelled tokens of the whole step over all processes,
4. runs forward/backward with the summed loss divided by that count, so that gradients are
   the per-token mean of the global batch whatever the split over processes and
   micro-batches (DDP then averages: hence the factor ``world_size``),
5. clips (when the recipe does), steps AdamW and the schedule.

Logging, validation and checkpoints happen between steps. A checkpoint holds everything
the next step depends on (weights, optimizer, schedule, RNG states, data position), so a
resumed run computes what the uninterrupted one would have. SIGTERM or SIGUSR1 ends the run
after the current step, with a checkpoint (:mod:`bioscan_kmer.train.preemption`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from ..model.checkpoint import CheckpointError, DiskFullError, load_checkpoint, save_checkpoint
from ..model.config import ConfigError, EncoderConfig, get_preset
from ..model.encoder import IGNORE_INDEX, MaskedLM
from ..model.masking import apply_masking
from ..model.mfu import estimate_mfu, peak_flops
from .batches import BatchStream, open_source, shard_has_split
from .config import TrainConfig
from .ddp import (DistInfo, all_reduce_max, all_reduce_sum, barrier, broadcast_object, gather_objects,
                  setup_distributed, teardown_distributed)
from .optim import make_optimizer, make_scheduler
from .preemption import StopSignals
from .runlog import JsonlLog, plot_loss_curve, read_log

__all__ = ["pretrain", "Trainer"]

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
PLOT_NAME = "loss.png"
SNAPSHOT_DIR = "snapshots"


def pretrain(
    data: str | os.PathLike | Sequence[str],
    out_dir: str | os.PathLike,
    *,
    train_config: TrainConfig | None = None,
    model_config: EncoderConfig | None = None,
    tokenizer: Any = None,
    val_data: Sequence[str] | None = None,
    resume: bool = False,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Pretrain a masked-LM encoder; the Python API behind ``bioscan-kmer pretrain``.

    Parameters
    ----------
    data : path-like or sequence of str
        A shard directory (``bioscan-kmer prepare``), a FASTA/TSV/CSV file of raw barcodes
        (BarcodeBERT's pretraining set of it), or barcodes as a list of str; all tokenized
        at read time, with per-row random offsets (:func:`~.batches.open_source`).
    out_dir : path-like
        Receives ``checkpoint.pt``, ``log.jsonl``, ``loss.png``, ``config.json`` and
        ``tokenizer.json``.
    train_config : TrainConfig, optional
        All hyperparameters; or give them as keyword arguments (``steps=...``).
    model_config : EncoderConfig, optional
        Use this architecture instead of ``train_config.preset``.
    tokenizer : KmerTokenizer, optional
        Required with raw sequences.
    val_data : sequence of str, optional
        Raw validation sequences (shards use ``val_split``).
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` when it exists (a fresh start otherwise).
        Without it an existing checkpoint is an error rather than overwritten.
    on_step : callable, optional
        ``on_step(step, info)`` after every optimizer step, on every process.
    **settings
        Fields of :class:`TrainConfig` (when ``train_config`` is not given).

    Returns
    -------
    dict
        ``steps``, ``total_steps``, ``first_loss``, ``last_loss``, ``val_loss``,
        ``tokens_per_s``, ``mfu``, ``checkpoint``, ``log``, ``plot``, ``out_dir``,
        ``elapsed_s``, ``resumed_from``, ``world_size``, ``settings`` (the effective
        settings in one line) and ``stopped_by`` (``"SIGTERM"`` / ``"SIGUSR1"`` when a
        signal ended the run early, after writing the checkpoint; else None).

    Raises
    ------
    ConfigError (a ValueError)
        Bad settings, a vocabulary that does not match the preset, a resumption whose
        settings, model or data differ from its checkpoint's.
    ShardError (a ValueError)
        A missing shard directory, manifest or split.
    CheckpointError (a ValueError)
        ``out_dir/checkpoint.pt`` is not a training checkpoint that can be resumed.
    FileExistsError
        ``out_dir`` already holds a checkpoint and ``resume`` is False.
    DiskFullError
        Not enough disk space for the checkpoints.
    Stopped
        SIGTERM or SIGUSR1 arrived before training started (nothing written).
    """
    if train_config is None:
        train_config = TrainConfig(**settings)
    elif settings:
        raise TypeError("give either train_config or keyword settings, not both")
    info = setup_distributed(train_config.device)
    threads_before = torch.get_num_threads()
    tf32_before = torch.backends.cuda.matmul.allow_tf32
    trainer = None
    try:
        with StopSignals() as stop:
            if train_config.threads is not None:
                torch.set_num_threads(train_config.threads)
            trainer = Trainer(train_config, info, data, Path(out_dir), model_config, tokenizer, val_data,
                              resume, on_step)
            stop.defer()
            return trainer.run(stop)
    finally:
        torch.set_num_threads(threads_before)
        torch.backends.cuda.matmul.allow_tf32 = tf32_before
        # The DDP wrapper holds the process group: drop it here, so that leaving the group
        # really ends it now rather than at interpreter shutdown (see teardown_distributed).
        trainer = None
        teardown_distributed(info)


class Trainer:
    """One pretraining run on one process (see :func:`pretrain`).

    Construction opens the data, builds or restores model, optimizer, schedule and data
    stream, and wraps the model (``torch.compile``, DDP); nothing is written until
    :meth:`run`. :meth:`train_step` is public so that ``benchmarks/gpu_pretrain.py`` times
    exactly the step the loop runs.
    """

    def __init__(self, cfg: TrainConfig, info: DistInfo, data: Any, out: Path,
                 model_config: EncoderConfig | None, tokenizer: Any, val_data: Any,
                 resume: bool, on_step: Callable | None) -> None:
        self.cfg, self.info, self.out, self.on_step = cfg, info, out, on_step
        self.device = info.device
        self.ckpt_path = out / CHECKPOINT_NAME
        self.state = self._existing_checkpoint(resume)

        # Data ------------------------------------------------------------------------
        # Checksums are verified on resume; raw barcodes get the preset's tokenizer.
        self.source = open_source(data, cfg.train_split, tokenizer=tokenizer,
                                  random_offset=cfg.random_offset, seed=cfg.seed,
                                  verify=self.state is not None,
                                  model_config=model_config or get_preset(cfg.preset))
        self.val_source = self._open_validation(data, tokenizer, val_data)
        self.cfg = cfg = cfg.with_steps(self._micro_batches_per_epoch())

        # Model config: the preset's, checked against (or adopting) the data's vocabulary.
        mcfg = model_config if model_config is not None else get_preset(cfg.preset)
        if not mcfg.vocab_locked:
            mcfg = mcfg.with_tokenizer(self.source.tokenizer)
        try:
            mcfg.check_tokenizer(self.source.tokenizer, what=self.source.description)
        except ValueError as exc:
            name = "the given model config" if model_config is not None else f"preset {cfg.preset!r}"
            raise ConfigError(f"{name}: {exc}") from None
        if cfg.dropout is not None:
            mcfg = mcfg.replace(dropout=cfg.dropout, attention_dropout=cfg.dropout)
        self.mcfg = mcfg
        if self.state is not None:
            self._check_resumable()
        if info.is_main:
            self._check_disk_space()

        # Model, optimizer, schedule ------------------------------------------------------
        # Same seed on every process so that all start from the same weights (DDP would
        # broadcast rank 0's anyway); then a per-rank seed so dropout differs per process.
        torch.manual_seed(cfg.seed)
        self.raw_model = MaskedLM(mcfg).to(self.device)
        self.lr = cfg.peak_lr(info.world_size)
        self.optimizer = make_optimizer(self.raw_model, cfg, self.lr, self.device)
        self.scheduler = make_scheduler(self.optimizer, cfg, self.lr)
        self.mask_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed + 1 + info.rank)
        self.step = 0
        self.tokens_seen = 0
        # Loss accumulated since the last log record; saved so that a resumed run logs the
        # same averages as an uninterrupted one.
        self.window = None
        self.resumed_window = None
        self.stream = BatchStream(self.source, cfg.batch_size, rank=info.rank, world_size=info.world_size,
                                  seed=cfg.seed, shuffle=True, num_workers=cfg.num_workers,
                                  pin_memory=self.device.type == "cuda")
        if self.state is not None:
            self._restore()

        model: torch.nn.Module = self.raw_model
        if cfg.compile:
            model = torch.compile(model)
        if info.enabled:
            model = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.model = model

        # Precision is a speed switch the run asks for, never a side effect: fp32 means full
        # float32 matmuls on a GPU too (TF32 off, as in the original); pretrain() restores
        # the process-wide TF32 flag when it returns.
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" else "fp32"
        torch.backends.cuda.matmul.allow_tf32 = precision in ("tf32", "bf16")
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) \
            if precision == "bf16" else contextlib.nullcontext
        self.precision = precision
        self.tokens_per_step = cfg.batch_size * cfg.grad_accum * info.world_size * self.source.seq_len
        self.peak = peak_flops(self.device) * info.world_size

    # Setup helpers ---------------------------------------------------------------------

    def _micro_batches_per_epoch(self) -> int:
        cfg, world = self.cfg, self.info.world_size
        n = len(self.source.dataset)
        if n < cfg.batch_size * world:
            raise ConfigError(f"{self.source.description} has {n:,} rows, fewer than one global batch "
                              f"({cfg.batch_size} x {world} process{'es' if world > 1 else ''})")
        return (n // world) // cfg.batch_size

    def _existing_checkpoint(self, resume: bool) -> dict | None:
        if not self.ckpt_path.exists():
            return None
        if not resume:
            raise FileExistsError(
                f"{self.ckpt_path} already exists: pass resume=True (--resume) to continue "
                "that run, or choose another output directory"
            )
        state = load_checkpoint(self.ckpt_path, map_location="cpu")
        missing = [key for key in _RESUME_KEYS if key not in state]
        if missing:
            raise CheckpointError(
                f"{self.ckpt_path} cannot be resumed: it lacks {', '.join(missing)} (a model-only "
                "checkpoint?); choose another output directory to start a new run")
        return state

    def _open_validation(self, data: Any, tokenizer: Any, val_data: Any):
        cfg = self.cfg
        if val_data is not None:
            return open_source(val_data, "", tokenizer=tokenizer or self.source.tokenizer,
                               random_offset=False, seed=cfg.seed)
        if not isinstance(data, (str, os.PathLike)) or cfg.val_split is None:
            return None
        split = cfg.val_split
        if split == "auto":
            if not shard_has_split(data, "val"):
                return None
            split = "val"
        return open_source(data, split, tokenizer=tokenizer)

    def _check_resumable(self) -> None:
        state, cfg = self.state, self.cfg
        if isinstance(state["train_config"], dict) and "recipe" not in state["train_config"]:
            # Written before training recipes: its one-cycle schedule was another class with
            # another state, which cannot be continued exactly.
            raise CheckpointError(f"{self.ckpt_path} was written by an older bioscan-kmer (before "
                                  "training recipes) and cannot be resumed exactly; start a new run")
        try:
            saved = TrainConfig.from_dict(state["train_config"])
            saved_model = EncoderConfig.from_dict(state["config"])
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{self.ckpt_path} cannot be resumed: its settings are unreadable "
                                  f"({' '.join(str(exc).split())})") from None
        diffs = saved.with_steps(self._micro_batches_per_epoch()).differences(cfg)
        if diffs:
            raise ConfigError("cannot resume with different settings: " + "; ".join(diffs))
        if saved_model != self.mcfg:
            raise ConfigError("cannot resume: the model configuration differs from the checkpoint's")
        if state["data_fingerprint"] != self.source.fingerprint:
            raise ConfigError(f"cannot resume: {self.source.description} is not the data the "
                              "checkpoint was trained on")
        if state["world_size"] != self.info.world_size:
            raise ConfigError(f"cannot resume: the checkpoint was written by {state['world_size']} "
                              f"processes, this run has {self.info.world_size}")

    def _check_disk_space(self) -> None:
        # Weights + two AdamW moments in float32, twice: the new checkpoint is written to a
        # temporary file while the previous one still exists. The meta device counts
        # parameters without allocating them.
        with torch.device("meta"):
            n_params = sum(p.numel() for p in MaskedLM(self.mcfg).parameters())
        need = 2 * 3 * 4 * n_params + (16 << 20)
        self.out.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.out).free
        if free < need:
            raise DiskFullError(
                28, f"not enough free disk space in {self.out}: checkpoints need about "
                f"{need / 2**20:,.0f} MiB, {free / 2**20:,.0f} MiB free"
            )

    def _restore(self) -> None:
        state = self.state
        try:
            self.raw_model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{self.ckpt_path} cannot be resumed: its weights or optimizer state "
                                  f"do not fit this run ({' '.join(str(exc).split())[:300]})") from None
        self.step = int(state["step"])
        self.tokens_seen = int(state["tokens_seen"])
        self.stream.seek(state["data_position"])
        rng = state["rng"]
        self.mask_gen.set_state(rng["mask"])
        mine = rng["processes"][self.info.rank]
        torch.set_rng_state(mine["torch"])
        if mine.get("cuda") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], self.device)
        self.resumed_window = mine["log_window"]

    # The loop ----------------------------------------------------------------------------

    def run(self, stop: StopSignals | None = None) -> dict[str, Any]:
        """Train up to ``cfg.steps``; a stop signal recorded by ``stop`` ends the run early,
        after the current step and its checkpoint."""
        cfg, info = self.cfg, self.info
        resumed_from = self.step if self.state is not None else None
        log = None
        settings = cfg.describe(info.world_size) + f" ({self.precision} on {self.device.type})"
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            log = JsonlLog(self.out / LOG_NAME, truncate_after=resumed_from)
            self._write_run_files(settings)
            if cfg.progress:
                print(f"pretrain: {settings}", file=sys.stderr, flush=True)
        stopping = _StopAgreement(stop, info, self.device)
        self.state = None  # the checkpoint's tensors are restored; free them
        bar = None
        if cfg.progress and info.is_main:
            from bioscan_kmer._progress import progress_bar

            bar = progress_bar(total=cfg.steps, initial=self.step, desc="pretrain", unit="step", dynamic_ncols=True)
        batches = iter(self.stream)
        snapshots = frozenset(cfg.snapshot_steps)
        if 0 in snapshots and self.step == 0:
            self._snapshot()  # the initialisation: where a learning curve starts
        window_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        window_count = torch.zeros((), device=self.device, dtype=torch.int64)
        window_real = torch.zeros((), device=self.device, dtype=torch.int64)
        if self.resumed_window is not None:
            window_loss += self.resumed_window["loss"]
            window_count += self.resumed_window["count"]
            window_real += self.resumed_window["real"]
        self.window = (window_loss, window_count, window_real)
        window_steps, window_start = 0, time.perf_counter()
        run_start = window_start
        first_loss = last_loss = val_loss = None
        tokens_per_s = mfu = None
        self.model.train()
        try:
            while self.step < cfg.steps:
                loss_sum, count, real = self.train_step([next(batches) for _ in range(cfg.grad_accum)])
                self.step += 1
                self.tokens_seen += self.tokens_per_step
                window_loss += loss_sum
                window_count += count
                window_real += real
                window_steps += 1
                record: dict[str, Any] = {"step": self.step}
                if self.step == 1 or self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    all_reduce_sum(window_loss, info)
                    all_reduce_sum(window_real, info)
                    # count is already summed over processes in train_step
                    loss = window_loss.item() / max(1, window_count.item())
                    elapsed = time.perf_counter() - window_start
                    tokens_per_s = window_steps * self.tokens_per_step / elapsed
                    mfu = estimate_mfu(self.mcfg, self.source.seq_len, tokens_per_s, peak=self.peak)
                    record.update(
                        loss=loss, lr=self.step_lr, tokens_per_s=tokens_per_s,
                        real_tokens_per_s=window_real.item() / elapsed, mfu=mfu,
                        tokens_seen=self.tokens_seen, epoch=self.stream.epoch,
                        elapsed_s=time.perf_counter() - run_start,
                    )
                    first_loss = loss if first_loss is None else first_loss
                    last_loss = loss
                    if log is not None:
                        log.write(record)
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
                    window_loss.zero_(), window_count.zero_(), window_real.zero_()
                    window_steps, window_start = 0, time.perf_counter()
                if self.val_source is not None and (
                        (cfg.val_every and self.step % cfg.val_every == 0) or self.step == cfg.steps):
                    t = time.perf_counter()
                    val_loss = self._validate()
                    record["val_loss"] = val_loss
                    if log is not None:
                        log.write({"step": self.step, "val_loss": val_loss})
                    # Validation time is not training throughput.
                    window_start += time.perf_counter() - t
                stop_now = stopping.agreed()
                if (cfg.ckpt_every and self.step % cfg.ckpt_every == 0) or self.step == cfg.steps or stop_now:
                    t = time.perf_counter()
                    self._save()
                    # Checkpoint time is not training throughput.
                    window_start += time.perf_counter() - t
                if self.step in snapshots:
                    t = time.perf_counter()
                    self._snapshot()
                    window_start += time.perf_counter() - t
                if bar is not None:
                    bar.update(1)
                if self.on_step is not None:
                    self.on_step(self.step, record)
                if stop_now:
                    break
        finally:
            self.stream.close()  # the loader's persistent workers
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
        plot = None
        if info.is_main:
            records = read_log(self.out / LOG_NAME)
            plot = plot_loss_curve(records, self.out / PLOT_NAME,
                                   title=f"{self.cfg.preset} pretraining ({self.mcfg.num_layers} layers)")
            # The log covers the whole run, also when this call resumed it half-way.
            losses = [r["loss"] for r in records if "loss" in r]
            if losses:
                first_loss, last_loss = losses[0], losses[-1]
        barrier(info)
        return {
            "steps": self.step,
            "total_steps": cfg.steps,
            "stopped_by": stopping.name if self.step < cfg.steps else None,
            "settings": settings,
            "first_loss": first_loss,
            "last_loss": last_loss,
            "val_loss": val_loss,
            "tokens_per_s": tokens_per_s,
            "mfu": mfu,
            "checkpoint": str(self.ckpt_path),
            "log": str(self.out / LOG_NAME),
            "plot": str(plot) if plot else None,
            "out_dir": str(self.out),
            "elapsed_s": time.perf_counter() - run_start,
            "resumed_from": resumed_from,
            "world_size": info.world_size,
        }

    def train_step(self, micro: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step; returns (local loss sum, global label count, local real tokens)."""
        info, cfg = self.info, self.cfg
        prepared = []
        count = torch.zeros((), device=self.device, dtype=torch.int64)
        real = torch.zeros((), device=self.device, dtype=torch.int64)
        for batch in micro:
            ids = batch["input_ids"].to(self.device, non_blocking=True)  # (B, T)
            mask = batch["attention_mask"].to(self.device, non_blocking=True)  # (B, T)
            masked, labels = apply_masking(cfg.mask_recipe, ids, mask, self.mcfg, generator=self.mask_gen,
                                           ratio=cfg.mask_ratio, row_shard=(info.rank, info.world_size))
            count += (labels != IGNORE_INDEX).sum()
            real += mask.sum()
            prepared.append((masked, mask, labels))
        all_reduce_sum(count, info)
        # Per-token mean over the global step; DDP averages over processes, hence * world.
        scale = info.world_size / count.clamp_min(1).to(torch.float32)
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        for i, (masked, mask, labels) in enumerate(prepared):
            last = i == len(prepared) - 1
            sync = self.model.no_sync() if (info.enabled and not last) else contextlib.nullcontext()
            with sync:
                with self.autocast():
                    _, loss_sum = self.model(masked, mask, labels, reduction="sum",
                                             loss_chunk_rows=cfg.loss_chunk_rows)
                (loss_sum * scale).backward()
            total += loss_sum.detach().double()
        if cfg.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.clip_grad)
        # The rate this step used: what the log reports (after the last step the schedule
        # points past its end, a value no step uses).
        self.step_lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, count, real

    @torch.no_grad()
    def _validate(self) -> float:
        """Mean masked-LM loss on the validation split, with fixed masking noise."""
        info, cfg = self.info, self.cfg
        n = len(self.val_source.dataset)
        batch_size = min(cfg.batch_size, n // info.world_size)
        if batch_size < 1:
            raise ValueError(f"{self.val_source.description} has {n} rows, fewer than one per process")
        stream = BatchStream(self.val_source, batch_size, rank=info.rank, world_size=info.world_size,
                             seed=cfg.seed, shuffle=False, num_workers=0)
        # A generator of its own: validation must not move the training RNG streams.
        gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        total = torch.zeros((), device=self.device, dtype=torch.float64)
        count = torch.zeros((), device=self.device, dtype=torch.int64)
        self.raw_model.eval()
        try:
            for batch in stream.one_pass(cfg.val_batches or None):
                ids = batch["input_ids"].to(self.device)
                mask = batch["attention_mask"].to(self.device)
                masked, labels = apply_masking(cfg.mask_recipe, ids, mask, self.mcfg, generator=gen,
                                               ratio=cfg.mask_ratio, row_shard=(info.rank, info.world_size))
                with self.autocast():
                    _, loss_sum = self.raw_model(masked, mask, labels, reduction="sum",
                                                 loss_chunk_rows=cfg.loss_chunk_rows)
                total += loss_sum.double()
                count += (labels != IGNORE_INDEX).sum()
        finally:
            self.raw_model.train()
        all_reduce_sum(total, info)
        all_reduce_sum(count, info)
        return total.item() / max(1, count.item())

    def _save(self) -> None:
        info = self.info
        loss, count, real = self.window
        mine = {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "log_window": {"loss": loss.item(), "count": count.item(), "real": real.item()}}
        processes = gather_objects(mine, info)
        error = None
        if info.is_main:
            try:
                save_checkpoint(self.ckpt_path, {
                    "model": self.raw_model.state_dict(),
                    "config": self.mcfg.to_dict(),
                    "tokenizer": dict(self.source.tokenizer.config),
                    "train_config": self.cfg.to_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict(),
                    "rng": {"mask": self.mask_gen.get_state(), "processes": processes},
                    "step": self.step,
                    "tokens_seen": self.tokens_seen,
                    "data_position": self.stream.position,
                    "data_fingerprint": self.source.fingerprint,
                    "world_size": info.world_size,
                })
            except DiskFullError as exc:
                error = str(exc)
        # Every process must learn about a failed write, or the others would wait forever
        # at the next collective.
        error = broadcast_object(error, info)
        if error is not None:
            raise DiskFullError(28, error)

    def _snapshot(self) -> None:
        """Keep the weights of this step in ``snapshots/`` (rank 0 writes; a model-only
        checkpoint: :func:`bioscan_kmer.model.hf.load_pretrained` and ``evaluate`` read it)."""
        if self.info.is_main:
            save_checkpoint(self.out / SNAPSHOT_DIR / f"step_{self.step:08d}.pt", {
                "model": self.raw_model.state_dict(),
                "config": self.mcfg.to_dict(),
                "tokenizer": dict(self.source.tokenizer.config),
                "step": self.step,
                "tokens_seen": self.tokens_seen,
            })
        barrier(self.info)

    def _write_run_files(self, settings: str) -> None:
        effective = {"steps": self.cfg.steps, "epochs": self.cfg.epochs, "lr": self.lr,
                     "global_batch": self.cfg.batch_size * self.cfg.grad_accum * self.info.world_size,
                     "precision": self.precision, "device": str(self.device), "summary": settings}
        (self.out / "config.json").write_text(json.dumps(
            {"model": self.mcfg.to_dict(), "train": self.cfg.to_dict(), "effective": effective,
             "world_size": self.info.world_size, "data": self.source.description},
            indent=1) + "\n", encoding="utf-8")
        self.source.tokenizer.save(self.out / "tokenizer.json")


#: What a training checkpoint must hold to be resumed.
_RESUME_KEYS = ("train_config", "optimizer", "scheduler", "rng", "step", "tokens_seen",
                "data_position", "data_fingerprint", "world_size")


class _StopAgreement:
    """Whether to stop after this step: a stop signal seen by any process, the same answer
    on all of them.

    One process reads its own signal. Several combine theirs with an all-reduce (max of the
    signal numbers, 0 for none) every step, so every process also learns which signal
    stopped the run; on CUDA the result is copied to the host without waiting and read one
    step later, so the check never stalls the GPU's queue: all stop after the same step, one
    step after the signal at most.
    """

    def __init__(self, stop: StopSignals | None, info: DistInfo, device: torch.device) -> None:
        self.stop, self.info, self.device = stop, info, device
        self.signum = 0
        self._flag = torch.zeros(1, device=device, dtype=torch.int32) if info.enabled else None
        self._pending: tuple[torch.Tensor, Any] | None = None

    @property
    def name(self) -> str | None:
        """The signal that stopped the run (``"SIGTERM"``), or None."""
        import signal

        return signal.Signals(self.signum).name if self.signum else None

    def _local(self) -> int:
        return (self.stop.signum or 0) if self.stop is not None else 0

    def agreed(self) -> bool:
        if not self.info.enabled:
            self.signum = self._local()
            return bool(self.signum)
        self._flag.fill_(self._local())
        all_reduce_max(self._flag, self.info)
        if self.device.type != "cuda":
            self.signum = int(self._flag.item())
            return bool(self.signum)
        if self._pending is not None:
            host, event = self._pending
            event.synchronize()
            self.signum = int(host.item())
        host = self._flag.to("cpu", non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending = (host, event)
        return bool(self.signum)
