"""PyTorch datasets over shards and over raw sequences.

This is the only module of :mod:`bioscan_kmer.data` that imports torch, so
that the rest of the data layer works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

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


class ShardDataset(Dataset):
    """Rows of one split of a shard directory, as tensors.

    Parameters
    ----------
    out_dir : str or path-like
        Shard directory written by :func:`bioscan_kmer.data.shards.write_shards`.
    split : str
        Split to read, e.g. ``"pretrain"`` or ``"train"``.
    labels : str or sequence of str, optional
        Label columns to return. A single rank name (``"species"``) adds the
        key ``"labels"`` holding that rank's global code (``species_id``;
        -1 = missing). A sequence of ranks adds one key ``"<rank>_id"`` each.
    verify : bool, default False
        Recompute the split's checksums when opening.

    Notes
    -----
    Items are ``{"input_ids": int64 (L,), "attention_mask": int64 (L,), ...}``;
    :meth:`read_batch` returns whole batches in compact dtypes instead (what
    :class:`~bioscan_kmer.train.batches.BatchStream` uses). The memory maps are opened lazily in each process, so the dataset pickles
    cheaply into DataLoader workers (a pickled ``np.memmap`` would copy the
    whole array).
    """

    def __init__(self, out_dir, split: str, *, labels: str | Sequence[str] | None = None,
                 verify: bool = False):
        self.out_dir = Path(out_dir)
        self.split = split
        shard = open_shard(self.out_dir, split, verify=verify, labels=labels is not None)
        self.manifest = shard.manifest
        self._len = len(shard)
        self.seq_len = shard.seq_len
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
        self._shard = None

    def __len__(self) -> int:
        return self._len

    @property
    def tokenizer(self):
        """The tokenizer the shard was written with."""
        return self._open().tokenizer

    def _open(self):
        if self._shard is None:
            self._shard = open_shard(self.out_dir, self.split, labels=False)
        return self._shard

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_shard"] = None
        return state

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} rows")
        shard = self._open()
        item = {
            "input_ids": torch.from_numpy(shard.ids[index].astype(np.int64)),
            "attention_mask": torch.from_numpy(shard.mask[index].astype(np.int64)),
        }
        for key, column in self._label_keys:
            item[key] = torch.tensor(self._label_values[column][index], dtype=torch.int64)
        return item

    def read_batch(self, indices) -> dict[str, torch.Tensor]:
        """Rows ``indices`` as one batch, in one memmap read per array.

        Parameters
        ----------
        indices : 1-D array-like of int
            Row numbers (negative ones count from the end), in the order wanted.

        Returns
        -------
        dict
            ``{"input_ids": (B, L), "attention_mask": uint8 (B, L), ...labels int64 (B,)}``.
            ``input_ids`` is int32 (int64 only for shards stored with 64-bit ids): the
            embedding takes either, and half the bytes to pin and copy to the GPU. The mask
            is the shard's own uint8 (nonzero for real tokens), not converted.

        Raises
        ------
        IndexError
            An index outside the split; ``TypeError`` / ``ValueError`` for non-integer or
            non-1-D ``indices``.
        """
        idx = _batch_rows(indices, self._len)
        shard = self._open()
        ids = shard.ids[idx]
        dtype = np.int32 if np.can_cast(ids.dtype, np.int32) else np.int64
        out = {
            "input_ids": torch.from_numpy(ids.astype(dtype, copy=False)),
            "attention_mask": torch.from_numpy(shard.mask[idx]),
        }
        for key, column in self._label_keys:
            out[key] = torch.from_numpy(self._label_values[column][idx])
        return out

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


def row_offsets(indices, k: int, seed: int, epoch: int = 0) -> np.ndarray:
    """Deterministic per-row offsets in ``[0, k)`` from (seed, epoch, row index).

    A counter-based hash (SplitMix64) rather than a stateful generator, so that
    the offsets do not depend on the number of DataLoader workers or on the
    order in which batches are drawn.
    """
    x = np.asarray(indices, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = np.uint64((int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9) % (1 << 64))
        z = x * np.uint64(0x9E3779B97F4A7C15) + key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(k)).astype(np.int64)


class SequenceDataset(Dataset):
    """Raw barcodes that are tokenized per batch in :meth:`collate`.

    Parameters
    ----------
    seqs : sequence of str
        Barcodes (cleaned beforehand; anything outside the tokenizer's
        alphabet becomes ``[UNK]``).
    tokenizer : KmerTokenizer
        The core tokenizer.
    labels : array-like of int, optional
        One label id per sequence, returned under ``"labels"``.
    random_offset : bool, default True
        Start each sequence at a random offset in ``[0, k)`` (BarcodeBERT's
        training augmentation); offset 0 otherwise.
    seed : int, default 0
        Seed of the offsets; with :meth:`set_epoch` the offsets change per
        epoch and are reproducible.

    Examples
    --------
    >>> ds = SequenceDataset(seqs, tok)                         # doctest: +SKIP
    >>> loader = DataLoader(ds, batch_size=64, collate_fn=ds.collate)  # doctest: +SKIP
    """

    def __init__(self, seqs, tokenizer, *, labels=None, random_offset: bool = True, seed: int = 0):
        self.seqs = list(seqs) if not isinstance(seqs, list) else seqs
        for i, s in enumerate(self.seqs[:1]):
            if not isinstance(s, str):
                raise TypeError(f"sequence {i} is {type(s).__name__}, expected str")
        self.tokenizer = tokenizer
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (len(self.seqs),):
                raise ValueError(f"labels has shape {labels.shape}, expected ({len(self.seqs)},)")
        self.labels = labels
        self.random_offset = bool(random_offset)
        self.seed = int(seed)
        self.epoch = 0
        config = getattr(tokenizer, "config", {}) or {}
        self.k = int(config.get("k", getattr(tokenizer, "k", 1)))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose offsets :meth:`collate` draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self.seqs)
        seq = self.seqs[index]
        if not isinstance(seq, str):
            raise TypeError(f"sequence {index} is {type(seq).__name__}, expected str")
        item = {"index": index, "sequence": seq}
        if self.labels is not None:
            item["labels"] = int(self.labels[index])
        return item

    def collate(self, batch: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Tokenize a list of items into ``{"input_ids", "attention_mask", ["labels"]}``.

        ``input_ids`` and ``attention_mask`` are int64 ``(B, L)``; rows keep the
        order of ``batch``. Offsets are those of the epoch set by :meth:`set_epoch`.
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

    def read_batch(self, indices, *, epoch: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenize rows ``indices`` as one batch, with the offsets of ``epoch``.

        The epoch travels with the call rather than living in the dataset, so a copy of the
        dataset in a (persistent) DataLoader worker draws the offsets the main process
        asked for: they depend only on (seed, epoch, row).

        Parameters
        ----------
        indices : 1-D array-like of int
            Rows (negative ones count from the end), in the order wanted.
        epoch : int, optional
            Default: the epoch of :meth:`set_epoch`.

        Returns
        -------
        dict
            ``{"input_ids": int32 (B, L), "attention_mask": uint8 (B, L), ["labels": int64 (B,)]}``
            (the same ids as :meth:`collate`, in compact dtypes; nonzero mask = real token).
        """
        idx = _batch_rows(indices, len(self.seqs))
        seqs = [self.seqs[i] for i in idx.tolist()]
        ids, mask = self._encode(seqs, idx, self.epoch if epoch is None else int(epoch), np.int32)
        out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.view(np.uint8))}
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[idx])
        return out

    def _encode(self, seqs: list, index: np.ndarray, epoch: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Ids ``dtype`` and bool mask of ``seqs`` (rows ``index``) at the offsets of ``epoch``."""
        if self.random_offset and self.k > 1:
            offsets = row_offsets(index, self.k, self.seed, epoch)
        else:
            offsets = 0
        try:
            enc = self.tokenizer(seqs, offset=offsets, return_tensors="np", dtype=dtype)
        except (TypeError, ValueError):
            # The core names the row of the batch; name the dataset's row instead.
            for j, seq in enumerate(seqs):
                if not isinstance(seq, str):
                    raise TypeError(f"sequence {int(index[j])} is {type(seq).__name__}, expected str") from None
            raise
        return enc["input_ids"], enc["attention_mask"]
