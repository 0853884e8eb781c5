"""``bioscan-kmer embed`` and :mod:`bioscan_kmer.eval.embed` (issue 14 item 5).

The written embeddings are :meth:`Encoder.embed` of the cleaned barcodes, row for row,
whatever the output format, the layer or the checkpoint format; every user mistake ends
in one line and exit code 2.
"""

import gzip

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

import bioscan_kmer
from bioscan_kmer import cli
from bioscan_kmer.errors import DataError, UsageError
from bioscan_kmer.eval.embed import EMBEDDING_COLUMN, embed_barcodes, embed_file, output_paths
from bioscan_kmer.eval.embeddings import embed_sequences
from bioscan_kmer.model import MaskedLM, get_preset, save_checkpoint, to_hf_bert_state_dict

MAX_LEN = 200


def _barcodes(n=36, seed=0):
    """Raw barcodes: lowercase, gaps, IUPAC codes and N ends, with duplicates
    (also ones that only become equal after cleaning)."""
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), rng.integers(60, 240))) for _ in range(n - 6)]
    seqs[3] = seqs[3][:20] + "-" * 5 + seqs[3][20:].lower()
    seqs[4] = "NN" + seqs[4][:50] + "R" + seqs[4][51:] + "NNN"
    return seqs + [seqs[0], seqs[1], seqs[0], seqs[5].lower(), "nn" + seqs[6] + "--", seqs[2]]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny masked-LM checkpoint, its encoder and tokenizer, and its tokenizer JSON."""
    root = tmp_path_factory.mktemp("model")
    tok = bioscan_kmer.KmerTokenizer(k=4, max_len=MAX_LEN, preset="bert")
    torch.manual_seed(0)
    mlm = MaskedLM(get_preset("tiny").with_tokenizer(tok)).eval()
    ckpt = save_checkpoint(root / "ckpt.pt", {"model": mlm.state_dict(), "config": mlm.config.to_dict(),
                                              "tokenizer": tok.config})
    tok.save(root / "tok.json")
    return {"ckpt": ckpt, "encoder": mlm.encoder, "tok": tok, "tok_json": root / "tok.json", "root": root}


@pytest.fixture(scope="module")
def table():
    seqs = _barcodes()
    return pd.DataFrame({"processid": [f"P{i:03d}" for i in range(len(seqs))], "dna_barcode": seqs,
                         "species": [f"Aus {'bcd'[i % 3]}" for i in range(len(seqs))]})


def reference(model, raw, layer=-1):
    """Encoder.embed of the cleaned barcodes, all rows, one batch: what embed must equal."""
    enc = model["tok"](bioscan_kmer.clean(raw), return_tensors="np")
    encoder = model["encoder"].cpu()
    with torch.no_grad():
        return encoder.embed(torch.as_tensor(enc["input_ids"]).long(),
                             torch.as_tensor(enc["attention_mask"]).long(), layer=layer).numpy()


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_npy(path):
    """The matrix and its ids file, read as docs/eval.md says."""
    ids = pd.read_csv(path.with_suffix(".ids.tsv"), sep="\t", dtype={"processid": str}, keep_default_na=False)
    return np.load(path), ids


@pytest.mark.parametrize("layer", [-1, 1, 0])
def test_both_formats_equal_encoder_embed_row_for_row(model, table, tmp_path, capsys, layer):
    csv = tmp_path / "meta.csv"
    table.to_csv(csv, index=False)
    ref = reference(model, table.dna_barcode.tolist(), layer)
    if layer == -1:  # the evaluation's features are the same numbers
        np.testing.assert_allclose(
            embed_sequences(model["encoder"], model["tok"], bioscan_kmer.clean(table.dna_barcode.tolist())),
            ref, atol=1e-5)
    code, out, err = run(capsys, "embed", csv, "--checkpoint", model["ckpt"], "-o", tmp_path / "e.npy",
                         "--layer", layer, "--batch-size", 7, "-q")
    assert code == 0, err
    assert f"embedded {len(table)} of {len(table)} records ({len(table) - 6} distinct barcodes)" in out
    matrix, ids = read_npy(tmp_path / "e.npy")
    assert matrix.dtype == np.float32 and matrix.shape == (len(table), 64)
    np.testing.assert_allclose(matrix, ref, atol=1e-5)
    assert ids.columns.tolist() == ["row", "processid"]
    assert ids["row"].tolist() == list(range(len(table))) and ids["processid"].tolist() == table.processid.tolist()

    code, out, err = run(capsys, "embed", csv, "--checkpoint", model["ckpt"], "-o", tmp_path / "e.parquet",
                         "--layer", layer, "-q")
    assert code == 0, err
    pt = pq.read_table(tmp_path / "e.parquet")
    assert pt.column_names == ["row", "processid", "dna_barcode", "species", EMBEDDING_COLUMN]
    assert str(pt.schema.field(EMBEDDING_COLUMN).type) == "fixed_size_list<element: float>[64]"
    back = pd.read_parquet(tmp_path / "e.parquet")  # pandas reads it back
    np.testing.assert_allclose(np.stack(back[EMBEDDING_COLUMN].to_numpy()), ref, atol=1e-5)
    assert back.processid.tolist() == table.processid.tolist() and back.species.tolist() == table.species.tolist()
    assert back.dna_barcode.tolist() == table.dna_barcode.tolist()  # the input's barcode, as read


def test_layers_differ_and_rows_of_equal_barcodes_are_equal(model, table):
    seqs = table.dna_barcode.tolist()
    last = embed_barcodes(seqs, (model["encoder"], model["tok"]))
    first = embed_barcodes(seqs, (model["encoder"], model["tok"]), layer=1)
    assert not np.allclose(last, first, atol=1e-3)
    np.testing.assert_array_equal(embed_barcodes(seqs, (model["encoder"], model["tok"]), layer=2), last)
    np.testing.assert_array_equal(embed_barcodes(seqs, (model["encoder"], model["tok"]), layer=-3),
                                  embed_barcodes(seqs, (model["encoder"], model["tok"]), layer=0))
    # Rows 30 and 32 repeat row 0; 33 and 34 equal rows 5 and 6 once cleaned.
    for a, b in ((30, 0), (32, 0), (31, 1), (33, 5), (34, 6), (35, 2)):
        np.testing.assert_array_equal(last[a], last[b])
    np.testing.assert_allclose(last, reference(model, seqs), atol=1e-5)
    # From the checkpoint file, with the tokenizer it stores.
    np.testing.assert_allclose(embed_barcodes(seqs, model["ckpt"]), last, atol=1e-6)


def test_fasta_with_bold_headers_keeps_row_order_and_ids(model, tmp_path, capsys):
    seqs = _barcodes(14, seed=1)
    pids = [f"ABC{i % 9}-21" for i in range(len(seqs))]  # ids repeat too
    text = "".join(f">{p}|Aus bus|COI-5P|BOLD:AAA000{i % 3}\n{s[:50]}\n{s[50:]}\n"
                   for i, (p, s) in enumerate(zip(pids, seqs)))
    fasta = tmp_path / "bold.fas.gz"
    fasta.write_bytes(gzip.compress(text.encode()))
    code, out, err = run(capsys, "embed", fasta, "--checkpoint", model["ckpt"], "-o", tmp_path / "f.npy", "-q")
    assert code == 0, err
    matrix, ids = read_npy(tmp_path / "f.npy")
    assert ids["processid"].tolist() == pids and ids["row"].tolist() == list(range(len(seqs)))
    np.testing.assert_allclose(matrix, reference(model, seqs), atol=1e-5)


def test_bold_tsv_gz_from_the_shipped_sample(model, tmp_path, capsys):
    from pathlib import Path

    sample = Path(__file__).parent / "data" / "bold_sample.tsv"
    lines = sample.read_text().splitlines(keepends=True)[:41]
    (tmp_path / "bold.tsv.gz").write_bytes(gzip.compress("".join(lines).encode()))
    code, out, err = run(capsys, "embed", tmp_path / "bold.tsv.gz", "--checkpoint", model["ckpt"],
                         "-o", tmp_path / "b.parquet", "-q")
    assert code == 0, err
    df = pd.read_csv(sample, sep="\t", nrows=40)
    df = df[df.marker_code == "COI-5P"]
    back = pd.read_parquet(tmp_path / "b.parquet")
    assert back.processid.tolist() == df.processid.tolist()
    np.testing.assert_allclose(np.stack(back[EMBEDDING_COLUMN].to_numpy()),
                               reference(model, df.sequence.tolist()), atol=1e-5)


def test_hugging_face_weights_give_the_checkpoints_embeddings(model, table, tmp_path, capsys):
    from safetensors.torch import save_file

    csv = tmp_path / "meta.csv"
    table.to_csv(csv, index=False)
    assert run(capsys, "embed", csv, "--checkpoint", model["ckpt"], "-o", tmp_path / "ours.npy", "-q")[0] == 0
    ours = np.load(tmp_path / "ours.npy")
    state = to_hf_bert_state_dict(model["encoder"])
    torch.save(state, tmp_path / "pytorch_model.bin")
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    for weights in ("pytorch_model.bin", "model.safetensors"):
        out = tmp_path / f"{weights}.npy"
        code, _, err = run(capsys, "embed", csv, "--checkpoint", tmp_path / weights, "--hf-preset", "tiny",
                           "--tokenizer", model["tok_json"], "-o", out, "-q")
        assert code == 0, err
        np.testing.assert_allclose(np.load(out), ours, atol=1e-5)
        assert read_npy(out)[1].equals(read_npy(tmp_path / "ours.npy")[1])


def test_skip_empty_says_which_rows_it_left_out(model, table, tmp_path, capsys):
    bad = table.copy()
    bad.loc[4, "dna_barcode"] = "--NN-n"  # nothing left after cleaning
    bad.loc[9, "dna_barcode"] = None  # missing (an empty CSV field)
    csv = tmp_path / "bad.csv"
    bad.to_csv(csv, index=False)
    code, out, err = run(capsys, "embed", csv, "--checkpoint", model["ckpt"], "-o", tmp_path / "e.npy", "-q")
    assert code == 2 and not (tmp_path / "e.npy").exists()
    assert err == ("bioscan-kmer embed: error: column 'dna_barcode', row 4 (processid 'P004'): the barcode is "
                   "empty after cleaning (2 such rows); use --skip-empty (skip_empty=True) to leave such rows out\n")
    code, out, err = run(capsys, "embed", csv, "--checkpoint", model["ckpt"], "-o", tmp_path / "e.npy",
                         "--skip-empty", "-q")
    assert code == 0, err
    assert ("skipped 2 record(s) without a barcode: row 4 (P004: empty after cleaning), "
            "row 9 (P009: missing)") in out
    matrix, ids = read_npy(tmp_path / "e.npy")
    keep = [i for i in range(len(table)) if i not in (4, 9)]
    assert ids["row"].tolist() == keep and ids["processid"].tolist() == table.processid[keep].tolist()
    np.testing.assert_allclose(matrix, reference(model, table.dna_barcode[keep].tolist()), atol=1e-5)
    result = embed_file(csv, model["ckpt"], tmp_path / "e.parquet", skip_empty=True)
    assert result["skipped"] == [{"row": 4, "id": "P004", "reason": "empty after cleaning"},
                                 {"row": 9, "id": "P009", "reason": "missing"}]
    assert pd.read_parquet(tmp_path / "e.parquet")["row"].tolist() == keep


def _one_line_error(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert err.startswith("bioscan-kmer embed: error: ") and err.count("\n") == 1, err
    return err


def test_bad_inputs_end_in_one_line_and_exit_2(model, table, tmp_path, capsys):
    csv = tmp_path / "meta.csv"
    table.to_csv(csv, index=False)
    ck = model["ckpt"]
    # The output type is refused before anything else: even the missing input is not looked at.
    err = _one_line_error(capsys, "embed", tmp_path / "nothing.csv", "--checkpoint", ck, "-o", tmp_path / "e.csv")
    assert "unknown output type (.csv); use .npy" in err
    err = _one_line_error(capsys, "embed", csv, "--checkpoint", ck, "-o", tmp_path / "e.npy", "--column", "nuc")
    assert "column 'nuc'" in err and "has no such column; it has processid, dna_barcode, species" in err
    err = _one_line_error(capsys, "embed", csv, "--checkpoint", ck, "-o", tmp_path / "e.npy", "--id-column", "id")
    assert "id_column 'id'" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    err = _one_line_error(capsys, "embed", csv, "--checkpoint", tmp_path / "junk.pt", "-o", tmp_path / "e.npy")
    assert "junk.pt is not a checkpoint" in err
    err = _one_line_error(capsys, "embed", csv, "--checkpoint", tmp_path / "none.pt", "-o", tmp_path / "e.npy")
    assert "none.pt" in err
    for layer in (3, -4):
        err = _one_line_error(capsys, "embed", csv, "--checkpoint", ck, "-o", tmp_path / "e.npy", "--layer", layer)
        assert f"layer {layer}: this encoder has 2 layers, so the layer must be from -3 to 2" in err
    err = _one_line_error(capsys, "embed", csv, "--checkpoint", ck, "-o", tmp_path / "e.npy", "--device", "gpu")
    assert "device 'gpu'" in err
    err = _one_line_error(capsys, "embed", csv, "--checkpoint", ck, "-o", tmp_path / "e.npy", "--hf-preset", "x",
                          "--tokenizer", tmp_path / "meta.csv")
    assert "not a tokenizer JSON file" in err
    (tmp_path / "odd.csv").write_text("processid,dna_barcode\nP1,ACGTXACGT\n")
    err = _one_line_error(capsys, "embed", tmp_path / "odd.csv", "--checkpoint", ck, "-o", tmp_path / "e.npy")
    assert "column 'dna_barcode', row 0" in err and "'X'" in err
    (tmp_path / "out_dir.npy").mkdir()
    err = _one_line_error(capsys, "embed", csv, "--checkpoint", ck, "-o", tmp_path / "out_dir.npy")
    assert "is a directory" in err
    code, _, err = run(capsys, "embed", csv, "--checkpoint", ck, "-o", tmp_path / "e.npy", "--batch-size", 0)
    assert code == 2 and "--batch-size: must be an integer of at least 1, got 0" in err
    assert not (tmp_path / "e.npy").exists() and not (tmp_path / "e.ids.tsv").exists()


def test_library_errors():
    with pytest.raises(UsageError, match=r"unknown output type \(\.gz\)"):
        output_paths("e.npy.gz")
    assert output_paths("a/e.v2.NPY")[2].name == "e.v2.ids.tsv"
    tok = bioscan_kmer.KmerTokenizer(k=4, max_len=MAX_LEN, preset="bert")
    enc = MaskedLM(get_preset("tiny").with_tokenizer(tok)).encoder.eval()
    with pytest.raises(DataError, match=r"^barcode 1: empty after cleaning$"):
        embed_barcodes(["ACGTACGT", "-N-"], (enc, tok))
    with pytest.raises(DataError, match=r"^barcode 0: missing$"):
        embed_barcodes([None, "ACGT"], (enc, tok))
    with pytest.raises(TypeError, match="not one string"):
        embed_barcodes("ACGTACGT", (enc, tok))
    with pytest.raises(UsageError, match="layer must be"):
        embed_barcodes(["ACGT"], (enc, tok), layer=5)
    with pytest.raises(Exception, match="vocabulary of the tokenizer does not match"):
        embed_barcodes(["ACGT"], (enc, bioscan_kmer.KmerTokenizer(k=5, preset="bert")))
    assert embed_barcodes([], (enc, tok)).shape == (0, 64)


def test_two_runs_write_identical_files(model, table, tmp_path, capsys):
    csv = tmp_path / "meta.csv"
    table.to_csv(csv, index=False)
    for name in ("a", "b"):
        for ext in ("npy", "parquet"):
            assert run(capsys, "embed", csv, "--checkpoint", model["ckpt"], "-o", tmp_path / f"{name}.{ext}",
                       "-q")[0] == 0
    for ext in ("npy", "ids.tsv", "parquet"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes(), ext
