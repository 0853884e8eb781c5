"""BatchStream: whole-batch reads give exactly the rows the per-row DistributedSampler path gave,
and read-time tokenization gives each row at the offset drawn for (seed, epoch, row).

The reference is the old semantics spelled out directly: a ``DistributedSampler`` (drop_last,
seed + epoch), its indices cut into full micro-batches, each row read through the datasets'
documented per-row API (``ds[i]``, int64) or ``SequenceDataset.collate`` at that epoch; and,
under it, the core's ``tokenize(seq, offset=o)`` of each barcode.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from bioscan_kmer import KmerTokenizer
from bioscan_kmer.data.shards import write_shards
from bioscan_kmer.data.torch_data import SequenceDataset, ShardDataset, row_offsets
from bioscan_kmer.train.batches import BatchStream, DataSource, open_source

from model_synthetic import species_sequences

ROWS = 37  # odd, so that both DistributedSampler's and the micro-batches' tails are dropped


@pytest.fixture(scope="module")
def tok():
    return KmerTokenizer(k=4, max_len=48, preset="bert")


@pytest.fixture(scope="module")
def seqs():
    return species_sequences(ROWS, length=48, seed=5)


def _write(out, tok, seqs):
    labels = pd.DataFrame({"processid": [f"P{i}" for i in range(len(seqs))],
                           "species": ["Aus bus"] * len(seqs),
                           "species_id": np.arange(len(seqs), dtype=np.int64) * 3})
    write_shards(out, {"pretrain": (seqs, labels)}, tok)
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory, tok, seqs):
    return _write(tmp_path_factory.mktemp("shards"), tok, seqs)


def reference_batches(n, batch_size, *, rank=0, world_size=1, seed=0, shuffle=True, epoch=0):
    """Row indices of each micro-batch of one epoch, as the per-row DataLoader cut them."""
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    order = list(sampler)
    return [order[b * batch_size:(b + 1) * batch_size] for b in range(len(order) // batch_size)]


def reference_stream(n, batch_size, *, start=(0, 0), **kwargs):
    """(epoch, row indices) of every micro-batch from position ``start`` on, forever."""
    epoch, first = start
    while True:
        for rows in reference_batches(n, batch_size, epoch=epoch, **kwargs)[first:]:
            yield epoch, rows
        epoch, first = epoch + 1, 0


def shard_rows(ds, rows, epoch=0):
    """The per-row path at ``epoch``: int64 items, stacked."""
    ds.set_epoch(epoch)
    items = [ds[i] for i in rows]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def tokenized(tok, seqs, rows, offsets):
    """The core's ids of each of ``rows``, one call per row at its offset."""
    return torch.from_numpy(np.concatenate([tok([seqs[r]], offset=int(o), return_tensors="np")["input_ids"]
                                            for r, o in zip(rows, offsets)]))


def assert_same_batch(got, want):
    assert set(got) == set(want)
    for key in want:
        assert torch.equal(got[key].long(), want[key].long()), key


@pytest.mark.parametrize("workers", [0, 2])
def test_shard_stream_equals_distributed_sampler_over_epochs(shards, workers):
    ds = ShardDataset(shards, "pretrain", labels="species")
    source = DataSource(dataset=ds, tokenizer=ds.tokenizer, seq_len=ds.seq_len, description="test",
                        fingerprint={})
    for rank in (0, 1):
        stream = BatchStream(source, 4, rank=rank, world_size=2, seed=7, num_workers=workers)
        # 18 rows per rank -> 4 micro-batches an epoch; 13 batches cross three boundaries.
        assert stream.batches_per_epoch == 4
        ref = reference_stream(ROWS, 4, rank=rank, world_size=2, seed=7)
        epochs = []
        for (epoch, rows), batch in zip(itertools.islice(ref, 13), stream):
            assert_same_batch(batch, shard_rows(ds, rows, epoch))
            assert batch["input_ids"].dtype == torch.int32
            assert batch["attention_mask"].dtype == torch.uint8
            assert batch["labels"].dtype == torch.int64
            assert batch["input_ids"].shape == (4, ds.seq_len) and batch["labels"].shape == (4,)
            epochs.append(epoch)
        assert epochs == [0] * 4 + [1] * 4 + [2] * 4 + [3]
        assert stream.position == {"epoch": 3, "batch": 1}
        # Shuffled per epoch: the epochs really differ.
        assert reference_batches(ROWS, 4, rank=rank, world_size=2, seed=7, epoch=0) != \
            reference_batches(ROWS, 4, rank=rank, world_size=2, seed=7, epoch=1)


def test_ranks_interleave_the_global_batch(shards):
    source = open_source(shards, "pretrain")
    whole = BatchStream(source, 8, seed=2)
    parts = [BatchStream(source, 4, rank=r, world_size=2, seed=2) for r in (0, 1)]
    assert whole.batches_per_epoch == parts[0].batches_per_epoch == 4
    for glob, r0, r1 in itertools.islice(zip(whole, *parts), 9):
        # Row i of rank r is row i * world + r of the global batch.
        assert torch.equal(glob["input_ids"][0::2], r0["input_ids"])
        assert torch.equal(glob["input_ids"][1::2], r1["input_ids"])


@pytest.mark.parametrize("workers", [0, 2])
def test_seek_mid_epoch_continues_like_an_uninterrupted_stream(shards, workers):
    source = open_source(shards, "pretrain")
    ds = source.dataset
    stream = BatchStream(source, 5, seed=11, num_workers=workers)
    assert stream.batches_per_epoch == 7  # 37 rows: 7 batches of 5, 2 rows dropped
    stream.seek({"epoch": 2, "batch": 5})
    ref = reference_stream(ROWS, 5, seed=11, start=(2, 5))
    positions = []
    for (epoch, rows), batch in zip(itertools.islice(ref, 10), stream):
        assert_same_batch(batch, shard_rows(ds, rows, epoch))
        positions.append((stream.epoch, stream.batch))
    assert positions == [(2, 6), (3, 0)] + [(3, b) for b in range(1, 7)] + [(4, 0), (4, 1)]
    # Iterating again continues from the position, on the same (persistent) workers.
    assert stream.loader.persistent_workers == (workers > 0)
    batch = next(iter(stream))
    assert_same_batch(batch, shard_rows(ds, reference_batches(ROWS, 5, seed=11, epoch=4)[1], 4))
    assert stream.position == {"epoch": 4, "batch": 2}


@pytest.mark.parametrize("workers", [0, 2])
def test_raw_sequences_draw_offsets_of_each_epoch_in_persistent_workers(tok, seqs, workers):
    ds = SequenceDataset(seqs, tok, labels=np.arange(ROWS) + 100, seed=4)
    own = SequenceDataset(seqs, tok, labels=np.arange(ROWS) + 100, seed=4)
    source = DataSource(dataset=own, tokenizer=tok, seq_len=tok.seq_len, description="test", fingerprint={})
    stream = BatchStream(source, 6, seed=9, num_workers=workers)
    ref = reference_stream(ROWS, 6, seed=9)
    seen = {}
    for (epoch, rows), batch in zip(itertools.islice(ref, 3 * stream.batches_per_epoch), stream):
        ds.set_epoch(epoch)
        want = ds.collate([ds[i] for i in rows])
        assert_same_batch(batch, want)
        assert batch["input_ids"].dtype == torch.int32 and batch["attention_mask"].dtype == torch.uint8
        seen.setdefault(rows[0], []).append(batch["input_ids"][0])
    # The main process never called set_epoch on the stream's dataset; the offsets still moved.
    assert source.dataset.epoch == 0
    changed = [not all(torch.equal(ids[0], x) for x in ids[1:]) for ids in seen.values() if len(ids) > 1]
    assert any(changed)


@pytest.mark.parametrize("kind", ["shards", "sequences"])
def test_random_offsets_do_not_depend_on_workers(tok, seqs, shards, kind):
    outs = []
    for workers in (0, 1, 2):
        source = (open_source(shards, "pretrain", seed=1) if kind == "shards"
                  else open_source(seqs, "", tokenizer=tok, seed=1))
        assert source.dataset.random_offset
        stream = BatchStream(source, 4, seed=1, num_workers=workers)
        outs.append(torch.cat([b["input_ids"] for b in itertools.islice(stream, 20)]))
        stream.close()
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("workers", [0, 2])
def test_ids_are_the_core_tokenization_at_the_drawn_offset(shards, tok, seqs, workers):
    # Each row of each batch is tokenize(seq, offset=o), o = row_offsets(row, k, seed, epoch):
    # the stream's epoch (not the worker's), both ranks, across epoch boundaries.
    for rank in (0, 1):
        source = open_source(shards, "pretrain", seed=6)
        stream = BatchStream(source, 6, rank=rank, world_size=2, seed=2, num_workers=workers)
        ref = reference_stream(ROWS, 6, rank=rank, world_size=2, seed=2)
        epochs = set()
        for (epoch, rows), batch in zip(itertools.islice(ref, 3 * stream.batches_per_epoch + 1), stream):
            offsets = row_offsets(rows, 4, 6, epoch)
            assert torch.equal(batch["input_ids"].long(), tokenized(tok, seqs, rows, offsets))
            epochs.add(epoch)
        stream.close()
        assert epochs == {0, 1, 2, 3}


@pytest.mark.parametrize("k, epochs", [(4, 40), (8, 100)])
def test_every_row_is_seen_in_all_k_frames(tmp_path, seqs, k, epochs):
    # BarcodeBERT's augmentation: each epoch draws a new offset in [0, k) per row, so over
    # enough epochs every row is read in every frame (a fixed offset 0, as pre-tokenized
    # shards had, would show one frame only). Frames are told apart by the ids themselves.
    tok = KmerTokenizer(k=k, max_len=48, preset="bert")
    write_shards(tmp_path, {"pretrain": seqs}, tok)
    frames = np.stack([tok(seqs, offset=o, return_tensors="np")["input_ids"] for o in range(k)])  # (k, N, T)
    assert all(len({frames[o, r].tobytes() for o in range(k)}) == k for r in range(ROWS))  # distinguishable
    stream = BatchStream(open_source(tmp_path, "pretrain", seed=3), 36, seed=3)  # one batch an epoch
    seen = {r: set() for r in range(ROWS)}
    for (epoch, rows), batch in zip(reference_stream(ROWS, 36, seed=3), itertools.islice(stream, epochs)):
        ids = batch["input_ids"].numpy()
        for j, r in enumerate(rows):
            (frame,) = [o for o in range(k) if np.array_equal(frames[o, r], ids[j])]
            assert frame == row_offsets([r], k, 3, epoch)[0]
            seen[r].add(frame)
    assert all(frames_seen == set(range(k)) for frames_seen in seen.values() if frames_seen)
    assert sum(1 for f in seen.values() if f) == ROWS  # 36 of 37 rows an epoch: all drawn
    # Validation splits read offset 0 by default: one frame only.
    fixed = BatchStream(open_source(tmp_path, "pretrain", random_offset=False), 36, seed=3)
    for (_, rows), batch in zip(reference_stream(ROWS, 36, seed=3), itertools.islice(fixed, 3)):
        assert np.array_equal(batch["input_ids"].numpy(), frames[0, rows])


@pytest.mark.parametrize("pipe_max_bytes", [0, 1 << 30])
def test_worker_transport_does_not_change_batches(shards, monkeypatch, pipe_max_bytes):
    # Small batches leave a worker as pickled arrays, large ones as shared-memory tensors;
    # force each way (the forked worker inherits the patched limit).
    import bioscan_kmer.train.batches as batches

    monkeypatch.setattr(batches, "_PIPE_MAX_BYTES", pipe_max_bytes)
    source = open_source(shards, "pretrain")
    stream = BatchStream(source, 6, seed=3, num_workers=1)
    for (epoch, rows), batch in zip(itertools.islice(reference_stream(ROWS, 6, seed=3), 8), stream):
        assert_same_batch(batch, shard_rows(source.dataset, rows, epoch))
        assert isinstance(batch["input_ids"], torch.Tensor) and batch["input_ids"].dtype == torch.int32
    batch = next(stream.one_pass())
    assert batch["attention_mask"].dtype == torch.uint8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("workers", [0, 2])
def test_pinned_batches_on_cuda(shards, workers):
    source = open_source(shards, "pretrain")
    plain = itertools.islice(BatchStream(source, 6, seed=5), 8)
    pinned = itertools.islice(BatchStream(source, 6, seed=5, num_workers=workers, pin_memory=True), 8)
    for a, b in zip(plain, pinned):
        assert b["input_ids"].is_pinned() and b["attention_mask"].is_pinned()
        assert_same_batch(b, a)
        assert torch.equal(b["input_ids"].to("cuda", non_blocking=True).cpu(), a["input_ids"])


def test_one_pass_is_epoch_zero_in_order_and_finite(shards):
    source = open_source(shards, "pretrain")
    stream = BatchStream(source, 10, shuffle=False)
    stream.seek({"epoch": 3, "batch": 1})
    batches = list(stream.one_pass())
    assert len(batches) == 3  # 37 rows: the tail of 7 is dropped
    ids = torch.cat([b["input_ids"] for b in batches])
    assert torch.equal(ids.long(), shard_rows(source.dataset, range(30))["input_ids"])
    assert len(list(stream.one_pass(2))) == 2
    # one_pass leaves the training position alone.
    assert stream.position == {"epoch": 3, "batch": 1}


def test_drop_last_and_too_few_rows(shards):
    source = open_source(shards, "pretrain")
    # 37 rows over 3 processes: 12 each (one row dropped), 2 batches of 5 (2 more dropped).
    stream = BatchStream(source, 5, rank=2, world_size=3)
    assert stream.batches_per_epoch == 2
    rows = [r for _, batch in itertools.islice(reference_stream(ROWS, 5, rank=2, world_size=3), 2)
            for r in batch]  # both in epoch 0
    got = torch.cat([b["input_ids"] for b in itertools.islice(stream, 2)])
    assert torch.equal(got.long(), shard_rows(source.dataset, rows)["input_ids"])
    assert stream.position == {"epoch": 1, "batch": 0}
    with pytest.raises(ValueError, match="fewer than one global batch"):
        BatchStream(source, 19, world_size=2)
    assert BatchStream(source, 37).batches_per_epoch == 1


def test_read_batch_dtypes(shards):
    ds = ShardDataset(shards, "pretrain", labels=["species"])
    batch = ds.read_batch([3, -1, 0])
    assert batch["input_ids"].dtype == torch.int32 and batch["input_ids"].shape == (3, ds.seq_len)
    assert batch["attention_mask"].dtype == torch.uint8
    assert batch["species_id"].tolist() == [9, 3 * (ROWS - 1), 0]
    assert_same_batch(batch, shard_rows(ds, [3, ROWS - 1, 0]))
    # The per-row API keeps its documented int64 items.
    assert ds[3]["input_ids"].dtype == torch.int64 and ds[3]["attention_mask"].dtype == torch.int64
    assert ds.read_batch(np.array([], dtype=np.int64))["input_ids"].shape == (0, ds.seq_len)


def test_sequence_read_batch_matches_collate_at_any_epoch(tok, seqs):
    ds = SequenceDataset(seqs, tok, seed=2)
    rows = [5, 0, 36, 17, 5]
    for epoch in (0, 1, 5):
        ds.set_epoch(epoch)
        want = ds.collate([ds[i] for i in rows])
        ds.set_epoch(0)
        assert_same_batch(ds.read_batch(rows, epoch=epoch), want)
    ds.set_epoch(3)
    assert_same_batch(ds.read_batch(rows), ds.collate([ds[i] for i in rows]))


def test_batches_feed_the_model_like_int64(shards):
    from bioscan_kmer.model import MaskedLM, get_preset
    from bioscan_kmer.model.masking import apply_masking

    source = open_source(shards, "pretrain")
    batch = next(iter(BatchStream(source, 6, seed=0)))
    config = get_preset("tiny").with_tokenizer(source.tokenizer)
    torch.manual_seed(0)
    model = MaskedLM(config).eval()
    out = []
    for ids, mask in ((batch["input_ids"], batch["attention_mask"]),
                      (batch["input_ids"].long(), batch["attention_mask"].long())):
        gen = torch.Generator().manual_seed(1)
        masked, labels = apply_masking("bert", ids, mask, config, generator=gen, ratio=0.15)
        with torch.no_grad():
            logits, loss = model(masked, mask, labels, reduction="sum")
        real = torch.zeros((), dtype=torch.int64)
        real += mask.sum()  # what Trainer.train_step counts
        out.append((masked.long(), labels, logits, loss, real))
    for a, b in zip(*out):
        assert torch.equal(a, b)
    assert out[0][1].dtype == torch.int64


def test_bad_input_errors(shards, tok, seqs):
    source = open_source(shards, "pretrain")
    ds = source.dataset
    with pytest.raises(IndexError, match="index 37 out of range for 37 rows"):
        ds.read_batch([0, 37])
    with pytest.raises(IndexError, match="index -38"):
        ds.read_batch([-38])
    with pytest.raises(TypeError, match="integers"):
        ds.read_batch([0.0, 1.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        ds.read_batch([[0, 1]])
    with pytest.raises(TypeError, match="sequence 3 is missing"):
        SequenceDataset(seqs[:3] + [None], tok)
    with pytest.raises(TypeError, match="sequence 1 is int"):
        SequenceDataset([seqs[0], 7], tok)
    with pytest.raises(IndexError):
        SequenceDataset(seqs[:3], tok).read_batch([4])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        BatchStream(source, 0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        BatchStream(source, "4")
    with pytest.raises(ValueError, match="rank must be in"):
        BatchStream(source, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="num_workers"):
        BatchStream(source, 4, num_workers=-1)
    with pytest.raises(TypeError, match="read_batch"):
        BatchStream(DataSource(dataset=list(range(40)), tokenizer=tok, seq_len=12, description="a list",
                               fingerprint={}), 4)
    stream = BatchStream(source, 4)
    with pytest.raises(ValueError, match="outside an epoch of 9 batches"):
        stream.seek({"epoch": 0, "batch": 9})


def test_close_stops_persistent_workers_and_the_stream_goes_on(shards):
    source = open_source(shards, "pretrain")
    reference = [b["input_ids"] for b in itertools.islice(BatchStream(source, 6, seed=2), 9)]
    stream = BatchStream(source, 6, seed=2, num_workers=2)
    it = iter(stream)
    first = [next(it)["input_ids"] for _ in range(4)]
    workers = list(stream.loader._iterator._workers)
    assert len(workers) == 2 and all(w.is_alive() for w in workers)
    stream.close()
    for w in workers:
        w.join(timeout=10)
    assert not any(w.is_alive() for w in workers)
    stream.close()  # idempotent
    # Iterating again continues from the position, with new workers.
    with stream:
        rest = [b["input_ids"] for b in itertools.islice(iter(stream), 5)]
    for a, b in zip(reference, first + rest):
        assert torch.equal(a, b)
    assert stream.loader._iterator is None
