"""Hugging Face BERT weights load into our encoder and export back exactly.

``transformers`` is a test dependency: it is the reference implementation here, so it is
imported plainly (a missing install is a broken test environment, not a skip).
"""

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertForTokenClassification, BertModel

from bioscan_kmer.model import (PRESETS, Encoder, MaskedLM, get_preset, load_hf_bert_state_dict,
                                to_hf_bert_config, to_hf_bert_state_dict)
from model_synthetic import torch_threads


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # One thread: tiny models gain nothing from more, and the count is process-wide.
    with torch_threads(1):
        yield

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


def test_export_of_our_model_loads_into_transformers():
    torch.manual_seed(3)
    config = get_preset("bioscan5m-8-4-4", **SMALL).with_tokenizer(_tok3())
    ours = MaskedLM(config).eval()
    hf = BertForTokenClassification(BertConfig(**to_hf_bert_config(config))).eval()
    missing, unexpected = hf.load_state_dict(to_hf_bert_state_dict(ours), strict=True)
    assert not missing and not unexpected
    ids, mask = inputs(vocab_size=config.vocab_size)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask)[0], hf(input_ids=ids, attention_mask=mask).logits,
                                   rtol=1e-5, atol=2e-5)


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
