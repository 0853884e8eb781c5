"""Resumable, distributed batch streams over shards or raw sequences.

Every process reads its share through a ``DistributedSampler`` (one process is the case
``num_replicas=1``), so the order of samples depends only on (seed, epoch). Sample
``i`` of rank ``r``'s batch is sample ``i * world + r`` of the global batch, which is what
lets one process with the global batch reproduce a data-parallel run exactly.

A position is (epoch, micro-batches consumed in that epoch). Restarting from a position
skips the consumed indices in the sampler, without loading them.

Batches are read whole: the sampler hands out (epoch, row indices of one batch), the
dataset's ``read_batch`` turns them into ready (B, T) tensors with one gather and one
tokenizer call (shards and raw sequences alike are tokenized at read time), and the
DataLoader neither splits nor stacks anything (``batch_size=None``). The sampler runs on
across epochs, so persistent workers never idle or re-spawn at an epoch boundary, and the
epoch travels with each request, so the random offsets (a hash of seed, epoch and row) do
not depend on what a worker's copy of the dataset remembers.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info
from torch.utils.data.distributed import DistributedSampler

__all__ = ["DataSource", "BatchStream", "open_source"]


@dataclass
class DataSource:
    """A training (or validation) dataset and what identifies it.

    Attributes
    ----------
    dataset : Dataset
        ``ShardDataset`` or ``SequenceDataset`` (anything with ``read_batch(indices, epoch=)``).
    tokenizer : KmerTokenizer
        The tokenizer the dataset applies at read time.
    seq_len : int
        Tokens per row.
    description : str
        For messages ("shards /x split pretrain", "1,000 sequences").
    fingerprint : dict
        Identifies the data and its tokenization, so that a resumption on other data is
        refused.
    """

    dataset: Dataset
    tokenizer: Any
    seq_len: int
    description: str
    fingerprint: dict


def open_source(data: Any, split: str, *, tokenizer: Any = None, random_offset: bool | None = None,
                seed: int = 0, verify: bool = False, model_config: Any = None) -> DataSource:
    """Open ``split`` of a shard directory, a file of raw barcodes, or raw sequences.

    Every kind is tokenized at read time, each row at offset 0 or at a random offset in
    ``[0, k)`` drawn from (seed, epoch, row).

    Parameters
    ----------
    data : path-like or sequence of str
        A shard directory (``bioscan-kmer prepare``); a FASTA, BOLD TSV or metadata CSV/TSV
        file of raw barcodes (read by :func:`bioscan_kmer.data.reading.read_any`, cleaned
        and reduced to BarcodeBERT's pretraining set when it has a ``split`` column, to its
        distinct barcodes otherwise: :func:`bioscan_kmer.data.prepare.pretraining_barcodes`);
        or barcodes as a list of ``str``, used as given.
    split : str
        Shard split. A barcode file gives the pretraining set only: ``"pretrain"``. Ignored
        for a list of sequences.
    tokenizer : KmerTokenizer, optional
        For shards: tokenize with this instead of the manifest's tokenizer. For raw
        barcodes: required, unless ``model_config`` names the vocabulary.
    random_offset : bool, optional
        Random start offsets. Default: on for the ``pretrain`` split and raw barcodes, off
        for the other shard splits (validation and evaluation read offset 0).
    seed : int
        Seed of the random offsets.
    verify : bool
        Recompute the shard's checksums (``pretrain`` does when it resumes).
    model_config : EncoderConfig, optional
        For raw barcodes without ``tokenizer``: the tokenizer its vocabulary needs (its k,
        preset and ``n_nucleotide``; BarcodeBERT's ``max_len`` of 660).

    Raises
    ------
    ShardError (a ValueError)
        Missing or corrupt shard directory, manifest or split.
    DataFileError (a ValueError)
        A barcode file that cannot be read.
    ValueError
        Raw barcodes without a tokenizer, a barcode the cleaner rejects, a file split other
        than ``pretrain``.
    """
    if isinstance(data, (str, os.PathLike)) and not Path(data).is_file():
        from ..data.torch_data import ShardDataset

        dataset = ShardDataset(data, split, random_offset=random_offset, seed=seed, tokenizer=tokenizer,
                               verify=verify)
        return DataSource(
            dataset=dataset, tokenizer=dataset.tokenizer, seq_len=dataset.seq_len,
            description=f"shards {str(data)!r} split {split!r}",
            fingerprint={"kind": "shards", "split": split, "rows": len(dataset), "sha256": dataset.sha256,
                         "tokenizer": dict(dataset.tokenizer.config)},
        )
    if tokenizer is None and model_config is not None:
        tokenizer = _tokenizer_for(model_config)
    if tokenizer is None:
        raise ValueError("raw barcodes need a tokenizer= (a KmerTokenizer)")
    if isinstance(data, (str, os.PathLike)):
        if split != "pretrain":
            raise ValueError(f"{str(data)!r} is a file of barcodes, which gives the pretraining set only "
                             f"(split 'pretrain'), not split {split!r}; write shards with "
                             "`bioscan-kmer prepare` for the other splits")
        from ..data.prepare import read_pretraining_barcodes

        seqs = read_pretraining_barcodes(data)
        description = f"the {len(seqs):,} pretraining barcodes of {str(data)!r}"
    elif isinstance(data, (bytes, bytearray)) or not isinstance(data, Sequence):
        raise TypeError(f"data must be a shard directory, a barcode file or a sequence of str, "
                        f"got {type(data).__name__}")
    else:
        seqs = data
        description = f"{len(data):,} sequences"
    from ..data.torch_data import SequenceDataset

    dataset = SequenceDataset(seqs, tokenizer, random_offset=True if random_offset is None else random_offset,
                              seed=seed)
    return DataSource(
        dataset=dataset, tokenizer=tokenizer, seq_len=tokenizer.seq_len, description=description,
        fingerprint={"kind": "sequences", "rows": len(dataset), "sha256": _packed_sha256(dataset.packed),
                     "tokenizer": dict(tokenizer.config)},
    )


def _tokenizer_for(model_config: Any):
    """The tokenizer whose vocabulary ``model_config`` was built for (max_len 660)."""
    from bioscan_kmer import KmerTokenizer

    return KmerTokenizer(k=model_config.k, preset=model_config.tokenizer_preset,
                         n_nucleotide=model_config.n_nucleotide)


def _packed_sha256(packed: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    h.update(memoryview(np.ascontiguousarray(packed.offsets, dtype="<i8")).cast("B"))
    h.update(memoryview(np.ascontiguousarray(packed.bases)).cast("B"))
    return h.hexdigest()


class _BatchSampler(Sampler):
    """(epoch, row indices) of each batch of a ``DistributedSampler``, from a start position.

    Iterated in the main process by the DataLoader; runs on into the next epochs when
    ``endless`` (training), stops after its first epoch otherwise (validation).
    """

    def __init__(self, base: DistributedSampler, batch_size: int) -> None:
        self.base = base
        self.batch_size = batch_size
        self.batches_per_epoch = len(base) // batch_size
        self.epoch = 0
        self.batch = 0
        self.endless = True

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        epoch, first = self.epoch, self.batch
        while True:
            self.base.set_epoch(epoch)
            # One conversion per epoch; every batch is then a slice of this array.
            order = np.fromiter(iter(self.base), dtype=np.int64, count=len(self.base))
            for b in range(first, self.batches_per_epoch):
                yield epoch, order[b * self.batch_size:(b + 1) * self.batch_size]
            if not self.endless:
                return
            epoch, first = epoch + 1, 0


# How a batch leaves a worker. torch sends each tensor through a shared-memory segment of
# its own (created, mapped, its descriptor passed and mapped again: ~0.5 ms a tensor); a
# NumPy array is pickled through the worker's pipe. For 256 x 82-165 token batches the pipe
# gives 2.2-3.4x the rows/s (benchmarks/results/loader*.md, on a VM and on an H200 host);
# from about 512 KiB up the copies through the pipe cost more than the segment (measured
# on the VM: 420 KiB 4x faster by pipe, 845 KiB 1.3x slower).
_PIPE_MAX_BYTES = 512 << 10


class _Arrays:
    """A batch on its way from a worker, as NumPy arrays; turned back into tensors in the
    main process (by the DataLoader's pin-memory thread when pinning)."""

    def __init__(self, batch: dict[str, torch.Tensor]) -> None:
        self.arrays = {key: value.numpy() for key, value in batch.items()}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {key: torch.from_numpy(value) for key, value in self.arrays.items()}

    def pin_memory(self) -> dict[str, torch.Tensor]:
        return {key: value.pin_memory() for key, value in self.tensors().items()}


def _tensors(batch: Any) -> dict[str, torch.Tensor]:
    return batch.tensors() if isinstance(batch, _Arrays) else batch


class _BatchReader(Dataset):
    """Maps a request (epoch, row indices) to ``dataset.read_batch``: one batch per item."""

    def __init__(self, dataset: Dataset) -> None:
        if not callable(getattr(dataset, "read_batch", None)):
            raise TypeError(f"{type(dataset).__name__} has no read_batch(indices, epoch=); "
                            "use a ShardDataset or SequenceDataset")
        self.dataset = dataset

    def __getitem__(self, request: tuple[int, np.ndarray]) -> dict[str, torch.Tensor] | _Arrays:
        epoch, indices = request
        # The random offsets are those of the requested epoch, whatever this (worker's) copy
        # of the dataset last saw.
        batch = self.dataset.read_batch(indices, epoch=epoch)
        if get_worker_info() is not None and sum(t.nbytes for t in batch.values()) <= _PIPE_MAX_BYTES:
            return _Arrays(batch)
        return batch

    def __len__(self) -> int:
        return len(self.dataset)


def _as_is(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # read_batch already returns the batch; a module-level function pickles into workers.
    return batch


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


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
        DataLoader worker processes; they persist for the stream's life.
    pin_memory : bool

    Notes
    -----
    Batches are ``{"input_ids": int32 (B, T), "attention_mask": uint8 (B, T), ...}``: the
    model takes them as they are, and a token costs 5 bytes to pin and copy to the GPU
    instead of 16.
    A stream has one iteration at a time: a new ``iter()`` (or :meth:`one_pass`) ends
    the previous one.
    """

    def __init__(self, source: DataSource, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True, num_workers: int = 0, pin_memory: bool = False) -> None:
        batch_size = _check_int("batch_size", batch_size, 1)
        world_size = _check_int("world_size", world_size, 1)
        rank = _check_int("rank", rank, 0)
        num_workers = _check_int("num_workers", num_workers, 0)
        if rank >= world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
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
        self._batches = _BatchSampler(self.sampler, batch_size)
        # A private generator: creating a DataLoader iterator then never draws from the
        # global RNG, whose state (dropout) must be restorable exactly on resume.
        self.loader = DataLoader(
            _BatchReader(source.dataset), batch_size=None, sampler=self._batches,
            collate_fn=_as_is, num_workers=num_workers, pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(seed),
            persistent_workers=num_workers > 0,
        )
        self.batches_per_epoch = self._batches.batches_per_epoch
        self.epoch = 0
        self.batch = 0

    @property
    def position(self) -> dict[str, int]:
        """Where the next micro-batch comes from: ``{"epoch", "batch"}``."""
        return {"epoch": self.epoch, "batch": self.batch}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        self._batches.epoch, self._batches.batch, self._batches.endless = self.epoch, self.batch, True
        # The workers read ahead; the position counts what was handed out.
        for batch in self.loader:
            self.batch += 1
            if self.batch == self.batches_per_epoch:
                self.epoch, self.batch = self.epoch + 1, 0
            yield _tensors(batch)

    def seek(self, position: dict[str, int]) -> None:
        """Continue from a :attr:`position` (before iterating)."""
        epoch, batch = int(position["epoch"]), int(position["batch"])
        if not 0 <= batch < self.batches_per_epoch:
            raise ValueError(f"data position {position} is outside an epoch of "
                             f"{self.batches_per_epoch} batches (different data or batch size?)")
        if epoch < 0:
            raise ValueError(f"data position {position} has a negative epoch")
        self.epoch, self.batch = epoch, batch

    def one_pass(self, max_batches: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Iterate epoch 0 from its start once (validation), up to ``max_batches``."""
        self._batches.epoch, self._batches.batch, self._batches.endless = 0, 0, False
        return map(_tensors, itertools.islice(iter(self.loader), max_batches))

    def close(self) -> None:
        """Stop the worker processes now rather than when the stream is garbage-collected.

        The stream stays usable: the next iteration starts new workers. Idempotent.
        """
        # Persistent workers belong to the DataLoader's cached iterator; shutting it down
        # is what its finaliser would do.
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None:
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            self.loader._iterator = None

    def __enter__(self) -> "BatchStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def shard_has_split(path: str | os.PathLike, split: str) -> bool:
    """Whether a shard directory lists ``split`` (False when it has no manifest)."""
    from ..data.shards import ShardError, read_manifest

    try:
        return split in read_manifest(Path(path)).get("splits", {})
    except ShardError:
        return False
