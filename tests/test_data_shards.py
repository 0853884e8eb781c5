"""Sequence shards: round trip, atomicity, corruption and manifest checks, torch datasets."""

import json
import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bioscan_kmer import KmerTokenizer, tokenize
from bioscan_kmer.data.shards import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    ShardError,
    open_shard,
    read_manifest,
    shards_complete,
    tokenizer_from_manifest,
    verify_shards,
    write_shards,
)

SEQS = ["ACGTACGTAAAACCCCGGGGTTTT", "ACGTNNACGT", "ACG", "TTTTGGGGCCCCAAAA" * 3]


def _labels(n):
    return pd.DataFrame(
        {"processid": [f"P{i}" for i in range(n)], "species": ["Aus bus"] * n,
         "species_id": np.arange(n, dtype=np.int64)}
    )


@pytest.fixture
def tok():
    return KmerTokenizer(k=4, max_len=48)


def _edit_manifest(directory, change):
    path = directory / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_round_trip_preserves_barcodes_labels_and_tokenizer(tmp_path, tok):
    labels = _labels(len(SEQS))
    write_shards(tmp_path, {"train": (SEQS, labels), "pretrain": pa.array(SEQS[:2])}, tok,
                 extra={"source": "unit"})
    shard = open_shard(tmp_path, "train", verify=True)
    assert isinstance(shard.barcodes.bases, np.memmap) and not shard.barcodes.bases.flags.writeable
    assert [shard.barcodes.row(i) for i in range(len(SEQS))] == SEQS
    assert shard.barcodes.to_arrow().to_pylist() == SEQS
    assert shard.barcodes.take(np.array([3, 0, 3])).to_pylist() == [SEQS[3], SEQS[0], SEQS[3]]
    pd.testing.assert_frame_equal(shard.labels, labels)
    assert len(shard) == len(SEQS)
    assert shard.tokenizer == tok
    assert open_shard(tmp_path, "pretrain").labels is None
    assert len(open_shard(tmp_path, "pretrain")) == 2
    manifest = read_manifest(tmp_path)
    assert manifest["version"] == FORMAT_VERSION == 2
    assert manifest["splits"]["train"]["rows"] == 4
    assert manifest["splits"]["train"]["bases"] == sum(map(len, SEQS))
    assert manifest["extra"] == {"source": "unit"}
    # The configuration, never the vocabulary.
    assert manifest["tokenizer"] == {"config": tok.config}
    assert sorted(os.listdir(tmp_path)) == sorted([MANIFEST_NAME, "train.seq.bin", "train.offsets.bin",
                                                   "train.labels.parquet", "pretrain.seq.bin",
                                                   "pretrain.offsets.bin"])
    assert (tmp_path / "train.seq.bin").read_bytes() == "".join(SEQS).encode()
    np.testing.assert_array_equal(np.fromfile(tmp_path / "train.offsets.bin", dtype="<i8"),
                                  np.cumsum([0] + [len(s) for s in SEQS]))


def test_manifest_is_written_last_and_removed_first(tmp_path, tok, monkeypatch):
    write_shards(tmp_path, {"train": SEQS}, tok)
    assert shards_complete(tmp_path)
    import bioscan_kmer.data.shards as shards

    calls = []
    real = shards._write_buffer_atomic

    def failing(path, arr):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(path, arr)

    monkeypatch.setattr(shards, "_write_buffer_atomic", failing)
    with pytest.raises(OSError, match="disk full"):
        write_shards(tmp_path, {"train": SEQS[:1]}, tok)
    # The interrupted rewrite must not look complete, and leaves no temp files.
    assert not (tmp_path / MANIFEST_NAME).exists()
    assert not shards_complete(tmp_path)
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
    with pytest.raises(ShardError, match="interrupted"):
        open_shard(tmp_path, "train")
    monkeypatch.undo()
    write_shards(tmp_path, {"train": SEQS}, tok)
    assert open_shard(tmp_path, "train").barcodes.to_arrow().to_pylist() == SEQS


def test_corrupt_truncated_and_missing_files_are_reported(tmp_path, tok):
    write_shards(tmp_path, {"train": (SEQS, _labels(len(SEQS)))}, tok, extra={"run": 1})
    # Issue 10 item 7: a base changed in place keeps the size. Before, `prepare` re-runs
    # (shards_complete without checksums) called such a directory up to date.
    with open(tmp_path / "train.seq.bin", "r+b") as fh:
        fh.write(b"T")
    assert len(open_shard(tmp_path, "train")) == len(SEQS)  # sizes still match
    assert not shards_complete(tmp_path, extra={"run": 1})
    assert shards_complete(tmp_path, extra={"run": 1}, verify=False)
    with pytest.raises(ShardError, match="checksum"):
        open_shard(tmp_path, "train", verify=True)
    with pytest.raises(ShardError, match="checksum"):
        verify_shards(tmp_path)
    os.truncate(tmp_path / "train.seq.bin", 10)
    with pytest.raises(ShardError, match="10 bytes"):
        open_shard(tmp_path, "train")
    (tmp_path / "train.labels.parquet").unlink()
    os.truncate(tmp_path / "train.seq.bin", 0)
    with pytest.raises(ShardError, match="train"):
        open_shard(tmp_path, "train")
    with pytest.raises(ShardError, match="available: train"):
        open_shard(tmp_path, "val")
    with pytest.raises(ShardError, match="does not exist"):
        open_shard(tmp_path / "nope", "train")


def test_corrupt_offsets_are_caught_on_open(tmp_path, tok):
    write_shards(tmp_path, {"train": SEQS}, tok)
    offsets = np.fromfile(tmp_path / "train.offsets.bin", dtype="<i8")
    offsets[2] = offsets[3] + 5  # same file size, row 2 now runs backwards
    offsets.tofile(tmp_path / "train.offsets.bin")
    with pytest.raises(ShardError, match="split 'train': row 2 ends before it starts.*corrupt"):
        open_shard(tmp_path, "train")
    offsets[2] = offsets[1]
    offsets[-1] += 1
    offsets.tofile(tmp_path / "train.offsets.bin")
    with pytest.raises(ShardError, match="last row offset"):
        open_shard(tmp_path, "train")


def test_a_corrupt_byte_is_a_clear_error_naming_split_and_row(tmp_path, tok):
    # Issue 10 item 7: pre-tokenized shards turned a corrupt id into an IndexError inside
    # the embedding; a corrupt base must be named, not trained on.
    torch = pytest.importorskip("torch")  # noqa: F841
    from bioscan_kmer.data.torch_data import ShardDataset

    write_shards(tmp_path, {"train": SEQS}, tok)
    start = len(SEQS[0]) + len(SEQS[1]) + 1  # second base of row 2
    with open(tmp_path / "train.seq.bin", "r+b") as fh:
        fh.seek(start)
        fh.write(b"\x07")
    ds = ShardDataset(tmp_path, "train")  # sizes and offsets are fine
    assert ds.read_batch([0, 1, 3])["input_ids"].shape == (3, tok.seq_len)
    with pytest.raises(ShardError, match=r"split 'train' row 2: byte 0x07 at position 1 is not a base.*"
                                         r"train\.seq\.bin is corrupt"):
        ds.read_batch([3, 2])
    with pytest.raises(ShardError, match="row 2"):
        ds[2]


@pytest.mark.parametrize("name", ["../x.bin", "/etc/passwd", "sub/train.seq.bin", "..", "", "a\\b"])
def test_manifest_file_names_outside_the_directory_are_refused(tmp_path, tok, name):
    # Issue 10 item 8: a manifest could point the reader at any file of the machine.
    write_shards(tmp_path, {"train": SEQS}, tok)
    _edit_manifest(tmp_path, lambda m: m["splits"]["train"]["sequences"].update(file=name))
    with pytest.raises(ShardError, match="not a plain file name inside the shard directory"):
        open_shard(tmp_path, "train")
    assert not shards_complete(tmp_path)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(dtype="float16"), "dtype must be one of"),
    (lambda c: c.update(k=13), "k must be between 1 and 12"),
    (lambda c: c.update(k="4"), "'k' must be int"),
    (lambda c: c.update(n_nucleotide=1), "'n_nucleotide' must be bool"),
    (lambda c: c.update(preset="gpt"), "preset must be one of"),
    (lambda c: c.update(max_len=2**40), "max_len 1099511627776 is above"),
    (lambda c: c.update(vocab={"A": 1}), "unknown tokenizer setting"),
])
def test_bad_tokenizer_settings_in_the_manifest_are_shard_errors(tmp_path, tok, change, message):
    write_shards(tmp_path, {"train": SEQS}, tok)
    _edit_manifest(tmp_path, lambda m: change(m["tokenizer"]["config"]))
    with pytest.raises(ShardError, match=message):
        open_shard(tmp_path, "train")


def test_k12_n_nucleotide_manifest_is_small_and_opens_without_a_vocabulary(tmp_path):
    # Issue 10 items 8 and 9: the manifest held the whole vocabulary (453 MiB at k=12) and
    # opening rebuilt and compared it (40 s, 2 GiB); an edited `k=12, n_nucleotide=true`
    # asked for a ~40 GB dict. Now: the configuration only, and nothing vocabulary-sized.
    write_shards(tmp_path, {"pretrain": SEQS}, KmerTokenizer(k=12, max_len=48))
    assert (tmp_path / MANIFEST_NAME).stat().st_size < 2048
    _edit_manifest(tmp_path, lambda m: m["tokenizer"]["config"].update(n_nucleotide=True))
    t = time.perf_counter()
    shard = open_shard(tmp_path, "pretrain")
    tok = shard.tokenizer
    assert time.perf_counter() - t < 5  # not the old 40 s (the bound is loose on purpose)
    assert tok.vocab_size == 5**12 + 2 and tok._vocab is None
    ids, _ = tokenize(SEQS[:1], k=12, max_len=48, n_nucleotide=True)
    assert np.array_equal(tok(SEQS[:1], return_tensors="np")["input_ids"], ids)


def test_bad_manifests(tmp_path, tok):
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ShardError, match="cannot read"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ShardError, match="not a bioscan-kmer-shards"):
        read_manifest(tmp_path)
    # A directory of the old pre-tokenized format: one line that says what to do.
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "bioscan-kmer-shards", "version": 1,
                                                      "tokenizer": {}, "splits": {}}))
    with pytest.raises(ShardError, match=r"format version 1.*run `bioscan-kmer prepare` again") as info:
        read_manifest(tmp_path)
    assert "\n" not in str(info.value)
    write_shards(tmp_path, {"train": SEQS}, tok)
    # Issue 10 item 10: a manifest without `tokenizer` is a one-line ShardError.
    _edit_manifest(tmp_path, lambda m: m.pop("tokenizer"))
    with pytest.raises(ShardError, match="has no tokenizer configuration") as info:
        open_shard(tmp_path, "train")
    assert "\n" not in str(info.value)
    write_shards(tmp_path, {"train": SEQS}, tok)
    _edit_manifest(tmp_path, lambda m: m["splits"]["train"].update(rows=7))
    with pytest.raises(ShardError, match="offsets file should hold 64 bytes for 7 rows"):
        open_shard(tmp_path, "train")
    write_shards(tmp_path, {"train": SEQS}, tok)
    _edit_manifest(tmp_path, lambda m: m["splits"]["train"]["offsets"].update(sha256="x" * 64))
    with pytest.raises(ShardError, match="not a SHA-256 digest"):
        read_manifest(tmp_path)
    write_shards(tmp_path, {"train": SEQS}, tok)
    _edit_manifest(tmp_path, lambda m: m["splits"].update({"../up": m["splits"]["train"]}))
    with pytest.raises(ShardError, match="split name '../up'"):
        read_manifest(tmp_path)


def test_bad_inputs_to_write_shards(tmp_path, tok):
    with pytest.raises(ValueError, match="file name"):
        write_shards(tmp_path, {"../x": SEQS}, tok)
    with pytest.raises(ValueError, match="labels have 1 rows but there are 4 sequences"):
        write_shards(tmp_path, {"train": (SEQS, _labels(1))}, tok)
    with pytest.raises(TypeError, match="split 'train': sequence 2 is int"):
        write_shards(tmp_path, {"train": ["ACGT", "AC", 5]}, tok)
    with pytest.raises(TypeError, match="split 'train': sequence 1 is missing"):
        write_shards(tmp_path, {"train": ["ACGT", None]}, tok)
    # Shards hold cleaned barcodes only: a corrupt byte must be told from a real letter.
    with pytest.raises(ValueError, match=r"split 'val': sequence 1 has 'a' at position 2.*clean"):
        write_shards(tmp_path, {"train": SEQS, "val": ["ACGT", "ACaT"]}, tok)
    with pytest.raises(ValueError, match=r"sequence 0 has 'R' at position 3"):
        write_shards(tmp_path, {"train": ["ACGR"]}, tok)
    with pytest.raises(TypeError, match=r"\(sequences, labels_df or None\)"):
        write_shards(tmp_path, {"train": (np.zeros((2, 3)), np.zeros((2, 3)), None)}, tok)
    with pytest.raises(TypeError, match="KmerTokenizer"):
        write_shards(tmp_path, {"train": SEQS}, object())
    with pytest.raises(ValueError, match="k must be between"):
        write_shards(tmp_path, {"train": SEQS}, {"k": 0})
    assert not (tmp_path / MANIFEST_NAME).exists()  # nothing was written
    # The chunks of a chunked array are rows of one split, numbered across chunks.
    chunked = pa.chunked_array([["ACGT"], [], ["AC", "AxT"]], type=pa.large_string())
    with pytest.raises(ValueError, match=r"sequence 2 has 'x' at position 1"):
        write_shards(tmp_path, {"train": chunked}, tok)
    with pytest.raises(TypeError, match=r"sequence 2 is missing"):
        write_shards(tmp_path, {"train": pa.chunked_array([["ACGT", "AC"], [None]], type=pa.large_string())}, tok)


def test_chunked_barcodes_are_written_without_concatenation(tmp_path, tok, monkeypatch):
    chunks = [SEQS[:2], [], SEQS[2:]]
    import bioscan_kmer.data.shards as shards

    written = []
    real = shards._write_buffer_atomic

    def spy(path, arrays):
        written.append([len(a) for a in arrays] if isinstance(arrays, list) else len(arrays))
        return real(path, arrays)

    monkeypatch.setattr(shards, "_write_buffer_atomic", spy)
    write_shards(tmp_path, {"train": (pa.chunked_array(chunks, type=pa.large_string()), _labels(4))}, tok)
    assert written[0] == [len(SEQS[0]) + len(SEQS[1]), 0, len(SEQS[2]) + len(SEQS[3])]  # one array per chunk
    shard = open_shard(tmp_path, "train", verify=True)
    assert shard.barcodes.to_arrow().to_pylist() == SEQS
    assert read_manifest(tmp_path)["splits"]["train"]["rows"] == 4


def test_empty_split_and_resume_check(tmp_path, tok):
    write_shards(tmp_path, {"val": [], "train": [""]}, tok, extra={"seed": 1})
    assert len(open_shard(tmp_path, "val")) == 0
    assert open_shard(tmp_path, "train").barcodes.row(0) == ""
    assert shards_complete(tmp_path, extra={"seed": 1})
    assert not shards_complete(tmp_path, extra={"seed": 2})
    assert tokenizer_from_manifest(read_manifest(tmp_path)) == tok


def test_shard_dataset_items_labels_offsets_and_workers(tmp_path, tok):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from bioscan_kmer.data.torch_data import ShardDataset, row_offsets

    write_shards(tmp_path, {"train": (SEQS, _labels(len(SEQS))), "pretrain": SEQS}, tok)
    ids, mask = tokenize(SEQS, k=4, max_len=48)
    ds = ShardDataset(tmp_path, "train", labels="species")
    assert not ds.random_offset  # evaluation splits read offset 0 unless asked
    item = ds[1]
    assert item["input_ids"].dtype == torch.int64 and item["input_ids"].shape == (ids.shape[1],)
    assert item["attention_mask"].dtype == torch.int64
    assert torch.equal(item["input_ids"], torch.from_numpy(ids[1]))
    assert int(item["labels"]) == 1
    assert torch.equal(ds[-1]["input_ids"], ds[len(ds) - 1]["input_ids"])
    with pytest.raises(IndexError):
        ds[len(ds)]
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=2)))
    assert torch.equal(batch["input_ids"], torch.from_numpy(ids))
    assert torch.equal(batch["attention_mask"], torch.from_numpy(mask.astype(np.int64)))
    assert batch["labels"].tolist() == [0, 1, 2, 3]
    multi = ShardDataset(tmp_path, "train", labels=["species"])
    assert "species_id" in multi[0] and "labels" not in multi[0]
    with pytest.raises(ShardError, match="genus_id"):
        ShardDataset(tmp_path, "train", labels="genus")
    # The pretraining split draws offsets by default; set_epoch picks the epoch of items.
    pre = ShardDataset(tmp_path, "pretrain", seed=5)
    assert pre.random_offset
    pre.set_epoch(3)
    offsets = row_offsets(np.arange(4), 4, 5, 3)
    for i in range(4):
        want, _ = tokenize([SEQS[i]], k=4, max_len=48, offset=int(offsets[i]))
        assert torch.equal(pre[i]["input_ids"], torch.from_numpy(want[0]))
    # Another tokenizer reads the same barcodes: one prepare serves every k.
    k6 = ShardDataset(tmp_path, "train", tokenizer=KmerTokenizer(k=6, max_len=48, preset="bert"))
    want, _ = tokenize(SEQS, k=6, max_len=48, preset="bert")
    assert torch.equal(k6.read_batch([0, 1, 2, 3])["input_ids"].long(), torch.from_numpy(want))


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
    # Raw sequences are tokenized as given: letters outside ACGT become [UNK], no error.
    raw = SequenceDataset(["acgtACGT"], tok, random_offset=False)
    assert raw.read_batch([0])["input_ids"][0, :2].tolist() == [tok.unk_id, tok.token_to_id("ACGT")]


def test_row_offsets_are_uniform_and_independent_per_epoch_and_seed():
    pytest.importorskip("torch")
    from bioscan_kmer.data.torch_data import row_offsets

    rows = np.arange(100_000)
    for k in (4, 8):
        counts = np.bincount(row_offsets(rows, k, 3, 5), minlength=k)
        assert np.all(np.abs(counts / len(rows) - 1 / k) < 0.01), counts
    # Another epoch, or another seed, draws afresh: agreement is chance (1/k), not more.
    # (With the seed only added to the counter, seed s + 1 repeated seed s one row later.)
    same_epoch = np.mean(row_offsets(rows, 4, 3, 0) == row_offsets(rows, 4, 3, 1))
    shifted_seed = np.mean(row_offsets(rows + 1, 4, 0, 0) == row_offsets(rows, 4, 1, 0))
    assert abs(same_epoch - 0.25) < 0.01 and abs(shifted_seed - 0.25) < 0.01
    np.testing.assert_array_equal(row_offsets(rows[:50], 4, 3, 5), row_offsets(rows, 4, 3, 5)[:50])
