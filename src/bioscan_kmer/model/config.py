"""Encoder configuration and the named presets.

An :class:`EncoderConfig` describes both the architecture (layers, heads, widths) and the
vocabulary the model was built for (k, tokenizer preset, special-token ids). Keeping the
vocabulary in the config lets a checkpoint refuse data tokenized with a different
tokenizer instead of silently training on shifted ids.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from bioscan_kmer.errors import UserError

__all__ = ["EncoderConfig", "ConfigError", "PRESETS", "get_preset", "vocab_from_tokenizer"]

_HEADS = ("classifier", "lm")


class ConfigError(UserError):
    """A model or training configuration that cannot be used.

    Bad values, a vocabulary that does not fit the data, or a checkpoint whose settings
    differ from the run resuming it. The command line reports it in one line (exit 2).
    """

_TOKENIZER_PRESETS = ("barcodebert", "bert")


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture and vocabulary of a BERT-style k-mer encoder.

    Parameters
    ----------
    vocab_size : int
        Rows of the token embedding (specials plus k-mers).
    hidden_size, num_layers, num_heads, intermediate_size : int
        Transformer width, depth, attention heads and feed-forward width.
    max_position_embeddings : int
        Rows of the learned position embedding; must cover the tokenizer's ``seq_len``.
    dropout, attention_dropout : float
        Dropout on hidden states and on attention probabilities (BERT uses 0.1 for both).
    layer_norm_eps : float
        LayerNorm epsilon (1e-12 as in BERT, so that Hugging Face weights match exactly).
    type_vocab_size : int
        Rows of the token-type ("segment") embedding; 0 means none. Checkpoints made with
        Hugging Face's ``BertConfig`` defaults have 2; row 0 is added to every token.
    pooler : bool
        Keep BERT's ``[CLS]`` pooler (dense + tanh). Only used to round-trip Hugging Face
        ``BertModel`` weights; :meth:`Encoder.embed` uses masked mean pooling.
    head : {"classifier", "lm"}
        Masked-LM head. ``"classifier"`` is BarcodeBERT's (a ``BertForTokenClassification``
        linear layer onto the ``num_kmers`` classes); ``"lm"`` is ``BertForMaskedLM``'s
        (dense, GELU, LayerNorm, decoder tied to the token embedding) whose logits are
        restricted to the k-mer rows.
    k, tokenizer_preset, n_nucleotide : int, str, bool
        The tokenizer the vocabulary comes from (see the core ``KmerTokenizer``).
    pad_token_id : int or None
        Padding id, kept apart from ``unk_token_id`` where the tokenizer has one
        (preset ``bert``); its embedding row is zero and receives no gradient.
    unk_token_id, mask_token_id, first_kmer_id, num_kmers : int
        Special ids and the k-mer id range ``[first_kmer_id, first_kmer_id + num_kmers)``;
        the masked-LM label of a k-mer id is ``id - first_kmer_id``.
    initializer_range : float
        Standard deviation of the normal initialisation (BERT: 0.02).
    vocab_locked : bool
        Whether training must use exactly this vocabulary. False for the ``tiny`` preset,
        which adopts the vocabulary of whatever data it is trained on.
    """

    vocab_size: int
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    type_vocab_size: int = 0
    pooler: bool = False
    head: str = "classifier"
    k: int = 4
    tokenizer_preset: str = "barcodebert"
    n_nucleotide: bool = False
    pad_token_id: int | None = None
    unk_token_id: int = 1
    mask_token_id: int = 0
    first_kmer_id: int = 2
    num_kmers: int = 256
    initializer_range: float = 0.02
    vocab_locked: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                     "intermediate_size", "max_position_embeddings", "k", "num_kmers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"EncoderConfig.{name} must be a positive int, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"EncoderConfig.{name} must be in [0, 1), got {value!r}")
        if self.type_vocab_size < 0:
            raise ConfigError(f"type_vocab_size must be >= 0, got {self.type_vocab_size}")
        if self.head not in _HEADS:
            raise ConfigError(f"head must be one of {_HEADS}, got {self.head!r}")
        if self.tokenizer_preset not in _TOKENIZER_PRESETS:
            raise ConfigError(
                f"tokenizer_preset must be one of {_TOKENIZER_PRESETS}, got {self.tokenizer_preset!r}"
            )
        if self.first_kmer_id < 0 or self.first_kmer_id + self.num_kmers > self.vocab_size:
            raise ConfigError(
                f"k-mer ids [{self.first_kmer_id}, {self.first_kmer_id + self.num_kmers}) do not fit "
                f"in vocab_size {self.vocab_size}"
            )
        for name in ("pad_token_id", "unk_token_id", "mask_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(f"{name} {value} is outside the vocabulary (size {self.vocab_size})")
        if self.pad_token_id is not None and self.pad_token_id in (self.unk_token_id, self.mask_token_id):
            # One shared row for padding and unknown is one of BarcodeBERT's known faults.
            raise ConfigError("pad_token_id must differ from unk_token_id and mask_token_id")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (inverse of :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EncoderConfig":
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown EncoderConfig fields: {', '.join(unknown)}")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> "EncoderConfig":
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def vocab_fields(self) -> dict[str, Any]:
        """The fields that must agree with the tokenizer of the training data."""
        return {name: getattr(self, name) for name in _VOCAB_FIELDS}

    def check_tokenizer(self, tokenizer: Any, *, what: str = "the data") -> None:
        """Raise ``ValueError`` if ``tokenizer`` does not produce this config's vocabulary.

        Parameters
        ----------
        tokenizer : KmerTokenizer
            The tokenizer the input ids were made with.
        what : str
            How to name the tokenizer's owner in the message (e.g. the shard path).
        """
        theirs = vocab_from_tokenizer(tokenizer)
        ours = self.vocab_fields()
        diffs = [f"{k}={theirs[k]!r} (model expects {ours[k]!r})" for k in _VOCAB_FIELDS
                 if theirs[k] != ours[k]]
        if diffs:
            raise ConfigError(f"vocabulary of {what} does not match the model: " + ", ".join(diffs))
        seq_len = getattr(tokenizer, "seq_len", None)
        if seq_len is not None and seq_len > self.max_position_embeddings:
            raise ConfigError(
                f"sequences of {what} have {seq_len} tokens but the model has only "
                f"{self.max_position_embeddings} positions"
            )

    def with_tokenizer(self, tokenizer: Any) -> "EncoderConfig":
        """Return a copy whose vocabulary fields come from ``tokenizer``."""
        return self.replace(**vocab_from_tokenizer(tokenizer))


_VOCAB_FIELDS = ("vocab_size", "k", "tokenizer_preset", "n_nucleotide", "pad_token_id",
                 "unk_token_id", "mask_token_id", "first_kmer_id", "num_kmers")


def vocab_from_tokenizer(tokenizer: Any) -> dict[str, Any]:
    """Read the vocabulary fields of an :class:`EncoderConfig` off a ``KmerTokenizer``.

    Parameters
    ----------
    tokenizer : KmerTokenizer
        A core tokenizer (duck-typed: ``vocab_size``, ``config``, the ``*_id`` attributes).

    Returns
    -------
    dict
        Keys ``vocab_size, k, tokenizer_preset, n_nucleotide, pad_token_id, unk_token_id,
        mask_token_id, first_kmer_id, num_kmers``.
    """
    cfg = dict(getattr(tokenizer, "config", {}) or {})
    try:
        pad = tokenizer.pad_id
        # The barcodebert preset pads with the letter N, so its "pad id" is [UNK]: there is no
        # padding row of its own, which is what pad_token_id=None means here.
        if pad is not None and pad == tokenizer.unk_id:
            pad = None
        return {
            "vocab_size": int(tokenizer.vocab_size),
            "k": int(cfg.get("k", getattr(tokenizer, "k", 0))),
            "tokenizer_preset": str(cfg.get("preset", getattr(tokenizer, "preset", ""))),
            "n_nucleotide": bool(cfg.get("n_nucleotide", getattr(tokenizer, "n_nucleotide", False))),
            "pad_token_id": None if pad is None else int(pad),
            "unk_token_id": int(tokenizer.unk_id),
            "mask_token_id": int(tokenizer.mask_id),
            "first_kmer_id": int(tokenizer.first_kmer_id),
            "num_kmers": int(tokenizer.num_kmers),
        }
    except AttributeError as exc:
        raise TypeError(f"expected a KmerTokenizer, got {type(tokenizer).__name__}: {exc}") from None


def _barcodebert_vocab(k: int) -> dict[str, Any]:
    return {"vocab_size": 4**k + 2, "k": k, "tokenizer_preset": "barcodebert",
            "pad_token_id": None, "unk_token_id": 1, "mask_token_id": 0,
            "first_kmer_id": 2, "num_kmers": 4**k}


def _bert_vocab(k: int) -> dict[str, Any]:
    return {"vocab_size": 4**k + 5, "k": k, "tokenizer_preset": "bert",
            "pad_token_id": 0, "unk_token_id": 1, "mask_token_id": 4,
            "first_kmer_id": 5, "num_kmers": 4**k}


#: Named configurations. The two published ones keep Hugging Face ``BertConfig`` defaults
#: that BarcodeBERT inherited (2 token types, 512 positions, eps 1e-12), so that their
#: checkpoints load without conversion loss.
PRESETS: dict[str, EncoderConfig] = {
    # Small enough to train visibly on two CPU cores in a minute; uses the `bert` tokenizer
    # preset (padding apart from unknown) but adopts the data's vocabulary when trained.
    # No dropout: minute-long runs do not overfit, and attention dropout would push CPU
    # attention off the fused kernel onto the slow materialised path.
    "tiny": EncoderConfig(
        hidden_size=64, num_layers=2, num_heads=2, intermediate_size=256,
        max_position_embeddings=512, dropout=0.0, attention_dropout=0.0, vocab_locked=False,
        **_bert_vocab(4),
    ),
    # The CPU-sized model of the real-data benchmark: 3.4M parameters, ~4,700 tokens/s
    # when pretraining on 2 CPU cores, so that an hour of pretraining sees ~17M tokens (4
    # epochs of the 26k-barcode BOLD corpus). Chosen by measurement (docs/model.md,
    # "Presets"): 128 wide was 2.2x faster, but its embedding layer alone held too little
    # of the k-mer composition (1-NN genus 46% at 64 wide, 60% at 256, counts 62%). No
    # dropout, as for `tiny` (CPU speed; a few epochs do not overfit).
    "small": EncoderConfig(
        hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024,
        max_position_embeddings=512, dropout=0.0, attention_dropout=0.0, vocab_locked=False,
        **_bert_vocab(4),
    ),
    # The original BarcodeBERT (k=4, 12 layers, 12 heads), ~86M parameters.
    "barcodebert-4-12-12": EncoderConfig(
        hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072,
        max_position_embeddings=512, type_vocab_size=2, **_barcodebert_vocab(4),
    ),
    # The BIOSCAN-5M model (k=8, 4 layers, 4 heads), ~129M parameters, mostly the
    # 65,538-row embedding and the 65,536-way output layer.
    "bioscan5m-8-4-4": EncoderConfig(
        hidden_size=768, num_layers=4, num_heads=4, intermediate_size=3072,
        max_position_embeddings=512, type_vocab_size=2, **_barcodebert_vocab(8),
    ),
}


def get_preset(name: str, **overrides: Any) -> EncoderConfig:
    """Return the preset ``name``, optionally with some fields replaced.

    Raises
    ------
    ValueError
        If ``name`` is not a preset.
    """
    try:
        config = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    return config.replace(**overrides) if overrides else config
