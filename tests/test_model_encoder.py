"""The encoder: shapes, padding, pooling, presets, MLM loss, MFU arithmetic."""

import math

import pytest
import torch
import torch.nn.functional as F

from bioscan_kmer import KmerTokenizer
from bioscan_kmer.model import (IGNORE_INDEX, PRESETS, Encoder, EncoderConfig, MaskedLM, estimate_mfu,
                                flops_per_token, get_preset)
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)


def small_config(**kw):
    base = dict(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, dropout=0.0,
                attention_dropout=0.0)
    base.update(kw)
    return get_preset("tiny", **base)


def random_batch(config, B=3, T=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(config.first_kmer_id, config.vocab_size, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 7:] = 0
    mask[1, 10:] = 0
    ids[mask == 0] = config.pad_token_id
    return ids, mask


def test_forward_shapes_and_hidden_states():
    cfg = small_config()
    enc = Encoder(cfg).eval()
    ids, mask = random_batch(cfg)
    out = enc(ids, mask)
    assert out.shape == (3, 12, 32)
    states = enc(ids, mask, output_hidden_states=True)
    assert len(states) == cfg.num_layers + 1
    assert torch.equal(states[-1], out)
    logits, loss = MaskedLM(cfg).eval()(ids, mask)
    assert logits.shape == (3, 12, cfg.num_kmers) and loss is None


def test_padding_never_changes_real_positions():
    """Keys at padded positions are masked out: their content must not matter."""
    cfg = small_config()
    enc = Encoder(cfg).eval()
    ids, mask = random_batch(cfg)
    other = ids.clone()
    other[mask == 0] = cfg.first_kmer_id + 17  # different junk under the padding
    a, b = enc(ids, mask), enc(other, mask)
    real = mask.bool()
    torch.testing.assert_close(a[real], b[real], rtol=0, atol=1e-6)
    # Without the mask the junk does leak in: the test above is not vacuous.
    assert not torch.allclose(enc(ids)[real], enc(other)[real], atol=1e-4)


def test_embed_is_masked_mean_and_ignores_extra_padding():
    cfg = small_config()
    enc = Encoder(cfg).eval()
    ids, mask = random_batch(cfg)
    with torch.no_grad():
        hidden = enc(ids, mask)
        emb = enc.embed(ids, mask)
    for i in range(ids.shape[0]):
        n = int(mask[i].sum())
        torch.testing.assert_close(emb[i], hidden[i, :n].mean(0))
    # Appending more padding changes neither the real hidden states nor the embedding.
    ids2 = torch.cat([ids, torch.full((3, 5), cfg.pad_token_id)], dim=1)
    mask2 = torch.cat([mask, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(enc.embed(ids2, mask2), emb, rtol=0, atol=1e-5)
    # A layer other than the last can be pooled.
    with torch.no_grad():
        e0 = enc.embed(ids, mask, layer=0)
    assert e0.shape == (3, 32) and not torch.allclose(e0, emb)


def test_row_without_real_tokens_is_finite_and_pools_to_zero():
    cfg = small_config()
    enc = Encoder(cfg).eval()
    ids, mask = random_batch(cfg)
    mask[2] = 0
    with torch.no_grad():
        out = enc(ids, mask)
        emb = enc.embed(ids, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(emb[2], torch.zeros(32))


def test_padding_row_is_zero_and_gets_no_gradient():
    cfg = small_config()
    assert cfg.pad_token_id is not None and cfg.pad_token_id != cfg.unk_token_id
    model = MaskedLM(cfg)
    table = model.encoder.embeddings.tokens.weight
    assert torch.equal(table[cfg.pad_token_id], torch.zeros(cfg.hidden_size))
    ids, mask = random_batch(cfg)
    labels = torch.where(mask.bool(), ids - cfg.first_kmer_id, IGNORE_INDEX)
    _, loss = model(ids, mask, labels)
    loss.backward()
    assert torch.equal(table.grad[cfg.pad_token_id], torch.zeros(cfg.hidden_size))
    assert table.grad[ids[0, 0]].abs().sum() > 0


def test_mlm_loss_matches_manual_cross_entropy():
    cfg = small_config()
    model = MaskedLM(cfg).eval()
    ids, mask = random_batch(cfg)
    labels = torch.where(mask.bool(), ids - cfg.first_kmer_id, IGNORE_INDEX)
    labels[0, :3] = IGNORE_INDEX
    logits, loss = model(ids, mask, labels)
    keep = labels != IGNORE_INDEX
    manual = F.cross_entropy(logits[keep], labels[keep])
    torch.testing.assert_close(loss, manual)
    _, loss_sum = model(ids, mask, labels, reduction="sum")
    torch.testing.assert_close(loss_sum, manual * keep.sum())


def test_lm_head_scores_kmer_rows_of_tied_decoder():
    cfg = small_config(head="lm")
    model = MaskedLM(cfg).eval()
    ids, mask = random_batch(cfg)
    logits, _ = model(ids, mask)
    assert logits.shape[-1] == cfg.num_kmers
    # Tied: the decoder is the token embedding; changing a k-mer row changes its logit.
    with torch.no_grad():
        before = logits[..., 5].clone()
        model.encoder.embeddings.tokens.weight[cfg.first_kmer_id + 5] += 1.0
        after, _ = model(ids, mask)
    assert not torch.allclose(before, after[..., 5])


def test_presets_have_published_sizes():
    with torch.device("meta"):
        n_small = sum(p.numel() for p in MaskedLM(PRESETS["barcodebert-4-12-12"]).parameters())
        n_5m = sum(p.numel() for p in MaskedLM(PRESETS["bioscan5m-8-4-4"]).parameters())
    assert 85e6 < n_small < 87e6
    assert 128e6 < n_5m < 131e6  # "~129M, mostly the 65,538-row embedding and the output head"
    with torch.device("meta"):
        n_cpu = sum(p.numel() for p in MaskedLM(PRESETS["small"]).parameters())
    assert 3.3e6 < n_cpu < 3.5e6  # the CPU benchmark's "few million parameters"
    assert PRESETS["bioscan5m-8-4-4"].vocab_size == 65538
    PRESETS["barcodebert-4-12-12"].check_tokenizer(KmerTokenizer(k=4))
    PRESETS["bioscan5m-8-4-4"].check_tokenizer(KmerTokenizer(k=8))
    with pytest.raises(ValueError, match="k=4 \\(model expects 8\\)"):
        PRESETS["bioscan5m-8-4-4"].check_tokenizer(KmerTokenizer(k=4))


def test_tiny_preset_keeps_padding_apart_from_unknown():
    cfg = PRESETS["tiny"]
    tok = KmerTokenizer(k=4, preset="bert")
    cfg.check_tokenizer(tok)
    assert cfg.pad_token_id == tok.pad_id != tok.unk_id
    adopted = cfg.with_tokenizer(KmerTokenizer(k=3))  # barcodebert: no padding row of its own
    assert adopted.pad_token_id is None and adopted.vocab_size == 66


@pytest.mark.parametrize("bad, match", [
    (dict(hidden_size=30, num_heads=4), "divisible"),
    (dict(num_layers=0), "num_layers"),
    (dict(dropout=1.0), "dropout"),
    (dict(head="mlp"), "head"),
    (dict(pad_token_id=1), "pad_token_id"),
    (dict(vocab_size=100), "do not fit"),
])
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        small_config(**bad)


def test_config_round_trips_through_dict():
    cfg = small_config(head="lm")
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown EncoderConfig fields: colour"):
        EncoderConfig.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_bad_inputs_raise_clear_errors():
    cfg = small_config()
    enc = Encoder(cfg)
    with pytest.raises(TypeError, match="integer"):
        enc(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        enc(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="positions"):
        enc(torch.zeros(1, cfg.max_position_embeddings + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask shape"):
        enc(torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 4))


def test_dropout_is_seeded_and_off_in_eval():
    cfg = small_config(dropout=0.1, attention_dropout=0.1)
    model = MaskedLM(cfg)
    ids, mask = random_batch(cfg)
    torch.manual_seed(1)
    a, _ = model(ids, mask)
    torch.manual_seed(1)
    b, _ = model(ids, mask)
    c, _ = model(ids, mask)
    assert torch.equal(a, b) and not torch.equal(a, c)
    model.eval()
    assert torch.equal(model(ids, mask)[0], model(ids, mask)[0])


@pytest.mark.parametrize("head", ["classifier", "lm"])
def test_flops_per_token_matches_torchs_flop_counter(head):
    """``flops_per_token`` against what torch counts (``FlopCounterMode``) in a real forward
    and forward + backward, not against its own formula (issue 10 item 17). Attention runs
    through SDPA's math backend here, whose matmuls the counter sees; embedding lookups,
    LayerNorm and softmax are not matmuls and count for neither."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    cfg = small_config(head=head)
    model = MaskedLM(cfg)
    B, T = 3, 12
    ids, mask = random_batch(cfg, B=B, T=T)
    labels = torch.where(mask.bool(), ids - cfg.first_kmer_id, IGNORE_INDEX)
    with sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as forward:
            model(ids, mask)
        with FlopCounterMode(display=False) as training:
            _, loss = model(ids, mask, labels)
            loss.backward()
    assert forward.get_total_flops() == flops_per_token(cfg, T, training=False) * B * T
    assert training.get_total_flops() == flops_per_token(cfg, T) * B * T
    # MFU is linear in throughput and inverse in peak.
    m = estimate_mfu(cfg, T, 1000.0, peak=1e9)
    assert math.isclose(m, flops_per_token(cfg, T) * 1000.0 / 1e9)
    assert math.isclose(estimate_mfu(cfg, T, 2000.0, peak=2e9), m)
    with pytest.raises(ValueError):
        estimate_mfu(cfg, T, 1.0, peak=0)


def test_bf16_autocast_runs_on_cpu():
    # The same code path as CUDA bf16 training; loss stays float32.
    cfg = small_config()
    model = MaskedLM(cfg)
    ids, mask = random_batch(cfg)
    labels = torch.where(mask.bool(), ids - cfg.first_kmer_id, IGNORE_INDEX)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(ids, mask, labels)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_matches_cpu_fp32_roughly():
    cfg = small_config()
    model = MaskedLM(cfg).eval()
    ids, mask = random_batch(cfg)
    ref = model.encoder(ids, mask)
    gpu = model.cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = gpu.encoder(ids.cuda(), mask.cuda())
    torch.testing.assert_close(out.float().cpu(), ref, rtol=0.05, atol=0.05)
