"""Masked-mean features: padding never changes an embedding; loading checkpoints."""

import numpy as np
import pytest
import torch

from bioscan_kmer.model.checkpoint import CheckpointError

import bioscan_kmer
from bioscan_kmer.eval.embeddings import embed_sequences, embed_tokens, load_encoder, masked_mean
from bioscan_kmer.eval.finetune import PooledClassifier, fine_tune
from bioscan_kmer.eval.labels import label_codes
from eval_toy import toy_table
from bioscan_kmer.model import Encoder, MaskedLM, get_preset, save_checkpoint, to_hf_bert_state_dict


def _tiny(preset="bert", seed=0):
    tok = bioscan_kmer.KmerTokenizer(k=4, max_len=120, preset=preset)
    torch.manual_seed(seed)
    enc = Encoder(get_preset("tiny").with_tokenizer(tok)).eval()
    return enc, tok


def test_masked_mean_ignores_padded_positions():
    rng = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 6, 4, generator=rng)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]])
    out = masked_mean(hidden, mask)
    torch.testing.assert_close(out[0], hidden[0, :3].mean(0))
    torch.testing.assert_close(out[1], hidden[1].mean(0))
    assert torch.all(out[2] == 0)  # no real token: zero, not NaN
    changed = hidden.clone()
    changed[0, 3:] = 1e6
    torch.testing.assert_close(masked_mean(changed, mask), out)


@pytest.mark.parametrize("preset", ["bert", "barcodebert"])
def test_changing_padded_ids_does_not_change_the_embedding(preset):
    enc, tok = _tiny(preset)
    enc_ = tok(["ACGTACGTTTGA" * 3, "ACGT" * 20], return_tensors="np")
    ids, mask = enc_["input_ids"].astype(np.int64), enc_["attention_mask"].astype(np.int64)
    assert (mask == 0).any()
    base = embed_tokens(enc, ids, mask)
    noisy = ids.copy()
    rng = np.random.default_rng(0)
    pad = mask == 0
    noisy[pad] = rng.integers(tok.first_kmer_id, tok.vocab_size, pad.sum())  # real k-mers in padding
    np.testing.assert_allclose(embed_tokens(enc, noisy, mask), base, atol=1e-5)
    # Without the mask the padding would count: the masked embedding differs from the plain mean.
    plain = embed_tokens(enc, noisy, np.ones_like(mask))
    assert not np.allclose(plain[0], base[0], atol=1e-3)
    # Same as the model's own masked mean (embed_tokens may have moved it to the GPU).
    enc = enc.cpu()
    with torch.no_grad():
        ref = enc.embed(torch.as_tensor(ids), torch.as_tensor(mask)).numpy()
    np.testing.assert_allclose(base, ref, atol=1e-5)


def test_embed_sequences_is_batch_size_independent():
    enc, tok = _tiny()
    seqs = toy_table(n_orders=1, records_per_species=4, seed=3).dna_barcode.tolist()
    a = embed_sequences(enc, tok, seqs, batch_size=3)
    b = embed_sequences(enc, tok, seqs, batch_size=64)
    assert a.shape == (len(seqs), enc.config.hidden_size)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_load_encoder_from_our_checkpoint_and_hf_state_dict(tmp_path):
    tok = bioscan_kmer.KmerTokenizer(k=4, max_len=120, preset="bert")
    torch.manual_seed(1)
    mlm = MaskedLM(get_preset("tiny").with_tokenizer(tok)).eval()
    path = save_checkpoint(tmp_path / "ckpt.pt", {"model": mlm.state_dict(), "config": mlm.config.to_dict(),
                                                  "tokenizer": tok.config})
    seqs = ["ACGTTGCA" * 10, "TTTTACGA" * 7]
    ref = embed_sequences(mlm.encoder, tok, seqs)
    enc, tok2 = load_encoder(path)
    assert tok2.config == tok.config
    np.testing.assert_allclose(embed_sequences(enc, tok2, seqs), ref, atol=1e-5)
    # A Hugging Face BertModel state dict of the same encoder.
    torch.save(to_hf_bert_state_dict(mlm.encoder), tmp_path / "pytorch_model.bin")
    enc3, tok3 = load_encoder(tmp_path / "pytorch_model.bin", tokenizer=tok,
                              config=mlm.config.replace(head="classifier"))
    np.testing.assert_allclose(embed_sequences(enc3, tok3, seqs), ref, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    # One line that says what the file is not, as a user error (the CLI's exit 2).
    with pytest.raises(CheckpointError, match=r"junk.pt is not a checkpoint \(not a file written by torch.save\)$"):
        load_encoder(tmp_path / "junk.pt")
    (tmp_path / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        load_encoder(tmp_path / "loss.png")


def test_fine_tuning_selects_the_best_validation_epoch():
    df = toy_table(n_orders=2, records_per_species=10, seed=4)
    enc, tok = _tiny()
    y = label_codes(df, ("species",))["species"]
    s = df.split.to_numpy()

    def inputs(split):
        e = tok(df.dna_barcode[s == split].tolist(), return_tensors="np")
        return e["input_ids"].astype(np.int64), e["attention_mask"].astype(np.int64)

    res = fine_tune(lambda c: PooledClassifier(enc, enc.config.hidden_size, c),
                    inputs("train"), y[s == "train"], inputs("val"), y[s == "val"],
                    inputs("test"), y[s == "test"], epochs=4, lr=3e-3, batch_size=16, seed=0)
    assert res["best_epoch"] == int(np.argmax(res["val_curve"])) + 1
    assert res["accuracy_micro"] > 3 / res["n_classes"]
    assert len(res["train_loss"]) == 4 and res["train_loss"][-1] < res["train_loss"][0]
    # The returned model is the selected one: its test predictions give the reported score.
    model = res["model"].cpu()  # trained on the GPU when there is one
    with torch.no_grad():
        ids, mask = inputs("test")
        pred = res["classes"][model(torch.as_tensor(ids), torch.as_tensor(mask)).argmax(1).numpy()]
    assert np.mean(pred == y[s == "test"]) == pytest.approx(res["accuracy_micro"])


def test_layers_are_pooled_like_encoder_embed():
    # Any hidden state can be the feature; one forward pass gives several; each equals the
    # encoder's own masked mean of that layer.
    tok = bioscan_kmer.KmerTokenizer(k=4, max_len=120, preset="bert")
    torch.manual_seed(2)
    enc = MaskedLM(get_preset("tiny").with_tokenizer(tok)).encoder.eval()
    seqs = ["ACGTTGCA" * 10, "TTTTACGA" * 7, "GATTACA" * 3]
    e = tok(seqs, return_tensors="pt")
    layers = embed_sequences(enc, tok, seqs, layer=[0, 1, -1])
    for j in (0, 1, -1):
        with torch.no_grad():
            want = enc.embed(e["input_ids"].long(), e["attention_mask"], layer=j).numpy()
        np.testing.assert_allclose(layers[j], want, atol=1e-5)
        np.testing.assert_allclose(embed_sequences(enc, tok, seqs, layer=j), want, atol=1e-5)
    assert not np.allclose(layers[0], layers[-1])
    with pytest.raises(ValueError, match="out of range"):
        embed_sequences(enc, tok, seqs, layer=[7])
