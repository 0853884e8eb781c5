"""Chunked linear cross-entropy: the plain loss and gradients, without the logits."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bioscan_kmer.model import IGNORE_INDEX, MaskedLM, get_preset
from bioscan_kmer.model.losses import linear_cross_entropy
from bioscan_kmer.train import pretrain
from bioscan_kmer.train.runlog import read_log

from model_synthetic import synthetic_shards
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)


def _problem(N, C, K, seed, dtype=torch.float64, bias=True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, C, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(K, C, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(K, generator=g, dtype=dtype, requires_grad=True) if bias else None
    y = torch.randint(0, K, (N,), generator=g)
    y[torch.rand(N, generator=g) < 0.3] = IGNORE_INDEX
    return h, w, b, y


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 40), K=st.integers(2, 70), chunk=st.integers(1, 50), bias=st.booleans(),
       seed=st.integers(0, 10**6))
def test_matches_plain_cross_entropy_and_its_gradients(N, K, chunk, bias, seed):
    h, w, b, y = _problem(N, 6, K, seed, bias=bias)
    params = [t for t in (h, w, b) if t is not None]
    logits = h @ w.t() + (b if b is not None else 0)
    ref = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX, reduction="sum")
    ref_grads = torch.autograd.grad(2.5 * ref, params)
    out = linear_cross_entropy(h, w, b, y, chunk_rows=chunk)
    grads = torch.autograd.grad(2.5 * out, params)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref.detach(), rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


def test_all_rows_ignored_gives_zero_loss_and_gradient():
    h, w, b, y = _problem(5, 4, 9, 0)
    y[:] = IGNORE_INDEX
    out = linear_cross_entropy(h, w, b, y, chunk_rows=2)
    out.backward()
    assert out.item() == 0.0 and not h.grad.any() and not w.grad.any() and not b.grad.any()


def test_no_grad_skips_the_gradients():
    h, w, b, y = _problem(30, 4, 9, 1)
    with torch.no_grad():
        out = linear_cross_entropy(h, w, b, y, chunk_rows=7)
    ref = F.cross_entropy(h @ w.t() + b, y, reduction="sum")
    torch.testing.assert_close(out, ref.detach())
    assert out.grad_fn is None


def test_bad_inputs():
    h, w, b, y = _problem(4, 3, 5, 2)
    with pytest.raises(ValueError, match="do not fit"):
        linear_cross_entropy(h, w[:, :2], b, y)
    with pytest.raises(ValueError, match="labels shape"):
        linear_cross_entropy(h, w, b, y[:3])
    with pytest.raises(ValueError, match="bias shape"):
        linear_cross_entropy(h, w, b[:4], y)
    with pytest.raises(ValueError, match="chunk_rows"):
        linear_cross_entropy(h, w, b, y, chunk_rows=0)


@pytest.mark.parametrize("head", ["classifier", "lm"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_masked_lm_loss_chunks_match_the_plain_loss(head, reduction):
    cfg = get_preset("tiny", dropout=0.0, attention_dropout=0.0, head=head)
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    ids = torch.randint(cfg.first_kmer_id, cfg.vocab_size, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 12:] = 0
    labels = torch.where(mask.bool(), ids - cfg.first_kmer_id, IGNORE_INDEX)
    results = []
    for chunk in (None, 7):
        model.zero_grad()
        logits, loss = model(ids, mask, labels, reduction=reduction, loss_chunk_rows=chunk)
        loss.backward()
        results.append((logits, loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                               if p.grad is not None}))
    (la, a, ga), (lb, b, gb) = results
    assert la.shape == (3, 20, cfg.num_kmers) and lb is None
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert ga.keys() == gb.keys()
    for name in ga:
        torch.testing.assert_close(gb[name], ga[name], rtol=1e-4, atol=1e-6, msg=name)


def test_chunked_loss_under_bf16_autocast():
    """The chunked loss under bf16 autocast follows the float32 loss of the same labels.

    The model must be confident for this to test anything: at chance level every labelling
    gives about ln K, so a loss that ignored or shuffled its labels would pass (issue 10
    item 17). Scaling the head makes the model's own argmax labels cost ~1 nat and shuffled
    ones ~10, far outside the tolerance.
    """
    cfg = get_preset("tiny", dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    model = MaskedLM(cfg)
    with torch.no_grad():
        model.head.proj.weight.mul_(20)
    ids = torch.randint(cfg.first_kmer_id, cfg.vocab_size, (4, 16))
    with torch.no_grad():
        labels = model(ids)[0].argmax(-1)  # (B, T): what the model predicts
    shuffled = labels.flatten()[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(1))]
    _, ref = model(ids, None, labels)  # float32
    ref_grad = torch.autograd.grad(ref, model.head.proj.weight)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, plain = model(ids, None, labels)
        _, chunked = model(ids, None, labels, loss_chunk_rows=10)
        _, wrong = model(ids, None, shuffled.view_as(labels), loss_chunk_rows=10)
    assert chunked.dtype == torch.float32
    torch.testing.assert_close(chunked, ref.detach(), rtol=0.02, atol=0.02)
    torch.testing.assert_close(plain, ref.detach(), rtol=0.02, atol=0.02)
    # The tolerance is far below what a wrong labelling costs.
    assert wrong.item() > ref.item() + 5
    grad = torch.autograd.grad(chunked, model.head.proj.weight)[0]
    assert torch.isfinite(grad).all()
    assert F.cosine_similarity(grad.flatten(), ref_grad.flatten(), dim=0) > 0.99


def test_pretraining_with_loss_chunks_follows_the_plain_run(tmp_path):
    synthetic_shards(tmp_path / "s", n_train=48, n_val=24, seed=1)
    kw = dict(preset="tiny", device="cpu", threads=1, progress=False, seed=3, steps=6, batch_size=8,
              lr=3e-3, dropout=0.0, log_every=1, val_every=3, val_batches=2, ckpt_every=0)
    plain = pretrain(tmp_path / "s", tmp_path / "plain", **kw)
    chunked = pretrain(tmp_path / "s", tmp_path / "chunked", loss_chunk_rows=50, **kw)
    la, lb = read_log(plain["log"]), read_log(chunked["log"])
    for ra, rb in zip(la, lb):
        for field in ("loss", "val_loss"):
            if field in ra:
                assert rb[field] == pytest.approx(ra[field], rel=1e-4)
    assert len(la) == len(lb) > 6
