"""Hugging Face BERT weights load into our encoder and export back exactly.

``transformers`` is the reference implementation here; it is in the ``test`` extra, and the
module skips only where it is absent. Both BarcodeBERT generations are covered: the
BIOSCAN-5M ``BertForTokenClassification`` (4^k + 2 rows) and the first paper's
``BertForMaskedLM`` (4^k + 3 rows, masked with id 1), as state dicts, ``.bin`` and
``.safetensors`` files, training checkpoints and model directories.
"""

import argparse

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import BertConfig, BertForMaskedLM, BertForTokenClassification, BertModel  # noqa: E402

from bioscan_kmer.model import (PRESETS, CheckpointError, Encoder, MaskedLM, get_preset,  # noqa: E402
                                load_hf_bert_state_dict, to_hf_bert_config, to_hf_bert_state_dict)
from bioscan_kmer.model.hf import load_pretrained, read_hf_checkpoint  # noqa: E402
from model_synthetic import one_torch_thread  # noqa: E402, F401 (autouse fixture)


SMALL = dict(hidden_size=48, num_layers=3, num_heads=4, intermediate_size=96, max_position_embeddings=64)


def hf_config(vocab_size=258, num_labels=256, **kw):
    kw = {**dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=4, intermediate_size=96,
                 max_position_embeddings=64), **kw}
    return BertConfig(vocab_size=vocab_size, num_labels=num_labels, **kw)


def inputs(vocab_size=258, B=4, T=33, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 20:] = 0
    mask[2, 5:] = 0
    ids[mask == 0] = 1  # barcodebert pads with [UNK]
    return ids, mask


def assert_same_state_dict(ours, theirs):
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        assert ours[key].shape == theirs[key].shape, key
        assert torch.equal(ours[key], theirs[key]), key


def test_bert_model_hidden_states_match_and_round_trip():
    torch.manual_seed(0)
    hf = BertModel(hf_config()).eval()
    ours = load_hf_bert_state_dict(hf.state_dict(), num_heads=4)
    assert isinstance(ours, Encoder) and ours.config.pooler
    ids, mask = inputs()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        got = ours(ids, mask, output_hidden_states=True)
    assert len(got) == len(ref.hidden_states)
    for a, b in zip(got, ref.hidden_states):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(ours.pooled(got[-1]), ref.pooler_output, rtol=1e-5, atol=2e-5)
    assert_same_state_dict(to_hf_bert_state_dict(ours), hf.state_dict())


def test_token_classification_is_barcodebert_layout():
    """BarcodeBERT publishes BertForTokenClassification with 4^k labels: our classifier head."""
    torch.manual_seed(1)
    hf = BertForTokenClassification(hf_config(hidden_dropout_prob=0.1)).eval()
    config = get_preset("barcodebert-4-12-12", **{k: v for k, v in SMALL.items()})
    ours = load_hf_bert_state_dict(hf.state_dict(), config)
    assert isinstance(ours, MaskedLM) and ours.config.head == "classifier"
    ids, mask = inputs()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        logits, _ = ours(ids, mask)
    torch.testing.assert_close(logits, ref, rtol=1e-5, atol=2e-5)
    assert_same_state_dict(to_hf_bert_state_dict(ours), hf.state_dict())
    # Embeddings of the loaded encoder pool over real tokens only.
    with torch.no_grad():
        hidden = hf.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        emb = ours.encoder.embed(ids, mask)
    torch.testing.assert_close(emb[2], hidden[2, :5].mean(0), rtol=1e-5, atol=2e-5)


def test_masked_lm_with_tied_decoder():
    torch.manual_seed(2)
    hf = BertForMaskedLM(hf_config(vocab_size=261, pad_token_id=0)).eval()
    sd = hf.state_dict()
    ours = load_hf_bert_state_dict(sd, hf_config=hf.config.to_dict())
    assert ours.config.head == "lm" and ours.config.tokenizer_preset == "bert"
    assert ours.config.pad_token_id == 0 and ours.config.first_kmer_id == 5
    ids, mask = inputs(vocab_size=261)
    ids[mask == 0] = 0
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
        logits, _ = ours(ids, mask)
    torch.testing.assert_close(logits, ref[..., 5:], rtol=1e-5, atol=5e-5)
    assert_same_state_dict(to_hf_bert_state_dict(ours), sd)


@pytest.mark.parametrize("head, cls, first", [("classifier", BertForTokenClassification, 0),
                                               ("lm", BertForMaskedLM, 2)])
def test_export_of_our_model_loads_into_transformers(head, cls, first):
    """A classifier head loads into BertForTokenClassification, an LM head into the default
    BertForMaskedLM (whose logits cover the whole vocabulary: ours are its k-mer rows)."""
    torch.manual_seed(3)
    config = get_preset("bioscan5m-8-4-4", **SMALL, head=head).with_tokenizer(_tok3())
    ours = MaskedLM(config).eval()
    hf = cls(BertConfig(**to_hf_bert_config(config))).eval()
    missing, unexpected = hf.load_state_dict(to_hf_bert_state_dict(ours), strict=True)
    assert not missing and not unexpected
    ids, mask = inputs(vocab_size=config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask)[0], hf(input_ids=ids, attention_mask=mask).logits[..., first:],
                                   rtol=1e-5, atol=5e-5)


def _tok3():
    from bioscan_kmer import KmerTokenizer

    return KmerTokenizer(k=3)


def test_ddp_prefix_and_old_position_ids_are_accepted():
    torch.manual_seed(4)
    hf = BertModel(hf_config(), add_pooling_layer=False).eval()
    sd = {f"module.{k}": v for k, v in hf.state_dict().items()}
    sd["module.embeddings.position_ids"] = torch.arange(64)[None]
    ours = load_hf_bert_state_dict(sd, num_heads=4)
    assert not ours.config.pooler
    ids, mask = inputs()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask), hf(input_ids=ids, attention_mask=mask).last_hidden_state,
                                   rtol=1e-5, atol=2e-5)


def test_bad_state_dicts_are_refused_with_reasons():
    torch.manual_seed(5)
    sd = BertModel(hf_config()).state_dict()
    with pytest.raises(ValueError, match="attention heads"):
        load_hf_bert_state_dict(sd)
    with pytest.raises(ValueError, match="unexpected keys.*extra.weight"):
        load_hf_bert_state_dict({**sd, "extra.weight": torch.zeros(1)}, num_heads=4)
    broken = dict(sd)
    del broken["encoder.layer.1.attention.self.key.weight"]
    with pytest.raises(ValueError, match="lacks encoder.layer.1.attention.self.key.weight"):
        load_hf_bert_state_dict(broken, num_heads=4)
    with pytest.raises(ValueError, match="vocab_size 300"):
        load_hf_bert_state_dict(BertModel(hf_config(vocab_size=300)).state_dict(), num_heads=4)
    wrong = get_preset("barcodebert-4-12-12", **{**SMALL, "intermediate_size": 128})
    with pytest.raises(ValueError, match="shape"):
        load_hf_bert_state_dict(sd, wrong)
    mlm = BertForMaskedLM(hf_config()).state_dict()
    mlm["cls.predictions.decoder.weight"] = mlm["cls.predictions.decoder.weight"] + 1
    with pytest.raises(ValueError, match="not tied"):
        load_hf_bert_state_dict(mlm, num_heads=4)
    with pytest.raises(ValueError, match="type_vocab_size=0"):
        to_hf_bert_config(PRESETS["tiny"])


# --- The first BarcodeBERT paper: BertForMaskedLM over 4^k + 3 rows -----------------------

K = 3  # 4^3 + 3 = 67 rows: small, with the first paper's layout


def _randomize(model, seed):
    # Trained checkpoints have no zero biases or unit LayerNorms; random values make every
    # tensor count in the comparisons. Row 0 stays zero, as BertConfig's padding_idx keeps it.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05 + (1.0 if "LayerNorm.weight" in name else 0.0))
        model.bert.embeddings.word_embeddings.weight[0].zero_()
    return model.eval()


def first_paper_model(seed=6):
    config = hf_config(vocab_size=4**K + 3)
    return _randomize(BertForMaskedLM(config), seed)


def first_paper_ids(ours):
    """Their ids for our ids: k-mers and [UNK] one higher, our [MASK] (0) is their 1."""
    return torch.where(ours == 0, torch.ones_like(ours), ours + 1)


def test_first_paper_checkpoint_loads_with_the_same_predictions():
    hf = first_paper_model()
    # As the first paper saved it: DDP's prefix, and the old position_ids buffer.
    sd = {f"module.{k}": v for k, v in hf.state_dict().items()}
    sd["module.bert.embeddings.position_ids"] = torch.arange(64)[None]
    ours = load_hf_bert_state_dict(sd, num_heads=4)
    cfg = ours.config
    assert isinstance(ours, MaskedLM) and cfg.head == "lm"
    # Our barcodebert layout: [MASK]=0, [UNK]=1, k-mers from 2.
    assert (cfg.vocab_size, cfg.k, cfg.tokenizer_preset, cfg.first_kmer_id) == (4**K + 2, K, "barcodebert", 2)
    ids, mask = inputs(vocab_size=cfg.vocab_size)
    ids[1, :6] = 0  # some [MASK]s
    with torch.no_grad():
        ref = hf(input_ids=first_paper_ids(ids), attention_mask=mask, output_hidden_states=True)
        hidden = ours.encoder(ids, mask, output_hidden_states=True)
        logits, _ = ours(ids, mask)
    for a, b in zip(hidden, ref.hidden_states):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(logits, ref.logits[..., 3:], rtol=1e-5, atol=5e-5)
    # Not vacuous: reading their ids as ours (no shift) gives other predictions.
    with torch.no_grad():
        unshifted = hf(input_ids=ids, attention_mask=mask).logits[..., 3:]
    assert not torch.allclose(unshifted, logits, atol=1e-3)


def test_first_paper_round_trip_through_transformers():
    hf = first_paper_model(seed=7)
    ours = load_hf_bert_state_dict(hf.state_dict(), hf_config=hf.config.to_dict())
    exported = to_hf_bert_state_dict(ours, layout="barcodebert-v1")
    back = BertForMaskedLM(BertConfig(**to_hf_bert_config(ours.config, layout="barcodebert-v1"))).eval()
    missing, unexpected = back.load_state_dict(exported, strict=True)
    assert not missing and not unexpected
    original = hf.state_dict()
    bias = "cls.predictions.bias"
    for key, value in original.items():
        if key in (bias, "cls.predictions.decoder.bias"):
            # Row 0 (<MASK>, never used by the first paper's training) is not kept.
            assert torch.equal(exported[key][1:], value[1:]) and exported[key][0] == 0, key
        else:
            assert torch.equal(exported[key], value), key
    ids, mask = inputs(vocab_size=ours.config.vocab_size)
    theirs = first_paper_ids(ids)
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=theirs, attention_mask=mask).logits[..., 1:],
                                   hf(input_ids=theirs, attention_mask=mask).logits[..., 1:])


def test_first_paper_layout_with_an_explicit_preset():
    # BarcodeBERT 4-12-12's vocabulary (258 rows) with the first paper's 259-row weights.
    torch.manual_seed(8)
    hf = _randomize(BertForMaskedLM(hf_config(vocab_size=4**4 + 3)), 8)
    config = get_preset("barcodebert-4-12-12", **SMALL)
    ours = load_hf_bert_state_dict(hf.state_dict(), config)
    assert ours.config.vocab_size == 258 and ours.config.head == "lm"
    ids, mask = inputs(vocab_size=258)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask)[0],
                                   hf(input_ids=first_paper_ids(ids), attention_mask=mask).logits[..., 3:],
                                   rtol=1e-5, atol=5e-5)


# --- Files: .bin, .safetensors, training checkpoints, model directories ------------------

def bioscan5m_model(seed=9):
    return _randomize_tc(BertForTokenClassification(hf_config(vocab_size=4**K + 2, num_labels=4**K)), seed)


def _randomize_tc(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05 + (1.0 if "LayerNorm.weight" in name else 0.0))
    return model.eval()


def _same_logits(ours, hf, vocab_size, shift=False):
    ids, mask = inputs(vocab_size=vocab_size)
    with torch.no_grad():
        ref = hf(input_ids=first_paper_ids(ids) if shift else ids, attention_mask=mask).logits
        got, _ = ours(ids, mask)
    torch.testing.assert_close(got, ref[..., 3:] if shift else ref, rtol=1e-5, atol=5e-5)


def test_bioscan5m_files_load_in_every_format(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    hf = bioscan5m_model()
    vocab = 4**K + 2
    # A Hugging Face model directory: config.json gives the heads.
    hf.save_pretrained(tmp_path / "dir")
    model, tokenizer = load_pretrained(tmp_path / "dir")
    assert tokenizer is None and model.config.head == "classifier"
    _same_logits(model, hf, vocab)
    # A bare .safetensors file and a .bin state dict need the heads from elsewhere.
    safetensors.save_file(hf.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save(hf.state_dict(), tmp_path / "w.bin")
    for name in ("w.safetensors", "w.bin"):
        with pytest.raises(ValueError, match="attention heads"):
            load_pretrained(tmp_path / name)
        model, _ = load_pretrained(tmp_path / name, num_heads=4)
        _same_logits(model, hf, vocab)
    # BarcodeBERT's own training checkpoint (barcodebert/io.py, safe_save_model): the DDP
    # state dict under "model", the BertConfig dict, the command line as a Namespace.
    torch.save({"model": {f"module.{k}": v for k, v in hf.state_dict().items()},
                "bert_config": hf.config.to_dict(), "config": argparse.Namespace(k_mer=K, n_layers=3),
                "epoch": 35, "total_step": 1000}, tmp_path / "checkpoint_pretraining.pt")
    model, _ = load_pretrained(tmp_path / "checkpoint_pretraining.pt")
    _same_logits(model, hf, vocab)
    sd, config = read_hf_checkpoint(tmp_path / "checkpoint_pretraining.pt")
    assert config["num_attention_heads"] == 4 and "bert.embeddings.word_embeddings.weight" in {
        k.removeprefix("module.") for k in sd}


def test_first_paper_files_load(tmp_path):
    pytest.importorskip("safetensors")
    hf = first_paper_model(seed=10)
    torch.save({f"module.{k}": v for k, v in hf.state_dict().items()}, tmp_path / "4_model_35.pth")
    model, _ = load_pretrained(tmp_path / "4_model_35.pth", num_heads=4)
    _same_logits(model, hf, 4**K + 2, shift=True)
    hf.save_pretrained(tmp_path / "dir")  # writes safetensors without the tied decoder
    model, _ = load_pretrained(tmp_path / "dir")
    _same_logits(model, hf, 4**K + 2, shift=True)


def test_sharded_directory_and_bad_files(tmp_path):
    hf = bioscan5m_model(seed=11)
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    model, _ = load_pretrained(tmp_path / "sharded")
    _same_logits(model, hf, 4**K + 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds none of model.safetensors, pytorch_model.bin"):
        load_pretrained(tmp_path / "empty")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable .safetensors file"):
        load_pretrained(tmp_path / "bad.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.bin")
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        load_pretrained(tmp_path / "list.bin")


def test_hf_config_asking_for_more_than_the_weights_is_refused_before_allocating():
    # An explicit config of 200M rows (51 GB) against small weights: the check runs on
    # the meta device and names the key, as a CheckpointError, never an allocation.
    sd = bioscan5m_model(seed=12).state_dict()
    config = get_preset("barcodebert-4-12-12", **SMALL).replace(vocab_size=200_000_000)
    with pytest.raises(CheckpointError, match=r"bert.embeddings.word_embeddings.weight has shape \(66, 48\), "
                                              r"the configuration needs \(200000000, 48\)"):
        load_hf_bert_state_dict(sd, config)


# --- Export into the default transformers classes ------------------------------------------

def test_encoder_export_loads_into_the_default_bert_model():
    torch.manual_seed(13)
    config = get_preset("bioscan5m-8-4-4", **SMALL).with_tokenizer(_tok3())
    ours = MaskedLM(config).eval()
    hf = BertModel(BertConfig(**to_hf_bert_config(config))).eval()  # add_pooling_layer=True
    missing, unexpected = hf.load_state_dict(to_hf_bert_state_dict(ours.encoder), strict=True)
    assert not missing and not unexpected
    ids, mask = inputs(vocab_size=config.vocab_size)
    with torch.no_grad():
        out = hf(input_ids=ids, attention_mask=mask)
        hidden = ours.encoder(ids, mask)
    torch.testing.assert_close(out.last_hidden_state, hidden, rtol=1e-5, atol=2e-5)
    # The identity pooler: tanh of the first token's hidden state.
    torch.testing.assert_close(out.pooler_output, torch.tanh(hidden[:, 0]), rtol=1e-5, atol=2e-5)
    bare = BertModel(BertConfig(**to_hf_bert_config(config)), add_pooling_layer=False)
    bare.load_state_dict(to_hf_bert_state_dict(ours.encoder, pooler=False), strict=True)


def test_first_paper_layout_needs_the_barcodebert_vocabulary():
    with pytest.raises(ValueError, match="barcodebert vocabulary without N"):
        to_hf_bert_state_dict(MaskedLM(get_preset("tiny")), layout="barcodebert-v1")
