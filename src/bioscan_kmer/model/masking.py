"""Masked-language-model corruption, vectorized on the tokens' device.

Two recipes:

``barcodebert``
    BarcodeBERT's: each real k-mer token (an id in ``[first_kmer_id, first_kmer_id +
    num_kmers)`` at a position the attention mask keeps) is replaced by ``[MASK]`` with
    probability ``ratio`` (0.5); the loss covers *every* real k-mer position, masked or
    not, against ``id - first_kmer_id``.
``bert``
    BERT's: each real k-mer token is selected with probability ``ratio`` (0.15); of the
    selected, 80% become ``[MASK]``, 10% a uniformly random k-mer, 10% stay; the loss
    covers the selected positions only.

Special tokens (``[UNK]``, ``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]``) and k-mers holding N
are never masked and never scored.

Randomness comes only from the ``torch.Generator`` passed in, so a seed fixes the result.
``row_shard=(rank, world_size)`` makes data-parallel training draw exactly what one process
would have drawn for the whole global batch: the noise is drawn for ``B * world_size`` rows
and this rank keeps rows ``rank, rank + world_size, ...``, which is how
``DistributedSampler`` interleaves samples across ranks.
"""

from __future__ import annotations

import torch

from .config import EncoderConfig
from .encoder import IGNORE_INDEX

__all__ = ["RECIPES", "mask_barcodebert", "mask_bert", "apply_masking", "kmer_positions"]

RECIPES = ("barcodebert", "bert")


def kmer_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                   first_kmer_id: int, num_kmers: int) -> torch.Tensor:
    """Boolean (B, T): real k-mer tokens, the only positions masking may touch."""
    ok = (input_ids >= first_kmer_id) & (input_ids < first_kmer_id + num_kmers)
    if attention_mask is not None:
        ok &= attention_mask.bool()
    return ok


def _check(input_ids: torch.Tensor, attention_mask: torch.Tensor | None, ratio: float,
           row_shard: tuple[int, int]) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a (B, T) tensor")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} differs from "
                         f"input_ids shape {tuple(input_ids.shape)}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"masking ratio must be in [0, 1], got {ratio}")
    rank, world = row_shard
    if not (isinstance(rank, int) and isinstance(world, int) and 0 <= rank < world):
        raise ValueError(f"row_shard must be (rank, world_size) with 0 <= rank < world_size, got {row_shard}")


def _uniform(shape: torch.Size, generator: torch.Generator | None, device: torch.device,
             row_shard: tuple[int, int]) -> torch.Tensor:
    rank, world = row_shard
    full = torch.rand((shape[0] * world, shape[1]), generator=generator, device=device)  # (B*W, T)
    return full[rank::world]  # (B, T)


def _randint(high: int, shape: torch.Size, generator: torch.Generator | None,
             device: torch.device, row_shard: tuple[int, int]) -> torch.Tensor:
    rank, world = row_shard
    full = torch.randint(high, (shape[0] * world, shape[1]), generator=generator, device=device)
    return full[rank::world]  # (B, T)


def mask_barcodebert(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    mask_token_id: int,
    first_kmer_id: int,
    num_kmers: int,
    ratio: float = 0.5,
    generator: torch.Generator | None = None,
    row_shard: tuple[int, int] = (0, 1),
) -> tuple[torch.Tensor, torch.Tensor]:
    """BarcodeBERT masking: ``ratio`` of real k-mers to ``[MASK]``, loss on all real k-mers.

    Parameters
    ----------
    input_ids : LongTensor (B, T)
    attention_mask : Tensor (B, T) or None
    mask_token_id, first_kmer_id, num_kmers : int
        From the :class:`EncoderConfig` (or tokenizer).
    ratio : float
        Probability that a real k-mer token is replaced.
    generator : torch.Generator, optional
        On the tokens' device; the only source of randomness.
    row_shard : (rank, world_size)
        See the module docstring.

    Returns
    -------
    masked_ids : LongTensor (B, T)
    labels : LongTensor (B, T)
        ``id - first_kmer_id`` at real k-mer positions, ``IGNORE_INDEX`` elsewhere.
    """
    _check(input_ids, attention_mask, ratio, row_shard)
    real = kmer_positions(input_ids, attention_mask, first_kmer_id, num_kmers)  # (B, T)
    noise = _uniform(input_ids.shape, generator, input_ids.device, row_shard)  # (B, T)
    masked = real & (noise < ratio)
    masked_ids = input_ids.masked_fill(masked, mask_token_id)
    labels = torch.where(real, input_ids - first_kmer_id, IGNORE_INDEX).long()
    return masked_ids, labels


def mask_bert(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    mask_token_id: int,
    first_kmer_id: int,
    num_kmers: int,
    ratio: float = 0.15,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    generator: torch.Generator | None = None,
    row_shard: tuple[int, int] = (0, 1),
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: select ``ratio`` of real k-mers; 80% ``[MASK]``, 10% random, 10% kept.

    Parameters are those of :func:`mask_barcodebert`, plus ``mask_fraction`` and
    ``random_fraction`` of the selected tokens (the rest stay unchanged). Random
    replacements are k-mers (never special tokens).

    Returns
    -------
    masked_ids : LongTensor (B, T)
    labels : LongTensor (B, T)
        ``id - first_kmer_id`` at selected positions, ``IGNORE_INDEX`` elsewhere.
    """
    _check(input_ids, attention_mask, ratio, row_shard)
    if not (0.0 <= mask_fraction and 0.0 <= random_fraction and mask_fraction + random_fraction <= 1.0):
        raise ValueError(f"mask_fraction {mask_fraction} and random_fraction {random_fraction} "
                         "must be >= 0 and sum to at most 1")
    device = input_ids.device
    real = kmer_positions(input_ids, attention_mask, first_kmer_id, num_kmers)  # (B, T)
    selected = real & (_uniform(input_ids.shape, generator, device, row_shard) < ratio)
    action = _uniform(input_ids.shape, generator, device, row_shard)  # (B, T)
    random_ids = first_kmer_id + _randint(num_kmers, input_ids.shape, generator, device, row_shard)
    to_mask = selected & (action < mask_fraction)
    to_random = selected & (action >= mask_fraction) & (action < mask_fraction + random_fraction)
    masked_ids = torch.where(to_random, random_ids.to(input_ids.dtype), input_ids)
    masked_ids = masked_ids.masked_fill(to_mask, mask_token_id)
    labels = torch.where(selected, input_ids - first_kmer_id, IGNORE_INDEX).long()
    return masked_ids, labels


def apply_masking(
    recipe: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    config: EncoderConfig,
    *,
    generator: torch.Generator | None = None,
    ratio: float | None = None,
    row_shard: tuple[int, int] = (0, 1),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``recipe`` ("barcodebert" or "bert") with the ids of ``config``.

    ``ratio`` defaults to the recipe's own (0.5 or 0.15).
    """
    kwargs = dict(mask_token_id=config.mask_token_id, first_kmer_id=config.first_kmer_id,
                  num_kmers=config.num_kmers, generator=generator, row_shard=row_shard)
    if ratio is not None:
        kwargs["ratio"] = ratio
    if recipe == "barcodebert":
        return mask_barcodebert(input_ids, attention_mask, **kwargs)
    if recipe == "bert":
        return mask_bert(input_ids, attention_mask, **kwargs)
    raise ValueError(f"unknown masking recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
