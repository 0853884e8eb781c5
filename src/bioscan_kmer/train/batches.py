"""Resumable, distributed batch streams over shards or raw sequences.

Every process reads its share through a ``DistributedSampler`` (one process is the case
``num_replicas=1``), so the order of samples depends only on (seed, epoch). Sample
``i`` of rank ``r``'s batch is sample ``i * world + r`` of the global batch, which is what
lets one process with the global batch reproduce a data-parallel run exactly.

A position is (epoch, micro-batches consumed in that epoch). Restarting from a position
skips the consumed indices in the sampler, without loading them.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

__all__ = ["DataSource", "BatchStream", "open_source"]


@dataclass
class DataSource:
    """A training (or validation) dataset plus how to collate it.

    Attributes
    ----------
    dataset : Dataset
        ``ShardDataset`` or ``SequenceDataset``.
    collate : callable or None
        ``SequenceDataset.collate`` for raw sequences; None (default collation) for shards.
    tokenizer : KmerTokenizer
        The tokenizer the ids come from.
    seq_len : int
        Tokens per row.
    description : str
        For messages ("shards /x split pretrain", "1,000 sequences").
    fingerprint : dict
        Identifies the data, so that a resumption on other data is refused.
    """

    dataset: Dataset
    collate: Any
    tokenizer: Any
    seq_len: int
    description: str
    fingerprint: dict


def open_source(data: Any, split: str, *, tokenizer: Any = None, random_offset: bool = True,
                seed: int = 0) -> DataSource:
    """Open ``split`` of a shard directory, or wrap raw sequences.

    Parameters
    ----------
    data : path-like or sequence of str
        A shard directory, or barcodes to tokenize on the fly.
    split : str
        Shard split (ignored for raw sequences).
    tokenizer : KmerTokenizer, optional
        Required for raw sequences.
    random_offset : bool
        Raw sequences only: random start offset in [0, k) per row and epoch.
    seed : int
        Seed of the random offsets.

    Raises
    ------
    ShardError (a ValueError)
        Missing shard directory, manifest or split.
    """
    if isinstance(data, (str, os.PathLike)):
        from ..data.torch_data import ShardDataset

        dataset = ShardDataset(data, split)
        rec = dataset.manifest["splits"][split]
        return DataSource(
            dataset=dataset, collate=None, tokenizer=dataset.tokenizer, seq_len=dataset.seq_len,
            description=f"shards {str(data)!r} split {split!r}",
            fingerprint={"kind": "shards", "split": split, "rows": len(dataset),
                         "sha256": rec["ids"]["sha256"]},
        )
    if tokenizer is None:
        raise ValueError("raw sequences need a tokenizer= (a KmerTokenizer)")
    if isinstance(data, (bytes, bytearray)) or not isinstance(data, Sequence):
        raise TypeError(f"data must be a shard directory or a sequence of str, got {type(data).__name__}")
    from ..data.torch_data import SequenceDataset

    dataset = SequenceDataset(data, tokenizer, random_offset=random_offset, seed=seed)
    sample = [dataset.seqs[i] for i in range(0, len(dataset), max(1, len(dataset) // 1000))]
    return DataSource(
        dataset=dataset, collate=dataset.collate, tokenizer=tokenizer, seq_len=tokenizer.seq_len,
        description=f"{len(dataset):,} sequences",
        fingerprint={"kind": "sequences", "rows": len(dataset), "sample_hash": _hash_strings(sample)},
    )


def _hash_strings(strings: Sequence[str]) -> str:
    import hashlib

    h = hashlib.sha256()
    for s in strings:
        h.update(s.encode())
        h.update(b"\0")
    return h.hexdigest()


class _SkipSampler(Sampler):
    """A ``DistributedSampler`` that starts ``skip`` indices into its epoch."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base = base
        self.skip = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return len(self.base) - self.skip


class BatchStream:
    """Endless micro-batches for one process, with a resumable position.

    Parameters
    ----------
    source : DataSource
    batch_size : int
        Micro-batch size of this process.
    rank, world_size : int
    seed : int
    shuffle : bool
        Shuffle per epoch (training) or keep the order (validation).
    num_workers : int
    pin_memory : bool
    """

    def __init__(self, source: DataSource, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True, num_workers: int = 0, pin_memory: bool = False) -> None:
        n = len(source.dataset)
        if n < batch_size * world_size:
            raise ValueError(
                f"{source.description} has {n} rows, fewer than one global batch "
                f"({batch_size} x {world_size} processes)"
            )
        self.source = source
        self.batch_size = batch_size
        self.sampler = DistributedSampler(source.dataset, num_replicas=world_size, rank=rank,
                                          shuffle=shuffle, seed=seed, drop_last=True)
        self._skip = _SkipSampler(self.sampler)
        # A private generator: creating a DataLoader iterator then never draws from the
        # global RNG, whose state (dropout) must be restorable exactly on resume.
        self.loader = DataLoader(
            source.dataset, batch_size=batch_size, sampler=self._skip, drop_last=True,
            collate_fn=source.collate, num_workers=num_workers, pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=False,
        )
        self.batches_per_epoch = len(self.sampler) // batch_size
        self.epoch = 0
        self.batch = 0

    @property
    def position(self) -> dict[str, int]:
        """Where the next micro-batch comes from: ``{"epoch", "batch"}``."""
        return {"epoch": self.epoch, "batch": self.batch}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            self.sampler.set_epoch(self.epoch)
            if hasattr(self.source.dataset, "set_epoch"):
                # SequenceDataset draws its random offsets per (seed, epoch, row).
                self.source.dataset.set_epoch(self.epoch)
            self._skip.skip = self.batch * self.batch_size
            for batch in self.loader:
                self.batch += 1
                if self.batch == self.batches_per_epoch:
                    self.epoch, self.batch = self.epoch + 1, 0
                yield batch

    def seek(self, position: dict[str, int]) -> None:
        """Continue from a :attr:`position` (before iterating)."""
        epoch, batch = int(position["epoch"]), int(position["batch"])
        if not 0 <= batch < self.batches_per_epoch:
            raise ValueError(f"data position {position} is outside an epoch of "
                             f"{self.batches_per_epoch} batches (different data or batch size?)")
        self.epoch, self.batch = epoch, batch

    def one_pass(self, max_batches: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Iterate epoch 0 from its start once (validation), up to ``max_batches``."""
        self.sampler.set_epoch(0)
        if hasattr(self.source.dataset, "set_epoch"):
            self.source.dataset.set_epoch(0)
        self._skip.skip = 0
        return itertools.islice(iter(self.loader), max_batches)


def shard_has_split(path: str | os.PathLike, split: str) -> bool:
    """Whether a shard directory lists ``split`` (False when it has no manifest)."""
    from ..data.shards import ShardError, read_manifest

    try:
        return split in read_manifest(Path(path)).get("splits", {})
    except ShardError:
        return False
