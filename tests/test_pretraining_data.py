"""BarcodeBERT's pretraining set, pretraining on barcode files, and exact resumption with
random offsets (issue 11 parts 1-3, issue 10 item 7)."""

import pandas as pd
import pytest

from bioscan_kmer.data.prepare import pretraining_barcodes, pretraining_form, prepare_shards, read_pretraining_barcodes
from bioscan_kmer.data.schema import RANKS
from bioscan_kmer.data.shards import ShardError, open_shard

LONG_A = "A" * 650 + "C" * 10  # 660 bases

# A hand-made table. The rule (BarcodeBERT data/data_split.py, SPEC section 7): bring every
# barcode to its form (cleaned, truncated to 660, trailing N stripped, leading N kept), drop
# duplicate forms over the WHOLE table keeping the first row, then keep the rows of the
# pretrain and other_heldout splits, in table order.
TABLE = [
    # (split, raw barcode)                       form             first? kept?
    ("train", "ACGTACGTAA"),                   # ACGTACGTAA       yes    no: train
    ("pretrain", "acgtacgtaann"),              # ACGTACGTAA       no (row 0) -> gone, though in pretrain
    ("pretrain", "NNCCCCGGGG"),                # NNCCCCGGGG       yes    yes: leading N stay
    ("other_heldout", "CCCCGGGG"),             # CCCCGGGG         yes    yes: not a copy of row 2
    ("pretrain", "CCCC-GGGGNNN"),              # CCCCGGGG         no (row 3): gap removed, trailing N off
    ("val", "TTTTAAAA"),                       # TTTTAAAA         yes    no: val
    ("other_heldout", "TTTTRAAA"),             # TTTTNAAA         yes    yes: IUPAC R -> N, kept inside
    ("pretrain", "TTTTAAAA"),                  # TTTTAAAA         no (row 5)
    ("pretrain", LONG_A + "G" * 10),           # LONG_A           yes    yes: 670 bases cut to 660
    ("pretrain", LONG_A + "TTTTT"),            # LONG_A           no (row 8): equal in the first 660
    ("test", "GGGGCCCC"),                      # GGGGCCCC         yes    no: test
    ("pretrain", "GGGGCCCCN"),                 # GGGGCCCC         no (row 10)
    ("pretrain", "NNNN"),                      # "" (all N)       yes    yes: one empty barcode, as rstrip gives
    ("pretrain", "GATTACA"),                   # GATTACA          yes    yes
    ("pretrain", "ACGTACGTAA"),                # ACGTACGTAA       no (row 0)
]
EXPECTED = ["NNCCCCGGGG", "CCCCGGGG", "TTTTNAAA", LONG_A, "", "GATTACA"]
# Without a split column every distinct form is kept, in order of first occurrence.
EXPECTED_ALL = ["ACGTACGTAA", "NNCCCCGGGG", "CCCCGGGG", "TTTTAAAA", "TTTTNAAA", LONG_A, "GGGGCCCC", "",
                "GATTACA"]


def _table(with_ranks=False):
    df = pd.DataFrame({"processid": [f"P{i}" for i in range(len(TABLE))],
                       "dna_barcode": [b for _, b in TABLE], "split": [s for s, _ in TABLE]})
    if with_ranks:
        for rank in RANKS:
            df[rank] = pd.Series([None] * len(df), dtype=object)
    return df


def test_pretraining_form_strips_trailing_n_only():
    form = pretraining_form(["nnACGTnn", "AC-GTN N", "NNNN", "ACGTRYN", "ACGTA"], max_len=4).to_pylist()
    # Leading N are BarcodeBERT's too (str.rstrip); truncation comes before the strip.
    assert form == ["NNAC", "ACGT", "", "ACGT", "ACGT"]


def test_pretraining_set_rule_on_a_hand_made_table():
    assert pretraining_barcodes(_table()).to_pylist() == EXPECTED
    assert pretraining_barcodes(_table().drop(columns="split")).to_pylist() == EXPECTED_ALL
    # Order matters: with row 1 first, the pretrain copy is the first occurrence and stays.
    swapped = _table().iloc[[1, 0, *range(2, len(TABLE))]].reset_index(drop=True)
    assert pretraining_barcodes(swapped).to_pylist() == ["ACGTACGTAA", *EXPECTED]


def test_prepare_writes_the_pretraining_set(tmp_path):
    res = prepare_shards(_table(with_ranks=True), tmp_path, splits=["pretrain", "train", "val"])
    pre = open_shard(tmp_path, "pretrain")
    assert res["rows"]["pretrain"] == len(EXPECTED)
    assert pre.barcodes.to_arrow().to_pylist() == EXPECTED
    # Labelled splits hold every record, cleaned (N trimmed at both ends, no truncation).
    assert open_shard(tmp_path, "train").barcodes.to_arrow().to_pylist() == ["ACGTACGTAA"]
    assert "dna_barcode" not in open_shard(tmp_path, "train").labels.columns  # in seq.bin once


def test_prepare_can_add_train_to_the_pretraining_splits(tmp_path):
    # A fully labelled table (a BOLD export) has almost no pretrain rows: the benchmark
    # pretrains on train too. The rule is unchanged: row 0 (train) is now kept, and so the
    # pretrain copies of its barcode (rows 1 and 14) still are not.
    prepare_shards(_table(with_ranks=True), tmp_path, splits=["pretrain"],
                   pretrain_splits=("pretrain", "other_heldout", "train"))
    assert open_shard(tmp_path, "pretrain").barcodes.to_arrow().to_pylist() == ["ACGTACGTAA", *EXPECTED]
    with pytest.raises(ValueError, match="unknown split"):
        prepare_shards(_table(with_ranks=True), tmp_path / "x", pretrain_splits=("pretrian",))


def test_bad_barcodes_are_named_by_table_row():
    df = _table()
    df.loc[9, "dna_barcode"] = "ACGT!"
    with pytest.raises(ValueError, match=r"^row 9: .*'!'"):
        pretraining_barcodes(df)
    df.loc[9, "dna_barcode"] = None
    with pytest.raises(ValueError, match=r"^row 9: dna_barcode is missing"):
        pretraining_barcodes(df)
    with pytest.raises(ValueError, match="'dna_barcode' column"):
        pretraining_barcodes(df.rename(columns={"dna_barcode": "seq"}))


def test_barcode_files_fasta_and_csv(tmp_path):
    fasta = tmp_path / "b.fasta"
    fasta.write_text("".join(f">P{i}\n{b}\n" for i, (_, b) in enumerate(TABLE)))
    assert read_pretraining_barcodes(fasta).to_pylist() == EXPECTED_ALL
    csv = tmp_path / "meta.csv"
    _table().to_csv(csv, index=False)
    assert read_pretraining_barcodes(csv).to_pylist() == EXPECTED
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\nACGT\n>b\nAC*T\n")
    with pytest.raises(ValueError, match=r"bad\.fasta'?: row 1: .*'\*'"):
        read_pretraining_barcodes(bad)


def test_open_source_reads_a_barcode_file(tmp_path):
    torch = pytest.importorskip("torch")
    from bioscan_kmer import KmerTokenizer
    from bioscan_kmer.data.torch_data import row_offsets
    from bioscan_kmer.model import get_preset
    from bioscan_kmer.train.batches import open_source

    csv = tmp_path / "meta.csv"
    _table().to_csv(csv, index=False)
    tok = KmerTokenizer(k=4, max_len=660)
    source = open_source(csv, "pretrain", tokenizer=tok, seed=2)
    assert len(source.dataset) == len(EXPECTED) and source.dataset.random_offset
    batch = source.dataset.read_batch([3, 0], epoch=5)
    offsets = row_offsets([3, 0], 4, 2, 5)
    want, _ = tok([EXPECTED[3], EXPECTED[0]], offset=offsets, return_tensors="np").values()
    assert torch.equal(batch["input_ids"].long(), torch.from_numpy(want))
    assert source.fingerprint["kind"] == "sequences" and source.fingerprint["rows"] == len(EXPECTED)
    # Without a tokenizer, the model's vocabulary decides (8-4-4: k=8).
    assert open_source(csv, "pretrain", model_config=get_preset("bioscan5m-8-4-4")).tokenizer.k == 8
    with pytest.raises(ValueError, match="pretraining set only"):
        open_source(csv, "val", tokenizer=tok)
    with pytest.raises(ValueError, match="need a tokenizer"):
        open_source(csv, "pretrain")


def _corrupt_in_place(path):
    data = bytearray(path.read_bytes())
    data[5] = ord("A") if data[5] != ord("A") else ord("C")
    path.write_bytes(bytes(data))


def test_pretrain_on_a_fasta_file_resumes_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    from model_synthetic import species_sequences, torch_threads

    from bioscan_kmer.model import load_checkpoint
    from bioscan_kmer.train import pretrain

    fasta = tmp_path / "seqs.fasta"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(species_sequences(40, length=120, seed=2))))
    kw = dict(preset="tiny", steps=6, batch_size=8, lr=3e-3, log_every=1, ckpt_every=2, device="cpu",
              threads=1, progress=False, seed=1)
    with torch_threads(1):
        whole = pretrain(fasta, tmp_path / "a", **kw)

        class Stop(Exception):
            pass

        def stop(step, info):
            if step == 3:
                raise Stop

        with pytest.raises(Stop):
            pretrain(fasta, tmp_path / "b", on_step=stop, **kw)
        parts = pretrain(fasta, tmp_path / "b", resume=True, **kw)
    assert parts["resumed_from"] == 2
    a, b = load_checkpoint(whole["checkpoint"]), load_checkpoint(parts["checkpoint"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["data_fingerprint"]["kind"] == "sequences"


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory):
    from model_synthetic import synthetic_shards

    out = tmp_path_factory.mktemp("small_shards")
    synthetic_shards(out, n_train=48, n_val=16, seed=1)
    return out


class Interrupt(Exception):
    pass


def test_resume_with_random_offsets_is_bit_identical(small_shards, tmp_path):
    # 48 rows, micro-batches of 8: 6 a epoch. The checkpoint at step 5 sits mid-epoch
    # (epoch 1, batch 4 with grad_accum 2); resumption must draw the offsets of the epochs
    # it continues, not those of epoch 0 or of the worker's last request.
    torch = pytest.importorskip("torch")
    from model_synthetic import torch_threads

    from bioscan_kmer.model import load_checkpoint
    from bioscan_kmer.train import pretrain

    kw = dict(preset="tiny", steps=12, batch_size=8, grad_accum=2, lr=3e-3, dropout=0.1, log_every=2,
              val_every=6, val_batches=1, ckpt_every=5, device="cpu", threads=1, progress=False, seed=4)

    def stop(step, info):
        if step == 8:
            raise Interrupt

    with torch_threads(1):
        whole = pretrain(small_shards, tmp_path / "whole", **kw)
        with pytest.raises(Interrupt):
            pretrain(small_shards, tmp_path / "parts", on_step=stop, num_workers=2, **kw)
        parts = pretrain(small_shards, tmp_path / "parts", resume=True, num_workers=1, **kw)
        fixed = pretrain(small_shards, tmp_path / "fixed", **{**kw, "random_offset": False})
    a, b = load_checkpoint(whole["checkpoint"]), load_checkpoint(parts["checkpoint"])
    assert parts["resumed_from"] == 5 and a["data_position"] == b["data_position"]
    assert a["data_position"]["epoch"] >= 3
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    # Not vacuous: the offsets change what is trained on.
    c = load_checkpoint(fixed["checkpoint"])
    assert any(not torch.equal(v, c["model"][k]) for k, v in a["model"].items())


def test_resume_verifies_shard_checksums(small_shards, tmp_path):
    # Issue 10 item 7: pretrain never checked the SHA-256 it wrote. A shard changed in
    # place (same size, still valid bases) is caught when a run resumes on it.
    import shutil

    pytest.importorskip("torch")
    from model_synthetic import torch_threads

    from bioscan_kmer.train import pretrain

    shards = tmp_path / "shards"
    shutil.copytree(small_shards, shards)
    kw = dict(preset="tiny", steps=4, batch_size=8, log_every=1, ckpt_every=2, device="cpu", threads=1,
              progress=False, val_split=None)
    with torch_threads(1):
        pretrain(shards, tmp_path / "run", **{**kw, "steps": 2})
        _corrupt_in_place(shards / "pretrain.seq.bin")
        with pytest.raises(ShardError, match="checksum of .*pretrain.seq.bin"):
            pretrain(shards, tmp_path / "run", resume=True, **kw)
