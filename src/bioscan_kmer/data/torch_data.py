"""PyTorch datasets that tokenize barcodes at read time: over shards and over raw sequences.

Both hold their barcodes packed (:class:`~bioscan_kmer.data.packed.PackedBarcodes`: memory
maps of a shard, or an in-memory copy of the given strings) and tokenize a whole batch in
one core call, each row at its offset: 0, or BarcodeBERT's random offset in ``[0, k)``, a
hash of (seed, epoch, row) (:func:`row_offsets`), so that the ids of a row depend on
nothing else (not on the worker count, the batch it falls in, or the resumption point).

This is the only module of :mod:`bioscan_kmer.data` that imports torch, so that the rest of
the data layer works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from bioscan_kmer.data.packed import PackedBarcodes, first_bad_base, large_strings
from bioscan_kmer.data.shards import ShardError, open_shard

__all__ = ["ShardDataset", "SequenceDataset", "row_offsets"]


def _batch_rows(indices, n: int) -> np.ndarray:
    """``indices`` of a batch over ``n`` rows as an int64 array, negative ones resolved."""
    idx = np.asarray(indices)
    if idx.ndim != 1:
        raise ValueError(f"indices must be one-dimensional, got shape {idx.shape}")
    if idx.size == 0:
        return idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers, got dtype {idx.dtype}")
    given = idx.astype(np.int64, copy=False)
    idx = np.where(given < 0, given + n, given)
    if idx.min() < 0 or idx.max() >= n:
        bad = given[(idx < 0) | (idx >= n)][0]
        raise IndexError(f"index {bad} out of range for {n} rows")
    return idx


_M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    """SplitMix64's finaliser on a Python int (a scalar key)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def row_offsets(indices, k: int, seed: int, epoch: int = 0) -> np.ndarray:
    """Deterministic per-row offsets in ``[0, k)`` from (seed, epoch, row index).

    A counter-based hash (SplitMix64) rather than a stateful generator, so that the offsets
    do not depend on the number of DataLoader workers or on the order in which batches are
    drawn. Draws are independent per epoch, as BarcodeBERT's ``torch.randint`` per item.
    (seed, epoch) is hashed into the key first, so that another seed is not the same
    offsets shifted by some rows.
    """
    key = np.uint64(_mix64((int(seed) * 0x9E3779B97F4A7C15 + _mix64(int(epoch) & _M64)) & _M64))
    x = np.asarray(indices, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = x * np.uint64(0x9E3779B97F4A7C15) + key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(k)).astype(np.int64)


class _ReadTimeTokenized(Dataset):
    """What both datasets share: packed rows, a tokenizer, offsets per (seed, epoch, row).

    Subclasses provide ``_rows()`` (the PackedBarcodes), ``_labels(idx)`` (dict of int64
    arrays) and ``_len``; ``_check(data, offsets, idx)`` may vet a gathered batch.
    """

    tokenizer: Any
    random_offset: bool
    seed: int
    epoch: int = 0
    _len: int

    def __len__(self) -> int:
        return self._len

    @property
    def k(self) -> int:
        return int(self.tokenizer.config["k"])

    @property
    def seq_len(self) -> int:
        """Tokens per row."""
        return int(self.tokenizer.seq_len)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose offsets per-row reads (``ds[i]``, ``collate``) use."""
        self.epoch = int(epoch)

    def offsets(self, rows, epoch: int) -> np.ndarray:
        """The offset of each of ``rows`` in ``epoch`` (zeros without random offsets)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.random_offset and self.k > 1:
            return row_offsets(rows, self.k, self.seed, epoch)
        return np.zeros(len(rows), dtype=np.int64)

    def _encode(self, seqs, rows: np.ndarray, epoch: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Ids (``dtype``) and uint8 mask of ``seqs`` (rows ``rows``) at the offsets of ``epoch``."""
        # One thread: a batch is ~0.15 ms of core work, which more threads slow down with
        # hand-offs (256 barcodes at k=4 on 2 busy cores: 150 us on one thread, 200 us on two,
        # up to 0.9 ms when the cores are contended), and the loader must leave the cores to
        # the training step. Results do not depend on the thread count.
        enc = self.tokenizer(seqs, offset=self.offsets(rows, epoch), return_tensors="np", dtype=dtype,
                             threads=1)
        return enc["input_ids"], enc["attention_mask"].view(np.uint8)

    def _check(self, data: bytes, offsets: np.ndarray, rows: np.ndarray) -> None:
        """Vet a gathered batch (its bytes and offsets) before tokenizing it."""

    def read_batch(self, indices, *, epoch: int | None = None) -> dict[str, torch.Tensor]:
        """Rows ``indices`` as one batch: one gather, one tokenizer call.

        Parameters
        ----------
        indices : 1-D array-like of int
            Row numbers (negative ones count from the end), in the order wanted.
        epoch : int, optional
            Whose random offsets to use; default the epoch of :meth:`set_epoch`. The epoch
            travels with the call (BatchStream passes it per request) rather than living in
            the dataset, so that a copy in a persistent DataLoader worker tokenizes exactly
            what the main process asked for.

        Returns
        -------
        dict
            ``{"input_ids": int32 (B, L), "attention_mask": uint8 (B, L), ...labels int64 (B,)}``
            (nonzero mask = real token): the embedding takes int32 ids, and half the bytes
            to pin and copy to the GPU.

        Raises
        ------
        IndexError
            An index outside the dataset; ``TypeError`` / ``ValueError`` for non-integer or
            non-1-D ``indices``.
        """
        idx = _batch_rows(indices, self._len)
        data, offsets = self._rows().gather(idx)
        self._check(data, offsets, idx)
        ids, mask = self._encode(large_strings(data, offsets), idx, self.epoch if epoch is None else int(epoch),
                                 np.int32)
        out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        for key, values in self._labels(idx).items():
            out[key] = torch.from_numpy(values)
        return out

    def _rows(self) -> PackedBarcodes:
        raise NotImplementedError

    def _labels(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError


class ShardDataset(_ReadTimeTokenized):
    """Rows of one split of a shard directory, tokenized at read time.

    Parameters
    ----------
    out_dir : str or path-like
        Shard directory written by :func:`bioscan_kmer.data.shards.write_shards`.
    split : str
        Split to read, e.g. ``"pretrain"`` or ``"train"``.
    random_offset : bool, optional
        Start each row at a random offset in ``[0, k)``, drawn per (seed, epoch, row)
        (BarcodeBERT's augmentation). Default: on for the ``pretrain`` split, off for the
        others (evaluation reads every row at offset 0).
    seed : int, default 0
        Seed of the offsets.
    labels : str or sequence of str, optional
        Label columns to return. A single rank name (``"species"``) adds the key
        ``"labels"`` holding that rank's global code (``species_id``; -1 = missing). A
        sequence of ranks adds one key ``"<rank>_id"`` each.
    tokenizer : KmerTokenizer, optional
        Tokenize with this instead of the manifest's tokenizer (the shards hold the
        barcodes, so any k, length or preset reads them).
    verify : bool, default False
        Recompute the split's checksums when opening.

    Notes
    -----
    Items are ``{"input_ids": int64 (L,), "attention_mask": int64 (L,), ...}`` at the
    offsets of :meth:`set_epoch`'s epoch; :meth:`read_batch` returns whole batches in
    compact dtypes (what :class:`~bioscan_kmer.train.batches.BatchStream` uses). A byte
    that is not a base (a corrupt file) is a :class:`ShardError` naming the split and row.
    The memory maps are opened lazily in each process, so the dataset pickles cheaply into
    DataLoader workers (a pickled ``np.memmap`` would copy the whole array).
    """

    def __init__(self, out_dir, split: str, *, random_offset: bool | None = None, seed: int = 0,
                 labels: str | Sequence[str] | None = None, tokenizer: Any = None, verify: bool = False):
        self.out_dir = Path(out_dir)
        self.split = split
        shard = open_shard(self.out_dir, split, verify=verify, labels=labels is not None)
        self.manifest = shard.manifest
        self._len = len(shard)
        self.tokenizer = shard.tokenizer if tokenizer is None else tokenizer
        self.random_offset = (split == "pretrain") if random_offset is None else bool(random_offset)
        self.seed = int(seed)
        self.epoch = 0
        self._label_keys: list[tuple[str, str]] = []
        self._label_values: dict[str, np.ndarray] = {}
        if labels is not None:
            if shard.labels is None:
                raise ShardError(f"split {split!r} of {str(self.out_dir)!r} was written without labels")
            names = [labels] if isinstance(labels, str) else list(labels)
            for name in names:
                column = name if name.endswith("_id") else f"{name}_id"
                if column not in shard.labels.columns:
                    raise ShardError(
                        f"split {split!r} has no label column {column!r}; "
                        f"columns: {', '.join(map(str, shard.labels.columns))}"
                    )
                key = "labels" if isinstance(labels, str) else column
                self._label_keys.append((key, column))
                self._label_values[column] = shard.labels[column].to_numpy(dtype=np.int64)
        shard.labels = None  # the label codes are kept; the strings need not be
        self._shard = shard

    @property
    def sha256(self) -> str:
        """Checksum of the split's sequences, as written in the manifest."""
        return self.manifest["splits"][self.split]["sequences"]["sha256"]

    def _rows(self) -> PackedBarcodes:
        if self._shard is None:
            self._shard = open_shard(self.out_dir, self.split, labels=False)
        return self._shard.barcodes

    def _labels(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {key: self._label_values[column][idx] for key, column in self._label_keys}

    def _check(self, data: bytes, offsets: np.ndarray, rows: np.ndarray) -> None:
        bad = first_bad_base(data, offsets)
        if bad is not None:
            j, pos, byte = bad
            raise ShardError(
                f"shard {str(self.out_dir)!r} split {self.split!r} row {int(rows[j])}: byte {byte:#04x} "
                f"at position {pos} is not a base (A, C, G, T, N): "
                f"{self.manifest['splits'][self.split]['sequences']['file']} is corrupt; "
                "run `bioscan-kmer prepare` again"
            )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_shard"] = None
        return state

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} rows")
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        # For a plain DataLoader: one read per batch, but per-row int64 items as documented
        # (BatchStream uses read_batch and never splits the batch).
        batch = self.read_batch(indices)
        ids = batch["input_ids"].long()
        mask = batch["attention_mask"].long()
        labels = {key: batch[key] for key, _ in self._label_keys}
        return [
            {"input_ids": ids[j], "attention_mask": mask[j], **{k: v[j] for k, v in labels.items()}}
            for j in range(len(ids))
        ]


class SequenceDataset(_ReadTimeTokenized):
    """Raw barcodes, tokenized per batch (:meth:`read_batch`, or :meth:`collate` after a
    plain DataLoader's per-row items).

    Parameters
    ----------
    seqs : sequence of str or pyarrow string array
        Barcodes (cleaned beforehand; anything outside the tokenizer's alphabet becomes
        ``[UNK]``). Packed into one buffer on construction.
    tokenizer : KmerTokenizer
        The core tokenizer.
    labels : array-like of int, optional
        One label id per sequence, returned under ``"labels"``.
    random_offset : bool, default True
        Start each sequence at a random offset in ``[0, k)`` (BarcodeBERT's training
        augmentation); offset 0 otherwise.
    seed : int, default 0
        Seed of the offsets; with :meth:`set_epoch` the offsets change per epoch and are
        reproducible.

    Raises
    ------
    TypeError
        A sequence that is not a string (the message names it).

    Examples
    --------
    >>> ds = SequenceDataset(seqs, tok)                         # doctest: +SKIP
    >>> loader = DataLoader(ds, batch_size=64, collate_fn=ds.collate)  # doctest: +SKIP
    """

    def __init__(self, seqs, tokenizer, *, labels=None, random_offset: bool = True, seed: int = 0):
        self.packed = PackedBarcodes.from_sequences(seqs)
        self._len = len(self.packed)
        self.tokenizer = tokenizer
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (self._len,):
                raise ValueError(f"labels has shape {labels.shape}, expected ({self._len},)")
        self.labels = labels
        self.random_offset = bool(random_offset)
        self.seed = int(seed)
        self.epoch = 0

    def _rows(self) -> PackedBarcodes:
        return self.packed

    def _labels(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {} if self.labels is None else {"labels": self.labels[idx]}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} rows")
        item = {"index": index, "sequence": self.packed.row(index)}
        if self.labels is not None:
            item["labels"] = int(self.labels[index])
        return item

    def collate(self, batch: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Tokenize a list of items into ``{"input_ids", "attention_mask", ["labels"]}``.

        ``input_ids`` and ``attention_mask`` are int64 ``(B, L)``; rows keep the order of
        ``batch``. Offsets are those of the epoch set by :meth:`set_epoch`.
        """
        if not batch:
            raise ValueError("cannot collate an empty batch")
        seqs = [item["sequence"] for item in batch]
        index = np.fromiter((item["index"] for item in batch), dtype=np.int64, count=len(batch))
        ids, mask = self._encode(seqs, index, self.epoch, np.int64)
        out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}
        if "labels" in batch[0]:
            out["labels"] = torch.tensor([item["labels"] for item in batch], dtype=torch.int64)
        return out
