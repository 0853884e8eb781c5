"""Masking recipes: rates, never special tokens, labels, seeding, sharding over ranks."""

import math

import pytest
import torch

from bioscan_kmer import KmerTokenizer
from bioscan_kmer.model import IGNORE_INDEX, apply_masking, get_preset, mask_barcodebert, mask_bert

from model_synthetic import species_sequences
from model_synthetic import one_torch_thread  # noqa: F401 (autouse fixture)


def tokenized(preset, n=400, seed=0):
    tok = KmerTokenizer(k=4, max_len=160, preset=preset)
    enc = tok(species_sequences(n, length=160, seed=seed), return_tensors="pt")
    # Some sequences carry an N, hence [UNK] tokens inside the real region.
    return tok, enc["input_ids"].long(), enc["attention_mask"].long()


def within(observed, expected, n, sigmas=5.0):
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


@pytest.mark.parametrize("preset", ["barcodebert", "bert"])
def test_barcodebert_recipe(preset):
    tok, ids, mask = tokenized(preset)
    config = get_preset("tiny").with_tokenizer(tok)
    real = (ids >= tok.first_kmer_id) & (ids < tok.first_kmer_id + tok.num_kmers) & mask.bool()
    special = ~real
    assert (ids[mask.bool()] == tok.unk_id).any(), "the data should hold [UNK] tokens to test"
    g = torch.Generator().manual_seed(0)
    masked, labels = apply_masking("barcodebert", ids, mask, config, generator=g)
    hit = masked != ids
    assert torch.equal(masked[hit], torch.full_like(masked[hit], tok.mask_id))
    # Only real k-mers are masked, about half of them.
    assert not (hit & special).any()
    n = int(real.sum())
    assert within(hit.sum().item() / n, 0.5, n)
    # The loss covers every real k-mer (masked or not) and nothing else.
    assert torch.equal(labels != IGNORE_INDEX, real)
    assert torch.equal(labels[real], ids[real] - tok.first_kmer_id)
    assert labels[real].min() >= 0 and labels[real].max() < tok.num_kmers


def test_bert_recipe_80_10_10():
    tok, ids, mask = tokenized("bert", n=2000)
    real = (ids >= tok.first_kmer_id) & (ids < tok.first_kmer_id + tok.num_kmers) & mask.bool()
    g = torch.Generator().manual_seed(1)
    masked, labels = mask_bert(ids, mask, mask_token_id=tok.mask_id, first_kmer_id=tok.first_kmer_id,
                               num_kmers=tok.num_kmers, generator=g)
    selected = labels != IGNORE_INDEX
    assert not (selected & ~real).any()
    n = int(real.sum())
    s = int(selected.sum())
    assert within(s / n, 0.15, n)
    to_mask = selected & (masked == tok.mask_id)
    changed = selected & (masked != ids) & (masked != tok.mask_id)
    kept = selected & (masked == ids)
    assert within(to_mask.sum().item() / s, 0.8, s)
    # A random replacement can draw the original k-mer (1/256), so "kept" is a bit above 10%.
    assert within(changed.sum().item() / s, 0.1 * 255 / 256, s)
    assert within(kept.sum().item() / s, 0.1 + 0.1 / 256, s)
    # Random replacements are k-mers, never special tokens; unselected tokens are untouched.
    assert (masked[changed] >= tok.first_kmer_id).all() and (masked[changed] < tok.first_kmer_id + 256).all()
    assert torch.equal(masked[~selected], ids[~selected])
    assert torch.equal(labels[selected], ids[selected] - tok.first_kmer_id)


@pytest.mark.parametrize("recipe", ["barcodebert", "bert"])
def test_seeded_reproducibility(recipe):
    tok, ids, mask = tokenized("bert", n=50)
    config = get_preset("tiny").with_tokenizer(tok)

    def run(seed):
        return apply_masking(recipe, ids, mask, config, generator=torch.Generator().manual_seed(seed))

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    # Inputs are never modified in place.
    assert torch.equal(ids, tokenized("bert", n=50)[1])


@pytest.mark.parametrize("recipe", ["barcodebert", "bert"])
def test_row_shards_reassemble_the_global_batch(recipe):
    """Rank r holding rows r, r+W, ... draws what one process draws for those rows."""
    tok, ids, mask = tokenized("bert", n=12)
    config = get_preset("tiny").with_tokenizer(tok)
    full = apply_masking(recipe, ids, mask, config, generator=torch.Generator().manual_seed(3))
    for world in (2, 3):
        for rank in range(world):
            part = apply_masking(recipe, ids[rank::world], mask[rank::world], config,
                                 generator=torch.Generator().manual_seed(3), row_shard=(rank, world))
            assert torch.equal(part[0], full[0][rank::world])
            assert torch.equal(part[1], full[1][rank::world])


def test_masking_rejects_bad_arguments():
    tok, ids, mask = tokenized("bert", n=4)
    config = get_preset("tiny").with_tokenizer(tok)
    with pytest.raises(ValueError, match="unknown masking recipe"):
        apply_masking("span", ids, mask, config)
    with pytest.raises(ValueError, match="ratio"):
        apply_masking("bert", ids, mask, config, ratio=1.5)
    with pytest.raises(ValueError, match="row_shard"):
        apply_masking("bert", ids, mask, config, row_shard=(2, 2))
    with pytest.raises(ValueError, match="attention_mask shape"):
        mask_barcodebert(ids, mask[:, :-1], mask_token_id=4, first_kmer_id=5, num_kmers=256)
    with pytest.raises(TypeError, match="integer"):
        mask_barcodebert(ids.float(), mask, mask_token_id=4, first_kmer_id=5, num_kmers=256)
