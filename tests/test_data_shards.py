"""Shard format: round trip, atomicity, corruption reports, torch datasets."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from bioscan_kmer import KmerTokenizer, tokenize
from bioscan_kmer.data.shards import (
    MANIFEST_NAME,
    ShardError,
    open_shard,
    read_manifest,
    shards_complete,
    verify_shards,
    write_shards,
)

SEQS = ["ACGTACGTAAAACCCCGGGGTTTT", "ACGTNNACGT", "ACG", "TTTTGGGGCCCCAAAA" * 3]


def _encoded(tok, seqs=SEQS, dtype=np.uint16):
    ids, mask = tokenize(seqs, k=tok.config["k"], max_len=tok.config["max_len"], dtype=dtype,
                         mask_dtype=np.uint8)
    return ids, mask


def _labels(n):
    return pd.DataFrame(
        {"processid": [f"P{i}" for i in range(n)], "species": ["Aus bus"] * n,
         "species_id": np.arange(n, dtype=np.int64)}
    )


@pytest.fixture
def tok():
    return KmerTokenizer(k=4, max_len=48)


def test_round_trip_preserves_ids_mask_labels_and_tokenizer(tmp_path, tok):
    ids, mask = _encoded(tok)
    labels = _labels(len(SEQS))
    write_shards(tmp_path, {"train": (ids, mask, labels), "pretrain": (ids[:2], mask[:2], None)},
                 tok, extra={"source": "unit"})
    shard = open_shard(tmp_path, "train", verify=True)
    assert isinstance(shard.ids, np.memmap) and not shard.ids.flags.writeable
    assert shard.ids.dtype == np.uint16 and shard.mask.dtype == np.uint8
    np.testing.assert_array_equal(shard.ids, ids)
    np.testing.assert_array_equal(shard.mask, mask)
    pd.testing.assert_frame_equal(shard.labels, labels)
    assert len(shard) == len(SEQS)
    assert shard.tokenizer.vocab == tok.vocab
    assert shard.tokenizer.decode(shard.ids[0]).replace(" ", "").startswith(SEQS[0])
    assert open_shard(tmp_path, "pretrain").labels is None
    manifest = read_manifest(tmp_path)
    assert manifest["splits"]["train"]["shape"] == list(ids.shape)
    assert manifest["extra"] == {"source": "unit"}
    assert manifest["tokenizer"]["config"]["k"] == 4


def test_manifest_is_written_last_and_removed_first(tmp_path, tok, monkeypatch):
    ids, mask = _encoded(tok)
    write_shards(tmp_path, {"train": (ids, mask, None)}, tok)
    assert shards_complete(tmp_path)
    import bioscan_kmer.data.shards as shards

    calls = []
    real = shards._write_array_atomic

    def failing(path, arr):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, arr)

    monkeypatch.setattr(shards, "_write_array_atomic", failing)
    with pytest.raises(OSError, match="disk full"):
        write_shards(tmp_path, {"train": (ids[:1], mask[:1], None)}, tok)
    # The interrupted rewrite must not look complete, and leaves no temp files.
    assert not (tmp_path / MANIFEST_NAME).exists()
    assert not shards_complete(tmp_path)
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    with pytest.raises(ShardError, match="interrupted"):
        open_shard(tmp_path, "train")
    monkeypatch.undo()
    write_shards(tmp_path, {"train": (ids, mask, None)}, tok)
    np.testing.assert_array_equal(open_shard(tmp_path, "train").ids, ids)


def test_corrupt_truncated_and_missing_files_are_reported(tmp_path, tok):
    ids, mask = _encoded(tok)
    write_shards(tmp_path, {"train": (ids, mask, _labels(len(SEQS)))}, tok)
    with open(tmp_path / "train.ids.bin", "r+b") as fh:
        fh.write(b"\xff\xff")
    assert open_shard(tmp_path, "train").ids.shape == ids.shape  # size still matches
    with pytest.raises(ShardError, match="checksum"):
        open_shard(tmp_path, "train", verify=True)
    with pytest.raises(ShardError, match="checksum"):
        verify_shards(tmp_path)
    os.truncate(tmp_path / "train.ids.bin", 10)
    with pytest.raises(ShardError, match="10 bytes"):
        open_shard(tmp_path, "train")
    (tmp_path / "train.labels.parquet").unlink()
    os.truncate(tmp_path / "train.ids.bin", 0)
    with pytest.raises(ShardError, match="train"):
        open_shard(tmp_path, "train")
    with pytest.raises(ShardError, match="available: train"):
        open_shard(tmp_path, "val")
    with pytest.raises(ShardError, match="does not exist"):
        open_shard(tmp_path / "nope", "train")


def test_bad_manifest_and_bad_inputs(tmp_path, tok):
    ids, mask = _encoded(tok)
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ShardError, match="cannot read"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ShardError, match="not a bioscan-kmer-shards"):
        read_manifest(tmp_path)
    with pytest.raises(ValueError, match="file name"):
        write_shards(tmp_path, {"../x": (ids, mask, None)}, tok)
    with pytest.raises(ValueError, match="mask shape"):
        write_shards(tmp_path, {"train": (ids, mask[:, :3], None)}, tok)
    with pytest.raises(ValueError, match="labels have 1 rows"):
        write_shards(tmp_path, {"train": (ids, mask, _labels(1))}, tok)
    with pytest.raises(TypeError, match="integers"):
        write_shards(tmp_path, {"train": (ids.astype(float), mask, None)}, tok)
    with pytest.raises(TypeError, match="KmerTokenizer"):
        write_shards(tmp_path, {"train": (ids, mask, None)}, object())
    with pytest.raises(ValueError, match="0 or 1"):
        write_shards(tmp_path, {"train": (ids, mask.astype(np.int64) * 2, None)}, tok)


def test_empty_split_and_resume_check(tmp_path, tok):
    ids, mask = _encoded(tok)
    write_shards(tmp_path, {"val": (ids[:0], mask[:0], None)}, tok, extra={"seed": 1})
    assert len(open_shard(tmp_path, "val")) == 0
    assert shards_complete(tmp_path, extra={"seed": 1})
    assert not shards_complete(tmp_path, extra={"seed": 2})


def test_shard_dataset_items_labels_and_workers(tmp_path, tok):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from bioscan_kmer.data.torch_data import ShardDataset

    ids, mask = _encoded(tok)
    write_shards(tmp_path, {"train": (ids, mask, _labels(len(SEQS)))}, tok)
    ds = ShardDataset(tmp_path, "train", labels="species")
    item = ds[1]
    assert item["input_ids"].dtype == torch.int64 and item["input_ids"].shape == (ids.shape[1],)
    assert item["attention_mask"].dtype == torch.int64
    assert torch.equal(item["input_ids"], torch.from_numpy(ids[1].astype(np.int64)))
    assert int(item["labels"]) == 1
    assert torch.equal(ds[-1]["input_ids"], ds[len(ds) - 1]["input_ids"])
    with pytest.raises(IndexError):
        ds[len(ds)]
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert torch.equal(batch["input_ids"], torch.from_numpy(ids.astype(np.int64)))
    assert batch["labels"].tolist() == [0, 1, 2, 3]
    multi = ShardDataset(tmp_path, "train", labels=["species"])
    assert "species_id" in multi[0] and "labels" not in multi[0]
    with pytest.raises(ShardError, match="genus_id"):
        ShardDataset(tmp_path, "train", labels="genus")


def test_sequence_dataset_collate_matches_per_offset_tokenize(tok):
    torch = pytest.importorskip("torch")
    from bioscan_kmer.data.torch_data import SequenceDataset, row_offsets

    seqs = [("ACGT" * 20)[i:] for i in range(12)]
    ds = SequenceDataset(seqs, tok, labels=np.arange(12), seed=3)
    batch = ds.collate([ds[i] for i in range(12)])
    offsets = row_offsets(np.arange(12), 4, 3, 0)
    assert set(offsets.tolist()) <= {0, 1, 2, 3} and len(set(offsets.tolist())) > 1
    for i, s in enumerate(seqs):
        ref_ids, ref_mask = tokenize([s], k=4, max_len=48, offset=int(offsets[i]))
        assert torch.equal(batch["input_ids"][i], torch.from_numpy(ref_ids[0]))
        assert torch.equal(batch["attention_mask"][i], torch.from_numpy(ref_mask[0].astype(np.int64)))
    assert batch["labels"].tolist() == list(range(12))
    # Same seed and epoch -> same offsets; another epoch -> other offsets.
    assert torch.equal(ds.collate([ds[i] for i in range(12)])["input_ids"], batch["input_ids"])
    ds.set_epoch(1)
    assert not torch.equal(ds.collate([ds[i] for i in range(12)])["input_ids"], batch["input_ids"])
    fixed = SequenceDataset(seqs, tok, random_offset=False)
    ref_ids, _ = tokenize(seqs, k=4, max_len=48)
    assert torch.equal(fixed.collate([fixed[i] for i in range(12)])["input_ids"], torch.from_numpy(ref_ids))
