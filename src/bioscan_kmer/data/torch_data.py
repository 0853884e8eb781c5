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
    Items are ``{"input_ids": int64 (L,), "attention_mask": int64 (L,), ...}``.
    The memory maps are opened lazily in each process, so the dataset pickles
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

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        # One fancy-indexing read per batch instead of one per row.
        idx = np.asarray(indices, dtype=np.int64)
        idx = np.where(idx < 0, idx + self._len, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self._len):
            raise IndexError(f"index out of range for {self._len} rows")
        shard = self._open()
        ids = torch.from_numpy(shard.ids[idx].astype(np.int64))
        mask = torch.from_numpy(shard.mask[idx].astype(np.int64))
        labels = {key: torch.from_numpy(self._label_values[col][idx]) for key, col in self._label_keys}
        return [
            {"input_ids": ids[j], "attention_mask": mask[j], **{k: v[j] for k, v in labels.items()}}
            for j in range(len(idx))
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
        order of ``batch``.
        """
        seqs = [item["sequence"] for item in batch]
        index = np.fromiter((item["index"] for item in batch), dtype=np.int64, count=len(batch))
        if self.random_offset and self.k > 1:
            offsets = row_offsets(index, self.k, self.seed, self.epoch)
        else:
            offsets = np.zeros(len(batch), dtype=np.int64)
        ids = mask = None
        # The core takes one offset per call, so rows are grouped by offset.
        for off in np.unique(offsets):
            rows = np.flatnonzero(offsets == off)
            enc = self.tokenizer([seqs[r] for r in rows], offset=int(off), return_tensors="np")
            part_ids = np.asarray(enc["input_ids"], dtype=np.int64)
            part_mask = np.asarray(enc["attention_mask"], dtype=np.int64)
            if ids is None:
                ids = np.empty((len(batch), part_ids.shape[1]), dtype=np.int64)
                mask = np.empty((len(batch), part_mask.shape[1]), dtype=np.int64)
            ids[rows] = part_ids
            mask[rows] = part_mask
        if ids is None:
            raise ValueError("cannot collate an empty batch")
        out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if "labels" in batch[0]:
            out["labels"] = torch.tensor([item["labels"] for item in batch], dtype=torch.int64)
        return out

